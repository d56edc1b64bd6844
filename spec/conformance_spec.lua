-- The conformance cases of the reference (§8), in Lua, through the real
-- engine with the shared fixture: container 101, artifacts 11-13, the
-- MaxMind / VirusTotal / PAN apps, custom list blocked_ips.
local H = require "spec.helper"
local lt = require "luasoar.testing"
local json = H.json
local null = H.luasoar.null

local function engine()
  -- the fixture's apps are the subject: they run for real
  local eng = lt.engine{scripts = H.fixtures, apps = H.fixtures .. "/apps", assets = H.fixtures .. "/assets.json",
                        real = true}
  return eng
end

-- Run a playbook source; returns the run (log decoded in run.out).
local function run(src, setup)
  local eng = engine()
  if setup then setup(eng) end
  local r = eng:run(H.playbook(src), H.container())
  eng:close()
  r.out = {}
  for i, m in ipairs(r:messages("debug")) do
    local v = json.decode(m)
    if v == nil then v = m end
    r.out[i] = v
  end
  return r
end

-- The rows a playbook computes in on_start, debugged as JSON.
local function rows(expr, setup)
  local r = run("function on_start(container)\n phantom.debug(" .. expr .. ")\nend\n", setup)
  assert.equal(null, r.error)
  return r.out[1]
end

