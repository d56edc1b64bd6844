-- helper.lua: what the specs share: the engine over the shared fixture
-- (spec/fixtures: container 101, MaxMind / VirusTotal / PAN assets), temp
-- playbooks, and the command line.
local luasoar = require "luasoar"

local H = {}
H.root = os.getenv("LUASOAR_ROOT") or "."
H.bin = os.getenv("LUASOAR_BIN") or (H.root .. "/build/luasoar")
if H.bin:sub(1, 1) ~= "/" then -- absolute: specs run it from other folders too
  local p = io.popen("pwd")
  H.bin = p:read("l") .. "/" .. H.bin
  p:close()
end
H.fixtures = H.root .. "/spec/fixtures"
H.luasoar = luasoar
H.json = {decode = luasoar.json_decode, encode = luasoar.json_encode}

local tmpdir
local function tmp()
  if not tmpdir then
    local p = io.popen("mktemp -d /tmp/luasoar-spec.XXXXXX")
    tmpdir = p:read("l")
    p:close()
  end
  return tmpdir
end
H.tmp = tmp

local counter = 0
--- Write a playbook to a temp file; returns its path.
function H.playbook(src, name)
  counter = counter + 1
  local path = ("%s/%s.lua"):format(tmp(), name or ("pb" .. counter))
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  return path
end

function H.write(name, text)
  local path = tmp() .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

function H.engine()
  return luasoar.engine{apps = H.fixtures .. "/apps", assets = H.fixtures .. "/assets.json", seed = 0}
end

--- The shared fixture's container 101 as a fresh table.
function H.container()
  local f = assert(io.open(H.fixtures .. "/container_101.json"))
  local c = assert(luasoar.json_decode(f:read("a")))
  f:close()
  return c
end

--- Run a playbook source on container 101; returns the run report.
function H.run(src, container)
  local eng = H.engine()
  local report = eng:run(H.playbook(src), container or H.container())
  local stats = eng:stats()
  eng:close()
  return report, stats
end

--- The messages of a report's log, in order (optionally only one level).
function H.messages(report, level)
  local out = {}
  for _, e in ipairs(report.log) do
    if not level or e.level == level then out[#out + 1] = e.message end
  end
  return out
end

--- The debug log entries decoded from JSON (playbooks debug tables).
function H.decoded(report)
  local out = {}
  for _, m in ipairs(H.messages(report, "debug")) do
    out[#out + 1] = luasoar.json_decode(m) or m
  end
  return out
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Run the luasoar command; returns stdout, stderr, exit code.
function H.cli(...)
  local args = {}
  for i, a in ipairs({...}) do args[i] = shell_quote(a) end
  local errfile = tmp() .. "/stderr"
  local cmd = ("%s %s 2>%s </dev/null"):format(shell_quote(H.bin), table.concat(args, " "), errfile)
  local p = io.popen(cmd)
  local out = p:read("a")
  local _, _, code = p:close()
  local f = io.open(errfile)
  local err = f:read("a")
  f:close()
  return out, err, code
end

--- Seconds since the epoch, to the nanosecond (date runs without the
-- sanitizer runtime a CI run preloads).
function H.now()
  local p = io.popen("env -u LD_PRELOAD date +%s.%N")
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

--- Small limits for hostile playbooks, so the specs are quick (the defaults
-- are in the README).
H.LIMITS = "playbook_info = {limits = {instructions_per_callback = 5000000, instructions_per_run = 20000000, memory_mb = 16}}\n"

--- The ```lua blocks of a markdown file, from the heading `after` on (the
-- whole file without it). Returns a list of {code, line, mark}: `line` the
-- block's first line in the file, `mark` the word of an HTML comment on the
-- line just before the block (`<!-- fragment -->` gives "fragment"), or nil.
function H.lua_blocks(path, after)
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  local start = 1
  if after then
    start = text:find(after, 1, true)
    assert(start, path .. " has no section " .. after)
  end
  local blocks = {}
  local pos = start
  while true do
    local s, e, code = text:find("```lua\n(.-)```", pos)
    if not s then break end
    local _, line = text:sub(1, s):gsub("\n", "")
    local before = text:sub(1, s - 1):match("([^\n]*)\n$") or ""
    blocks[#blocks + 1] = {code = code, line = line + 2, mark = before:match("^%s*<!%-%-%s*([%w_-]+)")}
    pos = e + 1
  end
  return blocks
end

--- A well-behaved playbook (on the fixture's pan asset) to run beside a
-- hostile one: it logs "good run done".
H.GOOD = H.LIMITS .. [[
function on_start(c)
  phantom.act("block ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"pan"}, callback = cb})
end
function cb(kw) phantom.debug("good run done") end
]]

return H
