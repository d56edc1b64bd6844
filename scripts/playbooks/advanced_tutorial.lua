-- advanced_tutorial.lua: the flow of the reference's advanced playbook
-- tutorial, ported block by block: two actions in parallel joined with
-- phantom.completed, a filter against a custom list, a decision, a format
-- block, a prompt, a custom function and container updates.
--
--   luasoar run scripts/playbooks/advanced_tutorial.lua \
--     --container scripts/data/example_container.json --answers scripts/data/advanced_answers.json

function on_start(container)
  geolocate_ip_1{container = container}
  classify_ip_1{container = container}
end

function geolocate_ip_1(kw)
  local parameters = {}
  for _, row in ipairs(phantom.collect2{container = kw.container, datapath = {"artifact:*.cef.sourceAddress", "artifact:*.id"}}) do
    if row[1] then parameters[#parameters + 1] = {ip = row[1], context = {artifact_id = row[2]}} end
  end
  phantom.act("geolocate ip", {parameters = parameters, assets = {"geoip"}, callback = join_filter_1, name = "geolocate_ip_1"})
end

function classify_ip_1(kw)
  local parameters = {}
  for _, row in ipairs(phantom.collect2{container = kw.container, datapath = {"artifact:*.cef.sourceAddress", "artifact:*.id"}}) do
    if row[1] then parameters[#parameters + 1] = {ip = row[1], context = {artifact_id = row[2]}} end
  end
  phantom.act("classify ip", {parameters = parameters, assets = {"ipinfo"}, callback = join_filter_1, name = "classify_ip_1"})
end

-- Both actions must be done before the filter runs, and it runs once.
function join_filter_1(kw)
  if not phantom.completed{action_names = {"geolocate_ip_1", "classify_ip_1"}} then return end
  if phantom.get_run_data{key = "join_filter_1_called"} then return end
  phantom.save_run_data{key = "join_filter_1_called", value = "filter_1"}
  filter_1{container = kw.container}
end

-- Public addresses located outside the allowed countries.
function filter_1(kw)
  local _, matched = phantom.condition{container = kw.container, name = "filter_1:condition_1", conditions = {
    {"geolocate_ip_1:action_result.status", "==", "success"},
    {"geolocate_ip_1:action_result.summary.country", "not in", "custom_list:allowed_countries"},
  }}
  decision_1{container = kw.container, filtered_results = matched}
end

function decision_1(kw)
  local found = phantom.decision{container = kw.container, conditions = {
    {"filtered-data:filter_1:condition_1:geolocate_ip_1:action_result.parameter.ip", "!=", ""},
  }}
  if found then
    format_1{container = kw.container}
    return
  end
  phantom.comment{container = kw.container, comment = "every address is in an allowed country"}
  phantom.debug("nothing to review")
end

function format_1(kw)
  phantom.format{container = kw.container, name = "format_1",
    template = "Addresses outside the allowed countries:\n%%\n- {0} ({1})\n%%",
    parameters = {"filtered-data:filter_1:condition_1:geolocate_ip_1:action_result.parameter.ip",
                  "filtered-data:filter_1:condition_1:geolocate_ip_1:action_result.summary.country"}}
  phantom.debug(phantom.get_format_data{name = "format_1"})
  prompt_1{container = kw.container}
end

function prompt_1(kw)
  phantom.prompt2{container = kw.container, user = "admin", name = "prompt_1", respond_in_mins = 30,
    message = "Raise the severity of container {0}? {1}",
    parameters = {"container:id", "format_1:formatted_data"},
    response_types = {{prompt = "Raise?", options = {type = "list", choices = {"Yes", "No"}}},
                      {prompt = "Why", options = {type = "message"}}},
    callback = decision_2}
end

function decision_2(kw)
  if phantom.decision{container = kw.container, action_results = kw.results,
                      conditions = {{"prompt_1:action_result.summary.responses.0", "==", "Yes"}}} then
    country_report_1{container = kw.container}
    return
  end
  phantom.debug("not raised: " .. (kw.success and "declined" or "no answer"))
end

function country_report_1(kw)
  local parameters = {}
  for _, row in ipairs(phantom.collect2{container = kw.container, datapath = {
      "filtered-data:filter_1:condition_1:geolocate_ip_1:action_result.summary.country",
      "filtered-data:filter_1:condition_1:geolocate_ip_1:action_result.parameter.ip"}}) do
    parameters[#parameters + 1] = {country = row[1], ips = row[2]}
  end
  phantom.custom_function{custom_function = "local/country_report", parameters = parameters,
                          name = "country_report_1", callback = raise_severity}
end

function raise_severity(kw)
  local lines = {}
  for _, row in ipairs(phantom.collect2{container = kw.container, datapath = {"country_report_1:custom_function_result.data.line"}}) do
    lines[#lines + 1] = row[1]
  end
  local reason = phantom.collect2{container = kw.container, datapath = {"prompt_1:action_result.summary.responses.1"}}[1][1]
  phantom.set_severity{container = kw.container, severity = "high"}
  phantom.add_note{container = kw.container, title = "Foreign logins", content = table.concat(lines, "\n") .. "\n" .. reason}
  phantom.debug("severity raised: " .. table.concat(lines, "; "))
end

function on_finish(container, summary)
  local c = phantom.get_container(container.id)
  phantom.debug(("finished: %d action runs, severity %s"):format(#phantom.get_summary().result, c.severity))
end
