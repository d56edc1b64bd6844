-- 45_apps.lua: what a SOAR connector asks of the engine while its app run is
-- in flight (bindings/app_calls.c): its container's info, and artifacts to
-- save.  Artifacts are added as phantom.add_artifact adds them (same ids,
-- same store writes), into the run's container, so the playbook's datapaths
-- see them after the callback.
local phantom, internal = ...
local hooks = internal.hooks
local copy, array = internal.copy, internal.array
local type, ipairs, pairs, tostring = type, ipairs, pairs, tostring
local null = phantom.null
local math, tonumber = math, tonumber

local function given(v) return v ~= nil and v ~= null end

-- one artifact as a connector gives it (SOAR's keys) -> its new id
local function save_one(a, cid)
  if type(a) ~= "table" then return nil, "an artifact must be an object" end
  local ok, msg, id = phantom.add_artifact{
    container = cid,
    raw_data = given(a.data) and a.data or nil,
    cef_data = given(a.cef) and a.cef or nil,
    label = given(a.label) and a.label or nil,
    name = given(a.name) and a.name or nil,
    severity = given(a.severity) and a.severity or nil,
    identifier = given(a.source_data_identifier) and a.source_data_identifier or nil,
    artifact_type = given(a.type) and a.type or nil,
    field_mapping = given(a.cef_types) and a.cef_types or nil,
    tags = given(a.tags) and a.tags or nil,
  }
  if not ok then return nil, msg end
  return id
end

local function save_all(list, cid)
  if type(list) ~= "table" then return {ok = false, message = "artifacts: expected a list"} end
  local ids = array()
  for i, a in ipairs(list) do
    local id, why = save_one(a, cid)
    if not id then return {ok = false, message = ("artifact %d: %s"):format(i, tostring(why)), result = ids} end
    ids[#ids + 1] = id
  end
  return {ok = true, message = ("%d artifacts saved"):format(#ids), result = ids}
end

local calls = {}

function calls.get_container_info(args, cid)
  local id = given(args.container_id) and math.tointeger(tonumber(args.container_id)) or cid
  local c = internal.stored_container(id)
  if not c then return {ok = false, message = "no container with id " .. tostring(args.container_id)} end
  local info = {}
  for k, v in pairs(c) do
    if k ~= "artifacts" then info[k] = copy(v) end
  end
  return {ok = true, result = info}
end

function calls.save_artifacts(args, cid)
  return save_all(args.artifacts, cid)
end

-- A connector's new container: in luasoar an app run works on its run's
-- container, which takes the artifacts (the container's own fields are left
-- as they are); the answer is that container's id.
function calls.save_container(args, cid)
  local c = args.container
  if type(c) ~= "table" then return {ok = false, message = "container: expected an object"} end
  local r = save_all(given(c.artifacts) and c.artifacts or array(), cid)
  if not r.ok then return r end
  return {ok = true, message = "saved into the run's container " .. tostring(cid), result = cid}
end

function hooks.app_call(name, args, cid)
  local f = calls[name]
  if not f then return {ok = false, message = "unknown call " .. tostring(name)} end
  if type(args) ~= "table" then return {ok = false, message = "arguments: expected an object"} end
  return f(args, cid)
end
