-- prelude.lua: the parts of the phantom module written in Lua, embedded in
-- the engine at build time.  Called once with the phantom table.
local phantom = ...
local setmetatable, ipairs, type = setmetatable, ipairs, type
local array_mt = phantom.__array_mt

local function each_action_result(results, keep, fn)
  if type(results) ~= "table" then
    error("expected the results list of a callback, got " .. type(results), 3)
  end
  for _, app_run in ipairs(results) do
    for _, ar in ipairs(app_run.action_results or {}) do
      if keep(ar) then fn(ar) end
    end
  end
end

local function succeeded(ar) return ar.status == "success" end
local function failed(ar) return ar.status ~= "success" end

--- The data items of every successful action result, in order.
function phantom.parse_success(results)
  local out = setmetatable({}, array_mt)
  each_action_result(results, succeeded, function(ar)
    for _, item in ipairs(ar.data or {}) do out[#out + 1] = item end
  end)
  return out
end

--- The messages of every failed action result, in order.
function phantom.parse_errors(results)
  local out = setmetatable({}, array_mt)
  each_action_result(results, failed, function(ar) out[#out + 1] = ar.message end)
  return out
end

--- The successful action results themselves.
function phantom.get_successful_action_results_v2(results)
  local out = setmetatable({}, array_mt)
  each_action_result(results, succeeded, function(ar) out[#out + 1] = ar end)
  return out
end

phantom.__array_mt = nil
