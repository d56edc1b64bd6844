-- Isolation: a playbook reads nothing outside its folders, changes nothing
-- another run sees, runs no code outside its limits, and its log is charged
-- to it.  Each attack runs beside a well-behaved run in the same engine,
-- which still ends success.
local H = require "spec.helper"
local luasoar = H.luasoar

local LIMITS = H.LIMITS

local GOOD = H.GOOD

-- A scripts folder of its own: a custom function and a child playbook
-- inside, a secret and a playbook-shaped file outside, a symlink out.
local root = H.tmp() .. "/isolation"
local scripts = root .. "/scripts"
local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end
local function setup()
  assert(os.execute(("mkdir -p %s/playbooks/local %s/custom_functions/community %s/custom_functions/evil"):format(
    scripts, scripts, scripts)))
  write(root .. "/secret.txt", "abc123\n")
  write(root .. "/outside.lua", 'phantom.debug("pwned")\nreturn function() return {} end\n')
  write(scripts .. "/custom_functions/community/ok.lua", "return function(p) return {ok = true} end\n")
  write(scripts .. "/playbooks/local/child.lua", "function on_start(c) end\n")
  assert(os.execute(("ln -sf %s/outside.lua %s/custom_functions/evil/link.lua"):format(root, scripts)))
  assert(os.execute(("ln -sf %s/outside.lua %s/playbooks/local/link.lua"):format(root, scripts)))
end

local function engine()
  return luasoar.engine{scripts = scripts, apps = H.fixtures .. "/apps", assets = H.fixtures .. "/assets.json", seed = 0}
end

-- Runs the playbooks (sources) at once beside a good one in one engine;
-- returns their reports in the order given, and the engine's stats.
local function beside(...)
  local eng = engine()
  local ids, by_id = {}, {}
  for i, src in ipairs({...}) do ids[i] = eng:start(H.playbook(src), H.container()) end
  local good = eng:start(H.playbook(GOOD), H.container())
  for _, r in ipairs(eng:wait()) do by_id[r.run_id] = r end
  assert.equal("success", by_id[good].status)
  assert.same({"good run done"}, H.messages(by_id[good], "debug"))
  assert.equal(0, eng:stats().live_runs)
  eng:close()
  local out = {}
  for i, id in ipairs(ids) do out[i] = by_id[id] end
  return table.unpack(out)
end

local function log_text(report)
  return table.concat(H.messages(report), "\n")
end

