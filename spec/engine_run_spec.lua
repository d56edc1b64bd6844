-- The run lifecycle: on_start, callbacks, on_finish, failures and isolation.
local H = require "spec.helper"

describe("a playbook run", function()
  it("calls on_start with the container, then on_finish(container, summary) (TC-01)", function()
    local report = H.run([[
      function on_start(container) phantom.debug("start " .. container.id) end
      function on_finish(container, summary)
        phantom.debug("finish " .. container.id .. " " .. type(summary) .. " " .. summary)
      end
    ]])
    assert.equal("success", report.status)
    assert.same({"start 101", 'finish 101 string {"result":[]}'}, H.messages(report))
    assert.equal(1, report.run_id)
    assert.equal(101, report.container_id)
  end)

  it("passes on_start the container with its artifacts, ids as integers", function()
    local report = H.run([[
      function on_start(c)
        phantom.debug({math.type(c.id), #c.artifacts, c.artifacts[1].id, math.type(c.artifacts[1].id),
                       c.artifacts[3].cef.destinationAddress, c.label})
      end
    ]])
    assert.same({{"integer", 3, 11, "integer", "1.2.3.4", "events"}}, H.decoded(report))
  end)

  it("fails a run whose callback raises, with file:line and traceback, and calls nothing more (TC-57)", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("block ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"pan"}, callback = cb})
        phantom.act("file reputation", {parameters = {{hash = "x"}}, assets = {"vt"}, callback = other})
      end
      function cb(kw)
        local x = nil
        return x.field
      end
      function other(kw) phantom.debug("other called") end
      function on_finish(c, s) phantom.debug("finish called") end
    ]])
    assert.equal("failed", report.status)
    local path = report.playbook
    assert.equal(path .. ":7: attempt to index a nil value (local 'x')", report.error)
    local errors = H.messages(report, "error")
    assert.equal(1, #errors)
    assert.matches("^" .. path:gsub("%p", "%%%0") .. ":7: attempt to index a nil value %(local 'x'%)\nstack traceback:\n", errors[1])
    assert.matches(":7: in function", errors[1])
    assert.same({}, H.messages(report, "debug"))
  end)

  it("says where, whatever the error object (error(nil), error({}), __tostring that raises)", function()
    local cases = {
      {"error(nil)", ":2: (error object is a nil value)"},
      {"error({})", ":2: (error object is a table value)"},
      {"error(setmetatable({}, {__tostring = function() return 'custom' end}))", ":2: custom"},
      {"error(setmetatable({}, {__tostring = function() error('nope') end}))", ":2: (error object is a table value)"},
      {"error('plain', 0)", ":2: plain"},
      {"error(42)", ":2: 42"},
    }
    for _, case in ipairs(cases) do
      local report = H.run("function on_start(c)\n  " .. case[1] .. "\nend\n")
      assert.equal("failed", report.status)
      assert.equal(report.playbook .. case[2], report.error)
    end
  end)

  it("fails a run whose top level raises, or that defines no on_start", function()
    local report = H.run("local x = 1\nerror('top level broke')\n")
    assert.equal(report.playbook .. ":2: top level broke", report.error)
    report = H.run("function on_begin(c) end\n")
    assert.equal(report.playbook .. ": the playbook defines no on_start(container)", report.error)
  end)

  it("raises on a read of a global that nothing defines; rawget(_ENV, name) tests for one", function()
    local report = H.run([[
      function on_start(c)
        phantom.debug(tostring(rawget(_ENV, "maybe_defined")))
        phantom.debug(undefined_thing)
      end
    ]])
    assert.equal(report.playbook .. ":3: undefined global 'undefined_thing'", report.error)
    assert.same({"nil"}, H.messages(report, "debug"))
  end)

  it("keeps globals apart: a global set in one run is never seen by another", function()
    local eng = H.engine()
    local pb = H.playbook([[
      counter = (rawget(_ENV, "counter") or 0) + 1
      function on_start(c)
        shared = (rawget(_ENV, "shared") or 0) + 1
        phantom.act("block ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"pan"}, callback = cb})
      end
      function cb(kw) phantom.debug({counter, shared, rawget(_G, "string") == nil}) end
    ]])
    for _ = 1, 3 do eng:start(pb, H.container()) end
    local reports = eng:wait()
    assert.equal(3, #reports)
    for _, r in ipairs(reports) do
      assert.equal("success", r.status)
      assert.same({{1, 1, true}}, H.decoded(r))
    end
    local stats = eng:stats()
    assert.equal(0, stats.live_refs)
    assert.equal(0, stats.live_runs)
    eng:close()
  end)

  it("lets a failed run end alone while another run in the same engine succeeds", function()
    local eng = H.engine()
    local bad = H.playbook([[
      function on_start(c)
        phantom.act("block ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"pan"}, callback = cb})
      end
      function cb(kw) error("bad callback") end
    ]])
    local good = H.playbook([[
      function on_start(c)
        phantom.act("block ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"pan"}, callback = cb})
      end
      function cb(kw)
        phantom.act("file reputation", {parameters = {{hash = "h"}}, assets = {"vt"}, callback = cb2})
      end
      function cb2(kw) phantom.debug("good done") end
    ]])
    local bad_id = eng:start(bad, H.container())
    local good_id = eng:start(good, H.container())
    local by_id = {}
    for _, r in ipairs(eng:wait()) do by_id[r.run_id] = r end
    assert.equal("failed", by_id[bad_id].status)
    assert.equal(bad .. ":4: bad callback", by_id[bad_id].error)
    assert.equal("success", by_id[good_id].status)
    assert.same({"good done"}, H.messages(by_id[good_id]))
    assert.equal(0, eng:stats().live_refs)
    eng:close()
  end)

  it("logs phantom.debug of a string as it is and of anything else as JSON; phantom.error at error level", function()
    local report = H.run([[
      function on_start(c)
        phantom.debug("text")
        phantom.debug(5)
        phantom.debug(2.5)
        phantom.debug(true)
        phantom.debug(nil)
        phantom.debug({a = {1, 2}})
        phantom.debug(phantom.null)
        phantom.error("something is off")
        print("via", "print", 3)
      end
    ]])
    assert.equal("success", report.status)
    assert.same({
      {level = "debug", message = "text"}, {level = "debug", message = "5"},
      {level = "debug", message = "2.5"}, {level = "debug", message = "true"},
      {level = "debug", message = "null"}, {level = "debug", message = '{"a":[1,2]}'},
      {level = "debug", message = "null"}, {level = "error", message = "something is off"},
      {level = "debug", message = "via\tprint\t3"},
    }, report.log)
  end)

  it("offers parse_success, parse_errors and get_successful_action_results_v2", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}, {ip = "10.0.0.1"}, {ip = "1.2.3.4"}},
                    assets = {"maxmind"}, callback = cb})
      end
      function cb(kw)
        local names = {}
        for i, d in ipairs(phantom.parse_success(kw.results)) do names[i] = d.country_name end
        local ok = phantom.get_successful_action_results_v2(kw.results)
        phantom.debug({names, phantom.parse_errors(kw.results), #ok, ok[2].parameter.ip})
      end
    ]])
    assert.same({{{"United States", "Australia"}, {"Private IP"}, 2, "1.2.3.4"}}, H.decoded(report))
  end)

  it("lets a playbook require phantom and json, and nothing else", function()
    local report = H.run([[
      local p = require "phantom"
      local json = require "json"
      function on_start(c)
        phantom.debug(tostring(p == phantom))
        phantom.debug(json.encode(json.decode('{"a":[1,2.5,null]}')))
        require "io"
      end
    ]])
    assert.same({"true", '{"a":[1,2.5,null]}'}, H.messages(report, "debug"))
    assert.equal(report.playbook .. ":6: require: module 'io' is not available to playbooks (available: phantom, json)",
                 report.error)
  end)

  it("fails a run that yields from a block", function()
    local report = H.run("function on_start(c) coroutine.yield() end\n")
    assert.equal("failed", report.status)
    assert.matches("attempt to yield", report.error)
  end)
end)

describe("phantom.debug", function()
  it("logs a value JSON cannot hold as what it is, with why, and the run goes on", function()
    local report = H.run("function on_start(c) local t = {} t.self = t phantom.debug(t) phantom.debug('after') end\n")
    assert.equal("success", report.status)
    assert.same({"<table: cannot encode as JSON: nesting deeper than 100 levels (a table that contains itself?)>", "after"},
                H.messages(report))
  end)
end)
