-- 00_base.lua: the prelude's shared helpers, the hooks the C side calls,
-- and the run-scoped parts of the phantom API (run data, joins, limits,
-- objects).  Every file of bindings/lua is called with (phantom, internal);
-- `internal` is never visible to a playbook.
local phantom, internal = ...
local json = internal.json
local hooks = internal.hooks
local array, is_array = internal.array, internal.is_array
local type, pairs, ipairs, tostring, error = type, pairs, ipairs, tostring, error

-- An error at the playbook's line: "file:line: phantom.f: message".
local function fail(fname, fmt, ...)
  error(internal.where() .. fname .. ": " .. fmt:format(...), 0)
end
internal.fail = fail

-- Normalise a call's arguments (see bindings/args.c) into one table.
local function args(fname, positional, allowed, ...)
  return internal.args(fname, positional, allowed, ...)
end
internal.kwargs = args

-- Argument checks, each naming the function and the argument.
local function check(fname, kw, name, want, optional)
  local v = kw[name]
  if v == nil then
    if optional then return nil end
    fail(fname, "argument '%s' is required", name)
  end
  local t = type(v)
  if want == "list" then
    if t ~= "table" then fail(fname, "argument '%s': expected a list, got %s", name, t) end
  elseif want == "callable" then
    local mt = getmetatable(v)
    if t ~= "function" and not (mt and mt.__call) then
      fail(fname, "argument '%s': expected a function, got %s", name, t)
    end
  elseif t ~= want then
    fail(fname, "argument '%s': expected a %s, got %s", name, want, t)
  end
  return v
end
internal.check = check

