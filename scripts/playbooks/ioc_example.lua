-- ioc_example.lua: find the indicators of compromise (IP addresses, domains,
-- URLs, hashes, email addresses) in the text of a container's artifacts with
-- the IOC Extract app (a SOAR connector, in Python), print each one, then save
-- them as artifacts of the container.
--
--   luasoar run scripts/playbooks/ioc_example.lua --container scripts/data/ioc_container.json

function on_start(container)
  phantom.debug("extracting the indicators of container " .. container.id)
  extract_indicators_1{container = container}
end

-- One parameter set: the text of every artifact, so each indicator is found once.
local function container_text(container)
  local texts = {}
  for _, row in ipairs(phantom.collect2{container = container, datapath = {"artifact:*.cef.bodyText"}}) do
    if row[1] then texts[#texts + 1] = row[1] end
  end
  return table.concat(texts, "\n")
end

function extract_indicators_1(kw)
  local text = container_text(kw.container)
  if text == "" then
    phantom.debug("no text to extract indicators from")
    return
  end
  phantom.act("extract indicators", {parameters = {{text = text, types = "all"}}, assets = {"iocextract"},
                                     callback = extract_indicators_1_callback, name = "extract_indicators_1"})
end

function extract_indicators_1_callback(kw)
  if not kw.success then
    phantom.error("extract_indicators_1 failed: " .. kw.results[1].action_results[1].message)
    return
  end
  local rows = phantom.collect2{container = kw.container, action_results = kw.results, datapath = {
    "extract_indicators_1:action_result.data.*.type",
    "extract_indicators_1:action_result.data.*.value",
  }}
  local found = 0
  for _, row in ipairs(rows) do
    if row[2] then -- a result without data gives one row of nils
      phantom.debug(row[1] .. ": " .. row[2])
      found = found + 1
    end
  end
  if found > 0 then add_indicators_as_artifacts_1{container = kw.container} end
end

function add_indicators_as_artifacts_1(kw)
  phantom.act("add indicators as artifacts", {parameters = {{text = container_text(kw.container)}},
                                              assets = {"iocextract"}, callback = add_indicators_as_artifacts_1_callback,
                                              name = "add_indicators_as_artifacts_1"})
end

function add_indicators_as_artifacts_1_callback(kw)
  local result = kw.results[1].action_results[1]
  if result.status ~= "success" then
    phantom.error("add_indicators_as_artifacts_1 failed: " .. result.message)
    return
  end
  phantom.debug(("%d artifacts added"):format(result.summary.artifacts_added))
end

function on_finish(container, summary)
  local found = phantom.collect2{container = container,
                                 datapath = {"extract_indicators_1:action_result.summary.total_indicators"}}
  local iocs = 0
  for _, row in ipairs(phantom.collect2{container = container, datapath = {"artifact:*.label"}, scope = "all"}) do
    if row[1] == "ioc" then iocs = iocs + 1 end
  end
  phantom.debug(("finished: %d indicators, %d ioc artifacts, %d action run(s)"):format(
    found[1] and found[1][1] or 0, iocs, #phantom.get_summary().result))
end
