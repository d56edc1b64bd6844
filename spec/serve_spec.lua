-- luasoar serve: REST ingest, runs of active playbooks, the store behind the
-- API, bad requests, hot reload under load, shutdown.
local H = require "spec.helper"
local S = require "spec.serve_helper"

local GEO = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  local ids = {}
  for _, row in ipairs(phantom.collect2{container = c, datapath = {"artifact:*.id"}}) do ids[#ids + 1] = row[1] end
  phantom.debug("scope " .. table.concat(ids, ","))
  phantom.act("wait", {parameters = {{seconds = 0}}, assets = {"slow"}, callback = cb, name = "w"})
end
function cb(kw)
  phantom.save_run_data{key = "k", value = kw.results[1].message}
  phantom.debug("done " .. kw.results[1].message)
end
]]

local ADDER = [[
playbook_info = {labels = {"adder"}, active = true}
function on_start(c)
  phantom.act("wait", {parameters = {{seconds = 0.5}}, assets = {"slow"}, callback = add})
end
function add(kw, c)
  local ok, msg, id = phantom.add_artifact{container = kw.container, name = "added", cef_data = {k = 1}}
  phantom.save_run_data{key = "id", value = id}
end
]]

describe("luasoar serve", function()
  local srv
  setup(function() srv = S.start({["playbooks/geo.lua"] = GEO, ["playbooks/other.lua"] =
    'playbook_info = {labels = {"other"}, active = true}\nfunction on_start(c) phantom.debug("other") end\n',
    ["playbooks/adder.lua"] = ADDER}) end)
  teardown(function() S.stop(srv) end)

  it("refuses requests without the right token, with 401 and a JSON reason only", function()
    for _, tok in ipairs({false, "wrong-token-wrong-token"}) do
      local code, body = S.request(srv, "GET", "/rest/playbook", nil, {token = tok})
      assert.equal(401, code)
      assert.same({failed = true, message = "a valid ph-auth-token header is required"}, body)
    end
  end)

  it("stores a container, runs the active playbooks whose labels match, and serves it all back", function()
    local code, r = S.request(srv, "POST", "/rest/container", {name = "c1", label = "events",
      artifacts = {{name = "a", cef = {sourceAddress = "1.1.1.1"}}, {name = "b", cef = {sourceAddress = "2.2.2.2"}}}})
    assert.equal(200, code)
    assert.is_true(r.success)
    local cid = r.id
    local runs = S.all_ended(srv)
    local mine = {}
    for _, run in ipairs(runs) do if run.container == cid then mine[#mine + 1] = run end end
    assert.equal(1, #mine) -- "other" has other labels
    local run = mine[1]
    assert.equal("geo", run.playbook)
    assert.equal("success", run.status)
    assert.equal(1, run.generation)
    local _, c = S.request(srv, "GET", "/rest/container/" .. cid)
    assert.equal("c1", c.name)
    assert.equal(2, c.artifact_count)
    local _, arts = S.request(srv, "GET", "/rest/artifact?_filter_container=" .. cid)
    assert.equal(2, arts.count)
    assert.equal(cid, arts.data[1].container)
    local _, log = S.request(srv, "GET", "/rest/playbook_run/" .. run.id .. "/log")
    assert.same({"scope " .. arts.data[1].id .. "," .. arts.data[2].id, "done waited 0"},
                {log.data[1].message, log.data[2].message})
    assert.equal("debug", log.data[1].message_type)
    local _, ars = S.request(srv, "GET", "/rest/action_run?_filter_playbook_run=" .. run.id)
    assert.equal(1, ars.count)
    assert.equal("w", ars.data[1].name)
    assert.equal("success", ars.data[1].status)
    assert.equal("cb", ars.data[1].callback)
    local _, app = S.request(srv, "GET", "/rest/app_run/" .. ars.data[1].app_runs[1])
    assert.equal("slow", app.asset)
    assert.equal("waited 0", app.result_data.action_results[1].message)
  end)

  it("answers how many runs an ingest started; logs a container whose label no active playbook takes", function()
    local code, r = S.request(srv, "POST", "/rest/container", {name = "c5", label = "events"})
    assert.equal(200, code)
    assert.same({id = r.id, success = true, runs_started = 1}, r)
    assert.is_truthy(S.wait(function() return S.logged(srv, "Z ingest container " .. r.id .. " (events, 0 artifacts): 1 run started\n") end))
    code, r = S.request(srv, "POST", "/rest/container", {name = "c6", label = "nobody", artifacts = {{cef = {}}}})
    assert.equal(200, code)
    assert.same({id = r.id, success = true, runs_started = 0}, r)
    assert.is_truthy(S.wait(function()
      return S.logged(srv, "Z container " .. r.id .. ": no active playbook takes label 'nobody' (playbook_info = {labels ="
                      .. " {...}, active = true})\n") end))
    assert.is_true(S.logged(srv, "Z ingest container " .. r.id .. " (nobody, 1 artifacts): 0 runs started\n"))
    -- a container without a label gets "events"
    code, r = S.request(srv, "POST", "/rest/container", {name = "c7"})
    assert.same({id = r.id, success = true, runs_started = 1}, r)
    local _, c = S.request(srv, "GET", "/rest/container/" .. r.id)
    assert.equal("events", c.label)
    S.all_ended(srv)
  end)

  it("runs again with scope new when an artifact is added; a closed container starts nothing", function()
    local _, r = S.request(srv, "POST", "/rest/container", {name = "c2", label = "events", artifacts = {{cef = {x = 1}}}})
    local cid = r.id
    S.all_ended(srv)
    local code, a = S.request(srv, "POST", "/rest/artifact", {container_id = cid, cef = {x = 2}})
    assert.equal(200, code)
    local runs = S.wait(function()
      local rs = S.runs(srv, cid)
      return #rs == 2 and rs[2].status ~= "running" and rs
    end)
    local _, log = S.request(srv, "GET", "/rest/playbook_run/" .. runs[2].id .. "/log")
    assert.equal("scope " .. a.id, log.data[1].message)
    local _, closed = S.request(srv, "POST", "/rest/container", {name = "c3", label = "events", status = "closed"})
    S.request(srv, "POST", "/rest/artifact", {container_id = closed.id, cef = {x = 3}})
    S.wait(function() return nil end, 0)
    assert.equal(0, #S.runs(srv, closed.id))
  end)

  it("starts a run on request, with a scope", function()
    local _, r = S.request(srv, "POST", "/rest/container", {name = "c4", label = "nothing-matches",
      artifacts = {{cef = {}}, {cef = {}}}})
    local _, arts = S.request(srv, "GET", "/rest/artifact?_filter_container=" .. r.id)
    local code, pr = S.request(srv, "POST", "/rest/playbook_run",
      {container_id = r.id, playbook_id = "local/geo", scope = {arts.data[2].id}, run = true})
    assert.equal(200, code)
    assert.is_true(pr.received)
    S.all_ended(srv)
    local _, run = S.request(srv, "GET", "/rest/playbook_run/" .. pr.playbook_run_id)
    assert.equal("success", run.status)
    local _, log = S.request(srv, "GET", "/rest/playbook_run/" .. pr.playbook_run_id .. "/log")
    assert.equal("scope " .. arts.data[2].id, log.data[1].message)
  end)

  it("gives a playbook's new artifact an id no ingested artifact has", function()
    local _, a = S.request(srv, "POST", "/rest/container", {name = "with-adder", label = "adder", artifacts = {{cef = {}}}})
    -- ingested while the run waits: its artifact takes the next id first
    local _, b = S.request(srv, "POST", "/rest/container", {name = "bystander", label = "none", artifacts = {{cef = {b = 1}}}})
    local run = S.wait(function() local rs = S.runs(srv, a.id) return rs[1] and rs[1].status ~= "running" and rs[1] end)
    assert.equal("success", run.status)
    local _, arts = S.request(srv, "GET", "/rest/artifact?_filter_container=" .. b.id)
    assert.equal(1, arts.count)
    assert.equal(1, arts.data[1].cef.b)
    local _, mine = S.request(srv, "GET", "/rest/artifact?_filter_container=" .. a.id)
    assert.equal(2, mine.count)
    assert.equal("added", mine.data[2].name)
    assert.is_true(mine.data[2].id > arts.data[1].id)
  end)

  it("reloads apps and assets on any change, even one that leaves an older mtime", function()
    S.write(srv, "playbooks/fast.lua", 'playbook_info = {labels = {"fast"}, active = true}\n'
      .. 'function on_start(c) phantom.act("wait", {parameters = {{seconds = 0}}, assets = {"fast"}}) end\n')
    local path = srv.dir .. "/scripts/assets.json"
    local f = assert(io.open(path .. ".new", "w"))
    f:write('{"slow": {"app": "Slow", "id": 1}, "fast": {"app": "Slow", "id": 2}}')
    f:close()
    S.sh("touch -d 2001-01-01 " .. S.q(path .. ".new") .. " && mv " .. S.q(path .. ".new") .. " " .. S.q(path))
    assert.truthy(S.wait(function() return S.logged(srv, "reload apps and assets: 1 apps, 2 assets") end),
                  S.log_text(srv))
    local _, c = S.request(srv, "POST", "/rest/container", {name = "fast", label = "fast"})
    local run = S.wait(function() local rs = S.runs(srv, c.id) return rs[1] and rs[1].status ~= "running" and rs[1] end)
    assert.equal("success", run.status)
  end)

  it("answers bad requests with a JSON error and the right status", function()
    local code, body = S.request(srv, "POST", "/rest/container", '{"name": "x",\n "label": }')
    assert.equal(400, code)
    assert.equal("malformed JSON in the request body at line 2, column 11: unallowed token at this point in JSON text",
                 body.message)
    code, body = S.request(srv, "POST", "/rest/container", '[1, 2]')
    assert.equal(400, code)
    assert.equal("the request body must be a JSON object", body.message)
    code = S.request(srv, "GET", "/rest/container/999999")
    assert.equal(404, code)
    code = S.request(srv, "GET", "/rest/nothing")
    assert.equal(404, code)
    code, body = S.request(srv, "POST", "/rest/playbook_run", {container_id = 1, playbook_id = "nope"})
    assert.equal(404, code)
    assert.equal("no playbook 'nope'", body.message)
    code, body = S.request(srv, "POST", "/rest/playbook_run", {container_id = 1, playbook_id = "local/geo",
      scope = {"one"}})
    assert.equal(400, code)
    assert.equal("field 'scope': expected \"new\", \"all\" or a list of artifact ids", body.message)
    code = S.request(srv, "DELETE", "/rest/container")
    assert.equal(405, code)
    code = S.request(srv, "POST", "/rest/playbook_run/1")
    assert.equal(405, code)
    code, body = S.request(srv, "POST", "/rest/artifact", {container_id = 999999})
    assert.equal(404, code)
    local big = '{"name": "' .. string.rep("x", 17 * 1024 * 1024) .. '"}'
    code, body = S.request(srv, "POST", "/rest/container", big)
    assert.equal(413, code)
    assert.equal("the request body is larger than 16777216 bytes", body.message)
  end)

  it("lists the playbooks with their generation, labels and last load error", function()
    S.write(srv, "playbooks/broken.lua", "function on_start(c\n")
    local pb = S.wait(function()
      local _, r = S.request(srv, "GET", "/rest/playbook")
      for _, p in ipairs(r.data) do if p.id == "broken" then return p end end
    end)
    assert.is_false(pb.loaded)
    assert.matches("broken.lua:2: '%)' expected near <eof>$", pb.error)
  end)
end)

describe("hot reload under load", function()
  it("keeps every run on the generation it started with, serves the newest good one, leaks none", function()
    local function version(n)
      return ([[
playbook_info = {labels = {"events"}, active = true}
local V = %d
function on_start(c)
  phantom.act("wait", {parameters = {{seconds = 0.2}}, assets = {"slow"}, callback = cb})
end
function cb(kw) phantom.debug("version " .. V) end
]]):format(n)
    end
    local srv = S.start({["playbooks/p.lua"] = version(0)})
    finally(function() S.stop(srv) end)
    local posted = 0
    for i = 1, 100 do
      local kind = i % 10
      if kind == 3 then
        S.write(srv, "playbooks/p.lua", "function on_start(c\n") -- does not compile
        S.sh("sleep 0.15") -- past the debounce: it is compiled, and refused
      elseif kind == 6 then
        S.write(srv, "playbooks/p.lua", "error('top level raises')\n")
        S.sh("sleep 0.15")
      else
        S.write(srv, "playbooks/p.lua", version(i))
      end
      if i % 4 == 0 then
        S.request(srv, "POST", "/rest/container", {name = "load " .. i, label = "events"})
        posted = posted + 1
      end
      S.sh("sleep 0.02")
    end
    -- the last version is served once a generation newer than what was
    -- served before it was written is there (a fixed sleep was too short
    -- on a loaded machine)
    local function generation()
      local _, pbs = S.request(srv, "GET", "/rest/playbook")
      return pbs.data[1].generation
    end
    local before = generation()
    S.write(srv, "playbooks/p.lua", version(1000))
    assert.truthy(S.wait(function() return generation() > before end))
    -- the reload of the last write may come after one of an earlier event
    -- (late on a loaded machine): probes until a run says version 1000
    local probes = 0
    assert.truthy(S.wait(function()
      probes = probes + 1
      local _, r = S.request(srv, "POST", "/rest/container", {name = "probe", label = "events"})
      local rs = S.wait(function() local x = S.runs(srv, r.id) return x[1] and x[1].status ~= "running" and x end)
      local _, log = S.request(srv, "GET", "/rest/playbook_run/" .. rs[1].id .. "/log")
      return log.data[1] and log.data[1].message == "version 1000"
    end))
    S.request(srv, "POST", "/rest/container", {name = "last", label = "events"})
    local runs = S.all_ended(srv, posted + probes + 1)
    assert.equal(posted + probes + 1, #runs)
    local gen = 0
    for _, r in ipairs(runs) do
      assert.equal("success", r.status, r.message)
      assert.is_true(r.generation >= gen) -- later runs never on older generations
      gen = r.generation
      local _, log = S.request(srv, "GET", "/rest/playbook_run/" .. r.id .. "/log")
      -- the run's log says the version of the generation it started on
      assert.equal(1, log.count)
    end
    local last = runs[#runs]
    local _, log = S.request(srv, "GET", "/rest/playbook_run/" .. last.id .. "/log")
    assert.equal("version 1000", log.data[1].message)
    local _, pbs = S.request(srv, "GET", "/rest/playbook")
    assert.equal(1, pbs.live_generations) -- every older one was freed
    assert.is_true(S.logged(srv, "p.lua:2: ')' expected near <eof>"))
    assert.is_true(S.logged(srv, "p.lua:1: top level raises"))
    S.stop(srv)
  end)
end)

describe("shutting down", function()
  it("on SIGTERM stops cleanly with runs in flight; they go on after a restart; luasoar runs shows them", function()
    local srv = S.start({["playbooks/p.lua"] = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  phantom.act("wait", {parameters = {{seconds = 1}}, assets = {"slow"}, callback = cb, name = "w"})
end
function cb(kw) phantom.debug("after " .. kw.results[1].message) end
]]})
    local _, r = S.request(srv, "POST", "/rest/container", {name = "c", label = "events"})
    S.wait(function() return #S.runs(srv) == 1 end)
    S.stop(srv, "TERM")
    assert.is_true(S.logged(srv, "signal 15: stopping (1 runs in flight stay in the store)"))
    assert.is_true(S.logged(srv, "stopped"))
    local out = S.sh(("%s runs --db %s"):format(S.q(H.bin), S.q(srv.db)))
    assert.matches("\n1%s+" .. r.id .. "%s+running%s+p%s", out)
    S.launch(srv)
    local runs = S.all_ended(srv, 1)
    assert.equal("success", runs[1].status)
    S.stop(srv)
    assert.is_true(S.logged(srv, "recover run 1: resumed (p on container " .. r.id .. ")"))
    out = S.sh(("%s runs --db %s 1"):format(S.q(H.bin), S.q(srv.db)))
    assert.matches("success", out)
    assert.matches("debug after waited 1", out)
    local json = H.json.decode(S.sh(("%s runs --db %s --json"):format(S.q(H.bin), S.q(srv.db))))
    assert.equal(1, #json)
    assert.equal("success", json[1].status)
    -- times as REST gives them: ISO 8601 UTC with milliseconds
    local ISO = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"
    assert.matches(ISO, json[1].start_time)
    assert.matches(ISO, json[1].update_time)
    local one = H.json.decode(S.sh(("%s runs --db %s --json 1"):format(S.q(H.bin), S.q(srv.db))))
    assert.matches(ISO, one.run.start_time)
    assert.matches(ISO, one.log[1].time)
    -- runs only reads: nothing of the store changes, a missing one is not made
    local function sums()
      if S.backend == "postgresql" then -- the rows of what runs could write
        return S.sql(srv, "SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (SELECT t::text AS x FROM meta t"
                          .. " UNION ALL SELECT t::text FROM playbook_runs t UNION ALL SELECT t::text FROM run_log t) a")
      end
      return S.sh("cd " .. S.q(srv.dir) .. " && ls -la luasoar.db* | md5sum && cat luasoar.db* | md5sum")
    end
    local before = sums()
    out = S.sh(("%s runs --db %s 2>&1"):format(S.q(H.bin), S.q(srv.db)))
    assert.matches("\n1%s+" .. r.id .. "%s+success%s+p%s", out)
    assert.equal(before, sums())
    local missing = srv.dir .. "/none.db"
    local _, err, code = H.cli("runs", "--db", missing)
    assert.equal(2, code)
    assert.equal("luasoar runs: " .. missing .. ": no such store\n", err)
    assert.is_nil(io.open(missing))
  end)
end)