local function deep_copy(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local out = is_array(v) and array() or {}
  seen[v] = out
  for k, x in pairs(v) do out[k] = deep_copy(x, seen) end
  return out
end
internal.copy = deep_copy

-- A JSON round trip: what goes into the store is data, not live tables.
local function snapshot(fname, value)
  local ok, text = pcall(json.encode, value)
  if not ok then fail(fname, "%s", text) end
  return json.decode(text)
end
internal.snapshot = snapshot

local function state(fname) return internal.state(fname) end

-- Per-run tables of the state, created on first use.
local function field(st, name)
  local t = st[name]
  if t == nil then
    t = {}
    st[name] = t
  end
  return t
end
internal.field = field

-- ---- results helpers (Python: phantom.parse_success ...) ----

local function each_action_result(fname, results, keep, fn)
  if type(results) ~= "table" then
    fail(fname, "expected the results list of a callback, got %s", type(results))
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
  local out = array()
  each_action_result("phantom.parse_success", results, succeeded, function(ar)
    for _, item in ipairs(ar.data or {}) do out[#out + 1] = item end
  end)
  return out
end

--- The messages of every failed action result, in order.
function phantom.parse_errors(results)
  local out = array()
  each_action_result("phantom.parse_errors", results, failed, function(ar) out[#out + 1] = ar.message end)
  return out
end

--- The successful action results themselves.
function phantom.get_successful_action_results_v2(results)
  local out = array()
  each_action_result("phantom.get_successful_action_results_v2", results, succeeded,
                     function(ar) out[#out + 1] = ar end)
  return out
end

-- ---- hooks called by the engine ----

local DEFAULT_ACTION_LIMIT = 1000

-- On the run's thread, before the playbook's top level runs.
function hooks.run_started(st, container)
  st.action_limit = DEFAULT_ACTION_LIMIT
  st.action_count = 0
  internal.container_started(st, container)
end

-- phantom.act asks before it starts an action run.
function hooks.act_allowed(st, name)
  if st.discontinued then
    internal.log("error", ("phantom.act: '%s' not started: the run was discontinued"):format(name))
    return false
  end
  if st.action_count >= st.action_limit then
    internal.log("error", ("phantom.act: '%s' not started: the run reached its action limit of %d (phantom.set_action_limit)")
      :format(name, st.action_limit))
    return false
  end
  st.action_count = st.action_count + 1
  return true
end

local function started(st, kind, name)
  local s, p = field(st, "started"), field(st, "pending")
  local key = kind .. "\0" .. name
  s[key] = (s[key] or 0) + 1
  p[key] = (p[key] or 0) + 1
end
internal.started = started

local function done(st, kind, name)
  local p = field(st, "pending")
  local key = kind .. "\0" .. name
  p[key] = (p[key] or 1) - 1
end
internal.done = done

function hooks.act_started(st, name, id)
  started(st, "action", name)
end

-- An action run is over: remember its results for datapaths by name, then
-- say whether its callback may run.
function hooks.act_done(st, name, id, results)
  done(st, "action", name)
  local list = field(field(st, "results"), name)
  list[#list + 1] = results
  field(st, "action_runs")[id] = results
  return not st.discontinued
end

-- ---- joins ----

local function all_done(st, kind, names)
  if names == nil then return true end
  local s, p = field(st, "started"), field(st, "pending")
  for _, n in ipairs(names) do
    local key = kind .. "\0" .. tostring(n)
    if (s[key] or 0) == 0 or (p[key] or 0) > 0 then return false end
  end
  return true
end

local COMPLETED_POS = {"action_names", "playbook_names", "custom_function_names", "trace"}

--- True when every named action, playbook and custom function was started in
--- this run and has finished (failed counts as finished).
function phantom.completed(...)
  local kw = args("phantom.completed", COMPLETED_POS, COMPLETED_POS, ...)
  local st = state("phantom.completed")
  for _, k in ipairs({"action_names", "playbook_names", "custom_function_names"}) do
    if kw[k] ~= nil then check("phantom.completed", kw, k, "list") end
  end
  return all_done(st, "action", kw.action_names) and all_done(st, "playbook", kw.playbook_names)
     and all_done(st, "custom_function", kw.custom_function_names)
end

--- Legacy form: phantom.actions_done({"a", "b"}).
function phantom.actions_done(names)
  if type(names) ~= "table" then fail("phantom.actions_done", "expected a list of action names") end
  return all_done(state("phantom.actions_done"), "action", names)
end

-- ---- run data ----

local RUN_DATA = {"value", "key", "auto"}

--- save_run_data{key, value}: visible to every later block of this run only.
--- The value is stored as data (a JSON round trip); strings stay strings.
function phantom.save_run_data(...)
  local kw = args("phantom.save_run_data", RUN_DATA, RUN_DATA, ...) -- Python's order: value, key
  local key = check("phantom.save_run_data", kw, "key", "string")
  local st = state("phantom.save_run_data")
  local v = snapshot("phantom.save_run_data", kw.value)
  field(st, "run_data")[key] = v
  if internal.persisting() then internal.persist("run_data", key, v) end
  return true
end

--- get_run_data{key}: the saved value, or nil when there is none.
function phantom.get_run_data(...)
  local kw = args("phantom.get_run_data", {"key"}, {"key"}, ...)
  local key = check("phantom.get_run_data", kw, "key", "string")
  return deep_copy(field(state("phantom.get_run_data"), "run_data")[key])
end

-- ---- limits and the end of a run ----

function phantom.set_action_limit(limit)
  if math.type(limit) ~= "integer" or limit < 0 then
    fail("phantom.set_action_limit", "expected a non-negative integer, got %s", tostring(limit))
  end
  state("phantom.set_action_limit").action_limit = limit
end

--- The run stops starting work: later act calls are refused (logged) and
--- pending callbacks are not called; on_finish still runs and the run ends
--- success.
function phantom.discontinue()
  state("phantom.discontinue").discontinued = true
  if internal.persisting() then internal.persist("discontinued", "", true) end
end

function phantom.get_playbook_info()
  local st = state("phantom.get_playbook_info")
  local path = st.playbook
  local name = path:match("([^/]+)%.lua$") or path
  return array{{name = name, repo_name = "local", id = st.run_id and 0, run_id = st.run_id,
                path = path, parent_playbook_run_id = st.parent_run_id}}
end

--- concatenate(list_or_value, ..., {dedup = true}): one flat list.
function phantom.concatenate(...)
  local n = select("#", ...)
  local items, dedup = {...}, false
  local last = items[n]
  if type(last) == "table" and not is_array(last) and last.dedup ~= nil and #last == 0 then
    dedup = last.dedup
    n = n - 1
  end
  local out, seen = array(), {}
  local function add(v)
    if v == nil then return end
    if dedup then
      local k = type(v) == "table" and json.encode(v) or v
      if seen[k] then return end
      seen[k] = true
    end
    out[#out + 1] = v
  end
  for i = 1, n do
    local v = items[i]
    if type(v) == "table" and (is_array(v) or #v > 0) then
      for j = 1, #v do add(v[j]) end
    else
      add(v)
    end
  end
  return out
end

-- ---- objects: key/value per container, across runs ----

local OBJ = {"key", "value", "auto_delete", "container_id", "playbook_name", "repo_name"}

local function objects(container_id)
  local store = internal.store()
  local all = store.objects or {}
  store.objects = all
  local k = container_id or "global"
  all[k] = all[k] or {}
  return all[k]
end

function phantom.save_object(...)
  local kw = args("phantom.save_object", OBJ, OBJ, ...)
  local key = check("phantom.save_object", kw, "key", "string")
  check("phantom.save_object", kw, "value", "table")
  local cid = kw.container_id or state("phantom.save_object").container_id
  local v = snapshot("phantom.save_object", kw.value)
  objects(cid)[key] = v
  if internal.persisting() then internal.persist("object", tostring(cid) .. "\0" .. key, v) end
  return true
end

function phantom.get_object(...)
  local kw = args("phantom.get_object", OBJ, OBJ, ...)
  local key = check("phantom.get_object", kw, "key", "string")
  local cid = kw.container_id or state("phantom.get_object").container_id
  local v = objects(cid)[key]
  if v == nil then return array() end
  return array{{value = deep_copy(v), composite_key = {key = key, container_id = cid}}}
end

function phantom.clear_object(...)
  local kw = args("phantom.clear_object", OBJ, OBJ, ...)
  local key = check("phantom.clear_object", kw, "key", "string")
  local cid = kw.container_id or state("phantom.clear_object").container_id
  objects(cid)[key] = nil
  if internal.persisting() then internal.persist("object", tostring(cid) .. "\0" .. key, nil) end
  return true
end

-- At serve start: what the store kept of objects (container_key "global":
-- save_data) goes back where the API reads it ("null": gone from the store).
function internal.hooks.restore_object(container_key, key, text)
  local v
  if text ~= "null" then v = json.decode(text) end
  if container_key == "global" then
    local store = internal.store()
    store.data = store.data or {}
    store.data[key] = v
  else
    objects(tonumber(container_key) or container_key)[key] = v
  end
end

--- @phantom.playbook_block() in Python; a no-op marker here.
function phantom.playbook_block() return function(f) return f end end
