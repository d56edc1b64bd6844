-- The IOC example playbook, tested with luasoar.testing: first with the
-- connector's actions stubbed (the playbook's own decisions), then with the
-- real IOC Extract connector running in its Python worker.
local lt = require "luasoar.testing"

local BODY_1 = "Pay at hxxps://pay[.]example/x or mail billing[@]pay[.]example"
local BODY_2 = "beacons to 203.0.113.5"
local CONTAINER = {
  id = 9,
  artifacts = {
    {id = 1, cef = {bodyText = BODY_1}},
    {id = 2, cef = {sourceAddress = "10.0.0.1"}},
    {id = 3, cef = {bodyText = BODY_2}},
  },
}

local INDICATORS = {
  {type = "url", value = "https://pay.example/x"},
  {type = "email", value = "billing@pay.example"},
  {type = "ip", value = "203.0.113.5"},
}

local function extract()
  return {message = "3 indicators found", data = INDICATORS,
          summary = {total_indicators = 3, ips = 1, domains = 0, urls = 1, hashes = 0, emails = 1}}
end

describe("ioc_example, with the connector stubbed", function()
  local eng, extract_stub, add_stub, run
  before_each(function()
    eng = lt.engine()
    extract_stub = eng:stub("extract indicators", extract)
    add_stub = eng:stub("add indicators as artifacts", {message = "3 artifacts added", summary = {artifacts_added = 3}})
    run = eng:run("ioc_example", CONTAINER)
  end)
  after_each(function() eng:close() end)

  it("extracts from the text of every artifact at once, on the iocextract asset", function()
    assert.run_succeeded(run)
    local text = BODY_1 .. "\n" .. BODY_2
    assert.action_started(run, "extract_indicators_1", {
      assets = {"iocextract"}, parameters = {{text = text, types = "all"}},
    })
    assert.action_started(run, "add_indicators_as_artifacts_1", {
      assets = {"iocextract"}, parameters = {{text = text}},
    })
    assert.equal(2, #run.actions)
    assert.equal(1, #extract_stub.calls)
    assert.equal(1, #add_stub.calls)
    assert.equal("iocextract", extract_stub.calls[1].asset)
  end)

  it("prints each indicator, then the artifacts added and a summary", function()
    assert.same({
      "extracting the indicators of container 9",
      "url: https://pay.example/x",
      "email: billing@pay.example",
      "ip: 203.0.113.5",
      "3 artifacts added",
      "finished: 3 indicators, 0 ioc artifacts, 2 action run(s)",
    }, run:messages("debug"))
    assert.same({}, run:messages("error"))
  end)

  it("passes the extraction's results to its callback", function()
    assert.block_called(run, "extract_indicators_1_callback", 1)
    assert.block_called(run, "add_indicators_as_artifacts_1", 1)
    local kw = run:calls_of("extract_indicators_1_callback")[1][1]
    assert.is_true(kw.success)
    assert.equal("extract_indicators_1", kw.action.name)
    assert.equal("extract indicators", kw.action.action)
    assert.equal("iocextract", kw.results[1].asset)
    local result = kw.results[1].action_results[1]
    assert.equal("success", result.status)
    assert.equal("3 indicators found", result.message)
    assert.same(INDICATORS, result.data)
    assert.equal(3, result.summary.total_indicators)
  end)

  it("stops after the extraction when it finds nothing", function()
    local e = lt.engine()
    e:stub("extract indicators", {message = "No indicators found", data = {}, summary = {total_indicators = 0}})
    local add = e:stub("add indicators as artifacts", {})
    local r = e:run("ioc_example", CONTAINER)
    assert.run_succeeded(r)
    assert.equal(0, #add.calls)
    assert.same({"extracting the indicators of container 9", "finished: 0 indicators, 0 ioc artifacts, 1 action run(s)"},
                r:messages("debug"))
    e:close()
  end)

  it("logs an error when the extraction fails", function()
    local e = lt.engine()
    e:stub("extract indicators", lt.fail("Please provide a positive integer in the 'max_indicators' configuration parameter"))
    local r = e:run("ioc_example", CONTAINER)
    assert.run_succeeded(r)
    assert.same({"extract_indicators_1 failed: Please provide a positive integer in the 'max_indicators' configuration parameter"},
                r:messages("error"))
    assert.equal(1, #r.actions)
    e:close()
  end)

  it("acts on nothing when no artifact has text", function()
    local e = lt.engine()
    local r = e:run("ioc_example", {id = 10, artifacts = {{id = 1, cef = {sourceAddress = "10.0.0.1"}}}})
    assert.run_succeeded(r)
    assert.equal(0, #r.actions)
    assert.logged(r, "no text to extract indicators from")
    e:close()
  end)
end)

describe("ioc_example, with the real IOC Extract connector", function()
  it("extracts, prints and saves the indicators of a defanged text", function()
    local eng = lt.engine{real = true}
    local run = eng:run("ioc_example", CONTAINER)
    assert.run_succeeded(run)
    local printed = {}
    for _, m in ipairs(run:messages("debug")) do
      if not m:find("^IOC Extract") then printed[#printed + 1] = m end
    end
    assert.same({
      "extracting the indicators of container 9",
      "url: https://pay.example/x",
      "email: billing@pay.example",
      "ip: 203.0.113.5",
      "3 artifacts added",
      "finished: 3 indicators, 3 ioc artifacts, 2 action run(s)",
    }, printed)
    assert.logged(run, "IOC Extract: 3 indicators found")
    local result = run:calls_of("extract_indicators_1_callback")[1][1].results[1].action_results[1]
    assert.same({
      {type = "url", value = "https://pay.example/x", defanged = "hxxps://pay[.]example/x"},
      {type = "email", value = "billing@pay.example", defanged = "billing@pay[.]example"},
      {type = "ip", value = "203.0.113.5", defanged = "203[.]0[.]113[.]5"},
    }, result.data)
    assert.same({total_indicators = 3, ips = 1, domains = 0, urls = 1, hashes = 0, emails = 1}, result.summary)
    -- the saved artifacts, in the run's container after its three own
    local saved = {}
    for i = 4, #run.container.artifacts do
      local a = run.container.artifacts[i]
      saved[#saved + 1] = {id = a.id, name = a.name, label = a.label, severity = a.severity, cef = a.cef,
                           cef_types = a.cef_types, source_data_identifier = a.source_data_identifier}
    end
    assert.same({
      {id = 4, name = "url indicator", label = "ioc", severity = "medium", cef = {requestURL = "https://pay.example/x"},
       cef_types = {requestURL = {"url"}}, source_data_identifier = "iocextract:url:https://pay.example/x"},
      {id = 5, name = "email indicator", label = "ioc", severity = "medium", cef = {emailAddress = "billing@pay.example"},
       cef_types = {emailAddress = {"email"}}, source_data_identifier = "iocextract:email:billing@pay.example"},
      {id = 6, name = "ip indicator", label = "ioc", severity = "medium", cef = {sourceAddress = "203.0.113.5"},
       cef_types = {sourceAddress = {"ip"}}, source_data_identifier = "iocextract:ip:203.0.113.5"},
    }, saved)
    eng:close()
  end)
end)
