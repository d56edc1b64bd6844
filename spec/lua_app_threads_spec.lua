-- Lua apps start on the loop's thread for a slice and go on on worker
-- threads (bindings/runner_lua.c): an app that blocks (os.execute("sleep
-- 1")) or computes long delays no other run and no REST request;
-- the app runs of one app wait in order (its state serves one thread at a
-- time), different apps run at once; the app's timeout fails an app run
-- that blocks past it and a fresh state serves the next; the instruction
-- limit and memory cap still fail the app run.
--
-- The apps (spec/fixtures/threads/apps) stamp what they do with `date`:
-- one clock for the spec, the apps and the playbooks' debug lines, so the
-- spec asserts order (this happened while that app slept), not tight times.
local H = require "spec.helper"
local S = require "spec.serve_helper"
local lt = require "luasoar.testing"

local APPS = H.fixtures .. "/threads/apps"

local function read(path)
  local f = assert(io.open(path))
  local t = f:read("a")
  f:close()
  return t
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

-- assets: sl1, sl1b on app Sleeper; sl2 on app Sleeper2; markers go to dir
local function assets_json(dir)
  return H.json.encode{
    sl1 = {app = "Sleeper", id = 1, config = {dir = dir}},
    sl1b = {app = "Sleeper", id = 2, config = {dir = dir}},
    sl2 = {app = "Sleeper2", id = 3, config = {dir = dir}},
    slow = {app = "SlowLoad", id = 4, config = {}},
  }
end

local function engine()
  local dir = H.tmp() .. "/threads" .. math.random(1, 1e9)
  os.execute("mkdir -p '" .. dir .. "'")
  local assets = dir .. "/assets.json"
  local f = assert(io.open(assets, "w"))
  f:write(assets_json(dir))
  f:close()
  return H.luasoar.engine{apps = APPS, assets = assets, seed = 0}, dir
end

-- every debug line of a report, decoded
local function debugs(report)
  return H.decoded(report)
end

describe("lua apps on worker threads (in-process engine)", function()
  it("runs two apps at once, and the app runs of one app one after the other, in order", function()
    local eng = engine()
    local t0 = H.now()
    local report = eng:run(H.playbook([[
      function on_start(c)
        phantom.act("sleep", {parameters = {{seconds = 1}}, assets = {"sl1", "sl2"}, callback = cb, name = "two_apps"})
      end
      function cb(kw)
        for _, r in ipairs(kw.results) do phantom.debug(r.action_results[1].data[1]) end
        phantom.act("sleep", {parameters = {{seconds = 0.3}}, assets = {"sl1", "sl1b"}, callback = cb2, name = "one_app"})
      end
      function cb2(kw)
        for _, r in ipairs(kw.results) do phantom.debug(r.action_results[1].data[1]) end
      end
    ]]), H.container())
    local took = H.now() - t0
    eng:close()
    assert.equal("success", report.status, report.error)
    local d = debugs(report)
    assert.equal(4, #d)
    -- two apps: each sleeps 1 s, and they overlap (each started before the other finished)
    local a, b = d[1], d[2]
    assert.same({"sl1", "sl2"}, {a.asset, b.asset})
    assert.truthy(math.max(a.start, b.start) < math.min(a.finish, b.finish),
                  ("no overlap: %s..%s and %s..%s"):format(a.start, a.finish, b.start, b.finish))
    -- one app, two assets: its state serves one app run at a time, in the act's order
    local c1, c2 = d[3], d[4]
    assert.same({"sl1", "sl1b"}, {c1.asset, c2.asset})
    assert.truthy(c1.finish <= c2.start, ("overlap: %s..%s and %s..%s"):format(c1.start, c1.finish, c2.start, c2.finish))
    assert.same({2, 3}, {c1.served, c2.served}) -- one state of Sleeper served them all
    assert.truthy(took < 1.3 + 0.3 * 2 + 1, "took " .. took .. " s") -- 1 s in parallel, not 2
  end)

  -- A run acting `action` on `asset` once, beside a ticker run that chains
  -- three stamps of Sleeper2: the first run's data and the ticker's stamps.
  local function beside_ticker(action, params, asset)
    local eng = engine()
    local one = H.playbook(([[
      function on_start(c) phantom.act(%q, {parameters = {%s}, assets = {%q}, callback = cb}) end
      function cb(kw) phantom.debug(kw.results[1].action_results[1].data[1]) end
    ]]):format(action, params, asset))
    local ticker = H.playbook([[
      local n = 0
      function on_start(c) tick() end
      function tick() phantom.act("stamp", {parameters = {{}}, assets = {"sl2"}, callback = cb}) end
      function cb(kw)
        phantom.debug(kw.results[1].action_results[1].data[1])
        n = n + 1
        if n < 3 then tick() end
      end
    ]])
    eng:start(one, H.container())
    eng:start(ticker, H.container())
    local reports = eng:wait()
    eng:close()
    assert.equal(2, #reports)
    local by = {}
    for _, r in ipairs(reports) do
      assert.equal("success", r.status, r.error)
      by[r.playbook] = debugs(r)
    end
    assert.equal(3, #by[ticker])
    return by[one][1], by[ticker]
  end

  it("moves a lua app that computes past its slice of the loop to a worker thread: other runs go on meanwhile", function()
    local busy, ticks = beside_ticker("busy", "{seconds = 0.6}", "sl1")
    for i, tk in ipairs(ticks) do -- all while the busy app computed
      assert.truthy(tk.t < busy.finish, ("tick %d at %.3f, the busy app finished at %.3f"):format(i, tk.t, busy.finish))
    end
  end)

  it("loads an app whose main file blocks off the loop's thread: other runs go on meanwhile", function()
    local loading, ticks = beside_ticker("stamp", "{}", "slow")
    assert.truthy(loading.ready - loading.loaded >= 1)
    for i, tk in ipairs(ticks) do
      assert.truthy(tk.t < loading.ready, ("tick %d at %.3f, the app finished loading at %.3f"):format(i, tk.t, loading.ready))
    end
  end)

  it("resumes an app that yields by itself; one that yields forever ends at its instruction limit", function()
    local eng = engine()
    local report = eng:run(H.playbook([[
      function on_start(c)
        phantom.act("yields", {parameters = {{}}, assets = {"sl1"}, callback = cb})
        phantom.act("yield_forever", {parameters = {{}}, assets = {"sl2"}, callback = cb})
      end
      function cb(kw) phantom.debug(kw.results[1].action_results[1].message) end
    ]]), H.container())
    eng:close()
    assert.equal("success", report.status, report.error)
    local d = debugs(report)
    table.sort(d)
    assert.same({"after yields", "instruction limit exceeded (100000000 instructions per app run)"}, d)
  end)

  it("fails an app run that blocks past its timeout; a fresh state serves the next app run at once", function()
    local eng = engine()
    local t0 = H.now()
    local report = eng:run(H.playbook([[
      function on_start(c)
        phantom.act("stamp", {parameters = {{}}, assets = {"sl1"}, callback = cb0, name = "warm"})
      end
      function cb0(kw)
        phantom.debug(kw.results[1].action_results[1].data[1])
        -- "hang" has a 1 s timeout; it sleeps 3 s
        phantom.act("hang", {parameters = {{seconds = 3}}, assets = {"sl1"}, callback = cb1, name = "hang"})
        -- waits its turn behind hang: it runs when hang times out
        phantom.act("stamp", {parameters = {{}}, assets = {"sl1"}, callback = cb2, name = "queued"})
      end
      function cb1(kw)
        local r = kw.results[1].action_results[1]
        phantom.debug({status = r.status, message = r.message, success = kw.success})
      end
      function cb2(kw)
        phantom.debug(kw.results[1].action_results[1].data[1])
        phantom.act("stamp", {parameters = {{}}, assets = {"sl1"}, callback = cb3, name = "after"})
      end
      function cb3(kw) phantom.debug(kw.results[1].action_results[1].data[1]) end
    ]]), H.container())
    eng:close()
    assert.equal("success", report.status, report.error)
    local d = debugs(report)
    assert.equal(4, #d, H.json.encode(d))
    assert.equal(1, d[1].served)
    assert.same({status = "failed", message = "timed out after 1s", success = false}, d[2])
    -- the queued app run and the next: a fresh state (served counts from 1
    -- again), long before the abandoned one's sleep (3 s) ends
    assert.same({1, 2}, {d[3].served, d[4].served})
    assert.truthy(d[4].t - t0 < 2.5, ("the next app run ran %.2f s after the start"):format(d[4].t - t0))
  end)

  it("keeps the app's instruction limit and memory cap: each fails its app run, the app goes on", function()
    local eng = engine()
    local report = eng:run(H.playbook([[
      function on_start(c)
        phantom.act("spin", {parameters = {{}}, assets = {"sl1"}, callback = cb, name = "spin"})
        phantom.act("hog", {parameters = {{}}, assets = {"sl2"}, callback = cb, name = "hog"})
      end
      local n = 0
      function cb(kw)
        local r = kw.results[1].action_results[1]
        phantom.debug({name = kw.action.name, status = r.status, message = r.message})
        n = n + 1
        if n == 2 then
          phantom.act("stamp", {parameters = {{}}, assets = {"sl1", "sl2"}, callback = last, name = "stamp"})
        end
      end
      function last(kw)
        phantom.debug({kw.results[1].action_results[1].status, kw.results[2].action_results[1].status})
      end
    ]]), H.container())
    eng:close()
    assert.equal("success", report.status, report.error)
    local d = debugs(report)
    assert.equal(3, #d, H.json.encode(d))
    local by = {}
    for i = 1, 2 do by[d[i].name] = d[i] end
    assert.equal("failed", by.spin.status)
    assert.matches("instruction limit exceeded %(100000000 instructions per app run%)", by.spin.message)
    assert.equal("failed", by.hog.status)
    assert.matches("not enough memory", by.hog.message)
    assert.same({"success", "success"}, d[3])
  end)

  it("works in the test kit (virtual clock) with real = true, the timeout included", function()
    local dir = H.tmp() .. "/threads_kit" .. math.random(1, 1e9)
    os.execute("mkdir -p '" .. dir .. "'")
    local eng = lt.engine{apps = APPS, assets = H.json.decode(assets_json(dir)), scripts = dir, real = true}
    local run = eng:run(H.playbook([[
      function on_start(c)
        phantom.act("sleep", {parameters = {{seconds = 0.2}}, assets = {"sl1", "sl2"}, callback = cb, name = "s"})
        phantom.act("hang", {parameters = {{seconds = 2}}, assets = {"sl1b"}, callback = cb, name = "h"})
      end
      function cb(kw)
        for _, r in ipairs(kw.results) do
          phantom.debug(kw.action.name .. " " .. r.action_results[1].status .. " " .. r.action_results[1].message)
        end
      end
    ]]), H.container())
    assert.equal("success", run.status, run.error)
    local m = run:messages()
    table.sort(m)
    assert.same({"h failed timed out after 1s", "s success slept 0.2", "s success slept 0.2"}, m)
    eng:close()
  end)
end)

describe("lua apps on worker threads under luasoar serve", function()
  local function files(dir)
    local t = {["assets.json"] = assets_json(dir)}
    for _, app in ipairs{"sleeper", "sleeper2", "slowload"} do
      for _, f in ipairs{"app.json", "app.lua"} do
        t["apps/" .. app .. "/" .. f] = read(APPS .. "/" .. app .. "/" .. f)
      end
    end
    t["playbooks/sleepy.lua"] = [[
playbook_info = {labels = {"sleepy"}, active = true}
function on_start(c)
  phantom.act("sleep", {parameters = {{seconds = 1}}, assets = {"sl1"}, callback = done, name = "sleep"})
end
function done(kw) phantom.debug(kw.results[1].action_results[1].data[1]) end
]]
    -- five app runs one after the other (each callback starts the next), on another app
    t["playbooks/ticker.lua"] = [[
playbook_info = {labels = {"ticker"}, active = true}
local left = 5
function on_start(c) tick() end
function tick()
  phantom.act("stamp", {parameters = {{}}, assets = {"sl2"}, callback = tock, name = "stamp"})
end
function tock(kw)
  phantom.debug(kw.results[1].action_results[1].data[1])
  left = left - 1
  if left > 0 then tick() end
end
]]
    return t
  end

  -- a GET timed by curl itself (the exchange, not curl's start)
  local function timed_get(srv, path)
    local out = S.sh(("curl -s -o /dev/null -w '%%{http_code} %%{time_total}' -H %s %s"):format(
      S.q("ph-auth-token: " .. srv.token), S.q(("http://127.0.0.1:%d%s"):format(srv.port, path))))
    local code, t = out:match("^(%d+) ([%d.]+)$")
    return tonumber(code), tonumber(t)
  end

  local function debug_lines(srv, run_id)
    local out = S.sql(srv, "SELECT message FROM run_log WHERE level = 'debug' AND run_id = " .. run_id .. " ORDER BY id")
    local t = {}
    for line in out:gmatch("[^\n]+") do t[#t + 1] = H.json.decode(line) end
    return t
  end

  it("answers REST and delivers another run's callbacks while a lua app sleeps 1 s", function()
    local dir = H.tmp() .. "/threads_serve" .. math.random(1, 1e9)
    local srv = S.start(nil, dir)
    finally(function() S.stop(srv) end)
    for name, text in pairs(files(dir)) do S.write(srv, name, text) end
    S.stop(srv)
    S.launch(srv)
    local _, sleepy = S.request(srv, "POST", "/rest/container", {name = "s", label = "sleepy"})
    assert.truthy(sleepy and sleepy.id, S.log_text(srv))
    -- the app is asleep: its marker is there
    assert.truthy(S.wait(function() return exists(dir .. "/sl1.start") end, 10), S.log_text(srv))
    local asleep = H.now()
    local _, ticker = S.request(srv, "POST", "/rest/container", {name = "t", label = "ticker"})
    local code, took = timed_get(srv, "/rest/playbook")
    local answered = H.now()
    assert.equal(200, code)
    assert.truthy(took < 0.05, "GET /rest/playbook took " .. took .. " s while a lua app slept")
    assert.truthy(S.all_ended(srv, 2), S.log_text(srv))
    local s_run, t_run = S.runs(srv, sleepy.id)[1], S.runs(srv, ticker.id)[1]
    assert.equal("success", s_run.status, s_run.message)
    assert.equal("success", t_run.status, t_run.message)
    local slept = debug_lines(srv, s_run.id)[1]
    assert.truthy(slept.finish - slept.start >= 1)
    -- the GET was answered while the app slept
    assert.truthy(asleep >= slept.start and answered < slept.finish,
                  ("asleep %.3f..%.3f, GET %.3f..%.3f"):format(slept.start, slept.finish, asleep, answered))
    -- and the ticker's five app runs, each started by the callback of the
    -- one before, all happened while it slept
    local ticks = debug_lines(srv, t_run.id)
    assert.equal(5, #ticks)
    for i, tk in ipairs(ticks) do
      assert.truthy(tk.t > slept.start and tk.t < slept.finish,
                    ("tick %d at %.3f, the app slept %.3f..%.3f"):format(i, tk.t, slept.start, slept.finish))
    end
  end)
end)
