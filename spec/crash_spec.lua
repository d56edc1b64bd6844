-- Durable execution: kill -9 the engine at random moments, restart it, and
-- check that nothing accepted is lost, no run is stuck, and every action
-- that completed has its callback's result.
local H = require "spec.helper"
local S = require "spec.serve_helper"

local PLAYBOOK = S.two_acts(0.4)

local sql = S.sql

describe("after kill -9", function()
  it("loses nothing, leaves nothing stuck, and every completed action has its callback's result", function()
    math.randomseed(os.time())
    local srv = S.start({["playbooks/slow.lua"] = PLAYBOOK})
    finally(function() S.stop(srv) end)
    local accepted = {}
    local rounds = 5
    for round = 1, rounds do
      for _ = 1, 6 do
        local code, r = S.request(srv, "POST", "/rest/container", {name = "round " .. round, label = "events"})
        if code == 200 then accepted[#accepted + 1] = r.id end
        S.sh(("sleep %.2f"):format(math.random() * 0.15))
      end
      S.sh(("sleep %.2f"):format(math.random() * 0.8))
      S.stop(srv, "KILL")
      S.launch(srv)
    end
    local runs = S.all_ended(srv, #accepted)
    assert.truthy(runs, "runs still running after the last restart:\n" .. S.log_text(srv))
    S.stop(srv)

    -- counts: every accepted container stored, one run each, none running
    local stored = tonumber(sql(srv, "SELECT count(*) FROM containers"))
    local lost = 0
    for _, id in ipairs(accepted) do
      if tonumber(sql(srv, "SELECT count(*) FROM playbook_runs WHERE container_id = " .. id)) == 0 then lost = lost + 1 end
    end
    local duplicated = tonumber(sql(srv, "SELECT count(*) FROM (SELECT container_id FROM playbook_runs"
                                          .. " GROUP BY container_id HAVING count(*) > 1) AS d"))
    local stuck = tonumber(sql(srv, "SELECT count(*) FROM playbook_runs WHERE status = 'running'"))
    print(("crash test: %d rounds, %d containers accepted, %d stored; lost %d, duplicated %d, stuck %d"):format(
      rounds, #accepted, stored, lost, duplicated, stuck))
    assert.equal(#accepted, stored)
    assert.equal(0, lost)
    assert.equal(0, stuck)
    assert.equal(0, duplicated)

    -- every run ended success, with both callbacks' results: the idempotent
    -- action's always a success, the other's a success or an interruption
    for line in sql(srv, "SELECT id, status FROM playbook_runs"):gmatch("[^\n]+") do
      local id, status = line:match("^(%d+)|(%a+)$")
      assert.equal("success", status, "run " .. id)
      local first = sql(srv, ("SELECT value FROM run_data WHERE run_id = %s AND key = 'first'"):format(id))
      local second = sql(srv, ("SELECT value FROM run_data WHERE run_id = %s AND key = 'second'"):format(id))
      assert.equal('"waited 0.4"', first, "run " .. id)
      assert.truthy(second == '"success: waited "' or second == '"failed: interrupted by engine restart"',
                    "run " .. id .. ": " .. second)
    end
    -- recovery said what it did
    assert.is_true(S.logged(srv, "recovery: "))
  end)
  it("asks a pending approval again, once, and the approved action runs", function()
    local srv = S.start({["playbooks/gate.lua"] = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  phantom.act("wait", {parameters = {{seconds = 0}}, assets = {"slow"}, reviewer = "admin", callback = done, name = "gated"})
end
function done(kw) phantom.save_run_data{key = "gated", value = kw.results[1].status} end
]]})
    finally(function() S.stop(srv) end)
    local _, c = S.request(srv, "POST", "/rest/container", {name = "g", label = "events"})
    local function pending()
      local _, ps = S.request(srv, "GET", "/rest/prompt")
      local out = {}
      for _, p in ipairs(ps.data) do if p.status == "pending" then out[#out + 1] = p end end
      return out
    end
    local before = S.wait(function() local p = pending() return #p == 1 and p end)
    S.stop(srv, "KILL")
    S.launch(srv)
    local after = S.wait(function() local p = pending() return #p == 1 and p[1].id ~= before[1].id and p end)
    assert.truthy(after, S.log_text(srv))
    assert.equal("approval", after[1].prompt.type)
    assert.equal("cancelled", sql(srv, "SELECT status FROM prompts WHERE id = " .. before[1].id))
    local code = S.request(srv, "POST", "/rest/prompt/" .. after[1].id .. "/answer", {responses = {"approve"}})
    assert.equal(200, code)
    local runs = S.wait(function() local rs = S.runs(srv, c.id) return rs[1].status ~= "running" and rs end)
    assert.equal("success", runs[1].status)
    assert.equal('"success"', sql(srv, "SELECT value FROM run_data WHERE run_id = " .. runs[1].id))
  end)
  it("keeps custom lists, objects and saved data across a restart", function()
    local srv = S.start({["playbooks/mem.lua"] = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  local n = (phantom.get_data("count") or 0) + 1
  phantom.save_data(n, "count")
  phantom.get_data("gone", true)
  phantom.add_list("seen", {c.name})
  local obj = phantom.get_object{key = "k", container_id = 1}
  phantom.save_object{key = "k", value = {n = n}, container_id = 1}
  local _, _, rows = phantom.get_list("seen")
  local auto = phantom.save_data("v" .. n)
  phantom.save_run_data{key = "mem", value = {n = n, rows = #rows, before = obj[1] and obj[1].value.n or 0, auto = auto}}
end
]]})
    finally(function() S.stop(srv) end)
    local function one(name)
      local _, c = S.request(srv, "POST", "/rest/container", {name = name, label = "events"})
      local runs = S.wait(function() local rs = S.runs(srv, c.id) return rs[1] and rs[1].status ~= "running" and rs end)
      local mem = H.json.decode(sql(srv, "SELECT value FROM run_data WHERE key = 'mem' AND run_id = " .. runs[1].id))
      return ("%s|%s|%s|%s"):format(mem.n, mem.rows, mem.before, mem.auto)
    end
    assert.equal("1|1|0|1", one("a"))
    S.stop(srv, "KILL")
    S.launch(srv)
    assert.equal("2|2|1|2", one("b"))
  end)
  it("does not run again an approved action that had started; a discontinued run stays discontinued", function()
    local srv = S.start({["playbooks/two.lua"] = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  if c.name == "approved" then
    phantom.act("count", {parameters = {{n = 1, seconds = 3}}, assets = {"slow"}, reviewer = "admin",
                          callback = done, name = "c"})
  else
    phantom.act("wait", {parameters = {{seconds = 3}}, assets = {"slow"}, callback = done, name = "w"})
    phantom.discontinue()
  end
end
function done(kw) phantom.save_run_data{key = "done", value = kw.results[1].message} end
]]})
    finally(function() S.stop(srv) end)
    local _, a = S.request(srv, "POST", "/rest/container", {name = "approved", label = "events"})
    local _, d = S.request(srv, "POST", "/rest/container", {name = "discontinued", label = "events"})
    local prompt = S.wait(function()
      local _, ps = S.request(srv, "GET", "/rest/prompt")
      return ps.data[1]
    end)
    S.request(srv, "POST", "/rest/prompt/" .. prompt.id .. "/answer", {responses = {"approve"}})
    S.wait(function() return sql(srv, "SELECT count(*) FROM action_runs WHERE released = 1") == "2" end)
    S.sh("sleep 0.5")
    S.stop(srv, "KILL")
    S.launch(srv)
    local function ended(cid)
      return S.wait(function() local rs = S.runs(srv, cid) return rs[1].status ~= "running" and rs[1] end)
    end
    local ra, rd = ended(a.id), ended(d.id)
    assert.equal('"interrupted by engine restart"', sql(srv, "SELECT value FROM run_data WHERE run_id = " .. ra.id))
    assert.equal("1", sql(srv, "SELECT count(*) FROM action_runs WHERE run_id = " .. ra.id))
    assert.equal("", sql(srv, "SELECT value FROM run_data WHERE run_id = " .. rd.id))
    assert.equal("success", rd.status)
  end)
  it("starts again, with its inputs, a child whose run the crash kept from being written", function()
    local srv = S.start({["playbooks/parent.lua"] = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  phantom.playbook{playbook = "local/child", container = c, inputs = {x = {"seven"}}, callback = done}
end
function done(kw) phantom.save_run_data{key = "done", value = kw.success} end
]], ["playbooks/child.lua"] = [[
playbook_info = {labels = {"none"}, active = false}
function on_start(c)
  local x = phantom.collect2{container = c, datapath = {"playbook_input:x"}}
  phantom.save_run_data{key = "x", value = x[1][1]}
  phantom.act("wait", {parameters = {{seconds = 2}}, assets = {"slow"}})
end
]]})
    finally(function() S.stop(srv) end)
    local _, c = S.request(srv, "POST", "/rest/container", {name = "family", label = "events"})
    local child = S.wait(function() local rs = S.runs(srv, c.id) return #rs == 2 and rs[2] end)
    S.stop(srv, "KILL")
    sql(srv, "DELETE FROM playbook_runs WHERE id = " .. child.id .. "; DELETE FROM run_data WHERE run_id = " .. child.id)
    S.launch(srv)
    local runs = S.wait(function()
      local rs = S.runs(srv, c.id)
      for _, r in ipairs(rs) do if r.status == "running" then return nil end end
      return #rs == 2 and rs
    end, 20)
    assert.truthy(runs, S.log_text(srv))
    assert.equal("success", runs[1].status)
    assert.equal(runs[1].id, runs[2].parent_playbook_run)
    assert.equal('"seven"', sql(srv, "SELECT value FROM run_data WHERE key = 'x' AND run_id = " .. runs[2].id))
    assert.equal("true", sql(srv, "SELECT value FROM run_data WHERE key = 'done' AND run_id = " .. runs[1].id))
  end)
end)

-- SQLite's own cases (PostgreSQL's are in store_postgres_spec.lua)
local sqlite_it = S.backend == "sqlite" and it or pending

describe("the store", function()
  sqlite_it("refuses a corrupted or foreign file at start, and leaves it untouched", function()
    local dir = H.tmp() .. "/foreign"
    S.sh("mkdir -p " .. dir .. "/scripts/playbooks")
    local cases = {
      {"garbage.db", "this is not a database at all, just text\n", "not a luasoar store %(file is not a database%)"},
      {"other.db", nil, "a database, but not a luasoar store %(no meta table%)"},
    }
    S.sh("sqlite3 " .. dir .. "/other.db 'CREATE TABLE t(x); INSERT INTO t VALUES(1);'")
    local f = io.open(dir .. "/garbage.db", "w")
    f:write(cases[1][2])
    f:close()
    for _, case in ipairs(cases) do
      local path = dir .. "/" .. case[1]
      local before = S.sh("md5sum < " .. path)
      local out = S.sh(("cd %s && %s serve --scripts scripts --db %s --listen 127.0.0.1:1 2>&1; echo \"exit $?\"")
                       :format(dir, S.q(H.bin), path))
      assert.matches("luasoar serve: " .. path:gsub("%p", "%%%0") .. ": " .. case[3] .. "; it is left untouched", out)
      assert.matches("exit 2", out)
      assert.equal(before, S.sh("md5sum < " .. path))
    end
  end)

  sqlite_it("is used by one server at a time; a killed server's lock goes with it", function()
    local srv = S.start({})
    finally(function() S.stop(srv) end)
    local out = S.sh(("cd %s && %s serve --scripts scripts --db %s --listen 127.0.0.1:%d 2>&1; echo \"exit $?\"")
                     :format(S.q(srv.dir), S.q(H.bin), S.q(srv.db), S.free_port()))
    assert.equal("luasoar serve: " .. srv.db .. ": another luasoar serve uses this store\nexit 2\n", out)
    S.stop(srv, "KILL")
    S.launch(srv)
    assert.equal(200, (S.request(srv, "POST", "/rest/container", {name = "after", label = "events"})))
  end)

  sqlite_it("when full, refuses new work with a clear error instead of acknowledging it, and takes it when space is back", function()
    local dir = H.tmp() .. "/full" .. math.random(1, 1e9)
    local srv = S.start({["playbooks/p.lua"] = "function on_start(c) end\n"}, dir)
    finally(function() S.stop(srv) end)
    S.stop(srv)
    local pages = tonumber(S.sh("sqlite3 " .. S.q(srv.db) .. " 'PRAGMA page_count'"))
    -- restart with the store capped just above its size
    S.launch(srv, "--max-db-pages " .. (pages + 2))
    local acked, refused = {}, 0
    local big = string.rep("x", 3000)
    for i = 1, 30 do
      local code, r = S.request(srv, "POST", "/rest/container", {name = "c" .. i, label = "events", data = {pad = big}})
      if code == 200 then acked[#acked + 1] = r.id
      else
        assert.equal(503, code)
        assert.matches("^the store cannot keep this: .*full", r.message)
        refused = refused + 1
      end
    end
    assert.is_true(refused > 0)
    S.stop(srv)
    -- space is back: everything acknowledged is there, and new work is taken
    S.launch(srv)
    for _, id in ipairs(acked) do
      local code = S.request(srv, "GET", "/rest/container/" .. id)
      assert.equal(200, code)
    end
    local code = S.request(srv, "POST", "/rest/container", {name = "after", label = "events", data = {pad = big}})
    assert.equal(200, code)
    S.stop(srv)
  end)
end)
