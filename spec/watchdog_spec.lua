-- The watchdog (engine/watchdog.c): a step of a run that holds the loop
-- past the hard limit (--limit step_seconds=N) in code no limit interrupts
-- fails its run with "killed: N s in one step"; `luasoar run` prints it and
-- exits 1, `luasoar serve` exits for its supervisor, and at the next start
-- the run is failed, the others go on, and the engine does not hang again.
-- A run the engine died inside (kill -9) resumes once; a second time it fails.
--
-- What blocks: a playbook block spinning under an instruction budget raised
-- out of reach (on_start spinning N s on os.clock; a loop with no end).  A
-- lua app that blocks (os.execute("sleep N"), C code where no hook fires) is
-- not a step: it runs on a worker thread, not the loop's, and its app
-- timeout bounds it (spec/lua_app_threads_spec.lua).
local H = require "spec.helper"
local S = require "spec.serve_helper"

local HANG_APP = {
  ["apps/hang/app.json"] = [[
{"name": "Hang", "runner": "lua",
 "actions": {"block": {"parameters": {"seconds": {"required": true}}, "read_only": true}}}
]],
  ["apps/hang/app.lua"] = [[
return {block = function(p)
  -- the loop's thread waits in C (the sleep holds none of the engine's pipes)
  os.execute("exec </dev/null >/dev/null 2>&1; sleep " .. tonumber(p.seconds))
  return {status = "success", message = "slept " .. p.seconds}
end}
]],
  ["assets.json"] = [[{"slow": {"app": "Slow", "id": 1}, "hang": {"app": "Hang", "id": 2}}]],
}

local STUCK = [[
playbook_info = {labels = {"stuck"}, active = true}
function on_start(c)
  phantom.debug("blocking")
  local t0 = os.clock()
  while os.clock() - t0 < %s do end
  phantom.act("block", {parameters = {{seconds = 0}}, assets = {"hang"}, callback = done, name = "b"})
end
function done(kw) phantom.save_run_data{key = "done", value = kw.results[1].message} end
]]

-- well behaved: its run lasts longer than the limit, but no step does
local GOOD = [[
playbook_info = {labels = {"good"}, active = true}
function on_start(c)
  phantom.act("wait", {parameters = {{seconds = 1.3}}, assets = {"slow"}, callback = done, name = "w"})
end
function done(kw) phantom.save_run_data{key = "done", value = kw.results[1].message} end
]]

local SPIN = [[
function on_start(c) phantom.debug("spinning") while true do end end
]]

local PARENT = [[
function on_start(c) phantom.playbook{playbook = "local/spin", container = c, name = "kid", callback = done} end
function done(kw) phantom.debug("the child ended") end
]]

local now = H.now

-- budgets out of reach: only the watchdog stops a spinning step
local HUGE = {"--limit", "instructions_per_callback=1e15", "--limit", "instructions_per_run=1e15"}
local LIMITS = "--limit instructions_per_callback=1e15 --limit instructions_per_run=1e15"

local function scripts_dir(files)
  local dir = H.tmp() .. "/wd" .. math.random(1, 1e9)
  S.sh("mkdir -p " .. S.q(dir .. "/apps") .. " && cp -r " .. S.q(H.fixtures .. "/serve/apps") .. "/. " ..
       S.q(dir .. "/apps/"))
  for name, text in pairs(files) do
    local path = dir .. "/" .. name
    S.sh("mkdir -p " .. S.q(path:match("(.*)/")))
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
  end
  return dir
end

local function with(base, more)
  local t = {}
  for k, v in pairs(base) do t[k] = v end
  for k, v in pairs(more) do t[k] = v end
  return t
end

local function last_line(text)
  return text:match("([^\n]*)\n?$")
end

