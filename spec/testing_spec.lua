-- luasoar.testing, the kit playbook authors test with: stubs, the virtual
-- clock, records, determinism and the luassert helpers.
local H = require "spec.helper"
local lt = require "luasoar.testing"

local function engine(opts)
  opts = opts or {}
  opts.scripts = opts.scripts or H.tmp()
  opts.apps = opts.apps or (H.fixtures .. "/apps")
  if opts.assets == nil then opts.assets = H.fixtures .. "/assets.json" end
  return lt.engine(opts)
end

local GEO = [[
  function on_start(c)
    phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}, {ip = "1.2.3.4"}}, assets = {"maxmind"},
                                 callback = cb, name = "geo"})
  end
  function cb(kw)
    for _, ar in ipairs(kw.results[1].action_results) do
      phantom.debug(ar.parameter.ip .. " " .. ar.status .. " " .. ar.message .. " " .. json.encode(ar.data))
    end
  end
]]

describe("luasoar.testing", function()
  it("stubs an action with a function of the parameter, asset and action", function()
    local eng = engine()
    local stub = eng:stub("geolocate ip", function(param, asset, info)
      return {message = asset.name .. "/" .. info.name, data = {{ip = param.ip}}}
    end)
    local run = eng:run(H.playbook(GEO), H.container())
    assert.run_succeeded(run)
    assert.same({'8.8.8.8 success maxmind/geo [{"ip":"8.8.8.8"}]', '1.2.3.4 success maxmind/geo [{"ip":"1.2.3.4"}]'},
                run:messages())
    assert.equal(2, #stub.calls)
    assert.equal("8.8.8.8", stub.calls[1].parameter.ip)
    assert.equal("maxmind", stub.calls[1].asset)
    eng:close()
  end)

  it("stubs with a canned result, a failure, a sequence or a whole-app error", function()
    local cases = {
      {{summary = {n = 1}}, {"8.8.8.8 success  []", "1.2.3.4 success  []"}},
      {lt.fail("nope"), {"8.8.8.8 failed nope []", "1.2.3.4 failed nope []"}},
      {lt.sequence{{message = "one"}, lt.fail("two")}, {"8.8.8.8 success one []", "1.2.3.4 failed two []"}},
      {lt.app_error("segfault"), {"8.8.8.8 failed segfault []", "1.2.3.4 failed segfault []"}},
      {function() error("stub broke", 0) end, {"8.8.8.8 failed stub broke []", "1.2.3.4 failed stub broke []"}},
    }
    for _, case in ipairs(cases) do
      local eng = engine()
      eng:stub("geolocate ip", case[1])
      local run = eng:run(H.playbook(GEO), H.container())
      assert.same(case[2], run:messages())
      eng:close()
    end
  end)

  it("repeats the last result of a sequence", function()
    local eng = engine()
    eng:stub("block ip", lt.sequence{{message = "a"}, {message = "b"}})
    local run = eng:run(H.playbook([[
      function on_start(c)
        phantom.act("block ip", {parameters = {{ip = "1"}, {ip = "2"}, {ip = "3"}}, assets = {"pan"}, callback = cb})
      end
      function cb(kw)
        for _, ar in ipairs(kw.results[1].action_results) do phantom.debug(ar.message) end
      end
    ]]), H.container())
    assert.same({"a", "b", "b"}, run:messages())
    eng:close()
  end)

  it("passes delays at once on a virtual clock, in order of time", function()
    local eng = engine()
    eng:stub("block ip", lt.delay(3600, {message = "slow"}))
    eng:stub("file reputation", lt.delay(60))
    local t0 = eng:now()
    local run = eng:run(H.playbook([[
      local start = os.time()
      function on_start(c)
        phantom.act("block ip", {parameters = {{ip = "1"}}, assets = {"pan"}, callback = cb})
        phantom.act("file reputation", {parameters = {{hash = "h"}}, assets = {"vt"}, callback = cb})
      end
      function cb(kw) phantom.debug(kw.action.action .. " at +" .. (os.time() - start)) end
    ]]), H.container())
    assert.same({"file reputation at +60", "block ip at +3600"}, run:messages())
    assert.equal(3600, eng:now() - t0)
    eng:close()
  end)

  it("lets the real app run for one asset while a stub covers the others", function()
    local eng = engine()
    eng:stub("geolocate ip", {message = "stubbed"})
    eng:stub("geolocate ip", {asset = "maxmind2"}, lt.real)
    local run = eng:run(H.playbook([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"maxmind", "maxmind2"}, callback = cb})
      end
      function cb(kw) phantom.debug({kw.results[1].message, kw.results[2].message}) end
    ]]), H.container())
    assert.same({'["stubbed","Country: United States"]'}, run:messages())
    eng:close()
  end)

  it("is strict: an action no stub covers fails the run, saying how to stub it or let it run", function()
    local eng = engine()
    local run = eng:run(H.playbook(GEO), H.container())
    assert.equal("failed", run.status)
    assert.equal("no stub for action 'geolocate ip' (geo) on asset 'maxmind' (app 'MaxMind'): stub it with "
      .. 'eng:stub("geolocate ip", behaviour) or eng:stub("geolocate ip", {asset = "maxmind"}, behaviour), '
      .. 'or let the real app run with eng:stub("geolocate ip", {asset = "maxmind", real = true}) '
      .. "or lt.engine{real = true}", run.error)
    assert.block_called(run, "cb", 0) -- the app did not run: no callback
    eng:close()
    -- a stub for one asset leaves the other uncovered
    eng = engine()
    eng:stub("geolocate ip", {asset = "maxmind"}, {message = "stubbed"})
    run = eng:run(H.playbook([[
      function on_start(c)
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"maxmind", "maxmind2"},
                                     callback = cb, name = "geo"})
      end
      function cb(kw) phantom.debug("called") end
    ]]), H.container())
    assert.equal("failed", run.status)
    assert.matches("^no stub for action 'geolocate ip' %(geo%) on asset 'maxmind2'", run.error)
    assert.same({}, run:messages())
    eng:close()
  end)

  it("lets unstubbed actions run their real apps with real = true, per engine or per stub", function()
    local setups = {
      {{real = true}, function() end},
      {{}, function(eng) eng:stub("geolocate ip", {real = true}) end},
      {{}, function(eng) eng:stub("geolocate ip", {asset = "maxmind", real = true}) end},
      {{}, function(eng) eng:stub("geolocate ip", lt.real) end},
    }
    for i, case in ipairs(setups) do
      local eng = engine(case[1])
      case[2](eng)
      local run = eng:run(H.playbook(GEO), H.container())
      assert.run_succeeded(run)
      assert.matches("^8.8.8.8 success Country: United States", run:messages()[1], nil, false, "case " .. i)
      eng:close()
    end
  end)

  it("takes assets inline, naming apps that are not installed", function()
    local eng = engine{assets = {whois = {app = "Whois", id = 3, config = {server = "w"}}}}
    eng:stub("whois ip", function(p, asset) return {message = asset.config.server .. " " .. p.ip} end)
    local run = eng:run(H.playbook([[
      function on_start(c)
        phantom.act("whois ip", {parameters = {{ip = "8.8.8.8"}}, callback = cb})
      end
      function cb(kw) phantom.debug(kw.results[1] and kw.results[1].message) end
    ]]), H.container())
    assert.equal(H.luasoar.null, run.error)
    assert.same({"w 8.8.8.8"}, run:messages())
    -- an action nothing provides and no stub covers is still an error at the call
    eng:close()
    eng = engine{assets = {whois = {app = "Whois"}}}
    run = eng:run(H.playbook("function on_start(c) phantom.act('whois ip', {parameters = {{ip = '1'}}}) end"),
                  H.container())
    assert.matches("phantom.act: unknown action 'whois ip' %(no app provides it%)$", run.error)
    eng:close()
  end)

  it("records every action started and every block called, with its arguments", function()
    local eng = engine()
    eng:stub("block ip", {})
    local run = eng:run(H.playbook([[
      function on_start(c)
        phantom.act("block ip", {parameters = {{ip = "1.1.1.1", context = {artifact_id = 11}}}, assets = {"pan"},
                                 callback = blocked, name = "block_1"})
      end
      function blocked(kw) report{container = kw.container, results = kw.results, note = "n"} end
      function report(kw) end
      function on_finish(c, s) end
    ]]), H.container())
    assert.equal(1, #run.actions)
    local a = run.actions[1]
    assert.equal("block_1", a.name)
    assert.equal("block ip", a.action)
    assert.equal("blocked", a.callback)
    assert.same({"pan"}, a.assets)
    assert.equal("1.1.1.1", a.parameters[1].ip)
    assert.equal(11, a.parameters[1].context.artifact_id)
    local blocks = {}
    for i, c in ipairs(run.calls) do blocks[i] = c.block end
    assert.same({"on_start", "blocked", "report", "on_finish"}, blocks)
    assert.equal(101, run:calls_of("on_start")[1][1].id)
    assert.equal("n", run:calls_of("report")[1][1].note)
    assert.is_true(run:calls_of("blocked")[1][1].success)
    assert.is_string(run:calls_of("on_finish")[1][2])
    assert.block_called(run, "report", 1)
    assert.action_started(run, "block_1", {assets = {"pan"}, parameters = {{ip = "1.1.1.1"}}})
    eng:close()
  end)

  it("is deterministic: the same spec gives the same ids, order and output", function()
    local function once()
      local eng = engine()
      eng:stub("geolocate ip", lt.sequence{lt.delay(5, {}), lt.delay(1, {})})
      eng:stub("block ip", {})
      local pb = H.playbook(GEO .. [[
        function on_finish(c, s) phantom.act("block ip", {parameters = {{ip = "9"}}, assets = {"pan"}}) end
      ]], "determinism")
      eng:start(pb, H.container())
      eng:start(pb, H.container())
      local out = {}
      for _, r in ipairs(eng:wait()) do out[#out + 1] = {r.run_id, r.log, r.summary, r.actions} end
      eng:close()
      return out
    end
    local a, b = once(), once()
    assert.equal(2, #a)
    assert.same(a, b)
  end)

  it("finds a playbook by its id under playbooks/, and says so when there is none", function()
    local eng = lt.engine{scripts = H.root .. "/scripts"}
    eng:stub("geolocate ip", {})
    assert.run_succeeded(eng:run("geolocate_example", {id = 1, artifacts = {}}))
    assert.has_error(function() eng:run("no_such_playbook", {id = 1}) end,
      "no playbook 'no_such_playbook' (looked for " .. H.root .. "/scripts/playbooks/no_such_playbook.lua)")
    eng:close()
  end)

  it("explains a failed assertion with what did happen", function()
    local eng = engine()
    eng:stub("block ip", {})
    local run = eng:run(H.playbook([[
      function on_start(c) phantom.act("block ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"pan"}, name = "b1"}) end
    ]]), H.container())
    local ok, err = pcall(assert.action_started, run, "b1", {parameters = {{ip = "2.2.2.2"}}})
    assert.is_false(ok)
    assert.matches("Expected action .*'b1' to have been started with .*2%.2%.2%.2", tostring(err))
    assert.matches('b1 %(block ip%) on pan with %[{"ip":"1.1.1.1"}%]', tostring(err))
    ok, err = pcall(assert.block_called, run, "nothing", 1)
    assert.is_false(ok)
    assert.matches("it was called .*0 time", tostring(err))
    eng:close()
  end)
end)

describe("the README's testing example", function()
  -- the README's playbook and spec, copied into a folder of their own and
  -- run with one command, as a playbook author would
  it("runs with `luasoar test DIR`", function()
    local blocks = H.lua_blocks(H.root .. "/README.md", "## Testing your playbooks")
    local f = assert(io.open(H.root .. "/scripts/playbooks/geolocate_example.lua"))
    local playbook = f:read("a")
    f:close()
    local dir = H.tmp() .. "/author"
    os.execute(("mkdir -p %s/playbooks %s/spec"):format(dir, dir))
    H.write("author/playbooks/geolocate_example.lua", playbook)
    H.write("author/spec/geolocate_example_spec.lua", blocks[1].code)
    local out, err, code = H.cli("test", dir)
    assert.equal(0, code, out .. err)
    assert.matches("1 success / 0 failures / 0 errors", out)
  end)
end)

describe("luasoar.testing runs", function()
  it("read back the run's data", function()
    local eng = lt.engine{scripts = H.tmp(), apps = H.fixtures .. "/apps", assets = H.fixtures .. "/assets.json"}
    local run = eng:run(H.playbook([[
      function on_start(c) phantom.save_run_data{key = "verdict", value = {bad = true, score = 7}} end
    ]]), H.container())
    assert.same({verdict = {bad = true, score = 7}}, run.run_data)
    eng:close()
  end)
end)