describe("references stay inside their folders", function()
  setup()

  local cases = {
    {"../../secret.txt\0", [["../../secret.txt\0" refused: a name with a NUL byte]]},
    {"../../outside", [["../../outside" refused: a part that starts with '.']]},
    {"community/../../../outside", [["community/../../../outside" refused: a part that starts with '.']]},
    {root .. "/outside", ('"%s/outside" refused: an absolute path'):format(root)},
    {"evil\nname", [["evil\nname" refused: the character 0x0a (names use letters, digits, space, '_', '-', '.' and '/')]]},
    {"community//ok", [["community//ok" refused: an empty part]]},
  }
  for _, case in ipairs(cases) do
    it(("custom_function %q is refused, naming the reference"):format(case[1]), function()
      local r = beside(LIMITS .. ([[
function on_start(c)
  phantom.custom_function{custom_function = %q}
end
]]):format(case[1]))
      assert.equal("failed", r.status)
      assert.equal(r.playbook .. ":3: phantom.custom_function: custom function " .. case[2], r.error)
      assert.not_matches("abc123", log_text(r))
      assert.not_matches("pwned", log_text(r))
    end)
  end

  it("a symlink that leads out of the folder is refused, for custom functions and playbooks", function()
    local cf, pb = beside(LIMITS .. [[
function on_start(c) phantom.custom_function{custom_function = "evil/link"} end
]], LIMITS .. [[
function on_start(c) phantom.playbook{playbook = "local/link"} end
]])
    assert.equal(cf.playbook .. ":2: phantom.custom_function: custom function \"evil/link\" refused: a file outside "
                 .. scripts .. "/custom_functions", cf.error)
    assert.equal(pb.playbook .. ":2: phantom.playbook: playbook \"local/link\" refused: a file outside "
                 .. scripts .. "/playbooks", pb.error)
    assert.not_matches("pwned", log_text(cf) .. log_text(pb))
  end)

  it("phantom.playbook refuses NUL, '..' and absolute references", function()
    for _, ref in ipairs{"../../secret.txt\0", "../outside", root .. "/outside"} do
      local r = beside(LIMITS .. ("function on_start(c) phantom.playbook{playbook = %q} end\n"):format(ref))
      assert.equal("failed", r.status)
      assert.matches("phantom.playbook: playbook \".*\" refused: ", r.error)
      assert.not_matches("abc123", log_text(r))
    end
  end)

  it("references inside the folder still work", function()
    local r = beside(LIMITS .. [[
function on_start(c)
  phantom.custom_function{custom_function = "community/ok", callback = function(kw) phantom.debug("cf " .. tostring(kw.success)) end}
  phantom.playbook{playbook = "local/child", callback = function(kw) phantom.debug("child " .. tostring(kw.success)) end}
end
]])
    assert.equal("success", r.status, r.error)
    table.sort(r.log, function(a, b) return a.message < b.message end)
    assert.same({"cf true", "child true"}, H.messages(r))
  end)

  it("an app's main file outside its folder is refused at load", function()
    local apps = root .. "/apps"
    assert(os.execute(("mkdir -p %s/bad"):format(apps)))
    write(apps .. "/bad/app.json", [[{"name": "Bad", "runner": "lua", "main": "../../outside.lua",
      "actions": {"x": {}}}]])
    local _, err, code = H.cli("run", H.playbook("function on_start(c) end\n"), "--container",
                               H.fixtures .. "/container_101.json", "--apps", apps, "--assets", H.fixtures .. "/assets.json")
    assert.equal(2, code)
    assert.matches("apps/bad/app.json: field 'main': a part that starts with '.'", err, 1, true)
  end)
end)

