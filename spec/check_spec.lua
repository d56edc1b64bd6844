-- luasoar check knows everything static: each mistake gives file:line:
-- message and exit 1; valid playbooks give nothing and exit 0.  The same
-- errors keep a serve's old generation serving.
local H = require "spec.helper"
local S = require "spec.serve_helper"

local APPS = H.root .. "/scripts/apps"
local ASSETS = H.root .. "/scripts/assets.json"

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

local function check(src, name, ...)
  local pb = H.playbook(src, name)
  local out, err, code = H.cli("check", "--apps", APPS, "--assets", ASSETS, pb, ...)
  return pb, lines(out), code, err
end

-- each: a playbook with one mistake, and its finding (after "file:")
local MISTAKES = {
  {"unknown asset", [[
function on_start(c)
  phantom.act("geolocate ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"geoip", "virustotl"}})
end
]], "2: phantom.act: no asset named 'virustotl' in the assets file"},
  {"asset without the action", [[
function on_start(c)
  phantom.act("geolocate ip", {parameters = {{ip = "1.1.1.1"}}, assets = "ipinfo"})
end
]], "2: phantom.act: asset 'ipinfo' (app 'IP Info') has no action 'geolocate ip'"},
  {"unknown action", [[
function on_start(c)
  phantom.act{action = "lookup ipp", parameters = {{ip = "1.1.1.1"}}}
end
]], "2: phantom.act: no app in the apps folder provides action 'lookup ipp'"},
  {"unknown function", [[
function on_start(c)
  phantom.set_severty(c, "high")
end
]], "2: unknown function 'phantom.set_severty' (phantom.set_severity?)"},
  {"unknown function, nothing near", [[
function on_start(c)
  phantom.teleport(c)
end
]], "2: unknown function 'phantom.teleport'"},
  {"unknown operator", [[
function on_start(c)
  if phantom.decision(c, {{"artifact:*.cef.score", "gt", 50}}) then phantom.debug("high") end
end
]], "2: phantom.decision: conditions[1]: unknown operator 'gt' (==, !=, <, <=, >, >=, in, not in)"},
  {"unknown keyword", [[
function on_start(c)
  local hit = phantom.decision{container = c,
    condition = {{"artifact:*.cef.score", ">", 50}}}
end
]], "3: phantom.decision: unknown argument 'condition'"},
  {"unknown keyword, alone", [[
function on_start(c)
  phantom.format{templat = "{0}", parameters = {"artifact:*.id"}}
end
]], "2: phantom.format: unknown argument 'templat'"},
  {"severity outside its set", [[
function on_start(c)
  phantom.set_severity(c, "hihg")
end
]], "2: phantom.set_severity: 'hihg' is not a severity (high, medium, low)"},
  {"status outside its set", [[
function on_start(c)
  phantom.set_status{container = c, status = "done"}
end
]], "2: phantom.set_status: 'done' is not a status (new, open, closed)"},
  {"sensitivity outside its set", [[
function on_start(c)
  phantom.set_sensitivity(c, "purple")
end
]], "2: phantom.set_sensitivity: 'purple' is not a sensitivity (white, green, amber, red)"},
  {"playbook_info key", [[
playbook_info = {label = {"events"}, active = true}
function on_start(c) end
]], "1: playbook_info: unknown key 'label' (keys: active, labels, limits)"},
  {"playbook_info type", [[
playbook_info = {labels = {"events"}, active = "yes"}
function on_start(c) end
]], "1: playbook_info.active: expected a boolean, got a string"},
  {"playbook_info limits", [[
playbook_info = {
  limits = {memory_mb = "16"},
}
function on_start(c) end
]], "2: playbook_info.limits.memory_mb: expected a number, got a string"},
  {"datapath naming no block", [[
function on_start(c)
  phantom.act("geolocate ip", {parameters = {{ip = "1.1.1.1"}}, name = "lookup_ip_1", callback = done})
end
function done(kw)
  phantom.debug(phantom.collect2{container = kw.container, datapath = {"lookup_ip1:action_result.data.*.ip"}})
end
]], "5: datapath 'lookup_ip1:action_result.data.*.ip': no act, filter, format, custom function, prompt or child playbook of this playbook is named 'lookup_ip1'"},
  {"filter naming no block", [[
function on_start(c)
  phantom.condition{container = c, conditions = {{"artifact:*.cef.x", "==", 1}}, name = "filter_1:condition_1"}
  phantom.collect2{container = c, datapath = {"filtered-data:filter_2:condition_1:artifact:*.id"}}
end
]], "3: datapath 'filtered-data:filter_2:condition_1:artifact:*.id': no act, filter, format, custom function, prompt or child playbook of this playbook is named 'filter_2'"},
}

describe("luasoar check finds", function()
  for i, m in ipairs(MISTAKES) do
    it(m[1], function()
      local pb, out, code = check(m[2], "mistake" .. i)
      assert.same({pb .. ":" .. m[3]}, out)
      assert.equal(1, code)
    end)
  end

  it("assets from SCRIPTS/assets.json by default", function()
    local dir = H.tmp() .. "/default_assets"
    os.execute("mkdir -p " .. S.q(dir .. "/playbooks"))
    H.write("default_assets/assets.json", '{"rep": {"app": "GeoIP", "id": 1, "config": {}}}')
    local pb = H.write("default_assets/playbooks/p.lua", [[
function on_start(c)
  phantom.act("geolocate ip", {parameters = {{ip = "1.1.1.1"}}, assets = "geoip"})
end
]])
    local out, _, code = H.cli("check", "--apps", APPS, pb)
    assert.equal(pb .. ":2: phantom.act: no asset named 'geoip' in the assets file\n", out)
    assert.equal(1, code)
  end)

  it("and warns (exit 0) when a format section pairs rows of different sources by position", function()
    local pb, out, code = check([[
function on_start(c)
  phantom.act("geolocate ip", {parameters = {{ip = "1.1.1.1"}}, name = "geo_1", callback = done})
end
function done(kw)
  phantom.format{container = kw.container, name = "report",
    template = "%%{0} in {1}%%", parameters = {"artifact:*.cef.sourceAddress", "geo_1:action_result.data.*.country_name"}}
  phantom.format{container = kw.container, template = "%%{0} ({1})%%\n%%{0}: {2}%%",
    parameters = {"geo_1:action_result.parameter.ip", "geo_1:action_result.data.*.country_name", "geo_2:action_result.status"}}
end
]], "format")
    assert.same({
      pb .. ":6: warning: phantom.format: a %% section pairs the rows of 'artifact:*.cef.sourceAddress' (the artifacts) and 'geo_1:action_result.data.*.country_name' (action geo_1) by position: row i takes the i-th value of each",
      pb .. ":7: warning: phantom.format: a %% section pairs the rows of 'geo_1:action_result.parameter.ip' (action geo_1) and 'geo_2:action_result.status' (action geo_2) by position: row i takes the i-th value of each",
      pb .. ":8: datapath 'geo_2:action_result.status': no act, filter, format, custom function, prompt or child playbook of this playbook is named 'geo_2'",
    }, out)
    assert.equal(1, code) -- the error; a warning alone is exit 0
    _, out, code = check([[
function on_start(c)
  phantom.format{container = c, template = "%%{0} / {1}%%", parameters = {"artifact:*.cef.sourceAddress", "geo_1:formatted_data"}}
  phantom.format{container = c, template = "%%{0} / {1}%%", parameters = {"artifact:*.cef.a", "artifact:*.cef.b"}, name = "geo_1"}
end
]], "format2")
    assert.same({}, out)
    assert.equal(0, code)
    _, out, code = check([[
function on_start(c)
  phantom.format{container = c, template = "%%{0} / {1}%%", parameters = {"artifact:*.cef.a", "filtered-data:f_1:condition_1:artifact:*.cef.b"}}
  phantom.condition{container = c, conditions = {{"artifact:*.cef.a", "!=", ""}}, name = "f_1:condition_1"}
end
]], "format3")
    assert.equal(1, #out)
    assert.matches(":2: warning: phantom%.format: a %%%% section pairs the rows of 'artifact:%*%.cef%.a' %(the artifacts%) and", out[1])
    assert.equal(0, code)
  end)
end)

describe("luasoar check passes", function()
  local function each_lua(dir)
    local p = io.popen("find " .. S.q(dir) .. " -name '*.lua' | sort")
    local out = {}
    for l in p:lines() do out[#out + 1] = l end
    p:close()
    return out
  end

  it("every shipped and fixture playbook", function()
    for _, pb in ipairs(each_lua(H.root .. "/scripts/playbooks")) do
      local out, _, code = H.cli("check", pb)
      assert.equal("", out)
      assert.equal(0, code)
    end
    for _, pb in ipairs(each_lua(H.fixtures .. "/playbooks")) do
      local out, _, code = H.cli("check", "--apps", H.fixtures .. "/apps", "--assets", H.fixtures .. "/assets.json", pb)
      assert.equal("", out)
      assert.equal(0, code)
    end
  end)

  it("a playbook using every form right", function()
    local _, out, code = check([[
playbook_info = {labels = {"events", "*"}, active = true,
                 limits = {instructions_per_run = 2e7, memory_mb = 16, deadline_seconds = 0.5}}
local sev = "high"
function on_start(container)
  phantom.act("geolocate ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"geoip"}, name = "geolocate_ip_1",
              callback = decide})
  phantom.act{action = "geolocate ip", parameters = {{ip = "8.8.8.8"}}, assets = "geoip", callback = decide}
  phantom.set_severity(container, "High")
  phantom.set_severity(container, sev)
  phantom.set_status{container = container, status = "open"}
  phantom.set_sensitivity(container, "amber")
  phantom.save_run_data{key = "code_1:out", value = "x"}
  phantom.update(container, {severity = "low", custom = 1})
  phantom.add_tags(container, {"a"})
  local ls = phantom.LoopState{max_iterations = 3, conditions = {{"artifact:*.id", ">=", 1}}}
  phantom.debug(ls)
end
function decide(kw)
  local c = kw.container
  local arts = phantom.condition{container = c, action_results = kw.results, name = "filter_1:condition_1",
    conditions = {{"geolocate_ip_1:action_result.data.*.country_name", "not in", "custom_list:allowed_countries"},
                  {"artifact:*.cef.sourceAddress", "in", "code_1:custom_function:out"}}, logical_operator = "or"}
  phantom.debug(arts)
  phantom.format(c, "%%{0}: {1}%%", {"filtered-data:filter_1:condition_1:geolocate_ip_1:action_result.parameter.ip",
                 "filtered-data:filter_1:condition_1:geolocate_ip_1:action_result.data.*.country_name"}, "report_1")
  phantom.format{container = c, template = "{0} {1}", parameters = {"artifact:*.cef.x", "geolocate_ip_1:action_result.status"}}
  phantom.debug(phantom.collect2{container = c, datapath = {"report_1:formatted_data", "container:severity"}})
  phantom.custom_function{custom_function = "local/noop", parameters = {{}}, name = "noop_1"}
  phantom.playbook("local/child", c, "child_1")
  phantom.prompt2{user = "admin", message = "ok?", name = "prompt_1", response_types = {{prompt = "ok", options = {type = "list", choices = {"Yes"}}}}}
  phantom.debug(phantom.collect2{container = c, datapath = {"noop_1:custom_function_result.data.x", "child_1:playbook_output:y",
                                 "prompt_1:action_result.summary.responses.0"}})
end
]], "valid")
    assert.same({}, out)
    assert.equal(0, code)
  end)
end)

describe("luasoar serve loads only what check passes", function()
  local srv
  lazy_setup(function()
    srv = S.start({["playbooks/p.lua"] = "playbook_info = {labels = {'events'}, active = true}\nfunction on_start(c) end\n"})
  end)
  lazy_teardown(function() S.stop(srv) end)

  it("keeps the old generation serving and shows the error", function()
    local function entry()
      local _, r = S.request(srv, "GET", "/rest/playbook")
      for _, p in ipairs(r.data) do if p.id == "p" then return p end end
    end
    assert.truthy(S.wait(function() local p = entry() return p and p.loaded end))
    S.write(srv, "playbooks/p.lua", "playbook_info = {label = {'events'}, active = true}\nfunction on_start(c) end\n")
    local pb = S.wait(function() local p = entry() return p and type(p.error) == "string" and p end)
    assert.matches("p%.lua:1: playbook_info: unknown key 'label' %(keys: active, labels, limits%)$", pb.error)
    assert.equal(1, pb.generation)
    assert.truthy(S.logged(srv, "reload p failed, generation 1 keeps serving: "))
  end)
end)
