-- Datapaths fail loudly (a string that starts like a datapath but does not
-- parse fails the run, in the words of `luasoar check`), and filters over
-- action results keep only the data rows that matched.  Playbooks run
-- through the real engine, with stubbed actions.
local H = require "spec.helper"
local lt = require "luasoar.testing"
local json = H.json
local null = H.luasoar.null

-- An engine with one asset "qa" of an app "QA"; `lookup` answers with the
-- data rows its parameter's `rows` names ({ip, score} each).
local function engine()
  local eng = lt.engine{scripts = H.fixtures, apps = H.fixtures .. "/apps", assets = {qa = {app = "QA"}, qb = {app = "QA"}}}
  eng:stub("lookup", function(p, asset)
    local data = {}
    for i, r in ipairs(p.rows or {}) do data[i] = {ip = r[1], score = r[2], tags = r[3]} end
    return {message = asset.name .. " " .. #data .. " rows", data = data, summary = {total = #data, asset = asset.name}}
  end)
  return eng
end

local function run(src)
  local eng = engine()
  local path = H.playbook(src)
  local r = eng:run(path, H.container())
  eng:close()
  r.path = path
  r.out = {}
  for i, m in ipairs(r:messages("debug")) do
    local v = json.decode(m)
    if v == nil then v = m end
    r.out[i] = v
  end
  return r
end

-- Five rows: two over 50.
local FIVE = [[{{"1.1.1.1", 10}, {"2.2.2.2", 90}, {"3.3.3.3", 20}, {"4.4.4.4", 70}, {"5.5.5.5", 5}}]]

local PLURAL = "lookup_ip_1:action_results.summary.score"
local PLURAL_MSG = "malformed datapath 'lookup_ip_1:action_results.summary.score' at 'action_results': " ..
  "expected action_result, summary, status, message, custom_function_result or formatted_data after 'lookup_ip_1:'"

describe("a string that starts like a datapath but does not parse", function()
  it("fails the run in a decision (the plural typo), with check's words; check says the same", function()
    local src = [[
function on_start(c)
  phantom.act("lookup", {parameters = {{rows = {{"1.1.1.1", 90}}}}, assets = {"qa"}, name = "lookup_ip_1", callback = decide})
end
function decide(kw)
  if phantom.decision{container = kw.container, conditions = {{"]] .. PLURAL .. [[", ">", 50}}} then
    phantom.add_tag{container = kw.container, tags = {"bad"}}
  else
    phantom.add_tag{container = kw.container, tags = {"clean"}}
  end
  phantom.debug("decided")
end
]]
    local r = run(src)
    assert.equal("failed", r.status)
    assert.equal(r.playbook .. ":5: phantom.decision: " .. PLURAL_MSG, r.error)
    assert.same({}, r.out)
    local out, _, code = H.cli("check", "--apps", H.fixtures .. "/apps", r.path)
    assert.equal(1, code)
    assert.truthy(out:find(r.path .. ":5: " .. PLURAL_MSG .. "\n", 1, true), out)
  end)

  -- {where the string goes, the string, the error after "phantom.F: "}
  local cases = {
    {"decision right side", [[phantom.decision{container = c, conditions = {{50, "<", "%s"}}}]], PLURAL, "phantom.decision", PLURAL_MSG},
    {"condition", [[phantom.condition{container = c, conditions = {{"%s", "==", "x"}}, name = "f:c"}]],
     "lookup_ip_1:action_result..score", "phantom.condition",
     "malformed datapath 'lookup_ip_1:action_result..score' at 'action_result..score': an empty name between two dots"},
    {"collect2", [[phantom.collect2{container = c, datapath = {"%s"}}]], PLURAL, "phantom.collect2", PLURAL_MSG},
    {"format parameter", [[phantom.format{container = c, template = "{0}", parameters = {"%s"}}]],
     "artifact:cef.sourceAddress", "phantom.format",
     "malformed datapath 'artifact:cef.sourceAddress' at 'cef.sourceAddress': artifact is a list: the path after it starts with '*' (artifact:*.cef.field)"},
    {"filtered-data", [[phantom.condition{container = c, conditions = {{"%s", "!=", ""}}}]],
     "filtered-data:f:c:g:action_results.data", "phantom.condition",
     "malformed datapath 'filtered-data:f:c:g:action_results.data' at 'action_results': expected action_result, summary, status, message, custom_function_result or formatted_data after 'g:'"},
    {"filtered-data without a condition name", [[phantom.decision{container = c, conditions = {{"%s", "!=", ""}}}]],
     "filtered-data:f:artifact:*.id", "phantom.decision",
     "malformed datapath 'filtered-data:f:artifact:*.id' at '*.id': not a datapath after the filter name"},
    {"NAME:artifact without '*'", [[phantom.decision{container = c, conditions = {{"%s", "!=", ""}}}]],
     "geo_1:artifact:cef.x", "phantom.decision",
     "malformed datapath 'geo_1:artifact:cef.x' at 'cef.x': geo_1:artifact is a list: the path after it starts with '*' (geo_1:artifact:*.cef.field)"},
    {"NAME:formatted_data", [[phantom.decision{container = c, conditions = {{"%s", "!=", ""}}}]],
     "fmt_1:formatted_data.0", "phantom.decision",
     "malformed datapath 'fmt_1:formatted_data.0' at 'formatted_data.0': expected formatted_data or formatted_data.*"},
    {"NAME:custom_function", [[phantom.decision{container = c, conditions = {{"%s", "!=", ""}}}]],
     "code_1:custom_function", "phantom.decision",
     "malformed datapath 'code_1:custom_function' at 'code_1:custom_function': expected NAME:custom_function:output"},
    {"container:", [[phantom.decision{container = c, conditions = {{"%s", "!=", ""}}}]],
     "container:", "phantom.decision",
     "malformed datapath 'container:' at 'container:': expected container:field"},
  }
  for _, case in ipairs(cases) do
    it("fails the run: " .. case[1] .. " " .. case[3], function()
      local r = run("function on_start(c)\n  " .. case[2]:format(case[3]) .. "\n  phantom.debug('after')\nend\n")
      assert.equal("failed", r.status)
      assert.equal(r.playbook .. ":2: " .. case[4] .. ": " .. case[5], r.error)
      assert.same({}, r.out)
    end)
  end

  it("check reports each of them with the same words", function()
    local lines = {"function on_start(c)"}
    for _, case in ipairs(cases) do lines[#lines + 1] = "  " .. case[2]:format(case[3]) end
    -- pieces of a concatenation are not datapaths; strings with spaces are literals
    lines[#lines + 1] = [[  phantom.debug({"custom_list:" .. c.label, c.name .. ":action_result.data", "artifact: none"})]]
    lines[#lines + 1] = "end"
    local path = H.playbook(table.concat(lines, "\n") .. "\n")
    local out, _, code = H.cli("check", "--apps", H.fixtures .. "/apps", path)
    assert.equal(1, code)
    for i, case in ipairs(cases) do
      assert.truthy(out:find(path .. ":" .. (i + 1) .. ": " .. case[5] .. "\n", 1, true), case[1] .. "\n" .. out)
    end
    assert.falsy(out:find(path .. ":" .. (#cases + 2) .. ":", 1, true), out)
  end)
end)

describe("literals in datapath positions", function()
  it("a string that does not start like a datapath is a literal", function()
    local r = run([[
function on_start(c)
  local function d(l, op, r) return phantom.decision{container = c, conditions = {{l, op, r}}} end
  phantom.debug({
    d("Resource Not Found", "==", "resource not found"),    -- spaces
    d("10.1.1.1", "in", "10.0.0.0/8"),                     -- a CIDR
    d("http://a.example/x", "==", "http://a.example/x"),   -- a URL: 'http:' is no source word
    d("12:30", "<", "12:45"),                               -- a time
    d("status", "==", "STATUS"),                            -- a bare word, no action_results
    d("artifact: none", "==", "artifact: none"),           -- white space: a literal
    d("lookup_ip_1:sumary", "==", "lookup_ip_1:sumary"),   -- no source word after NAME:
    d("artifacts:*.id", "==", "artifacts:*.id"),           -- 'artifacts' is no source word
  })
  phantom.debug(phantom.format{container = c, template = "{0} {1}", parameters = {"Alert: artifact:x", "v1:2"}})
end
]])
    assert.equal(null, r.error)
    assert.same({{true, true, true, true, true, true, true, true}, "Alert: artifact:x v1:2"}, r.out)
  end)

  it("a datapath that parses with a space in a field name is still a datapath", function()
    local r = run([[
function on_start(c)
  phantom.act("lookup", {parameters = {{rows = {{"1.1.1.1", 90}}}}, assets = {"qa"}, name = "l1", callback = cb})
end
function cb(kw)
  phantom.debug(phantom.decision{container = kw.container, conditions = {{"l1:action_result.summary.no such", "==", ""}}})
end
]])
    assert.equal(null, r.error)
    assert.same({true}, r.out)
  end)
end)

describe("filters over action results", function()
  it("keep only the data rows that matched: filtered results, filtered-data and collect2", function()
    local r = run([[
function on_start(c)
  phantom.act("lookup", {parameters = {{rows = ]] .. FIVE .. [[}, {rows = {{"6.6.6.6", 1}}}, {rows = {}}},
    assets = {"qa"}, name = "lookup_1", callback = filter_1})
end
function filter_1(kw)
  local arts, res = phantom.condition{container = kw.container, action_results = kw.results, name = "filter_1:condition_1",
    conditions = {{"lookup_1:action_result.data.*.score", ">", 50}}}
  phantom.debug({arts == nil, #res, #res[1].action_results})
  local ar = res[1].action_results[1]
  phantom.debug({ar.status, ar.message, ar.parameter.rows, ar.summary, ar.data})
  -- the callback's results are untouched
  phantom.debug(#kw.results[1].action_results[1].data)
  later{container = kw.container, filtered_results = res}
end
function later(kw)
  phantom.debug(phantom.collect2{container = kw.container, datapath = {
    "filtered-data:filter_1:condition_1:lookup_1:action_result.data.*.ip",
    "filtered-data:filter_1:condition_1:lookup_1:action_result.data.*.score",
    "filtered-data:filter_1:condition_1:lookup_1:action_result.summary.total"}})
  phantom.debug(phantom.collect2{container = kw.container, action_results = kw.filtered_results,
    datapath = {"lookup_1:action_result.data.*.ip", "action_result.parameter.rows.0.0"}})
  phantom.debug(phantom.collect{container = kw.filtered_results, datapath = "action_result.data.*.ip"})
end
]])
    assert.equal(null, r.error)
    assert.same({
      {true, 1, 1},
      {"success", "qa 5 rows",
       {{"1.1.1.1", 10}, {"2.2.2.2", 90}, {"3.3.3.3", 20}, {"4.4.4.4", 70}, {"5.5.5.5", 5}},
       {total = 5, asset = "qa"},
       {{ip = "2.2.2.2", score = 90}, {ip = "4.4.4.4", score = 70}}},
      5,
      {{"2.2.2.2", 90, 5}, {"4.4.4.4", 70, 5}},
      {{"2.2.2.2", "1.1.1.1"}, {"4.4.4.4", "1.1.1.1"}},
      {"2.2.2.2", "4.4.4.4"},
    }, r.out)
  end)

  it("keep rows per action result and per app run; drop those with no matching row", function()
    local r = run([[
function on_start(c)
  phantom.act("lookup", {parameters = {{rows = {{"1.1.1.1", 60}, {"2.2.2.2", 10}}}, {rows = {{"3.3.3.3", 5}}},
                                       {rows = {{"4.4.4.4", 1}, {"5.5.5.5", 99}, {"6.6.6.6", 51}}}},
    assets = {"qa", "qb"}, name = "l", callback = cb})
end
function cb(kw)
  local _, res = phantom.condition{container = kw.container, name = "f:c",
    conditions = {{"l:action_result.data.*.score", ">", 50}, {"l:action_result.summary.asset", "==", "qb"}}}
  local shape = {}
  for _, app_run in ipairs(res) do
    local ars = {}
    for _, ar in ipairs(app_run.action_results) do
      local ips = {}
      for _, d in ipairs(ar.data) do ips[#ips + 1] = d.ip end
      ars[#ars + 1] = {ar.summary.total, ips}
    end
    shape[#shape + 1] = {app_run.asset, ars}
  end
  phantom.debug(shape)
  phantom.debug(phantom.collect2{container = kw.container, datapath = {
    "filtered-data:f:c:l:action_result.data.*.ip", "filtered-data:f:c:l:action_result.parameter.rows.0.0"}})
end
]])
    assert.equal(null, r.error)
    assert.same({
      {{"qb", {{2, {"1.1.1.1"}}, {3, {"5.5.5.5", "6.6.6.6"}}}}},
      {{"1.1.1.1", "1.1.1.1"}, {"5.5.5.5", "4.4.4.4"}, {"6.6.6.6", "4.4.4.4"}},
    }, r.out)
  end)

  it("a row matched through a nested list keeps its whole data item", function()
    local r = run([[
function on_start(c)
  phantom.act("lookup", {parameters = {{rows = {{"1.1.1.1", 1, {"tor", "vpn"}}, {"2.2.2.2", 2, {"cdn"}}, {"3.3.3.3", 3, {}}}}},
    assets = {"qa"}, name = "l", callback = cb})
end
function cb(kw)
  phantom.condition{container = kw.container, name = "f:c", conditions = {{"l:action_result.data.*.tags.*", "==", "vpn"}}}
  phantom.debug(phantom.collect2{container = kw.container, datapath = {
    "filtered-data:f:c:l:action_result.data.*.ip", "filtered-data:f:c:l:action_result.data.*.tags.*"}})
end
]])
    assert.equal(null, r.error)
    assert.same({{{"1.1.1.1", "tor"}, {"1.1.1.1", "vpn"}}}, r.out)
  end)

  it("a filter over action-result or app-run fields keeps every data row", function()
    local r = run([[
function on_start(c)
  phantom.act("lookup", {parameters = {{rows = {{"1.1.1.1", 60}, {"2.2.2.2", 10}}}, {rows = {{"3.3.3.3", 5}}}},
    assets = {"qa"}, name = "l", callback = cb})
end
function cb(kw)
  phantom.condition{container = kw.container, name = "f:c1", conditions = {{"l:action_result.summary.total", "==", 2}}}
  phantom.condition{container = kw.container, name = "f:c2", conditions = {{"l:status", "==", "success"}}}
  phantom.debug(phantom.collect2{container = kw.container, datapath = {"filtered-data:f:c1:l:action_result.data.*.ip"}})
  phantom.debug(phantom.collect2{container = kw.container, datapath = {"filtered-data:f:c2:l:action_result.data.*.ip"}})
end
]])
    assert.equal(null, r.error)
    assert.same({{{"1.1.1.1"}, {"2.2.2.2"}}, {{"1.1.1.1"}, {"2.2.2.2"}, {"3.3.3.3"}}}, r.out)
  end)

  it("a filter that matches no row leaves no result and no rows", function()
    local r = run([[
function on_start(c)
  phantom.act("lookup", {parameters = {{rows = ]] .. FIVE .. [[}}, assets = {"qa"}, name = "l", callback = cb})
end
function cb(kw)
  local arts, res = phantom.condition{container = kw.container, name = "f:c", conditions = {{"l:action_result.data.*.score", ">", 100}}}
  phantom.debug({arts == nil, res == nil})
  phantom.debug(phantom.collect2{container = kw.container, datapath = {"filtered-data:f:c:l:action_result.data.*.ip"}})
end
]])
    assert.equal(null, r.error)
    assert.same({{true, true}, {}}, r.out)
  end)
end)
