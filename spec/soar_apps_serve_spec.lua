-- SOAR connectors under `luasoar serve`: a playbook acting on the fixture
-- connector (spec/fixtures/soar/fixture), its state kept in the store across
-- a kill -9 and restart, its artifacts in the store, its passwords in no
-- REST answer.
local H = require "spec.helper"
local S = require "spec.serve_helper"

local KEY = "KEY-s3cr3t-42"
local SECRET = "PARAM-hush-7"
local ASSETS = S.sh("cat " .. S.q(H.fixtures .. "/soar/assets.json"))

local PLAYBOOK = [[
playbook_info = {labels = {"soar"}, active = true}
function on_start(c)
  local add = phantom.collect2{container = c, datapath = {"artifact:*.cef.add"}}[1][1]
  phantom.act("state", {parameters = {{add = add}}, assets = {"fix_state"}, callback = stated})
end
function stated(kw)
  local ar = kw.results[1].action_results[1]
  phantom.debug({message = ar.message, before = ar.data[1] and ar.data[1].before})
  phantom.act("exercise", {parameters = {{value = 9, secret = "]] .. SECRET .. [["}}, assets = {"fix"},
                           callback = exercised})
end
function exercised(kw)
  local r = kw.results[1]
  phantom.debug({success = kw.success, message = r.action_results[1].message, echo = r.action_results[1].data[1].echo})
end
]]

-- The server's scripts folder given by its absolute path (extra: `--scripts`
-- again, after serve_helper's relative one), or as serve_helper gives it.
local function start(dir, db, relative)
  local srv
  if db then
    srv = {dir = dir, db = db, port = S.free_port()}
    return S.launch(srv, not relative and ("--scripts " .. S.q(dir .. "/scripts")) or nil)
  end
  dir = H.tmp() .. "/soarserve" .. math.random(1, 1e9)
  local files = {["playbooks/soar.lua"] = PLAYBOOK, ["assets.json"] = ASSETS}
  for _, name in ipairs({"app.json", "fixture.json", "fixture_connector.py"}) do
    files["apps/fixture/" .. name] = S.sh("cat " .. S.q(H.fixtures .. "/soar/fixture/" .. name))
  end
  return S.start(files, dir, nil, not relative and ("--scripts " .. S.q(dir .. "/scripts")) or nil)
end

local function ingest(srv, add)
  local code, r = S.request(srv, "POST", "/rest/container", {name = "soar " .. add, label = "soar",
    artifacts = {{name = "a", label = "event", cef = {add = add}}}})
  assert.equal(200, code)
  return r.id
end

local function ended_run(srv, cid)
  return S.wait(function()
    local rs = S.runs(srv, cid)
    return rs[1] and rs[1].status ~= "running" and rs[1]
  end, 30)
end

local function debugs(srv, run_id)
  local _, log = S.request(srv, "GET", "/rest/playbook_run/" .. run_id .. "/log")
  local out, all = {}, {}
  for _, e in ipairs(log.data) do
    all[#all + 1] = e.message
    local m = e.message
    if m:sub(1, 1) == "{" then out[#out + 1] = H.json.decode(m) end
  end
  return out, all
end

describe("a SOAR connector under luasoar serve", function()
  local srv
  after_each(function()
    if srv then S.stop(srv, "KILL") end
    srv = nil
  end)

  it("runs a playbook's actions; state survives kill -9; artifacts in the store; no password in REST", function()
    srv = start(nil, nil, false)
    local cid = ingest(srv, "first")
    local run = ended_run(srv, cid)
    assert.truthy(run, S.log_text(srv))
    assert.equal("success", run.status, H.json.encode(debugs(srv, run.id)) .. H.json.encode(select(2, debugs(srv, run.id))))
    local d, lines = debugs(srv, run.id)
    assert.same({message = "seen first", before = {}}, d[1])
    assert.same({success = true, message = "exercised 9. with ********", echo = "the secret was ********"}, d[2])
    local found = false
    for _, l in ipairs(lines) do found = found or l == "Fixture progress: exercise 9 started" end
    assert.is_true(found, table.concat(lines, "\n"))
    -- the state is in the store's app_state table
    assert.equal('fix {"runs":1,"last":9}\nfix_state {"seen":["first"]}',
                 S.sql(srv, "SELECT asset || ' ' || state FROM app_state ORDER BY asset"))
    -- the connector's artifact is in the store, in the run's container
    local code, arts = S.request(srv, "GET", "/rest/artifact?_filter_container=" .. cid)
    assert.equal(200, code)
    assert.equal(2, arts.count)
    local art = arts.data[2]
    assert.equal("fixture artifact", art.name)
    assert.equal("fixture-9", art.source_data_identifier)
    assert.same({sourceAddress = "10.9.8.9", secretCopy = "********"}, art.cef)
    local _, c = S.request(srv, "GET", "/rest/container/" .. cid)
    assert.equal(2, c.artifact_count)
    -- no REST answer about this run holds a password
    local answers = {}
    for _, path in ipairs({"/rest/playbook_run/" .. run.id, "/rest/playbook_run/" .. run.id .. "/log",
                           "/rest/action_run?_filter_playbook_run=" .. run.id,
                           "/rest/artifact?_filter_container=" .. cid, "/rest/container/" .. cid}) do
      local _, body = S.request(srv, "GET", path)
      answers[#answers + 1] = path .. " " .. H.json.encode(body)
    end
    local _, actions = S.request(srv, "GET", "/rest/action_run?_filter_playbook_run=" .. run.id)
    for _, a in ipairs(actions.data) do
      for _, id in ipairs(a.app_runs) do
        local _, body = S.request(srv, "GET", "/rest/app_run/" .. id)
        answers[#answers + 1] = "/rest/app_run/" .. id .. " " .. H.json.encode(body)
      end
    end

    -- kill -9, start again on the same store: the second run's load_state sees the first's
    S.stop(srv, "KILL")
    srv = start(srv.dir, srv.db, false)
    local cid2 = ingest(srv, "second")
    local run2 = ended_run(srv, cid2)
    assert.truthy(run2, S.log_text(srv))
    local d2 = debugs(srv, run2.id)
    assert.same({message = "seen first,second", before = {"first"}}, d2[1])
    -- (checked last, so that a leak does not hide the rest)
    for _, text in ipairs(answers) do
      assert.is_nil(text:find(KEY, 1, true), "the config password in " .. text)
      assert.is_nil(text:find(SECRET, 1, true), "the password parameter in " .. text)
    end
  end)

  it("runs a connector when --scripts is relative (as the README starts it)", function()
    srv = start(nil, nil, true)
    local run = ended_run(srv, ingest(srv, "rel"))
    assert.truthy(run, S.log_text(srv))
    local d = debugs(srv, run.id)
    assert.same({message = "seen rel", before = {}}, d[1])
  end)
end)
