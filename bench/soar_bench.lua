-- soar_bench.lua: actions per second through a SOAR connector's warm Python
-- worker (runner "soar"), against the same trivial action as an exec app
-- written in Python (a process per app run) and as a Lua app (in-process).
--
-- Each case is `luasoar run` of a playbook of bench/fixtures/soar/ on a
-- container whose "data" says how many actions (n) and on which asset:
--   sequential  N separate phantom.act calls, one parameter set each, each
--               started from the previous one's callback
--   parallel    the same N acts started at once from on_start
-- The action: one ActionResult with data [{"n": 1}], status success, message
-- "ok"; the playbook checks every result.  Wall time is taken from outside
-- (`date +%s%N` around the process); a run of the same case with B actions
-- (start-up: the engine, the workers or processes, the interpreter; B = 1
-- sequential, 2 parallel so that both workers of the SOAR app's pool, its
-- default size, start in it too) is subtracted:
-- actions/s = (N - B) / (t(N) - median t(B)).  CPU is user + sys of luasoar
-- and its children (bash's `time`), per action the same way.
-- Rounds are interleaved (every case once per round), medians printed.
--
-- Run from the repository root after a build (all cases, or some by name;
-- key=value changes a parameter, see DEFAULTS):
--   lua5.4 bench/soar_bench.lua build/luasoar
--   lua5.4 bench/soar_bench.lua build/luasoar soar exec rounds=7 soar_n=3000
--   lua5.4 bench/soar_bench.lua bin=build/luasoar modes=sequential
-- Needs /usr/bin/python3 (Debian's), bash and date.  Temp files under /tmp.
local DEFAULTS = {
  rounds = 5,          -- samples per case (interleaved)
  soar_n = 1000,       -- actions per sample through the SOAR worker
  exec_n = 40,         -- actions per sample with an exec Python process each
  lua_n = 5000,        -- actions per sample with the Lua app
  modes = "sequential,parallel",
  bin = "build/luasoar",
  keep = 0,
}
local APPS = {"soar", "exec", "lua"}
local BASE = {sequential = 1, parallel = 2} -- actions in the start-up run
local LABEL = {soar = "SOAR worker (Python, warm)", exec = "exec app (Python process per run)",
               lua = "Lua app (in-process)"}

local opt, chosen = {}, {}
for k, v in pairs(DEFAULTS) do opt[k] = v end
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if k then
    if DEFAULTS[k] == nil then error("unknown parameter " .. k) end
    opt[k] = type(DEFAULTS[k]) == "number" and assert(math.tointeger(tonumber(v)), a) or v
  elseif a:find("/", 1, true) or a:find("luasoar", 1, true) then
    opt.bin = a
  else
    if not LABEL[a] then error("unknown case " .. a .. " (soar, exec, lua)") end
    chosen[a] = true
  end
end
if next(chosen) == nil then for _, c in ipairs(APPS) do chosen[c] = true end end

---------------------------------------------------------------------------
-- shell, files

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local t = f:read("a")
  f:close()
  return t
end

local U = dofile((arg[0]:match("^(.*[/\\])") or "") .. "bench_util.lua")
local median, minmax = U.median_of, U.minmax

local function log(fmt, ...) io.stderr:write(("[soar_bench] " .. fmt .. "\n"):format(...)) end

local ROOT = sh("pwd"):gsub("\n$", "")
local BIN = opt.bin:sub(1, 1) == "/" and opt.bin or (ROOT .. "/" .. opt.bin)
assert(io.open(BIN), "no " .. BIN .. ": build first (cmake --build build -j2), run from the repository root")
local FIX = ROOT .. "/bench/fixtures/soar"
assert(io.open(FIX .. "/assets.json"), "no " .. FIX .. ": run from the repository root")
assert(io.open("/usr/bin/python3"), "no /usr/bin/python3 (apt-get install python3)")
local TMP = sh("mktemp -d /tmp/luasoar-soar-bench.XXXXXX"):gsub("\n$", "")

--- One `luasoar run` of playbook mode on n actions of asset app:
--- wall seconds, CPU seconds (user + sys, children included).
local function run_once(app, mode, n)
  local container = ("%s/c-%s-%d.json"):format(TMP, app, n)
  write(container, ('{"id": 1, "name": "soar_bench", "artifacts": [], "data": {"n": %d, "asset": "%s"}}'):format(n, app))
  local out, cpu = TMP .. "/out.txt", TMP .. "/cpu.txt"
  local script = ("TIMEFORMAT='%%3U %%3S'; s=$(date +%%s%%N); { time %s run %s --container %s --quiet >%s 2>&1; } 2>%s; " ..
                  "rc=$?; e=$(date +%%s%%N); echo $s $e $rc")
                 :format(q(BIN), q(FIX .. "/playbooks/" .. mode .. ".lua"), q(container), q(out), q(cpu))
  local s, e = sh("bash -c " .. q(script)):match("(%d+) (%d+)")
  local text = read(out)
  if not text:find("on container 1: success\n$") then
    error(("%s %s n=%d did not succeed:\n%s"):format(app, mode, n, text:sub(-2000)))
  end
  local u, sy = read(cpu):match("([%d.]+) ([%d.]+)")
  return (math.tointeger(tonumber(e)) - math.tointeger(tonumber(s))) / 1e9, tonumber(u) + tonumber(sy)
end

---------------------------------------------------------------------------
-- the cases, interleaved

local modes = {}
for m in opt.modes:gmatch("[^,]+") do
  if m ~= "sequential" and m ~= "parallel" then error("unknown mode " .. m) end
  modes[#modes + 1] = m
end

local cases = {}
for _, mode in ipairs(modes) do
  for _, app in ipairs(APPS) do
    if chosen[app] then
      cases[#cases + 1] = {app = app, mode = mode, n = opt[app .. "_n"], wall = {}, cpu = {}, wall1 = {}, cpu1 = {}}
    end
  end
end

local load_before = sh("cat /proc/loadavg"):match("^(%S+ %S+ %S+)")
for _, c in ipairs(cases) do run_once(c.app, c.mode, BASE[c.mode]) end -- warm the page cache, compile nothing twice
for r = 1, opt.rounds do
  for _, c in ipairs(cases) do
    c.wall1[r], c.cpu1[r] = run_once(c.app, c.mode, BASE[c.mode])
    c.wall[r], c.cpu[r] = run_once(c.app, c.mode, c.n)
    log("round %d %-4s %-10s n=%-6d %.3f s (%d: %.3f s)", r, c.app, c.mode, c.n, c.wall[r], BASE[c.mode], c.wall1[r])
  end
end
local load_after = sh("cat /proc/loadavg"):match("^(%S+ %S+ %S+)")

for _, c in ipairs(cases) do
  local w1, c1 = median(c.wall1), median(c.cpu1)
  c.rates, c.cpus = {}, {}
  local b = BASE[c.mode]
  for r = 1, #c.wall do
    c.rates[r] = (c.n - b) / math.max(c.wall[r] - w1, 1e-6)
    c.cpus[r] = (c.cpu[r] - c1) / (c.n - b)
  end
  c.rate, c.startup, c.cpu_each = median(c.rates), w1, median(c.cpus)
end

local function find(app, mode)
  for _, c in ipairs(cases) do if c.app == app and c.mode == mode then return c end end
end

print(("\n## SOAR worker vs exec vs Lua app: actions/s, median of %d rounds (interleaved), one parameter set per act")
      :format(opt.rounds))
print(("%-46s %8s %11s %17s %11s %13s %9s"):format("case", "actions", "actions/s", "spread (min-max)",
                                                   "start-up ms", "CPU µs/action", "× exec"))
for _, c in ipairs(cases) do
  local lo, hi = minmax(c.rates)
  local ex = find("exec", c.mode)
  print(("%-46s %8d %11.0f %17s %11.0f %13.0f %9s"):format(
    ("%s, %s"):format(LABEL[c.app], c.mode), c.n, c.rate, ("%.0f-%.0f"):format(lo, hi), c.startup * 1000,
    c.cpu_each * 1e6, ex and ("%.1f"):format(c.rate / ex.rate) or "-"))
end
for _, mode in ipairs(modes) do
  local s, e = find("soar", mode), find("exec", mode)
  if s and e then print(("ratio soar/exec, %s: %.1f×"):format(mode, s.rate / e.rate)) end
end
print(("load average (1, 5, 15 min) before: %s, after: %s; %s cores"):format(load_before, load_after,
  sh("nproc"):gsub("\n", "")))
if os.getenv("LUASOAR_PYTHON_DIR") then
  print("the worker's Python side from LUASOAR_PYTHON_DIR=" .. os.getenv("LUASOAR_PYTHON_DIR"))
end
print("actions/s = (N - B) / (wall of a run of N acts - median wall of a run of B acts), B = 1 sequential, 2")
print("parallel (both workers of the pool start); start-up = that median (the engine, the workers / processes /")
print("interpreter); CPU = user + sys of luasoar and its children, per action beyond those B.  Wall time from")
print("`date +%s%N` around each `luasoar run --quiet` process.")

if opt.keep == 0 then sh("rm -rf " .. q(TMP)) else log("kept %s", TMP) end
