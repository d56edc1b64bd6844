-- SOAR connectors as apps, through `luasoar run --json`: the fixture
-- connector (spec/fixtures/soar/fixture: a manifest, an app.json with
-- workers 2 and a 1 s timeout on "hang", and fixture_connector.py) calls
-- every function of the phantom shim and misbehaves on purpose.
local H = require "spec.helper"

local sh = require("spec.serve_helper").sh

local function abs(path)
  if path:sub(1, 1) == "/" then return path end
  return sh("pwd"):gsub("\n$", "") .. "/" .. path
end

local SOAR = abs(H.fixtures .. "/soar")
local ASSETS = SOAR .. "/assets.json"
local CONTAINER = SOAR .. "/container.json"
local MANIFEST = SOAR .. "/fixture/fixture.json"
local KEY = "KEY-s3cr3t-42"     -- the password config value of asset fix
local SECRET = "PARAM-hush-7"   -- a password parameter

--- luasoar run --json over the fixture; returns the report (decoded), the
--- raw stdout, stderr and the exit code.  opts: assets, apps, vault.
local function run(src, opts)
  opts = opts or {}
  local vault = opts.vault or (H.tmp() .. "/vault" .. math.random(1, 1e9))
  local out, err, code = H.cli("run", H.playbook(src), "--container", CONTAINER, "--assets", opts.assets or ASSETS,
                               "--apps", opts.apps or SOAR, "--vault", vault, "--json")
  local report = out ~= "" and H.json.decode(out) or nil
  return report, out, err, code
end

