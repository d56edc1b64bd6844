-- Hostile and buggy playbooks: each fails its own run with a reason that
-- names the limit, while a well-behaved run in the same engine at the same
-- time ends success, and the engine's memory comes back to its baseline.
local H = require "spec.helper"

-- Small limits so the specs are quick; the defaults are in the README.
local LIMITS = H.LIMITS

local GOOD = H.GOOD

-- Run a hostile playbook beside a good one; returns the hostile run's report.
local function hostile(body)
  local eng = H.engine()
  local base = eng:stats().memory
  local bad = H.playbook(LIMITS .. body)
  local good = H.playbook(GOOD)
  local bad_id = eng:start(bad, H.container())
  local good_id = eng:start(good, H.container())
  local by_id = {}
  for _, r in ipairs(eng:wait()) do by_id[r.run_id] = r end
  assert.equal("success", by_id[good_id].status)
  assert.same({"good run done"}, H.messages(by_id[good_id], "debug"))
  local stats = eng:stats()
  assert.equal(0, stats.live_refs)
  assert.equal(0, stats.live_runs)
  assert.is_true(stats.memory < base + 512 * 1024, "memory back near its baseline: " .. stats.memory .. " vs " .. base)
  eng:close()
  local r = by_id[bad_id]
  assert.equal("failed", r.status)
  return r
end

describe("limits", function()
  it("a loop without end: instruction limit, where it was", function()
    local r = hostile("function on_start(c)\n  while true do end\nend\n")
    assert.equal(r.playbook .. ":3: instruction limit exceeded (5000000 instructions per callback)", r.error)
  end)

  it("the same inside pcall in a loop: pcall cannot swallow the kill", function()
    local r = hostile([[
function on_start(c)
  for i = 1, 1e12 do
    pcall(function() while true do end end)
  end
end
]])
    assert.matches("^" .. r.playbook:gsub("%p", "%%%0") .. ":%d: instruction limit exceeded %(5000000 instructions per callback%)$", r.error)
  end)

  it("an error handler that loops does not help either", function()
    local r = hostile([[
function on_start(c)
  while true do xpcall(function() while true do end end, function() while true do end end) end
end
]])
    assert.matches("instruction limit exceeded", r.error)
  end)

  it("a callback that never returns control", function()
    local r = hostile([[
function on_start(c)
  phantom.act("block ip", {parameters = {{ip = "1"}}, assets = {"pan"}, callback = cb})
end
function cb(kw)
  local x = 0
  repeat x = x + 1 until false
end
]])
    assert.equal(r.playbook .. ":7: instruction limit exceeded (5000000 instructions per callback)", r.error)
  end)

  it("the per-run budget adds up over callbacks", function()
    local r = hostile([[
local n = 0
function on_start(c) burn() end
function burn()
  for i = 1, 300000 do n = n + i end
  phantom.act("block ip", {parameters = {{ip = "1"}}, assets = {"pan"}, callback = burn})
end
]])
    assert.matches("instruction limit exceeded %(20000000 instructions per run%)$", r.error)
  end)

  it("string.rep bombs: memory limit", function()
    local r = hostile("function on_start(c)\n  local s = string.rep('x', 1 << 30)\nend\n")
    assert.equal(r.playbook .. ":3: memory limit exceeded (16 MiB per run)", r.error)
  end)

  it("table bombs, even when pcall catches the error: memory limit", function()
    local r = hostile([[
function on_start(c)
  local t = {}
  pcall(function() for i = 1, 1e9 do t[i] = {i} end end)
  phantom.debug("survived?")
end
]])
    assert.matches("memory limit exceeded %(16 MiB per run%)$", r.error)
  end)

  it("recursion without end: stack overflow, or memory before it", function()
    local r = hostile("local function f(n) return f(n + 1) + 1 end\nfunction on_start(c) f(1) end\n")
    assert.matches(":2: memory limit exceeded %(16 MiB per run%)$", r.error)
    r = hostile("playbook_info.limits.memory_mb = 200\nlocal function f(n) return f(n + 1) + 1 end\nfunction on_start(c) f(1) end\n")
    assert.matches(":3: stack overflow", r.error)
  end)

  it("coroutines created in a loop", function()
    local r = hostile([[
function on_start(c)
  local keep = {}
  for i = 1, 1e9 do keep[i] = coroutine.create(function() end) end
end
]])
    assert.matches("coroutine limit exceeded %(10000 per run%)$", r.error)
  end)

  it("JSON nested too deep", function()
    local r = hostile("function on_start(c)\n  json.decode(string.rep('[', 5000))\nend\n")
    assert.matches(":3: json.decode: invalid JSON at line 1, column 101: nesting deeper than 100 levels$", r.error)
  end)
end)