describe("luasoar run under the watchdog", function()
  local dir, container
  setup(function()
    dir = scripts_dir(with(HANG_APP, {["playbooks/stuck.lua"] = STUCK:format(5), ["playbooks/spin.lua"] = SPIN,
                                      ["playbooks/local/spin.lua"] = SPIN, ["playbooks/parent.lua"] = PARENT,
                                      ["playbooks/good.lua"] = GOOD}))
    container = H.write("wd_container.json", '{"id": 42, "artifacts": []}')
  end)

  it("fails a run whose step blocks past the limit: the reason, exit 1, at once", function()
    local t0 = now()
    local out, err, code = H.cli("run", dir .. "/playbooks/stuck.lua", "--container", container,
                                 "--limit", "step_seconds=1", table.unpack(HUGE))
    local took = now() - t0
    assert.equal(1, code, out .. err)
    assert.equal("run 1 on container 42: failed: killed: 1 s in one step", last_line(out))
    assert.truthy(out:find("blocking\n", 1, true), out)
    assert.truthy(out:find("ERROR: killed: 1 s in one step\n", 1, true), out)
    assert.truthy(err:find("watchdog: run 1 on container 42: killed: 1 s in one step", 1, true), err)
    assert.truthy(took >= 1 and took < 3, "took " .. took .. " s (the step spins 5 s)")
  end)

  it("does not time a lua app run: it is on a worker thread, not a step of its run", function()
    local d = scripts_dir(with(HANG_APP, {["playbooks/sleeper.lua"] = [[
function on_start(c)
  phantom.act("block", {parameters = {{seconds = 2}}, assets = {"hang"}, callback = done, name = "b"})
end
function done(kw) phantom.debug(kw.results[1].action_results[1].message) end
]]}))
    local out, err, code = H.cli("run", d .. "/playbooks/sleeper.lua", "--container", container,
                                 "--limit", "step_seconds=1")
    assert.equal(0, code, out .. err)
    assert.truthy(out:find("slept 2\n", 1, true), out)
  end)

  it("fails a playbook block that spins where its instruction budget cannot reach, with --json too", function()
    local huge = {"--limit", "instructions_per_callback=1e15", "--limit", "instructions_per_run=1e15",
                  "--limit", "step_seconds=1"}
    local out, _, code = H.cli("run", dir .. "/playbooks/spin.lua", "--container", container, table.unpack(huge))
    assert.equal(1, code)
    assert.equal("run 1 on container 42: failed: killed: 1 s in one step", last_line(out))
    out, _, code = H.cli("run", dir .. "/playbooks/spin.lua", "--container", container, "--json", table.unpack(huge))
    assert.equal(1, code)
    local report = H.json.decode(out)
    assert.equal("failed", report.status)
    assert.equal("killed: 1 s in one step", report.error)
    assert.equal(1, report.run_id)
    assert.equal(42, report.container_id)
    assert.equal(dir .. "/playbooks/spin.lua", report.playbook)
    -- a child playbook's step: the run reported is the one luasoar ran
    out, _, code = H.cli("run", dir .. "/playbooks/parent.lua", "--container", container, table.unpack(huge))
    assert.equal(1, code)
    assert.truthy(out:find("ERROR: killed: 1 s in one step (in its child playbook run 2)\n", 1, true), out)
    assert.equal("run 1 on container 42: failed: killed: 1 s in one step", last_line(out))
  end)

  it("leaves alone a run that lasts longer than the limit when none of its steps does", function()
    local out, err, code = H.cli("run", dir .. "/playbooks/good.lua", "--container", container,
                                 "--limit", "step_seconds=1")
    assert.equal(0, code, out .. err)
    assert.equal("run 1 on container 42: success", last_line(out))
  end)

  it("knows the limit's name and refuses a bad value", function()
    local _, err, code = H.cli("run", dir .. "/playbooks/good.lua", "--container", container,
                               "--limit", "step_seconds=0")
    assert.equal(2, code)
    assert.truthy(err:find("step_seconds=0", 1, true), err)
  end)
end)

