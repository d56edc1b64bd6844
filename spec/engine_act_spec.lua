-- phantom.act and its callback, run through the real engine on the shared
-- fixture of the reference (§8.0).
local H = require "spec.helper"
local json = H.json

describe("phantom.act", function()
  it("calls the callback once with the kwargs of the reference (TC-07)", function()
    local report, stats = H.run([[
      function on_start(container)
        local params = {}
        for _, a in ipairs(container.artifacts) do
          if a.cef.destinationAddress then
            params[#params + 1] = {ip = a.cef.destinationAddress, context = {artifact_id = a.id}}
          end
        end
        local id = phantom.act("geolocate ip", {parameters = params, assets = {"maxmind"},
                                                callback = cb, name = "geolocate_ip_1"})
        phantom.debug({returned = id, integer = math.type(id)})
      end
      function cb(kw)
        phantom.debug({
          keys = (function() local k = {} for n in pairs(kw) do k[#k + 1] = n end table.sort(k) return k end)(),
          action = kw.action, success = kw.success, handle = kw.handle == nil,
          container_id = kw.container.id, results = kw.results,
          id_type = math.type(kw.action.action_run_id),
          asset_id_type = math.type(kw.results[1].asset_id),
        })
      end
      function on_finish(container, summary) phantom.debug("finish " .. type(summary)) end
    ]])
    assert.equal("success", report.status)
    assert.equal(H.luasoar.null, report.error)
    local log = H.decoded(report)
    assert.equal(3, #log)
    assert.same({returned = 1, integer = "integer"}, log[1])
    local kw = log[2]
    assert.same({"action", "container", "results", "success"}, kw.keys) -- handle nil: absent
    assert.same({action_run_id = 1, action_name = "geolocate ip", action = "geolocate ip",
                 name = "geolocate_ip_1"}, kw.action)
    assert.is_true(kw.success)
    assert.equal(101, kw.container_id)
    assert.equal("integer", kw.id_type)
    assert.equal("integer", kw.asset_id_type)
    assert.equal(1, #kw.results)
    local r = kw.results[1]
    -- the app run: exactly these fields
    local fields = {}
    for k in pairs(r) do fields[#fields + 1] = k end
    table.sort(fields)
    assert.same({"action", "action_results", "action_run_id", "app", "app_id", "app_run_id",
                 "asset", "asset_id", "message", "name", "status", "summary"}, fields)
    assert.equal("geolocate ip", r.action)
    assert.equal("MaxMind", r.app)
    assert.equal(17, r.app_id)
    assert.equal("maxmind", r.asset)
    assert.equal(4, r.asset_id)
    assert.equal("geolocate_ip_1", r.name)
    assert.equal(1, r.app_run_id)
    assert.equal(1, r.action_run_id)
    assert.equal("success", r.status)
    assert.equal("2 of 2 actions succeeded", r.message)
    assert.same({total_objects = 2, total_objects_successful = 2}, r.summary)
    assert.equal(2, #r.action_results)
    local a1, a2 = r.action_results[1], r.action_results[2]
    assert.same({"8.8.8.8", "1.2.3.4"}, {a1.parameter.ip, a2.parameter.ip})
    assert.same({status = "success", message = "Country: United States",
                 data = {{country_name = "United States", country_iso_code = "US"}},
                 summary = {country = "United States"},
                 parameter = {ip = "8.8.8.8", context = {artifact_id = 11, guid = a1.parameter.context.guid}}}, a1)
    assert.equal(13, a2.parameter.context.artifact_id)
    assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", a1.parameter.context.guid)
    assert.not_equal(a1.parameter.context.guid, a2.parameter.context.guid)
    assert.equal("finish string", log[3])
    assert.equal(0, stats.live_refs)
    assert.equal(0, stats.live_runs)
  end)

  it("is success=false only when every parameter set fails (TC-11)", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "10.1.1.1"}, {ip = "192.168.1.5"}},
                    assets = {"maxmind"}, callback = cb, name = "g3"})
      end
      function cb(kw)
        local r = kw.results[1]
        phantom.debug({kw.success, r.status, r.action_results[1].message, r.action_results[2].message,
                       r.summary, r.message})
      end
    ]])
    assert.equal("success", report.status) -- a failed action does not fail the run
    assert.same({{false, "failed", "Private IP", "Private IP",
                  {total_objects = 2, total_objects_successful = 0}, "0 of 2 actions succeeded"}},
                H.decoded(report))
  end)

  it("is success=true when one parameter set succeeds and another fails", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "10.1.1.1"}, {ip = "8.8.8.8"}},
                    assets = {"maxmind"}, callback = cb})
      end
      function cb(kw)
        local r = kw.results[1]
        phantom.debug({kw.success, r.status, r.action_results[1].status, r.action_results[2].status})
      end
    ]])
    assert.same({{true, "success", "failed", "success"}}, H.decoded(report))
  end)

  it("runs one app run per asset and succeeds if one asset does (TC-13)", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}},
                    assets = {"maxmind", "broken_geo"}, callback = cb, name = "g4"})
      end
      function cb(kw)
        phantom.debug({kw.success, #kw.results, kw.results[1].asset, kw.results[1].status,
                       kw.results[2].asset, kw.results[2].status, kw.results[2].action_results[1].message,
                       kw.results[1].app_run_id, kw.results[2].app_run_id})
      end
    ]])
    assert.same({{true, 2, "maxmind", "success", "broken_geo", "failed", "asset unavailable", 1, 2}},
                H.decoded(report))
  end)

  it("fails when every asset fails", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"broken_geo"}, callback = cb})
      end
      function cb(kw) phantom.debug({kw.success, kw.results[1].status}) end
    ]])
    assert.same({{false, "failed"}}, H.decoded(report))
  end)

  it("without assets runs on every asset whose app has the action; app = {name} narrows (TC-14)", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, callback = cb, name = "all"})
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, app = {name = "MaxMind"}, callback = cb, name = "g5"})
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, tags = {"broken"}, callback = cb, name = "tagged"})
      end
      function cb(kw)
        local assets = {}
        for i, r in ipairs(kw.results) do assets[i] = r.asset end
        phantom.debug({kw.action.name, assets})
      end
    ]])
    local seen = {}
    for _, e in ipairs(H.decoded(report)) do seen[e[1]] = e[2] end
    assert.same({"maxmind", "maxmind2", "geo_other", "broken_geo", "raising_geo"}, seen.all)
    assert.same({"maxmind", "maxmind2", "broken_geo", "raising_geo"}, seen.g5)
    assert.same({"broken_geo"}, seen.tagged)
  end)

  it("with an empty parameter list runs no app and calls back with success=false", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {}, assets = {"maxmind"}, callback = cb, name = "empty"})
      end
      function cb(kw) phantom.debug({kw.success, #kw.results, kw.action.name}) end
      function on_finish(c, s)
        local sum = phantom.get_summary()
        phantom.debug({#sum.result, sum.result[1].name, #sum.result[1].app_runs})
      end
    ]])
    assert.same({{false, 0, "empty"}, {1, "empty", 0}}, H.decoded(report))
  end)

  it("accepts one parameter table without a list around it", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {ip = "8.8.8.8"}, assets = {"maxmind"}, callback = cb})
      end
      function cb(kw) phantom.debug({kw.success, #kw.results[1].action_results}) end
    ]])
    assert.same({{true, 1}}, H.decoded(report))
  end)

  it("takes keyword arguments as one table too", function()
    local report = H.run([[
      function on_start(c)
        phantom.act{action = "block ip", parameters = {{ip = "8.8.8.8"}}, assets = {"pan"}, callback = cb}
      end
      function cb(kw) phantom.debug({kw.success, kw.action.name, kw.results[1].app}) end
    ]])
    assert.same({{true, "block ip", "PAN"}}, H.decoded(report))
  end)

  it("never calls the callback before act returns", function()
    local report = H.run([[
      local order = {}
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {}, assets = {"maxmind"}, callback = cb})
        phantom.debug("act returned")
        phantom.act("block ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"pan"}, callback = cb})
        phantom.debug("second act returned")
      end
      function cb(kw) phantom.debug("callback " .. kw.action.action_run_id) end
    ]])
    assert.same({"act returned", "second act returned", "callback 1", "callback 2"}, H.messages(report))
  end)

  it("gives the handle back unchanged (TC-16)", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("block ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"pan"}, callback = cb,
                                 handle = '{"add_block": true}', name = "h1"})
      end
      function cb(kw) phantom.debug(kw.handle) end
    ]])
    assert.same({'{"add_block": true}'}, H.messages(report))
  end)

  it("waits for an action without a callback before on_finish (TC-15)", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("block ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"pan"}, name = "block_ip_1"})
        phantom.debug("on_start returns")
      end
      function on_finish(c, summary)
        local s = phantom.get_summary()
        phantom.debug({#s.result, s.result[1].name, s.result[1].app_runs[1].status, json.decode(summary).result[1].name})
      end
    ]])
    assert.same({"on_start returns", '[1,"block_ip_1","success","block_ip_1"]'}, H.messages(report))
  end)

  it("calls on_finish after the last callback, exactly once", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("block ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"pan"}, callback = first, name = "a"})
        phantom.act("file reputation", {parameters = {{hash = "x"}}, assets = {"vt"}, callback = cb, name = "b"})
      end
      function first(kw)
        phantom.debug("first")
        phantom.act("block ip", {parameters = {{ip = "2.2.2.2"}}, assets = {"pan"}, callback = cb, name = "c"})
      end
      function cb(kw) phantom.debug("cb " .. kw.action.name) end
      function on_finish(c, s) phantom.debug("finish") end
    ]])
    assert.same({"first", "cb b", "cb c", "finish"}, H.messages(report))
    assert.equal(3, #report.summary.result)
  end)

  it("records every action run in the summary (TC-54)", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}, {ip = "1.2.3.4"}}, assets = {"maxmind"},
                    name = "geolocate_ip_1"})
      end
    ]])
    local s = report.summary
    assert.equal(1, #s.result)
    local e = s.result[1]
    assert.equal("geolocate_ip_1", e.name)
    assert.equal("geolocate ip", e.action)
    assert.equal(1, e.action_run_id)
    assert.equal("success", e.status)
    assert.equal("1 of 1 app runs succeeded", e.message)
    assert.equal(1, #e.app_runs)
    local ar = e.app_runs[1]
    assert.equal(1, ar.app_run_id)
    assert.equal("MaxMind", ar.app)
    assert.equal("maxmind", ar.asset)
    assert.equal("success", ar.status)
    assert.equal("8.8.8.8", ar.parameter.ip)
    assert.same({total_objects = 2, total_objects_successful = 2}, ar.summary)
  end)

  it("fails a parameter set that lacks a required parameter, and runs the others", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}, {other = 1}, {ip = ""}},
                    assets = {"maxmind"}, callback = cb})
      end
      function cb(kw)
        local out = {kw.success}
        for _, ar in ipairs(kw.results[1].action_results) do out[#out + 1] = ar.status .. ": " .. ar.message end
        phantom.debug(out)
      end
    ]])
    assert.same({{true, "success: Country: United States", "failed: missing required parameter 'ip'",
                  "failed: missing required parameter 'ip'"}}, H.decoded(report))
  end)

  it("turns an app's error into that parameter set's failure", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"raising_geo"}, callback = cb})
      end
      function cb(kw) phantom.debug({kw.success, kw.results[1].action_results[1].message}) end
    ]])
    local d = H.decoded(report)[1]
    assert.is_false(d[1])
    assert.matches("spec/fixtures/apps/maxmind/app%.lua:%d+: boom from the app$", d[2])
  end)

  it("links parent_action into the parameter context", function()
    local report = H.run([[
      function on_start(c)
        phantom.act("block ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"pan"}, callback = first})
      end
      function first(kw)
        phantom.act("block ip", {parameters = {{ip = "2.2.2.2"}}, assets = {"pan"}, callback = second,
                                 parent_action = kw.action})
      end
      function second(kw) phantom.debug(kw.results[1].action_results[1].parameter.context.parent_action_run) end
    ]])
    assert.same({"1"}, H.messages(report))
  end)

  local bad_calls = {
    {[[phantom.act("fly to the moon", {parameters = {{}}})]], "phantom.act: unknown action 'fly to the moon' (no app provides it)"},
    {[[phantom.act("geolocate ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"nope"}})]], "phantom.act: unknown asset 'nope'"},
    {[[phantom.act("geolocate ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"pan"}})]], "phantom.act: asset 'pan' (app 'PAN') has no action 'geolocate ip'"},
    {[[phantom.act("geolocate ip", {parameters = "1.1.1.1"})]], "phantom.act: argument 'parameters': expected a list of tables, got string"},
    {[[phantom.act("geolocate ip", {parameters = {{ip = "1"}, "x"}})]], "phantom.act: argument 'parameters': item 2: expected a table, got string"},
    {[[phantom.act("geolocate ip", {parameters = {{ip = "1"}}, callback = "cb"})]], "phantom.act: argument 'callback': expected a function, got string"},
    {[[phantom.act("geolocate ip", {parameters = {{ip = "1"}}, callbak = print})]], "phantom.act: unknown argument 'callbak'"},
    {[[phantom.act("geolocate ip", {parameters = {{ip = print}}, assets = {"maxmind"}})]], "phantom.act: argument 'parameters': item 1: cannot encode a function value as JSON"},
    {[[phantom.act("geolocate ip", {parameters = {{ip = "1"}}, app = {name = "Nope"}})]], "phantom.act: argument 'app': unknown app 'Nope'"},
    {[[phantom.act(42)]], "phantom.act: argument 'action': expected an action name, got number"},
  }
  for _, case in ipairs(bad_calls) do
    it("rejects at the call: " .. case[2], function()
      local pb = "function on_start(c)\n  " .. case[1] .. "\nend\n"
      local report = H.run(pb)
      assert.equal("failed", report.status)
      local path = report.playbook
      assert.equal(path .. ":2: " .. case[2], report.error)
      assert.equal(0, #report.summary.result) -- nothing was started
    end)
  end
end)