describe("reference §8", function()
  it("TC-02 collect2 over artifacts: a row per artifact, null where missing", function()
    assert.same({{"10.1.1.1", 11}, {"192.168.1.5", 12}, {null, 13}},
      rows([[phantom.collect2{container = container, datapath = {"artifact:*.cef.sourceAddress", "artifact:*.id"}}]]))
  end)

  it("TC-02 rows carry n and keep nil in Lua", function()
    local r = run([[
      function on_start(c)
        local rows = phantom.collect2{container = c, datapath = {"artifact:*.cef.sourceAddress", "artifact:*.id"}}
        phantom.debug({#rows, rows[3].n, rows[3][1] == nil, rows[3][2]})
      end
    ]])
    assert.same({{3, 2, true, 13}}, r.out)
  end)

  it("TC-03 collect2 over non-CEF artifact fields", function()
    assert.same({{"evt1", "high", {"t1"}}, {"evt2", "low", {}}, {"evt3", "medium", {}}},
      rows([[phantom.collect2{container = container, datapath = {"artifact:*.name", "artifact:*.severity", "artifact:*.tags"}}]]))
  end)

  it("TC-04 collect2 of the whole cef dict", function()
    assert.same({{{sourceAddress = "10.1.1.1", destinationAddress = "8.8.8.8", fileHash = "44d88612fea8a8f36de82e1278abb02f"}},
                 {{sourceAddress = "192.168.1.5", requestURL = "http://evil.example/x"}},
                 {{destinationAddress = "1.2.3.4"}}},
      rows([[phantom.collect2{container = container, datapath = {"artifact:*.cef"}, scope = "all"}]]))
  end)

  it("TC-05 collect flattens and skips missing values", function()
    assert.same({"10.1.1.1", "192.168.1.5"}, rows([[phantom.collect(container, "artifact:*.cef.sourceAddress")]]))
  end)

  it("TC-06 container datapaths give one row", function()
    assert.same({{101, "https://soar.example/mission/101"}},
      rows([[phantom.collect2{container = container, datapath = {"container:id", "container:url"}}]]))
  end)

  it("TC-07/09 the generated act pattern, and the same datapath by name afterwards", function()
    local r = run([[
      function on_start(container)
        local params = {}
        for _, row in ipairs(phantom.collect2{container = container, datapath = {"artifact:*.cef.destinationAddress", "artifact:*.id"}}) do
          if row[1] then params[#params + 1] = {ip = row[1], context = {artifact_id = row[2]}} end
        end
        phantom.debug(params)
        phantom.act("geolocate ip", {parameters = params, assets = {"maxmind"}, callback = cb, name = "geolocate_ip_1"})
      end
      function cb(kw)
        phantom.debug(phantom.collect2{container = kw.container, datapath = {"geolocate_ip_1:action_result.parameter.ip"}})
        phantom.debug(phantom.collect2{container = kw.container, action_results = kw.results,
          datapath = {"geolocate_ip_1:action_result.data.*.country_iso_code", "geolocate_ip_1:action_result.parameter.context.artifact_id"}})
        phantom.debug(phantom.collect2{container = kw.container, action_results = kw.results,
          datapath = {"action", "app", "status", "action_result.parameter.ip"}})
        phantom.debug(phantom.collect2{container = kw.container, datapath = {"geolocate_ip_1:artifact:*.name"}})
        phantom.debug(phantom.collect2{container = kw.container, datapath = {"geolocate_ip_1:summary.total_objects"}})
      end
    ]])
    assert.same({{ip = "8.8.8.8", context = {artifact_id = 11}}, {ip = "1.2.3.4", context = {artifact_id = 13}}}, r.out[1])
    assert.same({{"8.8.8.8"}, {"1.2.3.4"}}, r.out[2])
    assert.same({{"US", 11}, {"AU", 13}}, r.out[3])
    assert.same({{"geolocate ip", "MaxMind", "success", "8.8.8.8"}, {"geolocate ip", "MaxMind", "success", "1.2.3.4"}}, r.out[4])
    assert.same({{"evt1"}, {"evt3"}}, r.out[5])
    assert.same({{2}}, r.out[6])
  end)

  it("TC-17 parallel acts: any completion order, each callback once", function()
    local r = run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"maxmind"}, name = "ga", callback = cb_a})
        phantom.act("file reputation", {parameters = {{hash = "h"}}, assets = {"vt"}, name = "fr", callback = cb_b})
      end
      function cb_a(kw) phantom.debug("cb_a") end
      function cb_b(kw) phantom.debug("cb_b") end
      function on_finish(c, s) phantom.debug("finish") end
    ]], function(eng) eng:stub("geolocate ip", lt.delay(5, {})) eng:stub("file reputation", lt.delay(1, {})) end)
    assert.same({"cb_b", "cb_a", "finish"}, r.out)
  end)

  it("TC-18 a join with completed() runs its downstream exactly once", function()
    local r = run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"maxmind"}, name = "ga", callback = join_x})
        phantom.act("file reputation", {parameters = {{hash = "h"}}, assets = {"vt"}, name = "fr", callback = join_x})
      end
      function join_x(kw)
        local done = phantom.completed{action_names = {"ga", "fr"}}
        phantom.debug("join " .. tostring(done))
        if done then
          if phantom.get_run_data{key = "join_x_called"} then return end
          phantom.save_run_data{key = "join_x_called", value = "x"}
          x{container = kw.container}
        end
      end
      function x(kw) phantom.debug("x") end
    ]])
    assert.same({"join false", "join true", "x"}, r.out)
  end)

  it("TC-20 completed() with a block that never started stays false", function()
    local r = run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"maxmind"}, name = "ga", callback = cb})
      end
      function cb(kw)
        phantom.debug(phantom.completed{action_names = {"ga", "never_started"}})
        phantom.debug(phantom.completed{action_names = {"ga"}})
        phantom.debug(phantom.actions_done({"ga"}))
      end
      function on_finish(c, s) phantom.debug("finish") end
    ]])
    assert.equal("success", r.status)
    assert.same({false, true, true, "finish"}, r.out)
  end)

  it("TC-22 decision returns a boolean (any row)", function()
    assert.is_true(rows([[phantom.decision{container = container, conditions = {{"artifact:*.severity", "==", "high"}}}]]))
    assert.is_false(rows([[phantom.decision{container = container, conditions = {{"artifact:*.severity", "==", "critical"}}}]]))
  end)

  it("TC-24 a named filter and filtered-data in a later block", function()
    local r = run([[
      function on_start(c)
        local arts, res = phantom.condition{container = c, conditions = {{"artifact:*.cef.sourceAddress", "==", "10.1.1.1"}},
                                            name = "filter_1:condition_1"}
        phantom.debug({arts ~= nil, res == nil, #arts, arts[1].id})
        later{container = c}
      end
      function later(kw)
        phantom.debug(phantom.collect2{container = kw.container, datapath = {
          "filtered-data:filter_1:condition_1:artifact:*.cef.destinationAddress", "filtered-data:filter_1:condition_1:artifact:*.id"}})
      end
    ]])
    assert.same({{true, true, 1, 11}, {{"8.8.8.8", 11}}}, r.out)
  end)

  it("TC-25 a filter with no match gives nil, nil and an empty filtered set", function()
    local r = run([[
      function on_start(c)
        local arts, res = phantom.condition{container = c, conditions = {{"artifact:*.severity", "==", "critical"}}, name = "filter_9:condition_1"}
        phantom.debug({arts == nil, res == nil})
        phantom.debug(phantom.collect2{container = c, datapath = {"filtered-data:filter_9:condition_1:artifact:*.id"}})
        phantom.debug(phantom.collect2{container = c, datapath = {"filtered-data:never_ran:condition_1:artifact:*.id"}})
      end
    ]])
    assert.same({{true, true}, {}, {}}, r.out)
  end)

  it("TC-27 a filter on status by name, and filtered-data of results", function()
    local r = run([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "10.1.1.1"}, {ip = "8.8.8.8"}}, assets = {"maxmind"}, name = "g2", callback = cb})
      end
      function cb(kw)
        local arts, res = phantom.condition{container = kw.container, conditions = {{"g2:action_result.status", "==", "success"}}, name = "f:condition_1"}
        phantom.debug({arts == nil, #res, #res[1].action_results, res[1].action_results[1].parameter.ip})
        phantom.debug(phantom.collect2{container = kw.container, datapath = {"filtered-data:f:condition_1:g2:action_result.parameter.ip"}})
        phantom.debug(phantom.collect2{container = kw.container, action_results = res, datapath = {"action_result.parameter.ip"}})
      end
    ]])
    assert.same({{true, 1, 1, "8.8.8.8"}, {{"8.8.8.8"}}, {{"8.8.8.8"}}}, r.out)
  end)

  it("TC-28 in / not in a custom list; a missing value is in neither", function()
    local r = run([[
      function on_start(c)
        local a1 = phantom.condition{container = c, conditions = {{"artifact:*.cef.destinationAddress", "in", "custom_list:blocked_ips"}}, name = "f2:c1"}
        local a2 = phantom.condition{container = c, conditions = {{"artifact:*.cef.destinationAddress", "not in", "custom_list:blocked_ips"}}, name = "f2:c2"}
        phantom.debug(phantom.collect2{container = c, datapath = {"filtered-data:f2:c1:artifact:*.id"}})
        phantom.debug(phantom.collect2{container = c, datapath = {"filtered-data:f2:c2:artifact:*.id"}})
      end
    ]])
    assert.same({{{11}}, {{13}}}, r.out)
  end)

  it("TC-30 in with a substring; CIDR ranges; delimiter lists", function()
    local r = run([[
      function on_start(c)
        local function ids(conds, extra)
          local kw = {container = c, conditions = conds}
          for k, v in pairs(extra or {}) do kw[k] = v end
          local arts = phantom.condition(kw)
          local out = {}
          for i, a in ipairs(arts or {}) do out[i] = a.id end
          return out
        end
        phantom.debug({
          ids({{"evil", "in", "artifact:*.cef.requestURL"}}),
          ids({{"artifact:*.cef.sourceAddress", "in", "10.0.0.0/8"}}),
          ids({{"artifact:*.cef.sourceAddress", "not in", "10.0.0.0/8"}}),
          ids({{"artifact:*.cef.destinationAddress", "in", "1.2.3.4, 9.9.9.9"}}, {delimiter = ","}),
          ids({{"artifact:*.severity", "in", {"high", "low"}}}),
        })
      end
    ]])
    assert.same({{{12}, {11}, {12}, {13}, {11, 12}}}, r.out)
  end)

  it("TC-32/33 numeric comparison on a summary, ISO dates as text", function()
    local r = run([[
      function on_start(c)
        phantom.act("file reputation", {parameters = {{hash = "44d8", context = {artifact_id = 11}}}, assets = {"vt"},
                                        name = "file_reputation_1", callback = cb})
      end
      function cb(kw)
        local function d(dp, op, v)
          return phantom.decision{container = kw.container, action_results = kw.results, conditions = {{dp, op, v}}}
        end
        local p = "file_reputation_1:action_result.summary.positives"
        local s = "file_reputation_1:action_result.data.*.scan_date"
        phantom.debug({d(p, ">", 10), d(p, ">", 12), d(p, ">=", 12), d(p, ">", "10"), d(s, ">=", "2024-01-01"), d(s, ">=", "2024-02-01")})
      end
    ]])
    assert.same({{true, false, true, true, true, false}}, r.out)
  end)

  it("TC-34 string equality is case-insensitive unless case_sensitive = true", function()
    local r = run([[
      function on_start(c)
        phantom.debug({
          phantom.decision{container = c, conditions = {{"artifact:*.severity", "==", "HIGH"}}},
          phantom.decision{container = c, conditions = {{"artifact:*.severity", "==", "HIGH"}}, case_sensitive = true},
        })
      end
    ]])
    assert.same({{true, false}}, r.out)
  end)

  it("TC-36 an else-if chain: the first true branch only", function()
    local r = run([[
      function on_start(c)
        if phantom.decision{container = c, conditions = {{"artifact:*.severity", "==", "high"}}} then a{container = c} return end
        if phantom.decision{container = c, conditions = {{"artifact:*.severity", "==", "low"}}} then b{container = c} return end
        cc{container = c}
      end
      function a() phantom.debug("a") end
      function b() phantom.debug("b") end
      function cc() phantom.debug("c") end
    ]])
    assert.same({"a"}, r.out)
  end)

  it("combines conditions per row with logical_operator", function()
    local r = run([[
      function on_start(c)
        local function ids(op)
          local arts = phantom.condition{container = c, logical_operator = op, conditions = {
            {"artifact:*.severity", "!=", "low"}, {"artifact:*.cef.destinationAddress", "==", "1.2.3.4"}}}
          local out = {}
          for i, a in ipairs(arts or {}) do out[i] = a.id end
          return out
        end
        phantom.debug({ids("and"), ids("or")})
      end
    ]])
    assert.same({{{13}, {11, 13}}}, r.out)
  end)

  it("TC-38/39 format: multi-value parameters, separator, drop_none, container fields, %% rows", function()
    local r = run([[
      function on_start(c)
        phantom.debug(phantom.format{container = c, template = "IPs: {0}", parameters = {"artifact:*.cef.destinationAddress"},
                                     name = "fmt_2", separator = " | ", drop_none = true})
        phantom.debug(phantom.format{container = c, template = "Event {0}: {1}", parameters = {"container:id", "container:name"}, name = "fmt_3"})
        phantom.debug(phantom.format{container = c, template = "%%\nip={0} id={1}\n%%", parameters = {"artifact:*.cef.sourceAddress", "artifact:*.id"},
                                     name = "fmt_4", drop_none = true})
        phantom.debug(phantom.get_format_data{name = "fmt_3"})
        phantom.debug(phantom.get_format_data{name = "fmt_4__as_list"})
        phantom.debug(phantom.collect2{container = c, datapath = {"fmt_3:formatted_data"}})
      end
    ]])
    assert.same({"IPs: 8.8.8.8 | 1.2.3.4", "Event 101: Suspicious login", "ip=10.1.1.1 id=11\nip=192.168.1.5 id=12",
                 "Event 101: Suspicious login", {"ip=10.1.1.1 id=11", "ip=192.168.1.5 id=12"}, {{"Event 101: Suspicious login"}}}, r.out)
  end)

  it("TC-40 run data: a round trip, nil for a missing key, nothing across runs", function()
    local eng = engine()
    local pb = H.playbook([[
      function on_start(c)
        phantom.debug(tostring(phantom.get_run_data{key = "k"}))
        phantom.save_run_data{key = "k", value = json.encode({1, 2})}
        later()
      end
      function later()
        phantom.debug(json.decode(phantom.get_run_data{key = "k"}))
        phantom.debug(tostring(phantom.get_run_data{key = "nope"}))
      end
    ]])
    eng:start(pb, H.container())
    eng:start(pb, H.container())
    for _, r in ipairs(eng:wait()) do
      assert.same({"nil", "[1,2]", "nil"}, r:messages())
    end
    eng:close()
  end)

  it("TC-41 a code block's output as a custom_function datapath", function()
    local r = run([[
      function on_start(c)
        phantom.save_run_data{key = "blk:out", value = json.encode({"x", "y"})}
        phantom.debug(phantom.collect2{container = c, datapath = {"blk:custom_function:out"}})
        phantom.debug(phantom.decision{container = c, conditions = {{"x", "in", "blk:custom_function:out"}}})
      end
    ]])
    assert.same({{{"x"}, {"y"}}, true}, r.out)
  end)

  it("TC-48 the container a block holds is a snapshot; get_container is current", function()
    local r = run([[
      function on_start(c)
        phantom.set_severity{container = c, severity = "high"}
        phantom.set_status(c, "open")
        phantom.add_tags{container = c, tags = {"triaged"}}
        local now = phantom.get_container(101)
        phantom.debug({c.severity, now.severity, now.status, now.tags})
      end
    ]])
    assert.same({{"medium", "high", "open", {"triaged"}}}, r.out)
  end)

  it("TC-49 add_artifact: a new id, outside the run's scope unless scope = all", function()
    local r = run([[
      function on_start(c)
        local ok, msg, aid = phantom.add_artifact{container = c, raw_data = {}, cef_data = {sourceAddress = "5.5.5.5"},
          label = "event", name = "new", severity = "low", artifact_type = "network"}
        phantom.debug({ok, math.type(aid), aid})
        phantom.debug(#phantom.collect2{container = c, datapath = {"artifact:*.cef.sourceAddress"}, scope = "all"})
        phantom.debug(phantom.collect2{container = c, datapath = {"artifact:*.cef.sourceAddress"}, scope = "all"}[4])
        phantom.debug(#phantom.collect2{container = c, datapath = {"artifact:*.cef.sourceAddress"}})
        phantom.debug(phantom.collect2{container = c, datapath = {"artifact:*.id"}, scope = {12}})
      end
    ]])
    assert.same({{true, "integer", 14}, 4, {"5.5.5.5"}, 3, {{12}}}, r.out)
  end)

  it("TC-56 discontinue: later acts are refused, the run ends success, on_finish runs", function()
    local pan
    local r = run([[
      function on_start(c)
        phantom.error("nothing to do")
        phantom.discontinue()
        phantom.debug(tostring(phantom.act("block ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"pan"}, name = "x", callback = cb})))
      end
      function cb(kw) phantom.debug("cb") end
      function on_finish(c, s) phantom.debug("finish") end
    ]], function(eng) pan = eng:stub("block ip", {}) end)
    assert.equal("success", r.status)
    assert.same({{level = "error", message = "nothing to do"},
                 {level = "error", message = "phantom.act: 'x' not started: the run was discontinued"},
                 {level = "debug", message = "nil"}, {level = "debug", message = "finish"}}, r.log)
    assert.equal(0, #pan.calls)
  end)

  it("TC-58 set_action_limit: an act over the limit is refused and logged", function()
    local r = run([[
      function on_start(c)
        phantom.set_action_limit(1)
        phantom.act("block ip", {parameters = {{ip = "1"}}, assets = {"pan"}, name = "one", callback = cb})
        phantom.act("block ip", {parameters = {{ip = "2"}}, assets = {"pan"}, name = "two", callback = cb})
      end
      function cb(kw) phantom.debug(kw.action.name) end
    ]])
    assert.same({"one"}, r.out)
    assert.same({"phantom.act: 'two' not started: the run reached its action limit of 1 (phantom.set_action_limit)"}, r:messages("error"))
  end)
end)

describe("datapaths", function()
  local bad = {
    {"artifact:cef.sourceAddress", "malformed datapath 'artifact:cef.sourceAddress' at 'cef.sourceAddress': artifact is a list: the path after it starts with '*' (artifact:*.cef.field)"},
    {"geolocate_ip_1:action_rsult.data", "malformed datapath 'geolocate_ip_1:action_rsult.data' at 'action_rsult': expected action_result, summary, status, message, custom_function_result or formatted_data after 'geolocate_ip_1:'"},
    {"artifact:*..id", "malformed datapath 'artifact:*..id' at '.id': an empty name between two dots"},
    {"filtered-data:only_one:artifact", "malformed datapath 'filtered-data:only_one:artifact' at 'filtered-data:only_one:artifact': expected filtered-data:FILTER:CONDITION:datapath"},
  }
  for _, case in ipairs(bad) do
    it("rejects " .. case[1] .. " quoting it", function()
      local r = run("function on_start(c)\n  phantom.collect2{container = c, datapath = {'" .. case[1] .. "'}}\nend\n")
      assert.equal(r.playbook .. ":2: phantom.collect2: " .. case[2], r.error)
    end)
  end

  it("aligns nested lists: a row per deepest item, parents repeated, empty lists give one nil row", function()
    local eng = lt.engine{scripts = H.fixtures, apps = H.fixtures .. "/apps", assets = {qa = {app = "QA"}}}
    eng:stub("q", function(p)
      local data = {}
      for i = 1, p.n do data[i] = {items = {{v = i * 10}, {v = i * 10 + 1}}} end
      return {data = data, summary = {total = p.n}}
    end)
    local r = eng:run(H.playbook([[
      function on_start(c)
        phantom.act("q", {parameters = {{n = 2}, {n = 0}}, assets = {"qa"}, name = "q1", callback = cb})
      end
      function cb(kw)
        phantom.debug(phantom.collect2{container = kw.container, action_results = kw.results,
          datapath = {"q1:action_result.parameter.n", "q1:action_result.data.*.items.*.v", "q1:action_result.summary.total"}})
      end
    ]]), H.container())
    eng:close()
    assert.same({{{2, 10, 2}, {2, 11, 2}, {2, 20, 2}, {2, 21, 2}, {0, null, 0}}}, {json.decode(r:messages()[1])})
  end)
end)
