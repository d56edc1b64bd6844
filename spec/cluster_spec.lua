-- A cluster: two `luasoar serve` nodes on one PostgreSQL (a real server:
-- spec/pg_helper.lua), each with its own folder and the same scripts.  A
-- node killed with -9 while runs are in flight: the other finishes each of
-- its runs once.  A node stopped with SIGTERM hands its runs back at once;
-- a node paused past its lease stops without writing; a prompt answered on
-- one node reaches its run on the other.
local H = require "spec.helper"
local S = require "spec.serve_helper"
local P = require "spec.pg_helper"

local PLAYBOOK = S.two_acts(2)

local LEASE = 2

local function node(db, files, extra)
  return S.start(files or {["playbooks/slow.lua"] = PLAYBOOK}, nil, db, "--lease " .. LEASE .. " " .. (extra or ""))
end

local function count(srv, query) return tonumber(S.sql(srv, query)) end

local function ingest(srv, name)
  local code, r = S.request(srv, "POST", "/rest/container", {name = name, label = "events"})
  assert.equal(200, code, S.log_text(srv))
  return r.id
end

-- Each run ended once, each last callback ran once, none stuck.
local function each_run_once(srv, n)
  assert.equal(n, count(srv, "SELECT count(*) FROM containers"))
  assert.equal(n, count(srv, "SELECT count(*) FROM playbook_runs"))
  assert.equal(n, count(srv, "SELECT count(DISTINCT container_id) FROM playbook_runs"))
  assert.equal(0, count(srv, "SELECT count(*) FROM playbook_runs WHERE status = 'running'"))
  assert.equal(n, count(srv, "SELECT count(*) FROM playbook_runs WHERE status = 'success'"))
  assert.equal(n, count(srv, "SELECT count(*) FROM run_data WHERE key = 'second'"))
  assert.equal(n, count(srv, "SELECT count(*) FROM run_log WHERE message = 'last callback'"))
  assert.equal(0, count(srv, "SELECT count(*) FROM run_data WHERE key = 'second' AND value NOT IN"
                             .. " ('\"success: waited \"', '\"failed: interrupted by engine restart\"')"))
  assert.equal(n, count(srv, "SELECT count(*) FROM run_data WHERE key = 'first' AND value = '\"waited 2\"'"))
end