--- The playbook's own debug lines (JSON), decoded, in order.
local function debugs(report)
  local out = {}
  for _, e in ipairs(report.log) do
    if e.level == "debug" and (e.message:sub(1, 1) == "[" or e.message:sub(1, 1) == "{") then
      out[#out + 1] = H.json.decode(e.message)
    end
  end
  return out
end

--- The connector's lines of the log (those that start with "Fixture").
local function connector_lines(report)
  local out = {}
  for _, e in ipairs(report.log) do
    if e.message:find("^Fixture") then out[#out + 1] = e.level .. " " .. e.message end
  end
  return out
end

local RESULTS_CB = [[
function cb(kw) phantom.debug({success = kw.success, results = kw.results}) end
]]

describe("a SOAR connector app", function()
  it("gets every shim call right: logs, state, container, artifacts, vault, crypto, validators", function()
    local report, out, _, code = run([[
      function on_start(c)
        phantom.act("exercise", {parameters = {{value = 5, secret = "]] .. SECRET .. [["}, {value = "6"}},
                                 assets = {"fix"}, callback = cb, name = "ex"})
      end
      function cb(kw)
        phantom.debug({success = kw.success, results = kw.results})
        phantom.debug(phantom.collect2{container = kw.container, datapath = {"artifact:*.cef.sourceAddress"}, scope = "all"})
        phantom.debug(phantom.collect2{container = kw.container, datapath = {"ex:action_result.data.*.value"}})
      end
    ]])
    assert.equal(0, code)
    assert.equal("success", report.status)
    -- the connector's log lines, at debug level, prefixed with the app's name, passwords masked
    assert.same({
      'debug Fixture: action_id "exercise"',
      "debug Fixture progress: exercise 5 started",
      'debug Fixture: the param {"value": 5}',
      "debug Fixture error: an error line for 5",
      "debug Fixture: secrets: ******** / ********",
      'debug Fixture: action_id "exercise"',
      "debug Fixture progress: exercise 6 started",
      'debug Fixture: the param {"value": 6}',
      "debug Fixture error: an error line for 6",
      "debug Fixture: secrets:  / ********",
    }, connector_lines(report))
    local d = debugs(report)
    local kw = d[1]
    assert.is_true(kw.success)
    local r = kw.results[1]
    assert.equal("5b1e4c7a-0f53-4d2b-9a7e-1c2d3e4f5a6b", r.app_id)
    assert.equal("Fixture", r.app)
    assert.equal("fix", r.asset)
    assert.equal(41, r.asset_id)
    assert.equal("success", r.status)
    assert.equal("2 of 2 actions succeeded", r.message)
    assert.same({total_objects = 2, total_objects_successful = 2}, r.summary)
    assert.equal(2, #r.action_results)
    local a1, a2 = r.action_results[1], r.action_results[2]
    assert.equal("success", a1.status)
    -- set_status then append_to_message; the password parameter masked
    assert.equal("exercised 5. with ********", a1.message)
    assert.equal("exercised 6. with ", a2.message)
    -- set_summary then update_summary; the password config value masked
    assert.same({runs = 1, value = 5, key = "********"}, a1.summary)
    assert.same({runs = 2, value = 6, key = "********"}, a2.summary)
    -- the parameter is what the connector set with set_param
    assert.same({value = 5, secret = "********", set_by = "connector"}, a1.parameter)
    assert.same({value = 6, secret = "", set_by = "connector"}, a2.parameter)
    local data = a1.data[1]
    assert.equal(5, data.value)
    assert.equal(6, a2.data[1].value) -- "6" converted to a number before the connector saw it
    assert.equal(77, data.container_id)
    assert.same({true, 77, "events", false, 200}, data.container_info)
    assert.same({false, "no container with id 987654", 404}, data.missing_container)
    assert.same({true, "1 artifacts saved", 1}, data.artifacts)
    assert.equal("41", data.asset_id)
    assert.equal("5b1e4c7a-0f53-4d2b-9a7e-1c2d3e4f5a6b", data.appid)
    assert.equal("exercise", data.action_name)
    -- config: the asset's keys, the manifest's defaults, what SOAR adds
    assert.same({base_url = "https://fixture.example", retries = 3, mode = "fast", fail_test = false}, data.config)
    assert.same({"api_key", "app_version", "base_url", "directory", "fail_test", "main_module", "mode", "retries"},
                data.config_keys)
    assert.same({true, "success", 40, true, 1, "note.txt", 15, 77, "fixture note 5\n"}, data.vault)
    assert.same({true, "tok-5", "decrypt: authentication failed (wrong asset or tampered value)"}, data.crypto)
    assert.same({true, false, true, false, true, true, true, false}, data.validators)
    -- load_state: nothing the first time, what the first set saved the second
    assert.same({}, data.state_before)
    assert.same({runs = 1, last = 5}, a2.data[1].state_before)
    assert.equal("the secret was ********", data.echo)
    -- the saved artifacts are in the run's container, seen by datapaths after the callback
    assert.same({{"192.0.2.1"}, {"10.9.8.5"}, {"10.9.8.6"}}, d[2])
    assert.same({{5}, {6}}, d[3])
    local arts = report.container.artifacts
    assert.equal(3, #arts)
    assert.equal("fixture artifact", arts[2].name)
    assert.equal("fixture-5", arts[2].source_data_identifier)
    assert.equal("high", arts[2].severity)
    assert.same({sourceAddress = "10.9.8.5", secretCopy = "********"}, arts[2].cef)
    assert.same({sourceAddress = {"ip"}}, arts[2].cef_types)
    -- the passwords are nowhere in the output
    assert.is_nil(out:find(KEY, 1, true))
    assert.is_nil(out:find(SECRET, 1, true))
  end)

  it("that crashes fails only its app run; the next action on the app gets a new worker", function()
    local report, _, _, code = run([[
      function on_start(c)
        phantom.act("whoami", {parameters = {{}}, assets = {"fix"}, callback = first})
      end
      function first(kw)
        phantom.debug({pid = kw.results[1].action_results[1].data[1].pid})
        phantom.act("crash", {parameters = {{how = "kill"}, {how = "exit"}},
                              assets = {"fix"}, callback = crashed})
      end
      function crashed(kw)
        local r = kw.results[1]
        phantom.debug({success = kw.success, status = r.status, message = r.message,
                       m1 = r.action_results[1].message, m2 = r.action_results[2].message})
        phantom.act("crash", {parameters = {{how = "exit"}}, assets = {"fix"}, callback = crashed2})
      end
      function crashed2(kw)
        phantom.debug({message = kw.results[1].message})
        phantom.act("whoami", {parameters = {{}}, assets = {"fix"}, callback = last})
      end
      function last(kw)
        phantom.debug({success = kw.success, pid = kw.results[1].action_results[1].data[1].pid})
      end
    ]])
    assert.equal(0, code)
    assert.equal("success", report.status)
    local d = debugs(report)
    local killed = "the connector's worker died during the action (crashed: killed by signal 9 (Killed); " ..
                   "stderr: fixture about to crash (kill))"
    assert.same({success = false, status = "failed", message = killed, m1 = killed, m2 = killed}, d[2])
    assert.equal("the connector's worker died during the action (exited with status 9; " ..
                 "stderr: fixture about to crash (exit))", d[3].message)
    assert.is_true(d[4].success)
    assert.not_equal(d[1].pid, d[4].pid)
  end)

  it("that runs past its action's timeout is killed with its process group; the app goes on", function()
    local marker = "soarspec-hang-" .. math.random(1, 1e9)
    local t0 = H.now()
    local report, _, _, code = run(([[
      function on_start(c)
        phantom.act("hang", {parameters = {{marker = %q}, {marker = %q}},
                             assets = {"fix"}, callback = hung})
      end
      function hung(kw)
        local r = kw.results[1]
        phantom.debug({success = kw.success, message = r.message, m1 = r.action_results[1].message,
                       m2 = r.action_results[2].message})
        phantom.act("echo", {parameters = {{count = 1}}, assets = {"fix"}, callback = after})
      end
      function after(kw) phantom.debug({success = kw.success}) end
    ]]):format(marker, marker))
    local elapsed = H.now() - t0
    assert.equal(0, code)
    local d = debugs(report)
    local msg = "timed out after 1s (the worker was killed)"
    assert.same({success = false, message = msg, m1 = msg, m2 = msg}, d[1])
    assert.same({success = true}, d[2])
    assert.is_true(elapsed < 20, "took " .. elapsed .. " s")
    -- the worker's grandchild (`sleep 61; : MARKER`) died with it
    -- (the pattern's brackets keep pgrep from matching its own shell)
    local n = tonumber(sh("env -u LD_PRELOAD pgrep -f '" .. marker:gsub("hang", "han[g]") .. "' | wc -l"))
    assert.equal(0, n)
  end)

  it("masks password parameters in the results of app runs the engine fails (crash, timeout)", function()
    local report, out = run([[
      function on_start(c)
        phantom.act("crash", {parameters = {{how = "kill", secret = "]] .. SECRET .. [["}}, assets = {"fix"}, callback = cb})
        phantom.act("hang", {parameters = {{marker = "soarspec-masked", secret = "]] .. SECRET .. [["}}, assets = {"fix"},
                             callback = cb})
      end
    ]] .. RESULTS_CB)
    local d = debugs(report)
    assert.equal(2, #d)
    for _, kw in ipairs(d) do assert.is_false(kw.success) end
    assert.is_nil(out:find(SECRET, 1, true), "the password parameter is in the output")
  end)

  it("whose connector prints on stdout (print, os.write(1), a child) still succeeds", function()
    local report, _, _, code = run([[
      function on_start(c)
        phantom.act("noisy", {parameters = {{}}, assets = {"fix"}, callback = cb})
        phantom.act("echo", {parameters = {{count = 2}}, assets = {"fix"}, callback = cb})
      end
    ]] .. RESULTS_CB)
    assert.equal(0, code)
    local d = debugs(report)
    assert.equal(2, #d)
    for _, kw in ipairs(d) do
      assert.is_true(kw.success)
      assert.equal(1, #kw.results[1].action_results)
    end
    local by = {}
    for _, kw in ipairs(d) do by[kw.results[1].action] = kw.results[1].action_results[1] end
    assert.equal("noisy but fine", by.noisy.message)
    assert.same({{quiet = true}}, by.noisy.data)
    assert.equal("echoed 2", by.echo.message)
  end)

  it("checks each parameter set against the manifest: a bad one fails alone, naming the parameter", function()
    local report, out, _, code = run([[
      function on_start(c)
        phantom.act("echo", {parameters = {
          {count = "abc"}, {count = 2, color = "purple"}, {color = "blue"}, {count = "7", color = "", flag = "TRUE"},
          {count = 1, flag = "maybe"}, {count = 3.5, color = "green", secret = "]] .. SECRET .. [["}},
          assets = {"fix"}, callback = cb})
      end
    ]] .. RESULTS_CB)
    assert.equal(0, code)
    local kw = debugs(report)[1]
    local r = kw.results[1]
    assert.equal("2 of 6 actions succeeded", r.message)
    assert.same({total_objects = 6, total_objects_successful = 2}, r.summary)
    local got = {}
    for i, ar in ipairs(r.action_results) do got[i] = ar.status .. ": " .. ar.message end
    assert.same({
      "failed: parameter 'count': expected a number, got 'abc'",
      "failed: parameter 'color': must be one of: red, green, blue",
      "failed: missing required parameter 'count'",
      "success: echoed 7",
      "failed: parameter 'flag': expected a boolean, got 'maybe'",
      "success: echoed 3.5",
    }, got)
    -- a failed set keeps the parameters as given; a good one reaches the connector converted, defaults applied
    assert.equal("abc", r.action_results[1].parameter.count)
    local seen = r.action_results[4].data[1]
    assert.equal(7, seen.count)
    assert.equal("red", seen.color)
    assert.is_true(seen.flag)
    assert.equal("********", r.action_results[6].data[1].secret)
    assert.equal(0, #r.action_results[1].data)
    assert.is_nil(out:find(SECRET, 1, true))
  end)

  it("runs one action result per parameter set, in order, and counts them", function()
    local report = run([[
      function on_start(c)
        phantom.act("echo", {parameters = {{count = 3}, {count = 1}, {count = 2}}, assets = {"fix"}, callback = cb})
      end
    ]] .. RESULTS_CB)
    local r = debugs(report)[1].results[1]
    local counts = {}
    for i, ar in ipairs(r.action_results) do counts[i] = ar.data[1].count end
    assert.same({3, 1, 2}, counts)
    assert.same({total_objects = 3, total_objects_successful = 3}, r.summary)
    assert.equal("3 of 3 actions succeeded", r.message)
  end)

  it("with workers = 2 runs two app runs at once", function()
    local t0 = H.now()
    local report = run([[
      function on_start(c)
        phantom.act("slow", {parameters = {{seconds = 2}}, assets = {"fix"}, callback = cb})
        phantom.act("slow", {parameters = {{seconds = 2}}, assets = {"fix"}, callback = cb})
      end
      function cb(kw) phantom.debug(kw.results[1].action_results[1].data[1]) end
    ]])
    local elapsed = H.now() - t0
    local d = debugs(report)
    assert.equal(2, #d)
    -- both were in flight at once: each started before the other ended, in two workers
    assert.is_true(d[1].start < d[2]["end"] and d[2].start < d[1]["end"])
    assert.not_equal(d[1].pid, d[2].pid)
    assert.is_true(elapsed < 3.9, "took " .. elapsed .. " s")
  end)
end)

describe("a SOAR app's asset config", function()
  local function assets_file(config)
    return H.write("assets" .. math.random(1, 1e9) .. ".json",
                   H.json.encode({bad = {app = "Fixture", id = 9, config = config}}))
  end
  local PB = 'function on_start(c) phantom.debug("never") end\n'

  it("missing a required key is refused at load: exit 2, the message names file, asset, key, app, manifest", function()
    local file = assets_file({api_key = KEY})
    local report, out, err, code = run(PB, {assets = file})
    assert.equal(2, code)
    assert.is_nil(report)
    assert.equal("", out)
    assert.equal(("luasoar run: %s: asset 'bad': config key 'base_url' is required by app 'Fixture' (%s)\n")
                 :format(file, MANIFEST), err)
    assert.is_nil(err:find(KEY, 1, true))
  end)

  it("of the wrong type is refused without quoting the value", function()
    local file = assets_file({base_url = "x", retries = "three", api_key = KEY})
    local _, _, err, code = run(PB, {assets = file})
    assert.equal(2, code)
    assert.equal(("luasoar run: %s: asset 'bad': config key 'retries' (app 'Fixture'): expected a number\n"):format(file),
                 err)
    file = assets_file({base_url = "x", api_key = 12345})
    _, _, err, code = run(PB, {assets = file})
    assert.equal(2, code)
    assert.equal(("luasoar run: %s: asset 'bad': config key 'api_key' (app 'Fixture'): expected a string\n"):format(file),
                 err)
  end)
end)

describe("luasoar app test on the fixture", function()
  it("prints the progress and passes, or fails with exit 1 and the connector's message", function()
    local out, _, code = H.cli("app", "test", "fix", "--assets", ASSETS, "--apps", SOAR)
    assert.equal(0, code)
    assert.equal("testing asset 'fix' (app 'Fixture', action 'test connectivity')\n" ..
                 'Fixture: action_id "test_connectivity"\n' ..
                 "Fixture progress: Connecting to https://fixture.example\n" ..
                 "Fixture progress: Test Connectivity Passed\n" ..
                 "test connectivity passed: fixture reached https://fixture.example\n", out)
    out, _, code = H.cli("app", "test", "fix_failing", "--assets", ASSETS, "--apps", SOAR)
    assert.equal(1, code)
    assert.truthy(out:find("Fixture progress: Test Connectivity Failed\n" ..
                           "test connectivity failed: the fixture refuses: fail_test is set\n", 1, true), out)
  end)
end)

describe("a SOAR app under relative paths", function()
  it("runs when --apps is relative to the working directory", function()
    local dir = H.tmp() .. "/rel" .. math.random(1, 1e9)
    sh(("mkdir -p %s/apps && cp -r %s/fixture %s/apps/ && cp %s %s/assets.json && cp %s %s/c.json")
       :format(dir, SOAR, dir, ASSETS, dir, CONTAINER, dir))
    local pb = H.playbook([[
      function on_start(c) phantom.act("echo", {parameters = {{count = 1}}, assets = {"fix"}, callback = cb}) end
      function cb(kw) phantom.debug(kw.results[1].status .. ": " .. kw.results[1].action_results[1].message) end
    ]])
    local out = sh(("cd %s && %s run %s --container c.json --assets assets.json --apps apps --vault vault --json")
                   :format(dir, H.bin, pb))
    local report = H.json.decode(out)
    assert.equal("success: echoed 1", report.log[#report.log].message)
  end)
end)
