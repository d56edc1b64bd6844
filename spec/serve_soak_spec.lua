-- A server's memory follows its runs in flight, not every container it ever
-- ran: tens of thousands of containers through a one-action playbook, in
-- rounds with nothing in flight between them, leave its RSS flat once the
-- first round has warmed it up.  Containers no live run is on are read back
-- from the store when a call names them (get_container, pins).  Also
-- measured, and printed: the memory a server needs per run in flight (runs
-- waiting on a delayed action).
local H = require "spec.helper"
local S = require "spec.serve_helper"

local ROUNDS, PER_ROUND, IN_FLIGHT = 4, 6000, 2000

local LOOKUP_APP = [[
{"name": "Lookup", "runner": "lua",
 "actions": {"lookup ip": {"parameters": {"ip": {"required": true}}, "read_only": true}}}
]]
local LOOKUP_LUA = [[
return {["lookup ip"] = function(param, asset)
  return {status = "success", data = {{ip = param.ip}}, summary = {}}
end}
]]

local ONE_ACTION = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(container)
  local ips = phantom.collect2{container = container, datapath = {"artifact:*.cef.sourceAddress"}}
  phantom.act("lookup ip", {parameters = {{ip = ips[1][1]}}, assets = {"lookup"}, callback = done, name = "lookup"})
end
function done(kw)
  phantom.set_severity{container = kw.container, severity = "high"}
end
]]