describe("the sandbox", function()
  local forbidden = {
    {"io.open('/etc/passwd')", "undefined global 'io'"},
    {"os.execute('true')", "attempt to call a nil value (field 'execute')"},
    {"os.exit(1)", "attempt to call a nil value (field 'exit')"},
    {"os.getenv('HOME')", "attempt to call a nil value (field 'getenv')"},
    {"os.remove('/tmp/x')", "attempt to call a nil value (field 'remove')"},
    {"os.rename('/tmp/x', '/tmp/y')", "attempt to call a nil value (field 'rename')"},
    {"os.tmpname()", "attempt to call a nil value (field 'tmpname')"},
    {"loadfile('/etc/passwd')", "undefined global 'loadfile'"},
    {"dofile('/etc/passwd')", "undefined global 'dofile'"},
    {"debug.getinfo(1)", "undefined global 'debug'"},
    {"collectgarbage('stop')", "undefined global 'collectgarbage'"},
    {"string.dump(on_start)", "attempt to call a nil value (field 'dump')"},
    {"package.loadlib('x', 'y')", "undefined global 'package'"},
    {"require('io')", "require: module 'io' is not available to playbooks (available: phantom, json)"},
    {"assert(load('\\27Lua'))", "attempt to load a binary chunk (mode is 't')", true},
    {"load('return 1', 'x', 'b')", "load: binary chunks are not allowed"},
    {"string.upper = nil", "cannot change the shared table 'string'"},
    {"phantom.act = print", "cannot change the shared table 'phantom'"},
    {"rawset(string, 'upper', print)", "rawset: the shared tables are read-only"},
    {"setmetatable(table, {})", "cannot change a protected metatable"},
    {"getmetatable('').__index = {}", "attempt to index a string value"},
    {"setmetatable({}, {__gc = function() while true do end end})", "setmetatable: __gc is not allowed in playbooks (finalizers run outside every limit)"},
  }
  for _, case in ipairs(forbidden) do
    it("refuses " .. case[1], function()
      local report = H.run("function on_start(c)\n  " .. case[1] .. "\nend\n")
      assert.equal("failed", report.status)
      if case[3] then
        assert.matches(case[2], report.error, 1, true)
      else
        assert.equal(report.playbook .. ":2: " .. case[2], report.error)
      end
    end)
  end

  it("keeps the engine's limits a ceiling, and shared metatables out of reach", function()
    local report = H.run([[
      playbook_info = {limits = {instructions_per_callback = 1e15}}
      function on_start(c)
        local a = json.decode("[1]")
        phantom.debug(getmetatable(a))
        phantom.debug(tostring(pcall(setmetatable, a, {})))
        local ls = phantom.LoopState{state = {max_iterations = 2}}
        phantom.debug(getmetatable(ls))
        while true do end
      end
    ]])
    assert.same({"json array", "false", "LoopState"}, H.messages(report, "debug"))
    assert.matches("instruction limit exceeded %(100000000 instructions per callback%)$", report.error)
  end)

  it("runs an error object's __tostring as the run, under its limits", function()
    local report = H.run([[
      function on_start(c)
        error(setmetatable({}, {__tostring = function()
          local f = load("return io")
          if f() ~= nil then return "escaped" end
          while true do end
        end}))
      end
    ]])
    assert.equal("failed", report.status)
    assert.equal(report.playbook .. ":2: (error object is a table value)", report.error)
  end)

  it("xpcall passes the arguments and returns the results", function()
    local report = H.run([[
      function on_start(c)
        phantom.debug({xpcall(function(a, b) return a + b, "ok" end, print, 2, 3)})
        phantom.debug({xpcall(function() error("bad", 0) end, function(e) return "handled " .. e end)})
      end
    ]])
    assert.same({'[true,5,"ok"]', '[false,"handled bad"]'}, H.messages(report))
  end)

  it("keeps what one run does to shared things from every other run", function()
    local report = H.run([[
      function on_start(c)
        pcall(function() string.upper = nil end)
        pcall(rawset, string, "upper", nil)
        phantom.debug(("x"):upper() .. string.upper("y"))
        phantom.debug(getmetatable(""))
        local f = load("return 1 + 1")
        phantom.debug(f())
        local g = load("return undefined_in_load")
        phantom.debug(tostring(pcall(g)))
        phantom.debug(#table .. tostring(next({}) == nil))
      end
    ]])
    assert.equal(H.luasoar.null, report.error)
    assert.same({"XY", "string", "2", "false", "0true"}, H.messages(report))
  end)

  it("caps the run log", function()
    local report = H.run("function on_start(c) for i = 1, 10005 do phantom.debug(i) end end\n")
    assert.equal("success", report.status)
    assert.equal(10001, #report.log)
    assert.same({level = "error", message = "log truncated: 5 later lines (25 bytes) dropped; a run keeps 10000 lines and 1048576 bytes of log"}, report.log[10001])
  end)

  it("fails a run past its deadline, and kills its app runs", function()
    local report = H.run([[
      playbook_info = {limits = {deadline_seconds = 0.3}}
      function on_start(c)
        phantom.act("hang", {parameters = {{}}, assets = {"misbehave"}, callback = cb})
      end
      function cb(kw) phantom.debug("never") end
    ]])
    assert.equal("deadline exceeded: the run took longer than 0.3s", report.error)
    assert.same({}, H.messages(report, "debug"))
  end)

  it("rejects bad limits in playbook_info", function()
    local report = H.run("playbook_info = {limits = {memory_mb = -1}}\nfunction on_start(c) end\n")
    assert.matches("playbook_info.limits.memory_mb: expected a number >= 1", report.error)
  end)
end)

describe("lua apps", function()
  it("an app that loops fails its app run, not the engine", function()
    local dir = H.tmp() .. "/loopapps/loop"
    os.execute("mkdir -p " .. dir)
    H.write("loopapps/loop/app.json", '{"name": "Loop", "runner": "lua", "actions": {"spin": {}}}')
    H.write("loopapps/loop/app.lua", 'return {spin = function() while true do end end}')
    H.write("loopassets.json", '{"loop": {"app": "Loop"}}')
    local eng = H.luasoar.engine{apps = H.tmp() .. "/loopapps", assets = H.tmp() .. "/loopassets.json"}
    local r = eng:run(H.playbook([[
      function on_start(c) phantom.act("spin", {parameters = {{}}, callback = cb}) end
      function cb(kw) phantom.debug({kw.success, kw.results[1].action_results[1].message}) end
    ]]), H.container())
    eng:close()
    assert.equal("success", r.status)
    local d = H.json.decode(r.log[1].message)
    assert.is_false(d[1])
    assert.matches("instruction limit exceeded %(100000000 instructions per app run%)$", d[2])
  end)
end)