local function alive(pid)
  return S.sh(("kill -0 %d 2>/dev/null && echo yes"):format(pid)) ~= ""
end

local function wait_exit(srv, seconds)
  return S.wait(function() return not alive(srv.pid) end, seconds)
end

local sql = S.sql

local function run_of(srv, cid)
  return S.wait(function()
    local rs = S.runs(srv, cid)
    return rs and rs[1] and rs[1].status ~= "running" and rs[1]
  end, 30)
end

local count = S.count

describe("luasoar serve under the watchdog", function()
  it("exits for its supervisor; after the restart the run is failed, the others go on, nothing hangs again", function()
    local srv = S.start(with(HANG_APP, {["playbooks/stuck.lua"] = STUCK:format(8), ["playbooks/good.lua"] = GOOD}))
    finally(function() S.stop(srv) end)
    S.stop(srv) -- again with the limit
    S.launch(srv, "--limit step_seconds=1 " .. LIMITS)
    local _, good = S.request(srv, "POST", "/rest/container", {name = "g", label = "good"})
    local _, stuck = S.request(srv, "POST", "/rest/container", {name = "s", label = "stuck"})
    assert.truthy(good.id and stuck.id)
    -- on_start holds the loop for 8 s; the watchdog ends the engine after 1
    assert.truthy(wait_exit(srv, 10), "the server is still there:\n" .. S.log_text(srv))
    assert.is_true(S.logged(srv, "watchdog: run "), S.log_text(srv))
    assert.is_true(S.logged(srv, ": killed: 1 s in one step: the engine exits (status 124)"), S.log_text(srv))
    local marker = io.open(srv.db .. "-step")
    assert.truthy(marker, "no step marker beside the store")
    marker:close()

    -- restarted (as systemd's Restart=always would)
    S.launch(srv, "--limit step_seconds=1 " .. LIMITS)
    local killed = run_of(srv, stuck.id)
    assert.truthy(killed, S.log_text(srv))
    assert.equal("failed", killed.status)
    assert.equal("killed: 1 s in one step", killed.message)
    assert.equal("error|killed: 1 s in one step",
                 sql(srv, "SELECT level, message FROM run_log WHERE run_id = " .. killed.id .. " ORDER BY id DESC LIMIT 1"))
    -- killed inside on_start, before its act: nothing of it is left running
    assert.equal("0", sql(srv, "SELECT count(*) FROM action_runs WHERE status = 'running' AND run_id = " .. killed.id))
    -- the well-behaved run, in flight when the engine went, ends success
    local ok = run_of(srv, good.id)
    assert.truthy(ok, S.log_text(srv))
    assert.equal("success", ok.status, ok.message)
    assert.equal('"waited 1.3"', sql(srv, "SELECT value FROM run_data WHERE key = 'done' AND run_id = " .. ok.id))

    -- and the engine does not hang again: it answers, runs new work, and
    -- the watchdog has nothing more to say
    local t0 = now()
    local code = S.request(srv, "GET", "/rest/playbook")
    assert.equal(200, code)
    assert.truthy(now() - t0 < 1)
    local _, again = S.request(srv, "POST", "/rest/container", {name = "g2", label = "good"})
    local second = run_of(srv, again.id)
    assert.equal("success", second.status, second.message)
    assert.truthy(alive(srv.pid))
    assert.equal(1, count(S.log_text(srv), "the engine exits (status 124)"))
  end)

  it("fails a child playbook killed in its first turn (before its row was stored): the parent is told", function()
    local srv = S.start({["playbooks/parent.lua"] = [[
playbook_info = {labels = {"parent"}, active = true}
function on_start(c) phantom.playbook{playbook = "local/spin", container = c, name = "kid", callback = done} end
function done(kw) phantom.save_run_data{key = "kid", value = kw.results[1].status .. ": " .. kw.results[1].message} end
]], ["playbooks/local/spin.lua"] = SPIN})
    finally(function() S.stop(srv) end)
    S.stop(srv)
    S.launch(srv, "--limit step_seconds=1 " .. LIMITS)
    local _, c = S.request(srv, "POST", "/rest/container", {name = "p", label = "parent"})
    assert.truthy(wait_exit(srv, 10), "the server is still there:\n" .. S.log_text(srv))
    S.launch(srv, "--limit step_seconds=1 " .. LIMITS)
    local parent = run_of(srv, c.id)
    assert.truthy(parent, S.log_text(srv))
    local runs = S.runs(srv, c.id)
    local child
    for _, r in ipairs(runs) do if r.id ~= parent.id then child = r end end
    assert.truthy(child, "no child run")
    assert.equal("failed", child.status)
    assert.equal("killed: 1 s in one step", child.message)
    assert.equal("success", parent.status, parent.message)
    local kid = sql(srv, "SELECT value FROM run_data WHERE key = 'kid' AND run_id = " .. parent.id)
    assert.truthy(kid:find("killed: 1 s in one step", 1, true), kid)
    S.sh("sleep 1.5") -- no second watchdog exit: the child is not started again
    assert.truthy(alive(srv.pid))
    assert.equal(1, count(S.log_text(srv), "the engine exits (status 124)"))
  end)

  it("resumes once a run the engine died inside (kill -9); the second time the run fails", function()
    local srv = S.start(with(HANG_APP, {["playbooks/stuck.lua"] = STUCK:format(3), ["playbooks/good.lua"] = GOOD}),
                        nil, nil, LIMITS)
    finally(function() S.stop(srv) end)
    local _, stuck = S.request(srv, "POST", "/rest/container", {name = "s", label = "stuck"})
    -- inside on_start's 3 s step, kill -9: the run resumes, with a line in its log
    S.wait(function() return sql(srv, "SELECT count(*) FROM playbook_runs") == "1" end)
    S.sh("sleep 1")
    S.stop(srv, "KILL")
    S.launch(srv, LIMITS)
    assert.is_true(S.logged(srv, "the engine stopped while this run was inside a step"), S.log_text(srv))
    assert.equal("running", sql(srv, "SELECT status FROM playbook_runs WHERE id = " .. stuck.id))
    -- and once more inside the same step (it runs again at once): the run
    -- fails, and stays failed
    S.sh("sleep 1")
    S.stop(srv, "KILL")
    S.launch(srv, LIMITS)
    local run = run_of(srv, stuck.id)
    assert.truthy(run, S.log_text(srv))
    assert.equal("failed", run.status)
    assert.truthy(run.message:find("^killed: the engine stopped twice while this run was inside a step"), run.message)
    -- a well-behaved run beside it still ends success
    local _, good = S.request(srv, "POST", "/rest/container", {name = "g", label = "good"})
    local ok = run_of(srv, good.id)
    assert.equal("success", ok.status, ok.message)
  end)

  it("lets a run the engine died inside once go on to success", function()
    local srv = S.start(with(HANG_APP, {["playbooks/stuck.lua"] = STUCK:format(2)}), nil, nil, LIMITS)
    finally(function() S.stop(srv) end)
    local _, stuck = S.request(srv, "POST", "/rest/container", {name = "s", label = "stuck"})
    S.wait(function() return sql(srv, "SELECT count(*) FROM playbook_runs") == "1" end)
    S.sh("sleep 0.7")
    S.stop(srv, "KILL")
    S.launch(srv, LIMITS)
    local run = run_of(srv, stuck.id)
    assert.truthy(run, S.log_text(srv))
    assert.equal("success", run.status, run.message)
    assert.equal('"slept 0"', sql(srv, "SELECT value FROM run_data WHERE key = 'done' AND run_id = " .. run.id))
    assert.truthy(sql(srv, "SELECT message FROM run_log WHERE run_id = " .. run.id):find(
      "the engine stopped while this run was inside a step", 1, true))
  end)
end)
