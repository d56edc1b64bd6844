-- dispatch_bench.lua: the cost of one action round trip through the engine:
-- phantom.act -> app run (lua runner, in-process) -> results decoded ->
-- kwargs built in C -> callback.  Also the same with a luasoar.testing stub,
-- and a whole run (start, top level, on_start, on_finish) with no action.
-- Run from the repository root after a build:
--   LUA_CPATH="build/?.so;;" lua5.4 bench/dispatch_bench.lua
local luasoar = require "luasoar"
local lt = require "luasoar.testing"

local N = tonumber(arg[1]) or 5000
local SAMPLES = 5
local tmp = os.tmpname()

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local chain = tmp .. "_chain.lua"
write(chain, ([[
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
]]):format(N))
local empty = tmp .. "_empty.lua"
write(empty, "function on_start(c) end\nfunction on_finish(c, s) end\n")

local container = {id = 1, artifacts = {{id = 1, cef = {sourceAddress = "8.8.8.8"}}}}
local apps, assets = "spec/fixtures/apps", "spec/fixtures/assets.json"

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local function sample(fn)
  local times = {}
  for i = 1, SAMPLES do
    local t0 = os.clock()
    fn()
    times[i] = os.clock() - t0
  end
  return median(times), times
end

local cases = {
  {"act -> lua app -> callback", N, function()
    local eng = luasoar.engine{apps = apps, assets = assets}
    local r = eng:run(chain, container)
    assert(r.status == "success", r.error)
    eng:close()
  end},
  {"act -> stub -> callback (luasoar.testing)", N, function()
    local eng = lt.engine{apps = apps, assets = assets, scripts = "spec/fixtures"}
    eng:stub("geolocate ip", {summary = {country = "United States"}})
    local r = eng:run(chain, container)
    assert(r.status == "success", r.error)
    eng:close()
  end},
  {"whole run, no action", 2000, function()
    local eng = luasoar.engine{apps = apps, assets = assets}
    for _ = 1, 2000 do eng:start(empty, container) end
    for _, r in ipairs(eng:wait()) do assert(r.status == "success") end
    eng:close()
  end},
}

print(("%-42s %10s %12s %12s"):format("case", "ops", "median s", "µs/op"))
for _, c in ipairs(cases) do
  local m = sample(c[3])
  print(("%-42s %10d %12.4f %12.2f"):format(c[1], c[2], m, m / c[2] * 1e6))
end
os.remove(tmp)
os.remove(chain)
os.remove(empty)
