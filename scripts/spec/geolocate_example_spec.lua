-- The example playbook, tested with luasoar.testing: geolocation is stubbed,
-- so the spec checks the playbook's own decisions, not the GeoIP database.
local lt = require "luasoar.testing"

local COUNTRIES = {["8.8.8.8"] = "United States", ["81.2.69.160"] = "United Kingdom"}

local function geolocate(param)
  local country = COUNTRIES[param.ip]
  if not country then return lt.fail("Private IP") end
  return {message = "Country: " .. country, data = {{country_name = country}}, summary = {country = country}}
end

describe("geolocate_example", function()
  local eng, stub, run
  before_each(function()
    eng = lt.engine()
    stub = eng:stub("geolocate ip", geolocate)
    run = eng:run("geolocate_example", {
      id = 7,
      artifacts = {
        {id = 1, cef = {sourceAddress = "8.8.8.8", destinationAddress = "10.0.0.1"}},
        {id = 2, cef = {sourceAddress = "81.2.69.160"}},
        {id = 3, cef = {requestURL = "http://example.com"}},
      },
    })
  end)
  after_each(function() eng:close() end)

  it("geolocates every IP address once, with its artifact as context", function()
    assert.run_succeeded(run)
    assert.action_started(run, "geolocate_ip_1", {
      assets = {"geoip"},
      parameters = {
        {ip = "8.8.8.8", context = {artifact_id = 1}},
        {ip = "10.0.0.1", context = {artifact_id = 1}},
        {ip = "81.2.69.160", context = {artifact_id = 2}},
      },
    })
    assert.equal(1, #run.actions)
    assert.equal(3, #stub.calls)
  end)

  it("reports the country of each address, then the countries found", function()
    assert.same({
      "geolocating the IP addresses of container 7",
      "8.8.8.8: United States",
      "10.0.0.1: no country (Private IP)",
      "81.2.69.160: United Kingdom",
      "countries: United Kingdom, United States",
      "finished: 1 action run(s)",
    }, run:messages("debug"))
  end)

  it("calls list_countries once, with the callback's results", function()
    assert.block_called(run, "geolocate_ip_1_callback", 1)
    assert.block_called(run, "list_countries", 1)
    local kw = run:calls_of("list_countries")[1][1]
    assert.equal(7, kw.container.id)
    assert.equal("geoip", kw.results[1].asset)
    assert.equal(3, kw.results[1].summary.total_objects)
    assert.equal(2, kw.results[1].summary.total_objects_successful)
  end)

  it("still finishes when every lookup fails", function()
    local e = lt.engine()
    e:stub("geolocate ip", lt.fail("database unavailable"))
    local r = e:run("geolocate_example", {id = 8, artifacts = {{id = 1, cef = {sourceAddress = "8.8.8.8"}}}})
    assert.run_succeeded(r)
    assert.logged(r, "8.8.8.8: no country (database unavailable)")
    assert.logged(r, "countries: ")
    e:close()
  end)
end)