describe("a cluster of two nodes on PostgreSQL", function()
  it("finishes each run of a node killed with -9 on the other, once", function()
    local db = P.new_db()
    local a, b = node(db), node(db)
    finally(function() S.stop(a) S.stop(b) end)
    local ids = {}
    for i = 1, 6 do
      ids[#ids + 1] = ingest(a, "on a " .. i)
      ids[#ids + 1] = ingest(b, "on b " .. i)
    end
    -- container ids are the database's: unique, whichever node took them
    table.sort(ids)
    for i = 2, #ids do assert.is_true(ids[i] > ids[i - 1]) end
    assert.truthy(S.wait(function() return count(a, "SELECT count(*) FROM action_runs a JOIN playbook_runs r"
                                                 .. " ON r.id = a.run_id WHERE r.node = '" .. a.node .. "'") >= 6 end))
    -- a's runs in flight (each waits 2 s in its first action: none ends before the kill)
    local held = count(b, "SELECT count(*) FROM playbook_runs WHERE status = 'running' AND node = '" .. a.node .. "'")
    assert.is_true(held >= 1)
    local killed = os.time()
    S.stop(a, "KILL")
    -- b takes a's runs over once a's lease has run out, and finishes them
    local took = ("took over %d runs from other nodes: %d resumed, 0 failed"):format(held, held)
    assert.truthy(S.wait(function() return S.logged(b, took) end, 20), S.log_text(b))
    assert.is_true(os.time() - killed <= LEASE + 3)
    assert.truthy(S.all_ended(b, 12), S.log_text(b))
    each_run_once(b, 12)
    -- the runs a had ended stay a's; b ran its own and those it took over
    assert.equal(6 + held, count(b, "SELECT count(*) FROM playbook_runs WHERE node = '" .. b.node .. "'"))
    -- a's row is gone: the cluster is b
    local _, cl = S.request(b, "GET", "/rest/cluster")
    assert.equal(1, cl.count)
    assert.equal(b.node, cl.data[1].node)
    assert.is_true(cl.data[1].self)
    assert.equal(0, cl.data[1].runs)
    assert.equal(0, cl.unclaimed_runs)
  end)

  it("hands the runs of a node stopped with SIGTERM to the other at once, not when its lease runs out", function()
    local db = P.new_db()
    local files = {["playbooks/slow.lua"] = PLAYBOOK}
    local a = S.start(files, nil, db, "--lease 60")
    local b = S.start(files, nil, db, "--lease 60")
    finally(function() S.stop(a) S.stop(b) end)
    for i = 1, 4 do ingest(a, "on a " .. i) end
    local _, cl = S.request(b, "GET", "/rest/cluster")
    assert.equal(2, cl.count)
    local runs = {}
    for _, n in ipairs(cl.data) do runs[n.node] = n.runs end
    assert.same({[a.node] = 4, [b.node] = 0}, runs)
    S.stop(a)
    assert.truthy(S.logged(a, "node '" .. a.node .. "': left the cluster, 4 runs handed back"), S.log_text(a))
    -- woken by the notification (the heartbeat comes every 20 s here)
    assert.truthy(S.wait(function() return S.logged(b, "took over 4 runs from other nodes") end, 5), S.log_text(b))
    assert.truthy(S.all_ended(b, 4), S.log_text(b))
    each_run_once(b, 4)
  end)

  it("stops a node paused past its lease without writing more; its runs finish on the other, once", function()
    local db = P.new_db()
    local a, b = node(db), node(db)
    finally(function() S.sh("kill -CONT " .. a.pid .. " 2>/dev/null") S.stop(a) S.stop(b) end)
    for i = 1, 4 do ingest(a, "on a " .. i) end
    S.sh("kill -STOP " .. a.pid)
    assert.truthy(S.wait(function() return S.logged(b, "took over 4 runs from other nodes") end, 20), S.log_text(b))
    S.sh("kill -CONT " .. a.pid)
    assert.truthy(S.wait(function() return S.logged(a, "lost its runs to another node") end, 10), S.log_text(a))
    assert.truthy(S.wait(function() return S.sh("kill -0 " .. a.pid .. " 2>/dev/null || echo gone") == "gone\n" end))
    assert.truthy(S.all_ended(b, 4), S.log_text(b))
    each_run_once(b, 4)
  end)

  it("delivers an answer given on one node to the run waiting on the other", function()
    local db = P.new_db()
    local files = {["playbooks/gate.lua"] = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  phantom.act("wait", {parameters = {{seconds = 0}}, assets = {"slow"}, reviewer = "admin", callback = done, name = "gated"})
end
function done(kw) phantom.save_run_data{key = "gated", value = kw.results[1].status} end
]]}
    local a, b = node(db, files), node(db, files)
    finally(function() S.stop(a) S.stop(b) end)
    local cid = ingest(a, "gate")
    local pending = S.wait(function()
      local _, ps = S.request(b, "GET", "/rest/prompt")
      return ps.data[1] and ps.data[1].status == "pending" and ps.data[1]
    end)
    assert.truthy(pending, S.log_text(a))
    local code = S.request(b, "POST", "/rest/prompt/" .. pending.id .. "/answer", {responses = {"approve"}})
    assert.equal(200, code)
    -- a second answer finds no pending prompt: the first one won
    code = S.request(b, "POST", "/rest/prompt/" .. pending.id .. "/answer", {responses = {"deny"}})
    assert.equal(404, code)
    local runs = S.wait(function() local rs = S.runs(a, cid) return rs[1].status ~= "running" and rs end)
    assert.equal("success", runs[1].status)
    assert.equal('"success"', S.sql(a, "SELECT value FROM run_data WHERE run_id = " .. runs[1].id))
    assert.is_true(S.logged(a, ("prompt %d of run %d: answered on another node"):format(pending.id, runs[1].id)))
  end)

  it("shows a custom list and saved data one node changed to runs on the other", function()
    local db = P.new_db()
    local files = {["playbooks/share.lua"] = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  if c.name == "write" then
    phantom.add_list("seen", {"10.0.0.1"})
    phantom.save_data({v = "bad"}, "verdict")
  elseif c.name == "remove" then
    phantom.remove_list("seen")
    phantom.get_data("verdict", true)
  else
    local _, _, rows = phantom.get_list{list_name = "seen"}
    phantom.save_run_data{key = "seen", value = rows or "none"}
    phantom.save_run_data{key = "verdict", value = phantom.get_data("verdict") or "none"}
  end
end
]]}
    local a, b = node(db, files), node(db, files)
    finally(function() S.stop(a) S.stop(b) end)
    local function read_on(srv)
      local cid = ingest(srv, "read")
      local runs = S.wait(function() local rs = S.runs(srv, cid) return rs[1] and rs[1].status ~= "running" and rs end)
      return S.sql(srv, ("SELECT string_agg(key || '=' || value, ' ' ORDER BY key) FROM run_data WHERE run_id = %d")
        :format(runs[1].id))
    end
    assert.equal('seen="none" verdict="none"', read_on(b))
    local w = ingest(a, "write")
    assert.truthy(S.wait(function() local rs = S.runs(a, w) return rs[1].status == "success" end))
    assert.truthy(S.wait(function() return read_on(b) == 'seen=[["10.0.0.1"]] verdict={"v":"bad"}' end, 10))
    local r = ingest(a, "remove")
    assert.truthy(S.wait(function() local rs = S.runs(a, r) return rs[1].status == "success" end))
    assert.truthy(S.wait(function() return read_on(b) == 'seen="none" verdict="none"' end, 10))
  end)

  it("says which generation of each playbook each node serves", function()
    local db = P.new_db()
    local a, b = node(db), node(db)
    finally(function() S.stop(a) S.stop(b) end)
    S.write(a, "playbooks/slow.lua", PLAYBOOK .. "\n-- edited\n")
    assert.truthy(S.wait(function()
      local _, pbs = S.request(b, "GET", "/rest/playbook")
      return pbs.nodes[a.node].slow == 2 and pbs.nodes[b.node].slow == 1
    end), S.log_text(a))
  end)

  it("runs the README's example", function()
    local db, pa, pb = P.new_db(), S.free_port(), S.free_port()
    local out = S.readme_block("cluster", {{"postgresql://luasoar@127%.0%.0%.1:5432/luasoar", db},
      {"127%.0%.0%.1:8421", "127.0.0.1:" .. pa}, {"127%.0%.0%.1:8422", "127.0.0.1:" .. pb}},
      H.tmp() .. "/cluster" .. math.random(1, 1e9))
    assert.matches('{"id": 1, "success": true, "runs_started": 1}{"id": 2, "success": true, "runs_started": 1}', out, 1,
                   true)
    local cluster = require("luasoar").json_decode(out:match("(%b{})%s*<rc"))
    assert.equal(2, cluster.count)
    assert.same({"a", "b"}, {cluster.data[1].node, cluster.data[2].node})
    assert.same({false, true}, {cluster.data[1].self, cluster.data[2].self})
    assert.same({login = 1}, cluster.data[1].playbooks)
    assert.matches("<rc 0>%s*$", out)
  end)

  it("refuses --node and --lease that cannot work, naming the flag", function()
    local dir = H.tmp() .. "/flags" .. math.random(1, 1e9)
    S.sh("mkdir -p " .. S.q(dir .. "/scripts/playbooks"))
    local function serve(args)
      return S.sh(("cd %s && %s serve --scripts scripts %s 2>&1; echo \"exit $?\""):format(S.q(dir), S.q(H.bin), args))
    end
    assert.equal("luasoar serve: --node needs a PostgreSQL store (--db postgresql://...): a SQLite store has one server\n"
                 .. "exit 2\n", serve("--node a"))
    assert.equal("luasoar serve: --lease 0: expected seconds, from 1 to 3600\nexit 2\n",
                 serve("--db postgresql://x@127.0.0.1:1/y --lease 0"))
    assert.equal("luasoar serve: --lease 5s: expected seconds, from 1 to 3600\nexit 2\n",
                 serve("--db postgresql://x@127.0.0.1:1/y --lease 5s"))
    assert.equal("luasoar serve: --node: expected a name of 1 to 200 characters, without quotes, backslashes or"
                 .. " control characters\nexit 2\n", serve("--db postgresql://x@127.0.0.1:1/y --node 'a\"b'"))
  end)
end)