-- Runs on a container that names another (its description): what a call sees
-- of a container no live run is on.
local OLD = [[
playbook_info = {labels = {"old"}, active = true}
function on_start(c)
  local other = tonumber(c.description)
  local old = phantom.get_container(other)
  phantom.debug(old.name .. " " .. old.severity .. " " .. #old.artifacts)
  local ok, _, pin = phantom.pin{container = other, message = "first"}
  phantom.debug(pin)
  phantom.save_run_data{key = "pin", value = pin}
end
]]
local PIN = [[
playbook_info = {labels = {"pin"}, active = true}
function on_start(c)
  phantom.debug({phantom.update_pin{pin_id = tonumber(c.description), message = "updated"}})
  phantom.debug({phantom.update_pin{pin_id = 999999, message = "nobody"}})
end
]]

local DELAYED = [[
playbook_info = {labels = {"delayed"}, active = true}
function on_start(container)
  phantom.act("lookup ip", {parameters = {{ip = "10.0.0.1"}}, assets = {"lookup"}, callback = done,
                            start_time = os.time() + 600})
end
function done(kw) end
]]

local function rss_kib(pid)
  local f = io.open(("/proc/%d/status"):format(pid))
  local t = f and f:read("a") or ""
  if f then f:close() end
  return tonumber(t:match("VmRSS:%s*(%d+)"))
end

local sql = S.sql

-- n POSTs of body (a file) in one curl: one keep-alive connection.
local function post_many(srv, n, body)
  local cfg = srv.dir .. "/post.cfg"
  local entry = ('url = "http://127.0.0.1:%d/rest/container"\nheader = "ph-auth-token: %s"\n' ..
                 'data-binary = "@%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n'):format(srv.port, srv.token, body)
  local parts = {}
  for i = 1, n do parts[i] = entry end
  local f = assert(io.open(cfg, "w"))
  f:write(table.concat(parts, "next\n"))
  f:close()
  local out = S.sh("curl -s -K " .. S.q(cfg))
  local ok = select(2, out:gsub("200\n", ""))
  assert.equal(n, ok, "not every POST was acknowledged")
end

local function write_body(srv, name, label, description)
  local path = ("%s/%s.json"):format(srv.dir, name)
  local f = assert(io.open(path, "w"))
  f:write(H.json.encode({name = name, label = label, description = description,
                         artifacts = {{name = "a", cef = {sourceAddress = "10.1.2.3"}}}}))
  f:close()
  return path
end

local function wait_ended(srv, n, seconds)
  return S.wait(function()
    return tonumber(sql(srv, "SELECT count(*) FROM playbook_runs WHERE status != 'running'")) >= n
  end, seconds or 120)
end

describe("luasoar serve under a steady load", function()
  local srv
  setup(function()
    srv = S.start({["apps/lookup/app.json"] = LOOKUP_APP, ["apps/lookup/app.lua"] = LOOKUP_LUA,
                   ["assets.json"] = '{"lookup": {"app": "Lookup", "id": 1}, "slow": {"app": "Slow", "id": 2}}',
                   ["playbooks/one.lua"] = ONE_ACTION, ["playbooks/old.lua"] = OLD, ["playbooks/pin.lua"] = PIN,
                   ["playbooks/delayed.lua"] = DELAYED})
  end)
  teardown(function() S.stop(srv) end)

  local total = 0

  it("keeps its memory flat once runs end: RSS after each round of containers", function()
    local body = write_body(srv, "soak", "events")
    local rss = {rss_kib(srv.pid)}
    local t0 = os.time()
    for round = 1, ROUNDS do
      post_many(srv, PER_ROUND, body)
      total = total + PER_ROUND
      assert.truthy(wait_ended(srv, total), "round " .. round .. ": the runs did not end")
      S.sh("sleep 0.2")
      rss[round + 1] = rss_kib(srv.pid)
    end
    local growth = {}
    for i = 1, ROUNDS do growth[i] = rss[i + 1] - rss[i] end
    print(("\n%d containers through a one-action playbook, %d a round (%d s): RSS %s KiB, growth per round %s KiB")
          :format(total, PER_ROUND, os.time() - t0, table.concat(rss, " -> "), table.concat(growth, ", ")))
    assert.equal(tostring(total), sql(srv, "SELECT count(*) FROM playbook_runs WHERE status = 'success'"))
    assert.equal(tostring(total), sql(srv, "SELECT count(*) FROM containers WHERE json_extract(data, '$.severity') = 'high'"))
    -- the first round warms up (SQLite's cache, the allocator's arenas); after it, no growth with the runs
    assert.is_true(growth[ROUNDS] < 0.1 * growth[1] + 64,
                   ("the last round grew RSS by %d KiB, the first by %d KiB"):format(growth[ROUNDS], growth[1]))
    assert.is_true(rss[ROUNDS + 1] - rss[2] < 2048, ("after the first round RSS grew by %d KiB"):format(rss[ROUNDS + 1] - rss[2]))
  end)

  it("reads back from the store a container no live run is on: get_container, pins by id", function()
    local body = write_body(srv, "old", "old", "1")
    post_many(srv, 1, body)
    total = total + 1
    assert.truthy(wait_ended(srv, total))
    local run = S.runs(srv, tonumber(sql(srv, "SELECT max(id) FROM containers")))[1]
    assert.equal("success", run.status, run.message)
    local lines = sql(srv, ("SELECT message FROM run_log WHERE run_id = %d ORDER BY id"):format(run.id))
    local name_line, pin = lines:match("^(.-)\n(%d+)$")
    assert.equal("soak high 1", name_line)
    post_many(srv, 1, write_body(srv, "pin", "pin", pin))
    total = total + 1
    assert.truthy(wait_ended(srv, total))
    lines = sql(srv, ("SELECT message FROM run_log WHERE run_id = (SELECT max(id) FROM playbook_runs)"))
    assert.equal('[true,"pin updated"]\n[false,"no pin 999999"]', lines)
    local _, c = S.request(srv, "GET", "/rest/container/1")
    assert.equal(1, #c.pins)
    assert.equal("updated", c.pins[1].message)
    assert.equal(tonumber(pin), c.pins[1].id)
  end)

  it("needs a bounded amount of memory per run in flight (printed)", function()
    local before = rss_kib(srv.pid)
    post_many(srv, IN_FLIGHT, write_body(srv, "delayed", "delayed"))
    local waiting = S.wait(function()
      return tonumber(sql(srv, "SELECT count(*) FROM action_runs a JOIN playbook_runs r ON r.id = a.run_id" ..
                               " WHERE r.status = 'running' AND a.status = 'running'")) >= IN_FLIGHT
    end, 120)
    assert.truthy(waiting, "the runs are not all waiting on their action")
    S.sh("sleep 0.2")
    local after = rss_kib(srv.pid)
    local per_run = (after - before) * 1024 / IN_FLIGHT
    print(("\n%d runs in flight, each waiting on a delayed action: RSS %d -> %d KiB, %.1f KiB per run in flight")
          :format(IN_FLIGHT, before, after, per_run / 1024))
    assert.is_true(per_run < 64 * 1024, ("%.0f bytes per run in flight"):format(per_run))
  end)
end)
