-- Shared data has quotas: save_data, custom lists and objects count against
-- the quota of the playbook that last wrote them (--limit shared_bytes=N,
-- default 16 MiB per playbook).  Past it the call fails with a reason that
-- names the quota; overwriting or deleting gives bytes back; a playbook beside
-- the one that filled its quota is unaffected; and, serving, what the store
-- keeps counts again after a restart.
local H = require "spec.helper"
local S = require "spec.serve_helper"

local MiB = 1048576

-- Runs in order in one engine (one store): each {playbook path, container
-- name}; the reports.
local function in_one_engine(runs)
  local eng = H.engine()
  local reports = {}
  for i, r in ipairs(runs) do
    local c = H.container()
    c.name = r[2]
    reports[i] = eng:run(r[1], c)
  end
  eng:close()
  return reports
end

describe("shared data quotas", function()
  it("save_data past the playbook's quota raises, naming it, and keeps nothing; a playbook beside it is unaffected",
     function()
    local attack = H.playbook([[
function on_start(c)
  local v = string.rep("x", 5 * 1048576)
  if c.name == "fill" then
    for i = 1, 3 do phantom.save_data(v, "k" .. i) end
  elseif c.name == "overwrite" then
    for _ = 1, 3 do phantom.save_data(v, "k1") end -- its own key again: no more bytes
    local ok, err = pcall(phantom.save_data, v, "k4")
    phantom.debug(err)
    phantom.debug(tostring(phantom.get_data("k4")))
  else
    phantom.get_data("k2", true) -- cleared: its bytes come back
    phantom.save_data(v, "k4")
    phantom.save_data(v) -- a key of its own: over the quota, and the run fails with why
  end
end
]], "attack" .. math.random(1, 1e9))
    local beside = H.playbook([[
function on_start(c)
  phantom.save_data(string.rep("y", 5 * 1048576), "mine")
  phantom.debug(#phantom.get_data("k1") .. " " .. #phantom.get_data("mine"))
end
]], "beside" .. math.random(1, 1e9))
    local r = in_one_engine({{attack, "fill"}, {attack, "overwrite"}, {beside, "good"}, {attack, "clear"}})
    assert.equal("success", r[1].status, r[1].error)
    assert.equal("success", r[2].status, r[2].error)
    local log = H.messages(r[2], "debug")
    assert.matches("^.*:7: phantom%.save_data: the playbook's shared data quota is full %(16 MiB: 15%.0 MiB in use by" ..
                   " '.*attack%d+', this needs 5%.0 MiB; %-%-limit shared_bytes=N raises it%)$", log[1])
    assert.equal("nil", log[2])
    local good, attack = r[3], r[4]
    assert.equal("failed", attack.status)
    assert.matches(":13: phantom%.save_data: the playbook's shared data quota is full %(16 MiB", attack.error)
    assert.equal("success", good.status)
    assert.same({"5242880 5242880"}, H.messages(good, "debug"))
  end)

  it("the attack: 12 MiB of save_data per run, run after run, holds one playbook's quota, not the engine's memory",
     function()
    local eng = H.engine()
    local attack = H.playbook([[
function on_start(c) phantom.save_data(string.rep("x", 12 * 1048576), "k" .. c.name) end
]], "attack" .. math.random(1, 1e9))
    local good = H.playbook('function on_start(c) phantom.save_data({ok = true}, "good") end\n', "good" .. math.random(1, 1e9))
    local statuses, peak = {}, 0
    for i = 1, 20 do
      local c = H.container()
      c.name = tostring(i)
      local r = eng:run(attack, c)
      statuses[r.status] = (statuses[r.status] or 0) + 1
      if i > 1 then assert.matches("phantom%.save_data: the playbook's shared data quota is full %(16 MiB", r.error) end
      peak = math.max(peak, eng:stats().memory)
      assert.equal("success", eng:run(good, H.container()).status)
    end
    eng:close()
    assert.same({success = 1, failed = 19}, statuses)
    assert.is_true(peak < 48 * MiB, -- without the quota: 240 MiB kept
                   ("the engine's Lua memory reached %.0f MiB"):format(peak / MiB))
  end)

  -- luasoar run with a small quota: the JSON report
  local function run_cli(src, quota)
    local pb = H.playbook(src, "small" .. math.random(1, 1e9))
    local c = H.write("c.json", '{"id": 1, "artifacts": []}')
    local out, err, code = H.cli("run", pb, "--container", c, "--json", "--limit", "shared_bytes=" .. quota)
    local report = H.json.decode(out)
    assert.truthy(report, out .. err)
    return report, code
  end

  it("save_object raises and keeps the previous value; add_list answers false and why, logs it, keeps the list", function()
    local run, code = run_cli([[
function on_start(c)
  local v = string.rep("x", 300000)
  phantom.save_object{key = "a", value = {v}}
  phantom.save_object{key = "b", value = {v}}
  local ok, err = pcall(phantom.save_object, {key = "a", value = {v, v}})
  phantom.debug(err)
  phantom.debug(#phantom.get_object{key = "a"}[1].value)
  local ok2, msg = phantom.add_list("l", {"small"})
  phantom.debug({ok2, msg})
  ok2, msg = phantom.add_list("l", {v})
  phantom.debug({ok2, msg:match("^[^(]*")})
  local _, _, rows = phantom.get_list("l")
  phantom.debug(rows)
  phantom.clear_object{key = "a"}
  phantom.debug({phantom.add_list("l", {v})})
  phantom.delete_from_list{list_name = "l", value = "small"}
  phantom.remove_list("l")
  phantom.save_object{key = "a", value = {v}}
  phantom.save_object{key = "b", value = {v}} -- its own: the same bytes again
end
]], 800000)
    assert.equal(0, code, run.error)
    local log = H.decoded(run)
    assert.matches("phantom%.save_object: the playbook's shared data quota is full %(781%.2 KiB: 586%.5 KiB in use" ..
                   " by '.-small%d+', this needs 586%.3 KiB in place of 293%.3 KiB;", log[1])
    assert.equal(1, log[2])
    assert.same({true, "added a row to list 'l'"}, log[3])
    assert.same({false, "the playbook's shared data quota is full "}, log[4])
    assert.same({{"small"}}, log[5])
    assert.same({true, "added a row to list 'l'"}, log[6])
    local errors = H.messages(run, "error")
    assert.equal(1, #errors)
    assert.matches("^phantom%.add_list: the playbook's shared data quota is full %(781%.2 KiB", errors[1])
  end)

  it("luasoar run --limit shared_bytes=N sets the quota", function()
    local src = 'function on_start(c) phantom.save_data(string.rep("x", 2000), "k") end\n'
    local run, code = run_cli(src, 1000)
    assert.equal(1, code)
    assert.matches(":1: phantom%.save_data: the playbook's shared data quota is full %(1000 bytes: 0 bytes in use by" ..
                   " '.-small%d+', this needs 2%.2 KiB; %-%-limit shared_bytes=N raises it%)$", run.error)
    run, code = run_cli(src, 3000)
    assert.equal(0, code, run.error)
  end)

  -- (not under the sanitizers' preloaded runtime: the server's shell tools stall under it, see .ci/run)
  local preload = os.getenv("LD_PRELOAD") or ""
  local serving = preload:find("asan", 1, true) and pending or it
  serving("serving: runs past the quota fail with the reason, others succeed, REST answers; a restart counts the" ..
          " store's data", function()
    local ATTACK = [[
playbook_info = {labels = {"attack"}, active = true}
function on_start(c)
  local v = string.rep("x", 2 * 1048576)
  local what = c.name
  if what == "list" then
    local ok, msg = phantom.add_list("big", {v})
    if not ok then error(msg, 0) end
  elseif what == "object" then
    phantom.save_object{key = "big", value = {v}}
  elseif what:match("^data") then
    phantom.save_data(v, what)
  elseif what == "clear" then
    for i = 1, 9 do phantom.get_data("data" .. i, true) end
    phantom.clear_object{key = "big", container_id = tonumber(c.description)}
    phantom.remove_list("big")
  end
end
]]
    local GOOD = [[
playbook_info = {labels = {"good"}, active = true}
function on_start(c)
  phantom.save_data({n = c.id}, "good" .. c.id)
  phantom.save_object{key = "o", value = {n = c.id}}
  phantom.add_list("good", {c.id})
end
]]
    local QUOTA = "--limit shared_bytes=" .. 8 * MiB
    local srv = S.start({["playbooks/attack.lua"] = ATTACK, ["playbooks/good.lua"] = GOOD}, nil, nil, QUOTA)
    finally(function() S.stop(srv) end)
    local function run(label, name, description)
      local code, r = S.request(srv, "POST", "/rest/container", {name = name, label = label, description = description})
      assert.equal(200, code)
      local done = S.wait(function()
        local runs = S.runs(srv, r.id)
        return runs[1] and runs[1].status ~= "running" and runs[1]
      end)
      assert.truthy(done, "the run on container " .. r.id .. " did not end")
      return done, r.id
    end
    local FULL = "phantom.save_data: the playbook's shared data quota is full (8 MiB: 6.0 MiB in use by 'attack'," ..
                 " this needs 2.0 MiB; --limit shared_bytes=N raises it)"
    local client = S.beside(srv, 6)
    local r, object_cid = nil, nil
    assert.equal("success", run("attack", "list").status)
    r, object_cid = run("attack", "object")
    assert.equal("success", r.status)
    assert.equal("success", run("attack", "data1").status)
    for i = 2, 5 do
      r = run("attack", "data" .. i)
      assert.equal("failed", r.status)
      assert.truthy(r.message:find(FULL, 1, true), r.message)
      assert.equal("success", run("good", "good" .. i).status)
    end
    local good = client.wait()
    assert.same({"200"}, good.good.statuses)
    assert.is_true(good.good.max < 0.1, ("a REST request took %.3f s"):format(good.good.max))
    -- who holds what is in the store
    local owners = S.sh(("sqlite3 %s \"SELECT kind || ' ' || key || ' ' || playbook FROM shared_owners" ..
                         " WHERE playbook = 'attack' ORDER BY kind, key\""):format(S.q(srv.db)))
    assert.equal("list big attack\nobject big attack\nobject data1 attack\n", owners)

    -- after a restart the store's data counts again: still full
    S.stop(srv)
    S.launch(srv, QUOTA)
    r = run("attack", "data6")
    assert.equal("failed", r.status)
    assert.truthy(r.message:find(FULL, 1, true), r.message)
    assert.equal("success", run("good", "good6").status)
    -- deleting gives the bytes back: three values of 2 MiB fit again
    assert.equal("success", run("attack", "clear", tostring(object_cid)).status)
    for i = 7, 9 do assert.equal("success", run("attack", "data" .. i).status) end
    r = run("attack", "object")
    assert.equal("failed", r.status)
    assert.truthy(r.message:find("phantom.save_object: the playbook's shared data quota is full (8 MiB", 1, true),
                  r.message)
    assert.equal("", S.sh(("sqlite3 %s \"SELECT key FROM shared_owners WHERE kind = 'list'" ..
                           " AND playbook = 'attack'\""):format(S.q(srv.db))))
  end)
end)
