-- Apps of runner exec: the request they get, and every way they can fail.
-- A failure fails that app run's results with a message that says which;
-- the run and the engine go on.
local H = require "spec.helper"

-- Run one action of the Misbehave app; returns the callback's view.
local function misbehave(action, params)
  local report = H.run(([[
    function on_start(c)
      phantom.act(%q, {parameters = %s, assets = {"misbehave"}, callback = cb})
    end
    function cb(kw)
      local r = kw.results[1]
      local msgs = {}
      for i, ar in ipairs(r.action_results) do msgs[i] = ar.message end
      phantom.debug({success = kw.success, status = r.status, message = r.message, messages = msgs,
                     data = r.action_results[1] and r.action_results[1].data})
    end
  ]]):format(action, params or "{{}}"))
  assert.equal("success", report.status)
  return H.decoded(report)[1]
end

describe("an exec app", function()
  it("gets the request on stdin and its results reach the callback, integers kept", function()
    local r = misbehave("echo", '{{value = 7, nested = {n = 3}}}')
    assert.is_true(r.success)
    assert.equal("success", r.status)
    assert.equal("echoed", r.message)
    local param = r.data[1]
    assert.equal(7, param.value)
    assert.equal(3, param.nested.n)
    assert.matches("^%x+%-", param.context.guid)
  end)

  it("that crashes fails its app run, saying so and quoting stderr", function()
    local r = misbehave("crash", "{{}, {}}")
    assert.is_false(r.success)
    assert.equal("failed", r.status)
    assert.equal("crashed: killed by signal 11 (Segmentation fault); stderr: about to crash", r.message)
    assert.same({r.message, r.message}, r.messages)
  end)

  it("that runs past its timeout is killed with its whole process group", function()
    local t0 = os.time()
    local r = misbehave("hang")
    assert.equal("timed out after 0.5s", r.message)
    assert.is_true(os.time() - t0 < 10)
    -- the backgrounded grandchild `sleep 30` died with it (SIGKILL lands
    -- asynchronously: allow it a moment, far less than its 30 s)
    local n
    for _ = 1, 20 do
      local p = io.popen("env -u LD_PRELOAD pgrep -f 'slee[p] 30' | wc -l") -- (pgrep hangs under a preloaded ASan)
      n = tonumber(p:read("a"))
      p:close()
      if n == 0 then break end
      os.execute("sleep 0.1")
    end
    assert.equal(0, n)
  end)

  it("that prints something other than JSON fails, quoting the output", function()
    local r = misbehave("garbage")
    assert.equal("app output is not JSON (line 1, column 1: invalid string in json text): 'this is not json at all.'",
                 r.message)
  end)

  it("whose output passes the limit is killed", function()
    local r = misbehave("huge output")
    assert.equal("output exceeds the limit of 16777216 bytes", r.message)
  end)

  it("that exits non-zero fails, with the tail of stderr", function()
    local r = misbehave("exit nonzero")
    assert.equal("exited with status 3; stderr: first line database is locked", r.message)
  end)

  it("must return one result per parameter set, with a valid status", function()
    assert.equal("app output is not the expected JSON: 0 action_results for 2 parameter sets",
                 misbehave("wrong count", "{{}, {}}").message)
    assert.equal("app output is not the expected JSON: action_results[1]: 'status' must be \"success\" or \"failed\"",
                 misbehave("bad status").message)
  end)

  it("gets only the environment variables its manifest names", function()
    local r = misbehave("show env")
    local names = {}
    for name in r.message:gmatch("(%S+)=") do names[#names + 1] = name end
    for _, n in ipairs(names) do
      assert.truthy(n == "PATH" or n == "LUASOAR_SPEC_MARK" or n == "PWD" or n == "SHLVL" or n == "_",
                    "unexpected variable " .. n)
    end
    assert.truthy(r.message:find("PATH=", 1, true))
    assert.falsy(r.message:find("HOME=", 1, true))
  end)

  it("whose command cannot run fails with the reason", function()
    assert.equal("exited with status 127; stderr: misbehave.sh: 18: exec: /nonexistent/tool: not found",
                 misbehave("missing tool").message)
  end)
end)

describe("many exec app runs at once", function()
  it("start at most exec_max at a time and the others wait their turn", function()
    local report = H.run([[
      function on_start(c)
        for i = 1, 300 do
          phantom.act("echo", {parameters = {{value = i}}, assets = {"misbehave"}, callback = cb, name = "e" .. i})
        end
      end
      local n = 0
      function cb(kw)
        if kw.success then n = n + 1 end
        if n == 300 then phantom.debug("all 300 done") end
      end
    ]])
    assert.equal("success", report.status)
    assert.same({"all 300 done"}, H.messages(report, "debug"))
  end)
end)