-- Walks everything a run reaches (pairs, metatables, __index, the tables
-- the API returns) to depth 8.  MARK writes a key into every table it can;
-- otherwise it reports every table that holds such a key.
local WALK = [[
function on_start(c)
  local seen, found = {}, {}
  local function walk(v, path, depth)
    local t = type(v)
    if depth > 8 or (t ~= "table" and t ~= "function" and t ~= "string" and t ~= "userdata") or seen[v] then return end
    seen[v] = true
    local mt = getmetatable(v)
    if mt ~= nil then walk(mt, path .. "<mt>", depth + 1) end
    if t ~= "table" then return end
    if rawget(v, "__probe") ~= nil then found[#found + 1] = path end
    if MARK then
      pcall(rawset, v, "__probe", 1)
      pcall(function() v.__probe2 = 1 end)
      for _, k in ipairs{"__index", "__gc", "__close", "should_continue", "debug", "rep"} do
        pcall(function() v[k] = function() return "hijacked" end end)
      end
    end
    for k, x in pairs(v) do
      walk(x, path .. "." .. tostring(k), depth + 1)
      walk(k, path .. "[key]", depth + 1)
    end
    local ok, idx = pcall(function() return v.__index end)
    if ok then walk(idx, path .. ".__index", depth + 1) end
  end
  local roots = {phantom = phantom, json = json, string = string, table = table, math = math, utf8 = utf8,
                 coroutine = coroutine, os = os, loop = phantom.LoopState{state = {}},
                 decoded = json.decode('[1, {"a": []}]'), str = "", container = c}
  for _, f in ipairs{"get_summary", "get_container", "get_assets", "get_run_data", "get_data", "get_list",
                     "get_apps", "get_action_results", "collect2"} do
    local ok, r = pcall(phantom[f], f == "get_container" and c.id or nil)
    if ok then roots[f] = r end
  end
  for name, v in pairs(roots) do walk(v, name, 1) end
  for k, v in pairs(_ENV) do walk(v, "_ENV." .. tostring(k), 1) end
  local s = phantom.LoopState{state = {max_iterations = 3}}
  phantom.debug(("%d tables walked; found: %s; should_continue: %s; rep: %s"):format(
    #found >= 0 and (function() local n = 0 for _ in pairs(seen) do n = n + 1 end return n end)() or 0,
    table.concat(found, ", "), tostring(s:should_continue()), ("ab"):rep(2)))
end
]]

describe("nothing shared is writable", function()
  it("a run that writes to everything it reaches changes nothing another run sees", function()
    local eng = engine()
    local marker = eng:run(H.playbook("MARK = true\n" .. WALK), H.container())
    local checker = eng:run(H.playbook("MARK = false\n" .. WALK), H.container())
    eng:close()
    assert.equal("success", marker.status)
    assert.equal("success", checker.status)
    local walked, found = H.messages(checker)[1]:match("^(%d+) tables walked; found: (.-);")
    assert.is_true(tonumber(walked) > 100, "walked " .. walked)
    assert.equal("", found)
    assert.matches("should_continue: true; rep: abab$", H.messages(checker)[1])
  end)

  it("no run can reseed the random generator every run draws from", function()
    local r = beside(LIMITS .. [[
function on_start(c)
  phantom.debug(tostring(math.randomseed))
  phantom.debug(tostring(math.type(math.random(1, 6))))
end
]])
    assert.same({"nil", "integer"}, H.messages(r))
  end)

  it("LoopState's methods cannot be replaced through an instance", function()
    local hijack, victim = beside(LIMITS .. [[
function on_start(c)
  local s = phantom.LoopState{state = {}}
  phantom.debug(tostring(s.__index))
  phantom.debug(tostring(getmetatable(s)))
  phantom.debug(tostring(pcall(function() getmetatable(s).__gc = print end)))
  local ok, e = pcall(function() s.should_continue.x = 1 end)
  phantom.debug(tostring(ok))
end
]], LIMITS .. [[
function on_start(c)
  phantom.debug(tostring(phantom.LoopState{state = {max_iterations = 2}}:should_continue()))
end
]])
    assert.equal("success", hijack.status)
    assert.same({"nil", "LoopState", "false", "false"}, H.messages(hijack))
    assert.same({"true"}, H.messages(victim))
  end)
end)

describe("no code without a budget", function()
  it("a __close handler that loops runs as its run, under its instruction budget", function()
    local r = beside(LIMITS .. [[
function on_start(c)
  local mt = {__close = function() end}
  local x <close> = setmetatable({}, mt)
  mt.__close = function() phantom.debug("closing"); while true do end end
  error("boom")
end
]])
    assert.equal("failed", r.status)
    assert.equal(r.playbook .. ":6: boom", r.error)
    assert.equal("closing", H.messages(r, "debug")[1])
  end)

  it("a __close handler that eats memory meets the run's cap", function()
    local r = beside(LIMITS .. [[
function on_start(c)
  local mt = {__close = function() end}
  local x <close> = setmetatable({}, mt)
  mt.__close = function() local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(64) .. i end end
  error("boom")
end
]])
    assert.equal(r.playbook .. ":6: boom", r.error)
  end)

  it("a __close handler of a run killed by its limit gets no more time", function()
    local r = beside(LIMITS .. [[
function on_start(c)
  local mt = {__close = function() end}
  local x <close> = setmetatable({}, mt)
  mt.__close = function() while true do end end
  while true do end
end
]])
    assert.equal(r.playbook .. ":6: instruction limit exceeded (5000000 instructions per callback)", r.error)
  end)

  it("a killed run's coroutines are not closed: coroutine.close and wrap raise the limit instead", function()
    for _, body in ipairs{[[
  local co = coroutine.create(function()
    local x <close> = setmetatable({}, {__close = function() while true do end end})
    while true do end
  end)
  coroutine.resume(co)
  coroutine.close(co)
]], [[
  local f = coroutine.wrap(function()
    local x <close> = setmetatable({}, {__close = function() while true do end end})
    while true do end
  end)
  f()
]]} do
      local r = beside(LIMITS .. "function on_start(c)\n" .. body .. "end\n")
      assert.matches("instruction limit exceeded %(5000000 instructions per callback%)$", r.error)
    end
  end)

  it("coroutine.wrap keeps Lua's semantics: values, errors with where, __close run on error", function()
    local r = beside(LIMITS .. [[
function on_start(c)
  local gen = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
  phantom.debug(tostring(gen(1)) .. " " .. tostring(gen(5)))
  local closed = false
  local bad = coroutine.wrap(function()
    local x <close> = setmetatable({}, {__close = function() closed = true end})
    error("inner")
  end)
  local ok, e = pcall(bad)
  phantom.debug(tostring(ok) .. " " .. e .. " " .. tostring(closed))
  phantom.debug(tostring(pcall(gen)))
end
]])
    assert.equal("success", r.status)
    local pb = r.playbook
    assert.same({"2 10", "false " .. pb .. ":8: inner true", "false"}, H.messages(r))
  end)

  it("finalizers cannot be set, neither directly nor on a shared class", function()
    local r = beside(LIMITS .. [[
function on_start(c)
  phantom.debug(tostring(pcall(setmetatable, {}, {__gc = function() while true do end end})))
  local s = phantom.LoopState{state = {}}
  phantom.debug(tostring(pcall(function() s.__index.__gc = function() while true do end end end)))
end
]])
    assert.equal("success", r.status)
    assert.same({"false", "false"}, H.messages(r))
  end)
end)

describe("logs are charged to their run", function()
  it("10,000 lines of 64 KiB: the run keeps 1 MiB of log and says how much was dropped", function()
    local r = beside(LIMITS .. [[
function on_start(c)
  local line = ("x"):rep(65536)
  for i = 1, 10000 do phantom.debug(line) end
  phantom.debug("done")
end
]])
    assert.equal("success", r.status)
    local kept = 0
    for _, e in ipairs(r.log) do kept = kept + #e.message end
    assert.equal(16, #r.log - 1) -- 16 lines of 64 KiB fit in 1 MiB
    assert.is_true(kept <= 1048576 + 200)
    assert.same({level = "error", message = "log truncated: 9985 later lines (654311428 bytes) dropped; a run keeps "
                 .. "10000 lines and 1048576 bytes of log"}, r.log[#r.log])
  end)

  it("log bytes count against the run's memory cap", function()
    -- 720 KB of log, then 400 KB of string: over 1 MiB together, not apart
    local r = beside([[
playbook_info = {limits = {memory_mb = 1}}
function on_start(c)
  local s = ("y"):rep(60000)
  for i = 1, 12 do phantom.debug(s) end
  local t = ("z"):rep(400000)
end
]])
    assert.equal(r.playbook .. ":5: memory limit exceeded (1 MiB per run)", r.error)
    assert.equal(12, #H.messages(r, "debug"))
  end)

  it("--limit log_bytes=N sets the engine's limit", function()
    local pb = H.playbook("function on_start(c) for i = 1, 5 do phantom.debug(('z'):rep(40)) end end\n")
    local out, _, code = H.cli("run", pb, "--container", H.fixtures .. "/container_101.json",
                               "--assets", H.fixtures .. "/assets.json", "--apps", H.fixtures .. "/apps",
                               "--limit", "log_bytes=100")
    assert.equal(0, code)
    assert.equal(("z"):rep(40) .. "\n" .. ("z"):rep(40) .. "\n"
                 .. "ERROR: log truncated: 3 later lines (120 bytes) dropped; a run keeps 10000 lines and 100 bytes of log\n"
                 .. "[container] 101: severity medium, status new, no tags, 0 notes, 3 artifacts\n"
                 .. "run 1 on container 101: success\n", out)
  end)
end)
