-- The store on PostgreSQL (a real server: spec/pg_helper.lua): the schema
-- made in an empty database and checked in any other, foreign databases
-- left untouched, one server per node name, luasoar runs reading without
-- writing, and messages that never show a password.  The REST and crash
-- suites run against it too (serve_spec_postgresql, crash_spec_postgresql).
local H = require "spec.helper"
local S = require "spec.serve_helper"
local P = require "spec.pg_helper"

local function serve_once(dir, db, extra)
  return S.sh(("cd %s && %s serve --scripts scripts --db %s --node-dir . --listen 127.0.0.1:%d %s 2>&1; echo \"exit $?\"")
    :format(S.q(dir), S.q(H.bin), S.q(db), S.free_port(), extra or ""))
end

local function folder()
  local dir = H.tmp() .. "/pgstore" .. math.random(1, 1e9)
  S.sh("mkdir -p " .. S.q(dir .. "/scripts/playbooks"))
  return dir
end

describe("the store on PostgreSQL", function()
  it("is made in an empty database, its token and files in the node's folder, and found again", function()
    local db = P.new_db()
    local srv = S.start({["playbooks/p.lua"] = "playbook_info = {labels = {'events'}, active = true}\n"
                           .. "function on_start(c) phantom.debug('hello ' .. c.name) end\n"}, nil, db)
    finally(function() S.stop(srv) end)
    assert.truthy(io.open(srv.dir .. "/luasoar.token"))
    assert.equal("luasoar store 2", P.sql(db, "SELECT value FROM meta WHERE key = 'schema'"))
    local code, c = S.request(srv, "POST", "/rest/container", {name = "one", label = "events"})
    assert.equal(200, code)
    assert.same({id = 1, success = true, runs_started = 1}, c)
    local runs = S.all_ended(srv, 1)
    assert.equal("success", runs[1].status)
    S.stop(srv)
    S.launch(srv) -- the same database again: the schema is checked, not made
    local _, log = S.request(srv, "GET", "/rest/playbook_run/" .. runs[1].id .. "/log")
    assert.equal("hello one", log.data[1].message)
    local _, c2 = S.request(srv, "POST", "/rest/container", {name = "two", label = "events"})
    assert.equal(2, c2.id)
  end)

  it("refuses a database that holds other tables, or a luasoar store of another version, and leaves it untouched", function()
    local dir = folder()
    local other = P.new_db()
    P.sql(other, "CREATE TABLE t(x integer); INSERT INTO t VALUES(1)")
    local out = serve_once(dir, other)
    assert.matches(": a database with tables, but not a luasoar store %(no schema version%); it is left untouched", out)
    assert.matches("exit 2\n$", out)
    assert.equal("t", P.sql(other, "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'"))
    assert.equal("1", P.sql(other, "SELECT x FROM t"))

    local old = P.new_db()
    P.sql(old, "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES('schema', 'luasoar store 1')")
    out = serve_once(dir, old)
    assert.matches(": a luasoar store of another version %(luasoar store 1%); it is left untouched", out)
    assert.equal("meta", P.sql(old, "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'"))
  end)

  it("lets one server at a time be a node of a given name", function()
    local srv = S.start({}, nil, P.new_db())
    finally(function() S.stop(srv) end)
    local out = serve_once(folder(), srv.db, "--node " .. srv.node)
    assert.equal(("luasoar serve: cannot join the cluster as node '%s': another luasoar serve runs as node '%s' on"
      .. " this database\nexit 2\n"):format(srv.node, srv.node), out)
    S.stop(srv, "KILL") -- its connection goes with it, and so does its lock
    S.launch(srv)
  end)

  it("is read by luasoar runs, which writes nothing and makes no schema", function()
    local srv = S.start({["playbooks/p.lua"] = "playbook_info = {labels = {'events'}, active = true}\n"
                           .. "function on_start(c) phantom.debug('seen') end\n"}, nil, P.new_db())
    finally(function() S.stop(srv) end)
    S.request(srv, "POST", "/rest/container", {name = "one", label = "events"})
    S.all_ended(srv, 1)
    local out = S.sh(("%s runs --db %s"):format(S.q(H.bin), S.q(srv.db)))
    assert.matches("\n1%s+1%s+success%s+p%s", out)
    local one = H.json.decode(S.sh(("%s runs --db %s --json 1"):format(S.q(H.bin), S.q(srv.db))))
    assert.equal("success", one.run.status)
    assert.equal("seen", one.log[1].message)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", one.run.start_time)

    local empty = P.new_db()
    out = S.sh(("%s runs --db %s 2>&1; echo \"exit $?\""):format(S.q(H.bin), S.q(empty)))
    assert.matches("luasoar runs: " .. empty:gsub("%p", "%%%0")
                   .. ": an empty database, but not a luasoar store %(no schema version%); it is left untouched", out)
    assert.matches("exit 2\n$", out)
    assert.equal("0", P.sql(empty, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
  end)

  it("refuses to acknowledge while the database is away, and takes work again once it is back", function()
    local srv = S.start({["playbooks/p.lua"] = "playbook_info = {labels = {'events'}, active = true}\n"
                           .. "function on_start(c) end\n"}, nil, P.new_db())
    finally(function() S.stop(srv) end)
    assert.equal(200, (S.request(srv, "POST", "/rest/container", {name = "before", label = "events"})))
    S.all_ended(srv, 1)
    P.stop()
    local code, r = S.request(srv, "POST", "/rest/container", {name = "away", label = "events"})
    assert.equal(503, code)
    assert.matches("^the store cannot keep this: ", r.message)
    P.start_again()
    code, r = S.request(srv, "POST", "/rest/container", {name = "back", label = "events"})
    assert.equal(200, code)
    local runs = S.all_ended(srv, 2)
    assert.equal("success", runs[#runs].status)
    assert.equal("before,back", P.sql(srv.db, "SELECT string_agg(data::json ->> 'name', ',' ORDER BY id) FROM containers"))
  end)

  it("keeps what runs write while the database is away, and writes it once it is back: the runs go on", function()
    local srv = S.start({["playbooks/p.lua"] = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  phantom.act("wait", {parameters = {{seconds = 1}}, assets = {"slow"}, callback = waited, name = "w1"})
end
function waited(kw)
  phantom.save_run_data{key = "first", value = kw.results[1].message}
  phantom.debug("waited")
  phantom.act("wait", {parameters = {{seconds = 0}}, assets = {"slow"}, callback = done, name = "w2"})
end
function done(kw) phantom.debug("done: " .. kw.results[1].status) end
]]}, nil, P.new_db())
    local away = false
    finally(function() if away then P.start_again() end S.stop(srv) end)
    for i = 1, 3 do assert.equal(200, (S.request(srv, "POST", "/rest/container", {name = "c" .. i, label = "events"}))) end
    assert.truthy(S.wait(function() return S.sql(srv, "SELECT count(*) FROM action_runs") == "3" end))
    P.stop() -- the apps end, the callbacks run and act again, all while it is away
    away = true
    assert.truthy(S.wait(function() return S.logged(srv, "the database is away") end, 10), S.log_text(srv))
    S.sh("sleep 1.5")
    P.start_again()
    away = false
    assert.truthy(S.wait(function() return S.logged(srv, "the database is back: ") end, 10), S.log_text(srv))
    local runs = S.all_ended(srv, 3)
    for _, r in ipairs(runs) do
      assert.equal("success", r.status)
      assert.equal("waited,done: success", P.sql(srv.db, "SELECT string_agg(message, ',' ORDER BY id) FROM run_log"
        .. " WHERE run_id = " .. r.id))
      assert.equal('"waited 1"', P.sql(srv.db, "SELECT value FROM run_data WHERE key = 'first' AND run_id = " .. r.id))
      assert.equal("2", P.sql(srv.db, "SELECT count(*) FROM action_runs WHERE status = 'success' AND run_id = " .. r.id))
    end
    assert.is_false(S.logged(srv, "lost a turn"))
  end)

  it("fails a run whose turn a write broke, keeps none of that turn, and goes on with the others", function()
    local srv = S.start({["playbooks/p.lua"] = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  phantom.debug("start " .. c.name)
  phantom.save_run_data{key = "k", value = c.name}
  phantom.debug("say " .. c.name)
end
]]}, nil, P.new_db())
    finally(function() S.stop(srv) end)
    -- the database refuses one line of the log: the write in the middle of that run's turn
    P.sql(srv.db, "ALTER TABLE run_log ADD CONSTRAINT no_boom CHECK (message NOT LIKE '%say boom%')")
    local _, good = S.request(srv, "POST", "/rest/container", {name = "fine", label = "events"})
    local _, bad = S.request(srv, "POST", "/rest/container", {name = "boom", label = "events"})
    local _, after = S.request(srv, "POST", "/rest/container", {name = "after", label = "events"})
    local runs = S.all_ended(srv, 3)
    local by = {}
    for _, r in ipairs(runs) do by[r.container] = r end
    assert.equal("success", by[good.id].status)
    assert.equal("success", by[after.id].status)
    local broken = by[bad.id]
    assert.equal("failed", broken.status)
    assert.matches("^the store lost a turn of this run %(its writes were rolled back%): write: ERROR: .*no_boom",
                   broken.message)
    -- of its turn nothing is kept: neither its first line nor its run data
    assert.equal("error", P.sql(srv.db, "SELECT string_agg(level, ',') FROM run_log WHERE run_id = " .. broken.id))
    assert.equal("0", P.sql(srv.db, "SELECT count(*) FROM run_data WHERE run_id = " .. broken.id))
    assert.equal("start after,say after",
                 P.sql(srv.db, "SELECT string_agg(message, ',' ORDER BY id) FROM run_log WHERE run_id = " .. by[after.id].id))
  end)

  it("answers 503 for a container jsonb cannot hold, and stores the next one", function()
    local srv = S.start({}, nil, P.new_db())
    finally(function() S.stop(srv) end)
    local code, r = S.request(srv, "POST", "/rest/container", '{"name": "a\\u0000b", "label": "events"}')
    assert.equal(503, code)
    assert.matches("^the store cannot keep this: write: ERROR: +unsupported Unicode escape sequence", r.message)
    code, r = S.request(srv, "POST", "/rest/container", {name = "next", label = "events"})
    assert.equal(200, code)
    local _, c = S.request(srv, "GET", "/rest/container/" .. r.id)
    assert.equal("next", c.name)
    assert.equal("1", P.sql(srv.db, "SELECT count(*) FROM containers"))
  end)

  it("runs the README's example", function()
    local db, port = P.new_db(), S.free_port()
    local out = S.readme_block("postgresql", {{"postgresql://luasoar@127%.0%.0%.1:5432/luasoar", db},
      {"127%.0%.0%.1:8420", "127.0.0.1:" .. port}}, folder())
    assert.matches('{"id": 1, "success": true, "runs_started": 1}', out, 1, true)
    assert.matches("\n1%s+1%s+success%s+login%s", out)
    assert.matches("<rc 0>%s*$", out)
  end)

  it("says why it cannot connect, without the password", function()
    local port = S.free_port() -- nothing listens there
    local uri = ("postgresql://luasoar:s3cret@127.0.0.1:%d/none"):format(port)
    local out = serve_once(folder(), uri)
    assert.matches(("luasoar serve: postgresql://luasoar:%%*%%*%%*@127%%.0%%.0%%.1:%d/none: cannot connect to PostgreSQL: "):format(port), out)
    assert.falsy(out:find("s3cret", 1, true))
    assert.matches("exit 2\n$", out)
  end)
end)
