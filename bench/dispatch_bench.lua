-- dispatch_bench.lua: the cost of one action round trip through the engine:
-- phantom.act -> app run (lua runner, in-process) -> results decoded ->
-- kwargs built in C -> callback.  Also the same with a luasoar.testing stub,
-- and a whole run (start, top level, on_start, on_finish) with no action.
-- Run from the repository root after a build:
--   LUA_CPATH="build/?.so;;" lua5.4 bench/dispatch_bench.lua
local luasoar = require "luasoar"
local lt = require "luasoar.testing"
local U = dofile((arg[0]:match("^(.*[/\\])") or "") .. "bench_util.lua")

local N = tonumber(arg[1]) or 5000
local SAMPLES = 5
local tmp = os.tmpname()

local chain = tmp .. "_chain.lua"
U.write(chain, U.chain_source(N))
local empty = tmp .. "_empty.lua"
U.write(empty, U.empty_source)

local container = U.container
local apps, assets = U.apps, U.assets

local function sample(fn) return U.sample(fn, SAMPLES) end

local cases = {
  {"act -> lua app -> callback", N, function()
    U.run_chain(luasoar, chain, 1)
  end},
  {"act -> stub -> callback (luasoar.testing)", N, function()
    local eng = lt.engine{apps = apps, assets = assets, scripts = "spec/fixtures"}
    eng:stub("geolocate ip", {summary = {country = "United States"}})
    local r = eng:run(chain, container)
    assert(r.status == "success", r.error)
    eng:close()
  end},
  {"whole run, no action", 2000, function()
    U.run_empty(luasoar, empty, 2000)
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
