-- 30_container.lua: the container API (reference §5.3).  The engine keeps
-- the current state of each container in its store; the container table a
-- block holds is a snapshot, and get_container returns the current state.
--
-- Without a store (luasoar run, the test kit) the engine's memory is the
-- store: every container a run started on stays there.  Serving, the store
-- (SQLite) is the truth and every change goes to it as it happens: memory
-- keeps only the containers live runs are on (each run's state holds its
-- own; the map's values are weak), and any other container a call names is
-- read back from the store when needed.  So a server's memory follows the
-- runs in flight, not every container it ever ran.
local phantom, internal = ...
local array, fail, copy = internal.array, internal.fail, internal.copy
local type, ipairs, pairs, tostring, setmetatable = type, ipairs, pairs, tostring, setmetatable

local function containers()
  local store = internal.store()
  local all = store.containers
  if not all then
    all = {}
    if internal.persisting() then setmetatable(all, {__mode = "v"}) end
    store.containers = all
  end
  return all
end
internal.live_containers = containers

-- The current state of container id (nil if there is none): in memory, or
-- (serving) read from the store.
local function stored(id)
  local all = containers()
  local c = all[id]
  if c == nil and type(id) == "number" and math.tointeger(id) and internal.persisting() then
    c = internal.load_stored("container", tostring(math.tointeger(id)))
    if c then all[id] = c end
  end
  return c
end
internal.stored_container = stored

-- The next id of a kind numbered by the engine (note, pin, data): the
-- store's when serving (unique across restarts and servers), else counted.
function internal.next_kept_id(kind)
  local id = internal.new_stored_id(kind)
  if id then return id end
  local store = internal.store()
  local key = "next_" .. kind .. "_id"
  store[key] = (store[key] or 0) + 1
  return store[key]
end

-- A run starts: the store learns its container (the first run's copy wins),
-- and the run's scope is the artifacts it has now.
-- (Serving, the store is the truth: the container a run starts with is the
-- current one.)  A run started with scope_list sees those artifacts only.
function internal.container_started(st, container)
  st.container = container -- the snapshot the run's blocks hold
  local all = containers()
  local c = all[container.id]
  if not c or internal.persisting() then
    c = copy(container)
    all[container.id] = c
  end
  st.stored_container = c -- serving: what keeps it in memory while the run lives
  local ids = {}
  if st.scope_list then
    for _, id in ipairs(st.scope_list) do ids[id] = true end
  else
    for _, a in ipairs(c.artifacts or {}) do ids[a.id] = true end
  end
  st.scope_ids = ids
end

-- The store keeps the container (without its artifacts, kept one by one).
local function changed(c)
  if not internal.persisting() then return end
  local head = {}
  for k, v in pairs(c) do
    if k ~= "artifacts" then head[k] = v end
  end
  internal.persist("container", tostring(c.id), head)
end
internal.container_changed = changed

-- The stored container a call names: a container table, an id, or nothing
-- (the run's own).
local function target(fname, c)
  local id = c
  if type(c) == "table" then id = c.id end
  if id == nil then id = internal.state(fname).container_id end
  local c = stored(id)
  if not c then fail(fname, "no container with id %s", tostring(id)) end
  return c
end

local function setter(fname, field, arg)
  local positional, allowed = {"container", arg}, {"container", arg, "trace"}
  return function(...)
    local kw = internal.kwargs(fname, positional, allowed, ...)
    local v = kw[arg]
    if type(v) ~= "string" then fail(fname, "argument '%s': expected a string, got %s", arg, type(v)) end
    local c = target(fname, kw.container)
    c[field] = v
    changed(c)
    return true, fname:sub(9) .. " done"
  end
end

phantom.set_severity = setter("phantom.set_severity", "severity", "severity")
phantom.set_status = setter("phantom.set_status", "status", "status")
phantom.set_label = setter("phantom.set_label", "label", "label")
phantom.set_sensitivity = setter("phantom.set_sensitivity", "sensitivity", "sensitivity")
phantom.set_owner = setter("phantom.set_owner", "owner_name", "user")
phantom.set_phase = setter("phantom.set_phase", "current_phase", "phase")

--- get_container(id or container) -> the container as stored now (a copy).
function phantom.get_container(...)
  local kw = internal.kwargs("phantom.get_container", {"container_id"}, {"container_id", "container"}, ...)
  local id = type(kw.container_id) == "table" and kw.container_id.id or kw.container_id
             or (kw.container and kw.container.id) or internal.state("phantom.get_container").container_id
  return copy(stored(id))
end

--- close(container): status "closed".
function phantom.close(...)
  local kw = internal.kwargs("phantom.close", {"container"}, {"container", "trace"}, ...)
  local c = target("phantom.close", kw.container)
  c.status = "closed"
  changed(c)
  return true, "closed"
end

--- update(container, {field = value, ...}): change fields of the container.
function phantom.update(...)
  local kw = internal.kwargs("phantom.update", {"container", "update_dict"}, {"container", "update_dict", "trace"}, ...)
  local d = kw.update_dict
  if type(d) ~= "table" then fail("phantom.update", "argument 'update_dict': expected a table of fields") end
  local c = target("phantom.update", kw.container)
  for k, v in pairs(internal.snapshot("phantom.update", d)) do
    if k == "id" or k == "artifacts" then fail("phantom.update", "field '%s' cannot be updated", k) end
    c[k] = v
  end
  changed(c)
  return true, "updated"
end

local function tag_op(fname, add)
  return function(...)
    local kw = internal.kwargs(fname, {"container", "tags"}, {"container", "tags", "trace"}, ...)
    local tags = kw.tags
    if type(tags) == "string" then tags = {tags} end
    if type(tags) ~= "table" then fail(fname, "argument 'tags': expected a list of tags") end
    local c = target(fname, kw.container)
    local current = c.tags or array()
    local out = array()
    local drop = {}
    for _, t in ipairs(tags) do drop[t] = true end
    for _, t in ipairs(current) do
      if not drop[t] then out[#out + 1] = t end
    end
    if add then
      for _, t in ipairs(tags) do out[#out + 1] = tostring(t) end
    end
    c.tags = out
    changed(c)
    return true, fname:sub(9) .. " done"
  end
end
phantom.add_tags = tag_op("phantom.add_tags", true)
phantom.remove_tags = tag_op("phantom.remove_tags", false)

--- comment(container, comment)
function phantom.comment(...)
  local kw = internal.kwargs("phantom.comment", {"container", "comment"}, {"container", "comment", "trace"}, ...)
  local text = internal.check("phantom.comment", kw, "comment", "string")
  local c = target("phantom.comment", kw.container)
  c.comments = c.comments or array()
  c.comments[#c.comments + 1] = text
  changed(c)
  return true, "comment added"
end

--- add_note{container, title, content, note_type, note_format} -> ok, message, note_id
function phantom.add_note(...)
  local A = {"container", "note_type", "title", "content", "note_format", "task_id", "trace"}
  local kw = internal.kwargs("phantom.add_note", A, A, ...)
  local c = target("phantom.add_note", kw.container)
  local note_id = internal.next_kept_id("note")
  c.notes = c.notes or array()
  c.notes[#c.notes + 1] = {id = note_id, title = kw.title and tostring(kw.title) or "",
                           content = kw.content and tostring(kw.content) or "",
                           note_type = kw.note_type or "general", note_format = kw.note_format or "markdown"}
  changed(c)
  return true, "note added", note_id
end

--- add_artifact{container, raw_data, cef_data, label, name, severity,
--- identifier, artifact_type, field_mapping, run_automation}
--- -> ok, message, artifact_id.  The new artifact is outside the run's scope
--- ("new"); scope = "all" sees it.
function phantom.add_artifact(...)
  local A = {"container", "raw_data", "cef_data", "label", "name", "severity", "identifier", "artifact_type",
             "field_mapping", "trace", "run_automation", "tags"}
  local kw = internal.kwargs("phantom.add_artifact", A, A, ...)
  local c = target("phantom.add_artifact", kw.container)
  if kw.cef_data ~= nil and type(kw.cef_data) ~= "table" then
    fail("phantom.add_artifact", "argument 'cef_data': expected a table")
  end
  local id = internal.new_stored_id("artifact") -- serving: the store numbers them
  if not id then -- above every id seen or given
    local store = internal.store()
    local max = store.last_artifact_id or 0
    for _, other in pairs(containers()) do
      for _, a in ipairs(other.artifacts or {}) do
        if type(a.id) == "number" and a.id > max then max = a.id end
      end
    end
    id = max + 1
    store.last_artifact_id = id
  end
  local a = internal.snapshot("phantom.add_artifact", {
    id = id, container = c.id, name = kw.name, label = kw.label, severity = kw.severity,
    source_data_identifier = kw.identifier, type = kw.artifact_type,
    cef = kw.cef_data or {}, cef_types = kw.field_mapping or {}, data = kw.raw_data or {},
    tags = kw.tags or array(),
  })
  c.artifacts = c.artifacts or array()
  c.artifacts[#c.artifacts + 1] = a
  c.artifact_count = #c.artifacts
  if internal.persisting() then internal.persist("artifact", tostring(id), a) end
  return true, "artifact added", id
end

