-- 35_misc.lua: the smaller calls real playbooks make (reference §5.3, §5.5,
-- §5.6): pins, promote, notes, assets by action, network helpers, REST URL
-- builders, global key/value data.  Each behaves as the reference describes,
-- against the engine's store instead of a SOAR server.
local phantom, internal = ...
local json = internal.json
local array, fail, check, copy = internal.array, internal.fail, internal.check, internal.copy
local type, ipairs, pairs, tostring = type, ipairs, pairs, tostring

local function container_of(fname, c)
  local id = c
  if type(c) == "table" then id = c.id end
  if id == nil then id = internal.state(fname).container_id end
  local stored = internal.stored_container(id)
  if not stored then fail(fname, "no container with id %s", tostring(id)) end
  return stored
end

local changed = internal.container_changed

local next_id = internal.next_kept_id

-- The container that holds pin id: among those in memory, else (serving)
-- the one the store says.
local function pin_container(id)
  for _, c in pairs(internal.live_containers()) do
    for i, p in ipairs(c.pins or {}) do
      if p.id == id then return c, i end
    end
  end
  if math.type(id) ~= "integer" or not internal.persisting() then return nil end
  local cid = internal.load_stored("pin", tostring(id))
  local c = cid and internal.stored_container(cid)
  for i, p in ipairs(c and c.pins or {}) do
    if p.id == id then return c, i end
  end
end

-- ---- pins ----

local PIN = {"container", "message", "data", "pin_type", "pin_style", "name", "trace"}

--- pin{container, message, data, pin_type, pin_style, name} -> ok, message, pin_id
function phantom.pin(...)
  local kw = internal.kwargs("phantom.pin", PIN, PIN, ...)
  local c = container_of("phantom.pin", kw.container)
  local id = next_id("pin")
  c.pins = c.pins or array()
  c.pins[#c.pins + 1] = {id = id, message = kw.message and tostring(kw.message) or "",
                         data = kw.data and tostring(kw.data) or "", pin_type = kw.pin_type or "card_medium",
                         pin_style = kw.pin_style or "", name = kw.name}
  changed(c)
  return true, "pin added", id
end

--- update_pin{pin_id, message, data, pin_type, pin_style, name} -> ok, message
function phantom.update_pin(...)
  local A = {"pin_id", "message", "data", "pin_type", "pin_style", "name", "trace"}
  local kw = internal.kwargs("phantom.update_pin", A, A, ...)
  local c, i = pin_container(kw.pin_id)
  if not c then return false, "no pin " .. tostring(kw.pin_id) end
  local p = c.pins[i]
  for _, k in ipairs({"message", "data", "pin_type", "pin_style", "name"}) do
    if kw[k] ~= nil then p[k] = kw[k] end
  end
  changed(c)
  return true, "pin updated"
end

--- delete_pin(pin_id) -> ok, message
function phantom.delete_pin(...)
  local kw = internal.kwargs("phantom.delete_pin", {"pin_id"}, {"pin_id", "trace"}, ...)
  local c, i = pin_container(kw.pin_id)
  if not c then return false, "no pin " .. tostring(kw.pin_id) end
  table.remove(c.pins, i)
  changed(c)
  return true, "pin deleted"
end

--- promote{container, template}: the container becomes a case.
function phantom.promote(...)
  local kw = internal.kwargs("phantom.promote", {"container", "template"}, {"container", "template", "trace"}, ...)
  local c = container_of("phantom.promote", kw.container)
  c.container_type = "case"
  if kw.template ~= nil then c.workflow_name = tostring(kw.template) end
  changed(c)
  return true, "promoted to a case"
end

--- get_notes{container} -> the container's notes
function phantom.get_notes(...)
  local kw = internal.kwargs("phantom.get_notes", {"container"}, {"container", "trace"}, ...)
  return copy(container_of("phantom.get_notes", kw.container).notes or array())
end

--- get_assets{action} -> the names of the assets that can run it (nil if none)
function phantom.get_assets(...)
  local kw = internal.kwargs("phantom.get_assets", {"action"}, {"action", "trace"}, ...)
  check("phantom.get_assets", kw, "action", "string")
  local names = internal.assets_for(kw.action)
  return #names > 0 and array(names) or nil
end

-- ---- network helpers ----

local function ipv4(s)
  local a, b, c, d = tostring(s):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  for _, o in ipairs({a, b, c, d}) do
    if tonumber(o) > 255 then return nil end
  end
  return true
end

local function ipv6(s)
  s = tostring(s)
  if not s:find(":", 1, true) or not s:match("^[%x:%.]+$") or #s > 45 then return false end
  local groups, double = 0, select(2, s:gsub("::", ""))
  if double > 1 then return false end
  for g in s:gmatch("[^:]+") do
    if not (g:match("^%x%x?%x?%x?$") or ipv4(g)) then return false end
    groups = groups + 1
  end
  return groups <= 8
end

--- valid_ip(s) / is_ip(s): an IPv4 or IPv6 address?
function phantom.valid_ip(s) return ipv4(s) ~= nil or ipv6(s) end
phantom.is_ip = phantom.valid_ip

--- valid_net("10.0.0.0/8"): an IPv4 network in CIDR form?
function phantom.valid_net(s)
  local net, bits = tostring(s):match("^([%d%.]+)/(%d+)$")
  return net ~= nil and ipv4(net) ~= nil and tonumber(bits) <= 32
end

--- address_in_network(ip, cidr) -> boolean
function phantom.address_in_network(ip, cidr)
  return internal.in_cidr(ip, cidr) == true
end

-- ---- REST URLs (the engine's own API, see `luasoar serve`) ----

function phantom.get_base_url() return "http://127.0.0.1:8420" end
function phantom.get_rest_base_url() return phantom.get_base_url() .. "/rest/" end

--- build_phantom_rest_url("container", 7) -> ".../rest/container/7" (each part quoted)
function phantom.build_phantom_rest_url(...)
  local parts = {}
  for i = 1, select("#", ...) do
    parts[i] = tostring((select(i, ...))):gsub("[^%w%-_.~]", function(ch) return ("%%%02X"):format(ch:byte()) end)
  end
  return phantom.get_base_url() .. "/rest/" .. table.concat(parts, "/")
end

-- ---- identity ----

function phantom.get_effective_user() return "automation" end
function phantom.get_current_container_id_() return internal.state("phantom.get_current_container_id_").container_id end

-- ---- global key/value data (save_data / get_data) ----

--- save_data(value, key) -> key; get_data(key, clear_data) -> value or nil.
--- Shared by every run: save_object (per container) is the safer choice.
function phantom.save_data(...)
  local kw = internal.kwargs("phantom.save_data", {"value", "key"}, {"value", "key", "auto"}, ...)
  local store = internal.store()
  store.data = store.data or {}
  local key = kw.key
  if key == nil then -- a new key never takes a kept one (kept across a restart too)
    repeat key = tostring(next_id("data")) until store.data[key] == nil
  end
  store.data[key] = internal.snapshot("phantom.save_data", kw.value)
  if internal.persisting() then internal.persist("object", "global\0" .. key, store.data[key]) end
  return key
end

function phantom.get_data(...)
  local kw = internal.kwargs("phantom.get_data", {"key", "clear_data"}, {"key", "clear_data"}, ...)
  local store = internal.store()
  local v = store.data and store.data[kw.key]
  if kw.clear_data and store.data and v ~= nil then
    store.data[kw.key] = nil
    if internal.persisting() then internal.persist("object", "global\0" .. kw.key, nil) end
  end
  return copy(v)
end
