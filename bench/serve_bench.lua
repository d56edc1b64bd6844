-- serve_bench.lua: `luasoar serve` end to end, over loopback, with curl and
-- sqlite3 beside it:
--   ingest    containers/s accepted (POST /rest/container) and stored, with no
--             active playbook and with one whose on_start does nothing
--   reload    from a playbook file renamed into scripts/playbooks/ to the first
--             run on the new generation (the watcher's 100 ms debounce included)
--   runs      runs/s of a three-block playbook (collect2 -> act -> decision ->
--             act -> save_run_data) in-process without a store, and in serve
--             with the store (HTTP ingest included)
--   recovery  restart after kill -9 with N runs in flight (each holding an exec
--             app that sleeps): time to the "recovery:" and "listening on" lines
--   cluster   (pg= only) ingest and runs/s on one node and on two nodes of one
--             database, and failover: kill -9 a node with runs in flight, time
--             until the other has taken them over and finished them
-- Run from the repository root after a build (all cases, or some by name;
-- key=value changes a parameter, see DEFAULTS):
--   LUA_CPATH="build/?.so;;" lua5.4 bench/serve_bench.lua
--   LUA_CPATH="build/?.so;;" lua5.4 bench/serve_bench.lua ingest reload reps=5
--   LUA_CPATH="build/?.so;;" lua5.4 bench/serve_bench.lua recovery recovery=1000,3000
--   LUA_CPATH="build/?.so;;" lua5.4 bench/serve_bench.lua ingest runs pg=postgresql://luasoar@127.0.0.1:5432
-- (with pg=, the store is PostgreSQL: ingest, runs and recovery; reload reads SQLite)
-- Every server it starts listens on 127.0.0.1 only and is killed at the end,
-- also on errors; temp folders are under /tmp (keep=1 keeps them).
local luasoar = require "luasoar"
local json = {encode = luasoar.json_encode, decode = luasoar.json_decode}

local DEFAULTS = {
  reps = 3,              -- repetitions of the cheap cases (medians printed)
  ingest_n = 5000,       -- containers per ingest sample
  reload_n = 20,         -- reloads measured
  runs_m = 2000,         -- runs per runs/s sample
  recovery = "1000,3000,10000", -- in-flight runs per recovery measurement
  recovery_setup_max = 600,     -- seconds allowed to get N runs in flight
  bin = "build/luasoar",
  keep = 0,
  pg = "",               -- a PostgreSQL server (postgresql://USER@HOST:PORT): each site gets a fresh database there
  lease = 10,            -- cluster: each node's --lease
  failover_n = 100,      -- cluster: runs in flight on the node killed
}
local CASES = {"ingest", "reload", "runs", "recovery", "cluster"}

local opt, chosen = {}, {}
for k, v in pairs(DEFAULTS) do opt[k] = v end
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if k then
    if DEFAULTS[k] == nil then error("unknown parameter " .. k) end
    opt[k] = type(DEFAULTS[k]) == "number" and assert(tonumber(v), a) or v
  else
    chosen[a] = true
  end
end
if next(chosen) == nil then for _, c in ipairs(CASES) do chosen[c] = true end end
if opt.pg == "" then chosen.cluster = nil end

---------------------------------------------------------------------------
-- shell, time, files

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local function now_ns() return math.tointeger(tonumber(sh("date +%s%N"))) end
local function now() return now_ns() / 1e9 end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local t = f:read("a")
  f:close()
  return t
end

local function count(text, what)
  local n, i = 0, 1
  while true do
    local j = text:find(what, i, true)
    if not j then return n end
    n, i = n + 1, j + #what
  end
end

local U = dofile((arg[0]:match("^(.*[/\\])") or "") .. "bench_util.lua")
local median, minmax = U.median_of, U.minmax

local function log(fmt, ...) io.stderr:write(("[serve_bench] " .. fmt .. "\n"):format(...)) end

local ROOT = sh("pwd"):gsub("\n$", "")
local BIN = opt.bin:sub(1, 1) == "/" and opt.bin or (ROOT .. "/" .. opt.bin)
assert(io.open(BIN), "no " .. BIN .. ": build first (cmake --build build -j2), run from the repository root")
local TMP = sh("mktemp -d /tmp/luasoar-serve-bench.XXXXXX"):gsub("\n$", "")
local dir_seq = 0

---------------------------------------------------------------------------
-- servers: every one started is in `live` until it is gone

local live = {}      -- pid -> server
local clients = {}   -- pid -> true: curl processes running in the background
local sleeper_files = {} -- files listing pids of exec apps left behind by kill -9

local function alive(pid) return sh(("kill -0 %d 2>/dev/null && echo y"):format(pid)) ~= "" end

--- A fresh folder: scripts/{playbooks,apps}, assets.json, the store.
local function new_site(name)
  dir_seq = dir_seq + 1
  local dir = ("%s/%02d-%s"):format(TMP, dir_seq, name)
  sh("mkdir -p " .. q(dir .. "/scripts/playbooks") .. " " .. q(dir .. "/scripts/apps"))
  write(dir .. "/scripts/assets.json", "{}")
  local db, files = dir .. "/luasoar.db", dir .. "/luasoar.db"
  if opt.pg ~= "" then -- a fresh database; the server's own files in its folder
    local name = ("bench_%d_%d"):format(os.time(), dir_seq)
    sh(("psql -q %s -c %s"):format(q(opt.pg .. "/postgres"), q("CREATE DATABASE " .. name)))
    db, files = opt.pg .. "/" .. name, dir .. "/luasoar"
  end
  return {dir = dir, scripts = dir .. "/scripts", db = db, files = files, nlog = 0}
end

--- serve's arguments for site's store
local function store_args(site)
  return ("--db %s%s %s"):format(q(site.db), opt.pg ~= "" and (" --node-dir " .. q(site.dir)) or "", site.extra or "")
end

local LOOKUP_APP = [[
{"name": "Lookup", "runner": "lua",
 "actions": {"lookup ip": {"parameters": {"ip": {"required": true}}, "read_only": true}}}
]]
local LOOKUP_LUA = [[
return {["lookup ip"] = function(param, asset)
  return {status = "success", data = {{ip = param.ip}}, summary = {}}
end}
]]

local function add_lookup_app(site)
  sh("mkdir -p " .. q(site.scripts .. "/apps/lookup"))
  write(site.scripts .. "/apps/lookup/app.json", LOOKUP_APP)
  write(site.scripts .. "/apps/lookup/app.lua", LOOKUP_LUA)
  write(site.scripts .. "/assets.json", '{"lookup": {"app": "Lookup", "id": 1}}\n')
end

--- Write a file below scripts/ the way editors that rename do: written
--- outside the watched tree, then renamed in (one event for the watcher).
local function put(site, name, text)
  local path = site.scripts .. "/" .. name
  sh("mkdir -p " .. q(path:match("(.*)/")))
  local tmp = site.dir .. "/.put.tmp"
  write(tmp, text)
  assert(os.rename(tmp, path))
end

--- Start the server of site (again, with a fresh log file each time); the
--- port is a random free one (another is tried when it is taken).
local function launch(site)
  for _ = 1, 20 do
    site.nlog = site.nlog + 1
    site.log = ("%s/serve-%d.log"):format(site.dir, site.nlog)
    site.port = math.random(20000, 59999)
    local pid = math.tointeger(tonumber(sh(("%s serve --scripts %s %s --listen 127.0.0.1:%d 2>%s >/dev/null & echo $!")
      :format(q(BIN), q(site.scripts), store_args(site), site.port, q(site.log)))))
    site.pid = pid
    live[pid] = site
    local t = read(site.log)
    for _ = 1, 600 do
      t = read(site.log)
      if t:find("listening on", 1, true) or not alive(pid) then break end
      sh("sleep 0.02")
    end
    if t:find("listening on", 1, true) then
      site.token = read(site.files .. ".token"):match("[^\r\n]+")
      return site
    end
    if alive(pid) then sh(("kill -9 %d"):format(pid)) end
    live[pid] = nil
    if not t:find("cannot listen", 1, true) then error("the server did not start:\n" .. t) end
  end
  error("no free port found")
end

--- CPU seconds (user + system) the process has used so far.
local TICK = tonumber(sh("getconf CLK_TCK")) or 100
local function cpu_seconds(pid)
  local stat = read(("/proc/%d/stat"):format(pid)):gsub("^.*%) ", "") -- past the command name
  local f = {}
  for w in stat:gmatch("%S+") do f[#f + 1] = w end
  return ((tonumber(f[12]) or 0) + (tonumber(f[13]) or 0)) / TICK -- utime, stime (fields 14, 15)
end

local function stop(site, signal)
  local pid = site.pid
  if not pid or not live[pid] then return end
  sh(("kill -%s %d 2>/dev/null; for i in $(seq 200); do kill -0 %d 2>/dev/null || break; sleep 0.05; done")
     :format(signal or "TERM", pid, pid))
  if alive(pid) then sh(("kill -9 %d 2>/dev/null; sleep 0.1"):format(pid)) end
  live[pid] = nil
end

local function kill_sleepers(file)
  -- the exec apps' processes recorded their own pids; only those are killed
  sh(("[ -s %s ] && xargs -r -n 500 kill -9 < %s 2>/dev/null; true"):format(q(file), q(file)))
end

local function cleanup()
  for pid in pairs(clients) do sh(("kill -9 %d 2>/dev/null"):format(pid)) end
  for pid in pairs(live) do sh(("kill -9 %d 2>/dev/null"):format(pid)) end
  live = {}
  for _, f in ipairs(sleeper_files) do kill_sleepers(f) end
  if opt.keep == 0 then sh("rm -rf " .. q(TMP)) else log("kept %s", TMP) end
end

local function sql(site, query)
  if opt.pg ~= "" then return (sh(("psql -At -q %s -c %s 2>&1"):format(q(site.db), q(query))):gsub("\n$", "")) end
  return (sh(("sqlite3 -cmd '.timeout 5000' %s %s 2>&1"):format(q(site.db), q(query))):gsub("\n$", ""))
end
local function sql_int(site, query) return math.tointeger(tonumber(sql(site, query))) or error(sql(site, query)) end

--- One request through curl: status, decoded body.
local function request(site, method, path, body)
  local args = {"curl -s -o - -w '\\n%{http_code}' -X", method, "-H", q("ph-auth-token: " .. site.token)}
  if body then args[#args + 1] = "--data-binary " .. q(body) end
  args[#args + 1] = q(("http://127.0.0.1:%d%s"):format(site.port, path))
  local out = sh(table.concat(args, " "))
  local text, code = out:match("^(.*)\n(%d+)$")
  local ok, decoded = pcall(json.decode, text or "")
  return tonumber(code), ok and decoded or text
end

--- A curl config of n POSTs of one body, separated by `next`.
local function write_post_cfg(site, n, bodyfile, cfg)
  local entry = ('url = "http://127.0.0.1:%d/rest/container"\nheader = "ph-auth-token: %s"\n' ..
                 'header = "Content-Type: application/json"\ndata-binary = "@%s"\nwrite-out = " %%{http_code}\\n"\n')
                :format(site.port, site.token, bodyfile)
  local parts = {}
  for i = 1, n do parts[i] = entry end
  write(cfg, table.concat(parts, "next\n"))
end

--- The fast client: n POSTs of one body in ONE curl process (one keep-alive
--- connection, requests one after the other; or up to `parallel`
--- connections).  Returns the acknowledged count, seconds, the wall clock (ns)
--- at start and end, the ids acknowledged.
local function post_many(site, n, bodyfile, tag, parallel)
  local cfg = ("%s/post-%s.cfg"):format(site.dir, tag or "x")
  local out = ("%s/post-%s.out"):format(site.dir, tag or "x")
  write_post_cfg(site, n, bodyfile, cfg)
  local flags = parallel and ("-Z --parallel-max %d"):format(parallel) or ""
  local t = sh(("s=$(date +%%s%%N); curl -s %s -K %s > %s; rc=$?; e=$(date +%%s%%N); echo $s $e $rc")
               :format(flags, q(cfg), q(out)))
  local s, e, rc = t:match("(%d+) (%d+) (%d+)")
  s, e = math.tointeger(tonumber(s)), math.tointeger(tonumber(e))
  local text = read(out)
  local ids = {}
  for id in text:gmatch('"id": (%d+), "success": true') do ids[#ids + 1] = math.tointeger(tonumber(id)) end
  local codes = {}
  for code in text:gmatch(" (%d%d%d)\n") do codes[code] = (codes[code] or 0) + 1 end
  if #ids ~= n then
    local c = {}
    for k, v in pairs(codes) do c[#c + 1] = k .. "x" .. v end
    log("warning: %d of %d POSTs acknowledged (curl exit %s, status codes %s)", #ids, n, rc, table.concat(c, " "))
  end
  os.remove(cfg)
  return #ids, (e - s) / 1e9, s, e, ids
end

local function container_body(nart, label)
  local arts = {}
  for i = 1, nart do
    arts[i] = {name = "artifact " .. i, cef = {sourceAddress = ("10.0.%d.%d"):format(i // 250, i % 250 + 1)}}
  end
  return json.encode({name = "bench", label = label or "events", artifacts = arts})
end

--- Poll fn() every `every` seconds until it returns true or `max` seconds pass.
local function wait_until(fn, max, every)
  local deadline = os.time() + (max or 60)
  while true do
    local v = fn()
    if v then return v end
    if os.time() > deadline then return nil end
    sh("sleep " .. (every or 0.1))
  end
end

---------------------------------------------------------------------------
-- a. ingest

local NOOP = 'playbook_info = {labels = {"events"}, active = true}\nfunction on_start(container) end\n'

local function bench_ingest()
  local cases = {
    {name = "no active playbook, 1 artifact", nart = 1},
    {name = "no active playbook, 1 artifact, --parallel 8", nart = 1, parallel = 8},
    {name = "no active playbook, 10 artifacts", nart = 10},
    {name = "1 active playbook (noop), 1 artifact", nart = 1, playbook = NOOP},
  }
  print(("\n## a. ingest: POST /rest/container, one keep-alive curl, %d requests per sample, median of %d")
        :format(opt.ingest_n, opt.reps))
  print(("%-46s %8s %9s %12s %14s %14s %12s"):format("case", "requests", "seconds", "containers/s", "acked (all)",
                                                     "stored (all)", "runs done s"))
  for _, c in ipairs(cases) do
    local secs, rates, acked, stored, done = {}, {}, {}, {}, {}
    for r = 1, opt.reps do
      local site = new_site("ingest")
      if c.playbook then put(site, "playbooks/noop.lua", c.playbook) end
      launch(site)
      local body = site.dir .. "/body.json"
      write(body, container_body(c.nart))
      local n, s, t0 = post_many(site, opt.ingest_n, body, "ingest", c.parallel)
      secs[r], rates[r], acked[r] = s, n / s, n
      stored[r] = sql_int(site, "SELECT count(*) FROM containers")
      if stored[r] ~= n then log("MISMATCH: %d acknowledged, %d in the store", n, stored[r]) end
      if c.playbook then -- runs of the noop playbook: time from the first POST until all ended
        wait_until(function()
          return sql_int(site, "SELECT count(*) FROM playbook_runs WHERE status != 'running'") >= n
        end, 120, 0.05)
        done[r] = (now_ns() - t0) / 1e9
      end
      stop(site)
      log("ingest %s #%d: %d in %.3f s", c.name, r, n, s)
    end
    local sum = function(t) local x = 0 for _, v in ipairs(t) do x = x + v end return x end
    print(("%-46s %8d %9.3f %12.0f %14d %14d %12s"):format(c.name, opt.ingest_n, median(secs), median(rates),
      sum(acked), sum(stored), c.playbook and ("%.3f"):format(median(done)) or "-"))
    print(("%-46s %s"):format("", "samples containers/s: " .. table.concat((function()
      local t = {}
      for i, v in ipairs(rates) do t[i] = ("%.0f"):format(v) end
      return t
    end)(), ", ")))
  end
  print("One curl process per sample (-K config of N transfers: one keep-alive connection, requests one after the")
  print("other; --parallel 8: up to 8 connections).  acked = replies {\"id\": N, \"success\": true} over all samples;")
  print("stored = SELECT count(*) FROM containers in each sample's store afterwards, summed (must equal acked);")
  print("runs done s = from the first POST until every run of the noop playbook had ended (polled every 50 ms).")
end

---------------------------------------------------------------------------
-- b. reload latency

local function reload_version(k)
  return ('playbook_info = {labels = {"events"}, active = true}\n' ..
          'function on_start(container) phantom.debug("v%d") end\n'):format(k)
end

local function bench_reload()
  local rate = 200 -- POSTs per second while waiting for a generation: one every 5 ms
  local site = new_site("reload")
  put(site, "playbooks/reloaded.lua", reload_version(0))
  launch(site)
  local body = site.dir .. "/body.json"
  write(body, container_body(1))
  local cfg, out = site.dir .. "/reload.cfg", site.dir .. "/reload.out"
  write_post_cfg(site, rate * 10, body, cfg) -- 10 s of POSTs at most
  local function runs_of(cid)
    local _, r = request(site, "GET", "/rest/playbook_run?_filter_container=" .. cid)
    return type(r) == "table" and r.data and r.data[1]
  end
  -- the first generation is live: warm up
  local n0, _, _, _, ids0 = post_many(site, 1, body, "reload-warm")
  assert(n0 == 1 and wait_until(function() return runs_of(ids0[1]) end, 10, 0.02), "no run for the first container")
  local gen = runs_of(ids0[1]).generation
  -- Per reload, right after the rename: ONE curl POSTs a container every 5 ms
  -- (--rate, keep-alive) while this loop polls GET
  -- /rest/playbook_run?_filter_container=<the last id acknowledged> until that
  -- run has the new generation; then the curl is stopped.  The time of the
  -- first POST whose run has the new generation is that run's start_time (the
  -- server's CLOCK_REALTIME, taken as it handles the POST, kept in the store);
  -- the last run on the old generation bounds the reload from below.
  local srv, srv_lo, seen, posts, wrong = {}, {}, {}, {}, 0
  for k = 1, opt.reload_n do
    local tmp = site.dir .. "/.reload.tmp"
    write(tmp, reload_version(k))
    local t_write = now() -- `date` ran, then the rename follows within a millisecond
    assert(os.rename(tmp, site.scripts .. "/playbooks/reloaded.lua"))
    local want = gen + 1
    local pid = math.tointeger(tonumber(sh(("curl -s -N --rate %d/s -K %s > %s 2>/dev/null & echo $!")
                                           :format(rate, q(cfg), q(out)))))
    clients[pid] = true
    local found = wait_until(function()
      local last
      for id in read(out):gmatch('"id": (%d+)') do last = id end
      local run = last and runs_of(last)
      return run and run.generation >= want and run
    end, 10, 0.01)
    seen[k] = now() - t_write
    sh(("kill %d 2>/dev/null; for i in $(seq 100); do kill -0 %d 2>/dev/null || break; sleep 0.01; done"):format(pid, pid))
    clients[pid] = nil
    if not found then error(("reload %d: no run on generation %d after 10 s"):format(k, want)) end
    local first = sql(site, ("SELECT id || ' ' || printf('%%.6f', start_time) || ' ' || generation FROM playbook_runs" ..
                             " WHERE generation >= %d ORDER BY id LIMIT 1"):format(want))
    local rid, t_first, g = first:match("^(%d+) (%S+) (%d+)$")
    srv[k] = tonumber(t_first) - t_write
    srv_lo[k] = tonumber(sql(site, ("SELECT printf('%%.6f', max(start_time)) FROM playbook_runs WHERE generation < %d")
                             :format(want))) - t_write
    posts[k] = count(read(out), '"success": true')
    gen = math.tointeger(tonumber(g))
    if gen ~= want then wrong = wrong + 1 end
    -- the first run on the new generation logs "v<k>"
    local l = wait_until(function()
      local _, l = request(site, "GET", ("/rest/playbook_run/%s/log"):format(rid))
      return type(l) == "table" and l.count and l.count >= 1 and l
    end, 10, 0.02)
    local msg = l and l.data[1].message
    if msg ~= "v" .. k then log("reload %d: the run logged %s, not v%d", k, tostring(msg), k); wrong = wrong + 1 end
    log("reload %d: %.1f ms to the first new-generation run (last old one at %.1f ms), %d POSTs", k, srv[k] * 1000,
        srv_lo[k] * 1000, posts[k])
    sh("sleep 0.2") -- the next write is a separate event
  end
  local reloads_logged = count(read(site.log), "reload reloaded: generation")
  stop(site)
  print(("\n## b. reload latency: write (rename into scripts/playbooks/) -> first POSTed container whose run has the new generation, N = %d")
        :format(opt.reload_n))
  print(("%-56s %10s %10s %10s"):format("", "median ms", "min ms", "max ms"))
  local function row(name, t)
    local lo, hi = minmax(t)
    print(("%-56s %10.1f %10.1f %10.1f"):format(name, median(t) * 1000, lo * 1000, hi * 1000))
  end
  row("write -> first POST run on the new generation", srv)
  row("write -> last POST run on the old generation", srv_lo)
  row("write -> the poller saw the new generation (GET)", seen)
  print(("POSTs per reload: median %.0f (one every %.0f ms, one keep-alive curl)."):format(median(posts), 1000 / rate))
  print("The server's watcher debounce (DEBOUNCE_MS = 100 in serve/internal.h) is INCLUDED: no new generation can exist")
  print("before 100 ms after the file event.  POST times are the runs' start_time (server clock, set as the POST is")
  print("handled), the write time is the client's clock just before the rename (same machine, same clock).  The")
  print("reload happened between the first two rows; the third adds the GET polling (curl per GET, every ~10 ms).")
  print(("Generations seen: 1..%d, %d reload lines logged, %d mismatches (wrong generation or log line).")
        :format(gen, reloads_logged, wrong))
end

---------------------------------------------------------------------------
-- c. runs per second, store off (in-process) vs on (serve)

local THREE = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(container)
  local params = {}
  for _, row in ipairs(phantom.collect2{container = container,
                                        datapath = {"artifact:*.cef.sourceAddress", "artifact:*.id"}}) do
    params[#params + 1] = {ip = row[1], context = {artifact_id = row[2]}}
  end
  phantom.act("lookup ip", {parameters = params, assets = {"lookup"}, callback = decide_1, name = "lookup_1"})
end
function decide_1(kw)
  if phantom.decision{container = kw.container, action_results = kw.results,
                      conditions = {{"lookup_1:action_result.status", "==", "success"}}} then
    local params = {}
    for _, r in ipairs(kw.results[1].action_results) do params[#params + 1] = {ip = r.data[1].ip} end
    phantom.act("lookup ip", {parameters = params, assets = {"lookup"}, callback = finish_1, name = "lookup_2"})
  else
    error("lookup_1 did not succeed")
  end
end
function finish_1(kw)
  phantom.save_run_data{key = "done", value = true}
end
]]

local function bench_runs()
  local M = opt.runs_m
  local site = new_site("runs-off")
  add_lookup_app(site)
  put(site, "playbooks/three.lua", THREE)
  local path = site.scripts .. "/playbooks/three.lua"
  local arts = {}
  for i = 1, 10 do arts[i] = {id = i, name = "artifact " .. i, cef = {sourceAddress = "10.0.0." .. i}} end
  local container = {id = 1, label = "events", artifacts = arts}

  local off_cpu, off_wall = {}, {}
  for r = 1, opt.reps do
    local eng = luasoar.engine{apps = site.scripts .. "/apps", assets = site.scripts .. "/assets.json",
                               scripts = site.scripts}
    local w0, c0 = now(), os.clock()
    for _ = 1, M do eng:start(path, container) end
    local runs = eng:wait()
    local c1, w1 = os.clock(), now()
    local ok = 0
    for _, run in ipairs(runs) do
      if run.status == "success" and #run.summary.result == 2 then ok = ok + 1 end
    end
    assert(ok == M, ("store off: %d of %d runs succeeded: %s"):format(ok, M, tostring(runs[1] and runs[1].error)))
    eng:close()
    off_cpu[r], off_wall[r] = M / (c1 - c0), M / (w1 - w0)
    log("runs off #%d: %.0f runs/s cpu, %.0f runs/s wall", r, off_cpu[r], off_wall[r])
  end

  local on_rate, on_ingest, on_secs, on_cpu, on_flight, on_kib = {}, {}, {}, {}, {}, {}
  for r = 1, opt.reps do
    local s = new_site("runs-on")
    add_lookup_app(s)
    put(s, "playbooks/three.lua", THREE)
    launch(s)
    local body = s.dir .. "/body.json"
    write(body, container_body(10))
    local cpu0 = cpu_seconds(s.pid)
    local n, ingest_s, t0 = post_many(s, M, body, "runs")
    assert(n == M, ("store on: %d of %d containers acknowledged"):format(n, M))
    local flight = 0 -- the most runs the poller saw running at once (after the POSTs)
    local ended = wait_until(function()
      local e, running = sql(s, "SELECT sum(CASE WHEN status != 'running' THEN 1 ELSE 0 END), sum(CASE WHEN status = 'running' THEN 1 ELSE 0 END) FROM playbook_runs")
        :match("(%d+)|(%d+)")
      flight = math.max(flight, tonumber(running or "") or 0)
      return (tonumber(e or "") or 0) >= M
    end, 600, 0.05)
    local t1 = now_ns()
    on_cpu[r] = M / (cpu_seconds(s.pid) - cpu0)
    assert(ended, "store on: the runs did not end in 600 s")
    local good = sql_int(s, "SELECT count(*) FROM playbook_runs WHERE status = 'success'")
    local done = sql_int(s, "SELECT count(*) FROM run_data WHERE key = 'done' AND value = 'true'")
    assert(good == M and done == M, ("store on: %d success, %d done of %d"):format(good, done, M))
    stop(s)
    on_flight[r] = flight
    on_kib[r] = (tonumber(sh(("cat %s %s-wal 2>/dev/null | wc -c"):format(q(s.db), q(s.db)))) or 0) / 1024 / M
    on_secs[r] = (t1 - t0) / 1e9
    on_rate[r], on_ingest[r] = M / on_secs[r], ingest_s
    log("runs on #%d: %.0f runs/s (ingest took %.3f s)", r, on_rate[r], ingest_s)
  end
  local off = median(off_wall)
  local on = median(on_rate)
  print(("\n## c. runs/s, three-block playbook (collect2 over 10 artifacts -> lua app x10 -> decision -> lua app x10 -> save_run_data), M = %d runs, median of %d")
        :format(M, opt.reps))
  print(("%-58s %12s %12s"):format("case", "runs/s", "seconds"))
  print(("%-58s %12.0f %12.3f"):format("store OFF: luasoar.engine in-process, wall clock", off, M / off))
  print(("%-58s %12.0f %12.3f"):format("store OFF: luasoar.engine in-process, os.clock (CPU)", median(off_cpu),
                                       M / median(off_cpu)))
  print(("%-58s %12.0f %12.3f"):format("store ON: luasoar serve, first POST -> all runs success", on, median(on_secs)))
  print(("%-58s %12s %12.3f"):format("  of which the POSTs (all acknowledged)", "", median(on_ingest)))
  print(("%-58s %12.0f %12.3f"):format("store ON: per CPU second of the server process", median(on_cpu),
                                       M / median(on_cpu)))
  print(("%-58s %12.0f"):format("store ON: runs in flight after the POSTs (most polled)", median(on_flight)))
  print(("%-58s %12.1f"):format("store ON: store size per run, KiB (file + WAL, at the end)", median(on_kib)))
  print(("ratio OFF/ON: %.2f x wall clock, %.2f x CPU (OFF os.clock vs the server's CPU time)")
        :format(off / on, median(off_cpu) / median(on_cpu)))
  print("The ON number includes the HTTP ingest of every container (one keep-alive curl, POSTs one after the other,")
  print("each committed to SQLite before its reply), the store writes of every step (run, actions, app runs, run data,")
  print("one commit per loop turn) and the server's log lines; it is measured from the first POST to the moment a")
  print("poll (sqlite3 every 50 ms) sees every run ended; all M ended 'success' with run data done = true.")
  print("OFF: the same playbook, apps and container through require \"luasoar\" (no HTTP, no store, no log).")
  print("ON runs alongside its client (curl) and the poller on the other core; the CPU row counts only the")
  print("server's own user + system time (/proc/PID/stat) from the first POST to the end.  Runs in flight: once")
  print("every POST was answered, the most the poller counted 'running' at once; many means the runs fell behind the")
  print("POSTs (the CPU per run grows with them).  Load average at the end: " .. read("/proc/loadavg"):match("^(%S+ %S+ %S+)"))
end

---------------------------------------------------------------------------
-- d. recovery after kill -9 with N runs in flight

local HOLD = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(container)
  phantom.act("hold", {parameters = {{seconds = 3600}}, assets = {"sleeper"}, callback = held, name = "hold_1"})
end
function held(kw)
  phantom.debug("held: " .. tostring(kw.success))
end
]]

local EXEC_MAX = 256 -- engine/engine.c: exec_max

local function bench_recovery_one(n)
  local site = new_site("recovery-" .. n)
  local pids = site.dir .. "/sleeper.pids"
  write(pids, "")
  sleeper_files[#sleeper_files + 1] = pids
  sh("mkdir -p " .. q(site.scripts .. "/apps/sleeper"))
  -- not idempotent: after the restart the interrupted app runs fail (no new processes)
  write(site.scripts .. "/apps/sleeper/app.json",
        '{"name": "Sleeper", "runner": "exec", "command": ["sh", "sleeper.sh"], "env": ["PATH"], "timeout": 7200,\n' ..
        ' "actions": {"hold": {"parameters": {"seconds": {"required": true}}, "read_only": false, "idempotent": false}}}\n')
  -- the pid file is outside scripts/ (a write under it would wake the watcher)
  write(site.scripts .. "/apps/sleeper/sleeper.sh", ("echo $$ >> %s\nexec sleep 3600\n"):format(q(pids)))
  write(site.scripts .. "/assets.json", '{"sleeper": {"app": "Sleeper", "id": 1}}\n')
  put(site, "playbooks/hold.lua", HOLD)
  launch(site)
  local body = site.dir .. "/body.json"
  write(body, container_body(1))
  local res = {n = n}
  local t0 = now()
  local batch, posted = 1000, 0
  while posted < n do
    local k = math.min(batch, n - posted)
    local acked = post_many(site, k, body, "rec")
    posted = posted + acked
    if acked < k then error(("recovery %d: only %d of %d POSTs acknowledged"):format(n, acked, k)) end
    log("recovery %d: %d containers posted (%.1f s)", n, posted, now() - t0)
    if now() - t0 > opt.recovery_setup_max then break end
  end
  res.post_s = now() - t0
  local last_log = 0
  local st = wait_until(function()
    local r = sql(site, "SELECT (SELECT count(*) FROM playbook_runs WHERE status = 'running'), " ..
                        "(SELECT count(*) FROM playbook_runs WHERE status != 'running'), (SELECT count(*) FROM action_runs)")
    local running, ended, acts = r:match("(%d+)|(%d+)|(%d+)")
    running, ended, acts = tonumber(running), tonumber(ended), tonumber(acts)
    local procs = count(read(pids), "\n")
    if os.time() - last_log >= 5 then
      log("recovery %d: %s running, %s ended, %s action runs, %d app processes (%.0f s)", n, running, ended, acts, procs,
          now() - t0)
      last_log = os.time()
    end
    if not running then return nil end
    -- the engine runs at most EXEC_MAX exec app runs at a time: the rest are queued
    if running + ended >= n and acts >= n and procs + ended >= math.min(n, EXEC_MAX) then
      return {running = running, ended = ended, acts = acts, procs = procs, broken = ended > 0}
    end
    if now() - t0 > opt.recovery_setup_max then return {running = running, ended = ended, acts = acts, procs = procs,
                                                        slow = true} end
  end, opt.recovery_setup_max + 60, 0.5)
  res.setup_s = now() - t0
  res.in_flight, res.procs = st and st.running or 0, st and st.procs or 0
  if not st or st.broken or st.slow then
    res.problem = st and (st.broken and ("%d runs ended before the kill (%s)"):format(st.ended,
      sql(site, "SELECT coalesce(message, '') FROM app_runs WHERE status != 'success' LIMIT 1")) or "setup took too long")
      or "no state"
    log("recovery %d: %s", n, res.problem)
    if not st or st.slow then stop(site, "KILL"); kill_sleepers(pids); return res end
  end
  res.rss_mb = tonumber((sh(("ps -o rss= -p %d"):format(site.pid)):match("%d+"))) or 0
  res.rss_mb = res.rss_mb / 1024
  res.fds = tonumber(sh(("ls /proc/%d/fd | wc -l"):format(site.pid)))
  res.nofile = sh(("awk '/Max open files/ {print $4}' /proc/%d/limits"):format(site.pid)):gsub("%s", "")
  -- kill -9, then restart and time it from outside, polling the new log
  stop(site, "KILL")
  site.nlog = site.nlog + 1
  site.log = ("%s/serve-%d.log"):format(site.dir, site.nlog)
  site.port = math.random(20000, 59999)
  local script = ([[
log=%s
t0=$(date +%%s%%N)
%s serve --scripts %s %s --listen 127.0.0.1:%d 2>$log >/dev/null &
pid=$!
t1=; t2=; why=ok; dl=$(( $(date +%%s) + 900 ))
while [ -z "$t2" ]; do
  if [ -z "$t1" ] && grep -q 'recovery: ' $log 2>/dev/null; then t1=$(date +%%s%%N); fi
  if [ -n "$t1" ] && grep -q 'listening on' $log; then t2=$(date +%%s%%N); break; fi
  kill -0 $pid 2>/dev/null || { why=died; break; }
  [ $(date +%%s) -gt $dl ] && { why=timeout; break; }
  sleep 0.002
done
echo "$pid $why $t0 ${t1:-0} ${t2:-0}"
]]):format(q(site.log), q(BIN), q(site.scripts), store_args(site), site.port)
  write(site.dir .. "/restart.sh", script)
  local out = sh("sh " .. q(site.dir .. "/restart.sh"))
  local pid, why, a, b, c = out:match("(%d+) (%a+) (%d+) (%d+) (%d+)")
  site.pid = math.tointeger(tonumber(pid))
  live[site.pid] = site
  assert(why == "ok", "the restarted server: " .. tostring(why) .. "\n" .. read(site.log):sub(-2000))
  a, b, c = tonumber(a), tonumber(b), tonumber(c)
  res.to_recovery, res.to_listening = (b - a) / 1e9, (c - a) / 1e9
  local text = read(site.log)
  res.recovery_line = text:match("[^\n]*recovery: [^\n]*") or "?"
  local iso_first = text:match("^(%S+)")
  local iso_listen = text:match("\n(%S+) listening on")
  res.iso = ("%s -> %s"):format(iso_first or "?", iso_listen or "?")
  -- after the restart: the interrupted app runs fail, the callbacks run, the runs end
  local tl = now()
  wait_until(function() return sql_int(site, "SELECT count(*) FROM playbook_runs WHERE status = 'running'") == 0 end,
             900, 0.1)
  res.drain_s = now() - tl
  res.after = sql(site, "SELECT status || ' ' || count(*) FROM playbook_runs GROUP BY status")
  stop(site)
  kill_sleepers(pids)
  if opt.keep == 0 then sh("rm -rf " .. q(site.dir) .. " 2>/dev/null") end
  return res
end

local function bench_recovery()
  local results = {}
  for size in tostring(opt.recovery):gmatch("%d+") do
    local n = math.tointeger(tonumber(size))
    log("recovery: %d runs in flight", n)
    results[#results + 1] = bench_recovery_one(n)
  end
  print("\n## d. recovery: N runs in flight (each holding an exec app `sleep 3600`), kill -9, restart")
  print(("%7s %9s %9s %9s %8s %12s %11s %12s %11s  %s"):format("N", "setup s", "in flight", "app procs", "RSS MB",
    "fds/limit", "to recov s", "to listen s", "drain s", "server log (ISO s): first line -> listening"))
  for _, r in ipairs(results) do
    print(("%7d %9.1f %9d %9d %8.0f %12s %11s %12s %11s  %s"):format(r.n, r.setup_s, r.in_flight, r.procs,
      r.rss_mb or 0, r.fds and (r.fds .. "/" .. r.nofile) or "-",
      r.to_recovery and ("%.3f"):format(r.to_recovery) or "-", r.to_listening and ("%.3f"):format(r.to_listening) or "-",
      r.drain_s and ("%.2f"):format(r.drain_s) or "-", r.iso or "-"))
  end
  for _, r in ipairs(results) do
    print(("N=%d: %s%s"):format(r.n, r.recovery_line or "-", r.problem and ("; PROBLEM: " .. r.problem) or ""))
    if r.after then print(("       after the restart: %s"):format(r.after:gsub("\n", ", "))) end
  end
  print("setup s: first POST until N runs 'running' with N action runs and min(N, 256) app processes (the exec cap); RSS/fds: the server's,")
  print("just before kill -9.  to recov / to listen: from launching the restarted server (high-resolution clock in")
  print("the shell) until its log shows 'recovery: ...' / 'listening on' (log polled every ~3 ms).  drain s: from")
  print("'listening on' until no run is 'running' (the interrupted, non-idempotent app runs fail, callbacks run).")
end

---------------------------------------------------------------------------
-- e. a cluster: nodes of one PostgreSQL database (serve_bench_cluster.lua)

local bench_cluster = dofile((arg[0]:match("^(.*[/\\])") or "") .. "serve_bench_cluster.lua"){
  THREE = THREE, TMP = TMP, add_lookup_app = add_lookup_app, container_body = container_body, count = count, launch = launch, live = live, log = log, median = median, minmax = minmax, new_site = new_site, now_ns = now_ns, opt = opt, post_many = post_many, put = put, q = q, read = read, sh = sh, sql_int = sql_int, stop = stop, wait_until = wait_until, write = write, write_post_cfg = write_post_cfg}

---------------------------------------------------------------------------

local function main()
  math.randomseed(os.time(), tonumber(sh("echo $$")) or 0)
  log("temp folder %s, binary %s", TMP, BIN)
  print(("# luasoar serve benchmark (%s, %s cores)"):format(os.date("!%Y-%m-%dT%H:%M:%SZ"), sh("nproc"):gsub("\n", "")))
  if chosen.ingest then bench_ingest() end
  if chosen.reload then bench_reload() end
  if chosen.runs then bench_runs() end
  if chosen.recovery then bench_recovery() end
  if chosen.cluster then bench_cluster() end
end

local ok, err = xpcall(main, debug.traceback)
cleanup()
if not ok then
  io.stderr:write("serve_bench failed: ", tostring(err), "\n")
  os.exit(1)
end
