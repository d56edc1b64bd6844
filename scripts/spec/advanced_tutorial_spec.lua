-- advanced_tutorial: filter against a custom list, decision, format, prompt,
-- join, custom function, tested with luasoar.testing.
local lt = require "luasoar.testing"

local GEO = {["8.8.8.8"] = "United States", ["5.6.7.8"] = "France", ["9.9.9.9"] = "Germany"}

local function engine()
  local eng = lt.engine()
  eng:stub("geolocate ip", function(p)
    local c = GEO[p.ip]
    if not c then return lt.fail("Private IP") end
    return {message = "Country: " .. c, data = {{country_name = c}}, summary = {country = c}}
  end)
  eng:stub("classify ip", {summary = {scope = "public"}})
  return eng
end

local CONTAINER = {id = 5, severity = "low", artifacts = {
  {id = 1, cef = {sourceAddress = "8.8.8.8"}},
  {id = 2, cef = {sourceAddress = "5.6.7.8"}},
  {id = 3, cef = {sourceAddress = "10.0.0.1"}},
  {id = 4, cef = {sourceAddress = "9.9.9.9"}},
}}

describe("advanced_tutorial", function()
  it("joins both actions once, asks about the foreign addresses, and raises the severity on Yes", function()
    local eng = engine()
    eng:answer("prompt_1", {"Yes", "checked"})
    local run = eng:run("advanced_tutorial", CONTAINER)
    assert.run_succeeded(run)
    assert.block_called(run, "join_filter_1", 2)
    assert.block_called(run, "filter_1", 1)
    assert.equal("Raise the severity of container 5? Addresses outside the allowed countries:\n- 5.6.7.8 (France)\n- 9.9.9.9 (Germany)",
                 eng.prompts[1].message)
    assert.block_called(run, "country_report_1", 1)
    assert.logged(run, "severity raised: France: 5.6.7.8; Germany: 9.9.9.9")
    assert.logged(run, "finished: 2 action runs, severity high")
    eng:close()
  end)

  it("leaves the severity alone when the prompt times out", function()
    local eng = engine()
    local run = eng:run("advanced_tutorial", CONTAINER)
    assert.run_succeeded(run)
    assert.logged(run, "not raised: no answer")
    assert.block_called(run, "country_report_1", 0)
    assert.logged(run, "finished: 2 action runs, severity low")
    eng:close()
  end)

  it("says so and asks nothing when every address is allowed", function()
    local eng = engine()
    local run = eng:run("advanced_tutorial", {id = 6, artifacts = {{id = 1, cef = {sourceAddress = "8.8.8.8"}}}})
    assert.run_succeeded(run)
    assert.logged(run, "nothing to review")
    assert.equal(0, #eng.prompts)
    eng:close()
  end)
end)
