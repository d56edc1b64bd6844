-- bench_util.lua: what the benchmarks of bench/ share (dispatch_bench and
-- compare use all of it, soar_bench and serve_bench the statistics): the
-- fixture (apps, assets, container), the benchmark playbooks, sampling, and
-- luasoar's side of the act round trip and the whole run, through the Lua
-- module (require "luasoar").  Loaded with dofile from the bench/ folder.
local M = {}

M.apps, M.assets = "spec/fixtures/apps", "spec/fixtures/assets.json"
M.container = {id = 1, artifacts = {{id = 1, cef = {sourceAddress = "8.8.8.8"}}}}

function M.write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- The median of t, t left as it is (the mean of the middle two when even).
function M.median_of(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  if #c == 0 then return 0 / 0 end
  if #c % 2 == 1 then return c[(#c + 1) // 2] end
  return (c[#c // 2] + c[#c // 2 + 1]) / 2
end

-- The least and greatest of t.
function M.minmax(t)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(t) do lo, hi = math.min(lo, v), math.max(hi, v) end
  return lo, hi
end

-- The median of t (sorts t).
function M.median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

-- The median of `samples` CPU times (os.clock) of fn, and the times.
function M.sample(fn, samples)
  local times = {}
  for i = 1, samples do
    local t0 = os.clock()
    fn()
    times[i] = os.clock() - t0
  end
  return M.median(times), times
end

-- n acts chained: each from the previous one's callback, which checks the
-- result.  With count, on_finish logs "callbacks: <how many ran>".
function M.chain_source(n, count)
  return ([[
  local left = %d
  function on_start(c) phantom.set_action_limit(left + 1) next_one() end
  function next_one()
    phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"maxmind"}, callback = cb})
  end
  function cb(kw)
    if kw.results[1].action_results[1].summary.country ~= "United States" then error("bad result") end
    left = left - 1
    if left > 0 then next_one() end
  end
]]):format(n) .. (count and ([[
  function on_finish(c, s) phantom.debug("callbacks: " .. (%d - left)) end
]]):format(n) or "")
end

M.empty_source = "function on_start(c) end\nfunction on_finish(c, s) end\n"

-- One engine, `runs` runs of the chain playbook at path one after the other.
-- Returns what the last report says: "callbacks: N; last: <message of the
-- last action run> <its ip>; actions: <entries in the summary>".
function M.run_chain(luasoar, path, runs)
  local eng = luasoar.engine{apps = M.apps, assets = M.assets}
  local r
  for _ = 1, runs or 1 do
    r = eng:run(path, M.container)
    assert(r.status == "success", r.error)
  end
  eng:close()
  local res = r.summary.result
  local last = res[#res] and res[#res].app_runs[1]
  return ("%s; last: %s %s; actions: %d"):format(r.log[#r.log] and r.log[#r.log].message or "-",
    last and last.message, last and last.parameter.ip, #res)
end

-- One engine, `runs` runs of the playbook at path started at once, then
-- waited for.  Returns "runs: N ok".
function M.run_empty(luasoar, path, runs)
  local eng = luasoar.engine{apps = M.apps, assets = M.assets}
  for _ = 1, runs do eng:start(path, M.container) end
  local n = 0
  for _, r in ipairs(eng:wait()) do
    assert(r.status == "success")
    n = n + 1
  end
  eng:close()
  return ("runs: %d ok"):format(n)
end

return M
