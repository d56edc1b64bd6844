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

-- ---- quotas of shared data ----
--
-- save_data, custom lists and objects outlive the runs that write them and
-- are shared by every run of the engine.  Each key of save_data, each object
-- (container, key) and each custom list counts against the quota of the
-- playbook that last wrote it (--limit shared_bytes=N, default 16 MiB per
-- playbook): writing over another playbook's entry moves it to the writer;
-- deleting it, or writing it smaller, gives the bytes back.  A playbook is
-- named by its path below playbooks/ (without .lua); a custom function counts
-- for the playbook whose run calls it.  The size of an entry is what it holds
-- in memory, estimated the same way every time (so the count survives a
-- restart, where the store's entries are counted as they are read back):
-- 192 bytes and its key, each string its length + 24, each table 56 + 32 per
-- field.  Lists read from custom_lists/ files count for no playbook until one
-- writes them.

local function cost(v)
  local t = type(v)
  if t == "string" then return 24 + #v end
  if t ~= "table" then return 0 end
  local n = 56
  for k, x in next, v do n = n + 32 + cost(k) + cost(x) end
  return n
end

-- (192: what an entry's place in the store and in this count take, measured)
local function entry_cost(key, v) return 192 + #tostring(key) + cost(v) end

local function quotas()
  local store = internal.store()
  local q = store.quotas
  if not q then
    q = {used = {}, owner = {}, bytes = {}} -- used[playbook]; owner[entry], bytes[entry]
    store.quotas = q
  end
  return q
end

-- The playbook the current run counts for.
local function playbook(fname)
  local path = tostring(internal.state(fname).playbook)
  return path:match("^.*/playbooks/(.+)%.lua$") or path:match("^playbooks/(.+)%.lua$") or path:match("^(.+)%.lua$")
         or path
end

local function size(n)
  if n >= 1048576 then return ((n % 1048576 == 0) and "%d MiB" or "%.1f MiB"):format(n / 1048576) end
  if n >= 1024 then return ((n % 1024 == 0) and "%d KiB" or "%.1f KiB"):format(n / 1024) end
  return ("%d bytes"):format(n)
end

-- nil if who may hold entry at bytes, else why not.
local function over_quota(who, entry, bytes)
  local limit = internal.shared_quota()
  if limit <= 0 then return nil end
  local q = quotas()
  local used = q.used[who] or 0
  local replaced = q.owner[entry] == who and q.bytes[entry] or 0 -- its own entry, written again
  if used - replaced + bytes <= limit then return nil end
  return ("the playbook's shared data quota is full (%s: %s in use by '%s', this needs %s%s;"
          .. " --limit shared_bytes=N raises it)"):format(size(limit), size(used), who, size(bytes),
                                                          replaced > 0 and (" in place of " .. size(replaced)) or "")
end

-- entry ("object\0container\0key", "list\0name") is now who's at bytes (who
-- nil: it is gone, or counts for nobody).
local function account(entry, who, bytes, persist)
  local q = quotas()
  local old = q.owner[entry]
  if old then
    local left = q.used[old] - q.bytes[entry]
    q.used[old] = left > 0 and left or nil
  end
  q.owner[entry], q.bytes[entry] = who, who and bytes or nil
  if who then q.used[who] = (q.used[who] or 0) + bytes end
  if persist and (old ~= who) and internal.persisting() then internal.persist("owner", entry, who) end
end

local function object_entry(container_key, key) return "object\0" .. tostring(container_key) .. "\0" .. tostring(key) end

-- ---- global key/value data (save_data / get_data) ----

--- save_data(value, key) -> key; get_data(key, clear_data) -> value or nil.
--- Shared by every run: save_object (per container) is the safer choice.
--- Past the playbook's quota save_data raises, naming it, and keeps nothing.
function phantom.save_data(...)
  local kw = internal.kwargs("phantom.save_data", {"value", "key"}, {"value", "key", "auto"}, ...)
  local store = internal.store()
  store.data = store.data or {}
  local key = kw.key
  if key == nil then -- a new key never takes a kept one (kept across a restart too)
    repeat key = tostring(next_id("data")) until store.data[key] == nil
  end
  local v = internal.snapshot("phantom.save_data", kw.value)
  local entry, who = object_entry("global", key), playbook("phantom.save_data")
  local bytes = entry_cost(key, v)
  if v ~= nil then
    local why = over_quota(who, entry, bytes)
    if why then fail("phantom.save_data", "%s", why) end
  end
  store.data[key] = v
  if internal.persisting() then internal.persist("object", "global\0" .. key, v) end
  account(entry, v ~= nil and who or nil, bytes, true)
  return key
end

function phantom.get_data(...)
  local kw = internal.kwargs("phantom.get_data", {"key", "clear_data"}, {"key", "clear_data"}, ...)
  local store = internal.store()
  local v = store.data and store.data[kw.key]
  if kw.clear_data and store.data and v ~= nil then
    store.data[kw.key] = nil
    if internal.persisting() then internal.persist("object", "global\0" .. kw.key, nil) end
    account(object_entry("global", kw.key), nil, 0, true)
  end
  return copy(v)
end

-- ---- objects and custom lists (00_base.lua, 20_decisions.lua) under the quota ----

local OBJ = {"key", "value", "auto_delete", "container_id", "playbook_name", "repo_name"}

local function objects_of(cid)
  local all = internal.store().objects
  return all and all[cid or "global"]
end

-- An empty table per container a call only looked at is not kept.
local function drop_empty(cid)
  local all, k = internal.store().objects, cid or "global"
  if all and all[k] and next(all[k]) == nil then all[k] = nil end
end

--- save_object: past the playbook's quota it raises, naming it, and the
--- object keeps its previous value.
local save_object = phantom.save_object
function phantom.save_object(...)
  local kw = internal.kwargs("phantom.save_object", OBJ, OBJ, ...)
  local cid = kw.container_id or internal.state("phantom.save_object").container_id
  local objs = objects_of(cid)
  local before = objs and objs[kw.key]
  local r = table.pack(save_object(...))
  local now = objects_of(cid)[kw.key]
  local entry, who = object_entry(cid, kw.key), playbook("phantom.save_object")
  local bytes = entry_cost(kw.key, now)
  local why = over_quota(who, entry, bytes)
  if why then
    objects_of(cid)[kw.key] = before
    drop_empty(cid)
    if internal.persisting() then internal.persist("object", tostring(cid) .. "\0" .. kw.key, before) end
    fail("phantom.save_object", "%s", why)
  end
  account(entry, who, bytes, true)
  return table.unpack(r, 1, r.n)
end

local clear_object = phantom.clear_object
function phantom.clear_object(...)
  local kw = internal.kwargs("phantom.clear_object", OBJ, OBJ, ...)
  local r = table.pack(clear_object(...))
  local cid = kw.container_id or internal.state("phantom.clear_object").container_id
  account(object_entry(cid, kw.key), nil, 0, true)
  drop_empty(cid)
  return table.unpack(r, 1, r.n)
end

local get_object = phantom.get_object
function phantom.get_object(...)
  local kw = internal.kwargs("phantom.get_object", OBJ, OBJ, ...)
  local r = table.pack(get_object(...))
  drop_empty(kw.container_id or internal.state("phantom.get_object").container_id)
  return table.unpack(r, 1, r.n)
end

local LIST = {"list_name", "values", "value", "case_sensitive", "substring", "column", "remove_all",
              "remove_row", "trace"}

local function list_rows(name)
  local lists = internal.store().lists
  return lists and lists[name]
end

--- add_list: past the playbook's quota it returns false and why (SOAR's
--- add_list answers success, message), logs the reason as an error, and the
--- list is left as it was.
local add_list = phantom.add_list
function phantom.add_list(...)
  local kw = internal.kwargs("phantom.add_list", {"list_name", "values"}, LIST, ...)
  local name = kw.list_name
  local existed = list_rows(name) ~= nil
  local r = table.pack(add_list(...))
  local rows = list_rows(name)
  if type(name) ~= "string" or not rows or #rows == 0 then return table.unpack(r, 1, r.n) end
  local entry, who = "list\0" .. name, playbook("phantom.add_list")
  local q = quotas()
  local bytes = q.bytes[entry] and (q.bytes[entry] + 32 + cost(rows[#rows])) or entry_cost(name, rows)
  local why = over_quota(who, entry, bytes)
  if why then
    rows[#rows] = nil
    if not existed then internal.store().lists[name] = nil end
    if internal.persisting() then internal.persist("list", name, list_rows(name)) end
    internal.log("error", "phantom.add_list: " .. why)
    return false, why
  end
  account(entry, who, bytes, true)
  return table.unpack(r, 1, r.n)
end

-- Rows removed: the list's count shrinks, and stays with its playbook.
local delete_from_list = phantom.delete_from_list
function phantom.delete_from_list(...)
  local kw = internal.kwargs("phantom.delete_from_list", {"list_name", "value", "column", "remove_all", "remove_row"},
                             LIST, ...)
  local r = table.pack(delete_from_list(...))
  local entry = "list\0" .. tostring(kw.list_name)
  local q = quotas()
  local rows = list_rows(kw.list_name)
  if q.owner[entry] and rows then account(entry, q.owner[entry], entry_cost(kw.list_name, rows), false) end
  return table.unpack(r, 1, r.n)
end

local remove_list = phantom.remove_list
function phantom.remove_list(...)
  local kw = internal.kwargs("phantom.remove_list", {"list_name"}, LIST, ...)
  local r = table.pack(remove_list(...))
  if type(kw.list_name) == "string" and not list_rows(kw.list_name) then account("list\0" .. kw.list_name, nil, 0, true) end
  return table.unpack(r, 1, r.n)
end

-- At start: what the files and the store hold counts for the playbook the
-- store says wrote it (the hooks get it as one more argument).
local hooks = internal.hooks
local seed_list, restore_object = hooks.seed_list, hooks.restore_object
function hooks.seed_list(name, text, owner, ...)
  seed_list(name, text, owner, ...)
  local who = owner ~= "" and owner or nil
  account("list\0" .. name, who, who and entry_cost(name, list_rows(name)) or 0, false)
end

function hooks.restore_object(container_key, key, text, owner, ...)
  restore_object(container_key, key, text, owner, ...)
  local store = internal.store()
  local v
  if container_key == "global" then
    v = store.data and store.data[key]
  else
    local objs = objects_of(tonumber(container_key) or container_key)
    v = objs and objs[key]
  end
  local who = owner ~= "" and v ~= nil and owner or nil
  account(object_entry(container_key, key), who, who and entry_cost(key, v) or 0, false)
end
