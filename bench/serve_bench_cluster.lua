-- serve_bench_cluster.lua: case e. of bench/serve_bench.lua, a cluster on
-- PostgreSQL: ingest and runs/s on one node and on two nodes of one
-- database, and failover (kill -9 a node with runs in flight; the time until
-- the other has taken them over and finished them).  serve_bench.lua loads
-- it with the helpers it shares (its sites, clients, clock and store).
return function(env)
local THREE, TMP, add_lookup_app, container_body, count, launch, live, log, median, minmax, new_site, now_ns, opt, post_many, put, q, read, sh, sql_int, stop, wait_until, write, write_post_cfg =
  env.THREE, env.TMP, env.add_lookup_app, env.container_body, env.count, env.launch, env.live, env.log, env.median, env.minmax, env.new_site, env.now_ns, env.opt, env.post_many, env.put, env.q, env.read, env.sh, env.sql_int, env.stop, env.wait_until, env.write, env.write_post_cfg

--- n nodes on one fresh database, each with its own folder and the same
--- scripts (files: name -> text), apps from add(site).
local function cluster_nodes(n, files, add)
  local sites = {}
  for i = 1, n do
    local s = new_site(("node%d-of-%d"):format(i, n))
    if i > 1 then s.db = sites[1].db end
    s.extra = ("--node n%d --lease %g"):format(i, opt.lease)
    if add then add(s) end
    for name, text in pairs(files) do put(s, name, text) end
    sites[i] = launch(s)
  end
  return sites
end

--- k POSTs of body to each node at once (one keep-alive curl per node):
--- acknowledged in all, seconds from the first start to the last end.
local function post_each(sites, k, body)
  local cmd = {}
  for i, s in ipairs(sites) do
    local cfg, out = ("%s/each.cfg"):format(s.dir), ("%s/each.out"):format(s.dir)
    write_post_cfg(s, k, body, cfg)
    cmd[#cmd + 1] = ("curl -s -K %s > %s &"):format(q(cfg), q(out))
    s.each_out = out
  end
  local t = sh(("s=$(date +%%s%%N); %s wait; echo $s $(date +%%s%%N)"):format(table.concat(cmd, " ")))
  local t0, t1 = t:match("(%d+) (%d+)")
  local acked = 0
  for _, s in ipairs(sites) do acked = acked + count(read(s.each_out), '"success": true') end
  return acked, (tonumber(t1) - tonumber(t0)) / 1e9, math.tointeger(tonumber(t0))
end

local FAIL_PB = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(container)
  phantom.act("pause", {parameters = {{seconds = 1}}, assets = {"pauser"}, callback = done, name = "pause_1"})
end
function done(kw) phantom.save_run_data{key = "done", value = kw.results[1].status} end
]]

local function add_pauser(site)
  sh("mkdir -p " .. q(site.scripts .. "/apps/pauser"))
  write(site.scripts .. "/apps/pauser/app.json",
        '{"name": "Pauser", "runner": "exec", "command": ["sh", "pauser.sh"], "env": ["PATH"], "timeout": 60,\n' ..
        ' "actions": {"pause": {"parameters": {"seconds": {"required": true}}, "read_only": true}}}\n')
  write(site.scripts .. "/apps/pauser/pauser.sh",
        'cat >/dev/null; sleep 1\nprintf \'{"action_results": [{"status": "success", "message": "paused", "data": [], "summary": {}}]}\\n\'\n')
  write(site.scripts .. "/assets.json", '{"pauser": {"app": "Pauser", "id": 1}}\n')
end

local function bench_cluster()
  local M = opt.runs_m
  local body = TMP .. "/cluster-body.json"
  write(body, container_body(1))
  local rows = {}
  for _, n in ipairs({1, 2}) do
    local ing, runs = {}, {}
    for r = 1, opt.reps do
      local sites = cluster_nodes(n, {})
      local acked, secs = post_each(sites, opt.ingest_n // n, body)
      assert(acked == (opt.ingest_n // n) * n, ("cluster ingest: %d acknowledged"):format(acked))
      ing[r] = acked / secs
      for _, s in ipairs(sites) do stop(s) end
      sites = cluster_nodes(n, {["playbooks/three.lua"] = THREE}, add_lookup_app)
      local bodyr = TMP .. "/cluster-body10.json"
      write(bodyr, container_body(10))
      local acked2, _, t0 = post_each(sites, M // n, bodyr)
      local total = (M // n) * n
      assert(acked2 == total, ("cluster runs: %d of %d acknowledged"):format(acked2, total))
      assert(wait_until(function()
        return sql_int(sites[1], "SELECT count(*) FROM run_data WHERE key = 'done'") >= total
      end, 600, 0.05), "cluster runs: not all ended")
      runs[r] = total / ((now_ns() - t0) / 1e9)
      local ok = sql_int(sites[1], "SELECT count(*) FROM playbook_runs WHERE status = 'success'")
      assert(ok == total, ("cluster runs: %d of %d success"):format(ok, total))
      for _, s in ipairs(sites) do stop(s) end
      log("cluster %d node(s) #%d: ingest %.0f containers/s, %.0f runs/s", n, r, ing[r], runs[r])
    end
    rows[#rows + 1] = {n = n, ingest = median(ing), runs = median(runs)}
  end

  -- failover: kill -9 node 1 with runs in flight; node 2 takes them over
  local fo = {}
  for r = 1, opt.reps do
    local sites = cluster_nodes(2, {["playbooks/pause.lua"] = FAIL_PB}, add_pauser)
    local a, b = sites[1], sites[2]
    local acked = post_many(a, opt.failover_n, body, "fo")
    assert(acked == opt.failover_n)
    local flight = sql_int(a, "SELECT count(*) FROM playbook_runs WHERE status = 'running'")
    local t_kill = now_ns()
    sh(("kill -9 %d"):format(a.pid))
    live[a.pid] = nil
    local took = wait_until(function() return read(b.log):find("took over", 1, true) end, 120, 0.01)
    local t_took = now_ns()
    assert(took, "failover: node 2 did not take over:\n" .. read(b.log))
    assert(wait_until(function()
      return sql_int(b, "SELECT count(*) FROM run_data WHERE key = 'done'") >= opt.failover_n
    end, 120, 0.02), "failover: not all runs ended")
    assert(sql_int(b, "SELECT count(*) FROM playbook_runs WHERE status = 'success'") == opt.failover_n,
           "failover: not every run succeeded once")
    local t_done = now_ns()
    fo[r] = {took = (t_took - t_kill) / 1e9, done = (t_done - t_kill) / 1e9, flight = flight,
             line = read(b.log):match("[^\n]*took over[^\n]*")}
    stop(b)
    log("failover #%d: taken over after %.2f s, all done after %.2f s", r, fo[r].took, fo[r].done)
  end
  local took, done, flight = {}, {}, {}
  for r, f in ipairs(fo) do took[r], done[r], flight[r] = f.took, f.done, f.flight end

  print(("\n## e. a cluster on one PostgreSQL: nodes of one database, median of %d"):format(opt.reps))
  print(("%-40s %18s %18s"):format("nodes", "ingest containers/s", "runs/s"))
  for _, row in ipairs(rows) do print(("%-40s %18.0f %18.0f"):format(row.n .. " node(s)", row.ingest, row.runs)) end
  print(("ratio 2 nodes / 1 node: ingest %.2f x, runs %.2f x"):format(rows[2].ingest / rows[1].ingest,
                                                                     rows[2].runs / rows[1].runs))
  print(("failover, --lease %g: %d containers posted to a node, killed with -9 with a median of %d runs still in"
        .. " flight (each waits 1 s in an idempotent action):"):format(opt.lease, opt.failover_n, median(flight)))
  print(("  kill -9 -> the other node's 'took over' line: median %.2f s (min %.2f, max %.2f)"):format(median(took),
        minmax(took)))
  print(("  kill -9 -> every run done on the other node:   median %.2f s (min %.2f, max %.2f)"):format(median(done),
        minmax(done)))
  print("  " .. (fo[1].line or ""))
  print("ingest: 1 artifact, no active playbook, one keep-alive curl per node at once (" .. opt.ingest_n ..
        " POSTs in all); runs: the three-block playbook of c., " .. M .. " runs in all, from the first POST until")
  print("every run saved its data.  The nodes, their clients and PostgreSQL share this machine's cores.")
  print("Load average at the end: " .. read("/proc/loadavg"):match("^(%S+ %S+ %S+)"))
end

return bench_cluster
end
