-- 60_recover.lua: a run resumed after the engine restarted (luasoar serve).
-- The store says what the run had done; this puts the run back where it was:
-- run data, the results of delivered actions (for datapaths and
-- completed()), and for everything still pending:
--   - an action whose app runs all have results: its callback is called
--     (again, if it had started before the crash: a callback may run twice
--     across a crash, never zero times);
--   - an action with app runs that had no result: run again when the action
--     is idempotent on every asset (or never started: delayed, awaiting
--     approval), else those app runs fail with "interrupted by engine
--     restart" and the callback gets that;
--   - prompts keep their deadlines; custom functions in flight run again;
--     child playbooks are waited for (they are recovered too).
-- A callback that was an anonymous function cannot be found again: the run
-- fails, saying so.
local phantom, internal = ...
local hooks = internal.hooks
local array, field = internal.array, internal.field
local INTERRUPTED = "interrupted by engine restart"

local function callback_of(a, what)
  if a.callback == nil or a.callback == internal.json.null then return nil end
  if a.callback == "(anonymous)" then
    error(("cannot resume after a restart: the callback of %s '%s' was an anonymous function"):format(what, a.name), 0)
  end
  local cb = internal.global(a.callback)
  if cb == nil then
    error(("cannot resume after a restart: callback '%s' of %s '%s' is no longer defined"):format(a.callback, what,
          a.name), 0)
  end
  return cb
end

local function null_to_nil(v)
  if v == internal.json.null then return nil end
  return v
end

-- The results list an action run had, with failed elements for app runs
-- that never finished.
local function results_of(a, interrupted)
  local by_asset = {}
  for _, r in ipairs(a.results or {}) do
    if r.result ~= internal.json.null then by_asset[r.asset] = r.result end
  end
  local out = array()
  for _, asset in ipairs(a.assets or {}) do
    local el = by_asset[asset]
    if not el and interrupted then
      local ars = array()
      for i, p in ipairs(a.parameters or {}) do
        ars[i] = {status = "failed", message = INTERRUPTED, data = array(), summary = {}, parameter = p}
      end
      el = {action = a.action, asset = asset, name = a.name, action_run_id = a.id, status = "failed",
            message = INTERRUPTED, summary = {total_objects = #ars, total_objects_successful = 0},
            action_results = ars}
    end
    if el then out[#out + 1] = el end
  end
  return out
end

local function deliver(st, a, cb, results)
  local success = false
  for _, el in ipairs(results) do success = success or el.status == "success" end
  if hooks.act_done(st, a.name, a.id, results) and cb then
    cb({action = {action_run_id = a.id, action_name = a.action, action = a.action, name = a.name},
        success = success, container = st.container, results = results, handle = null_to_nil(a.handle)})
  end
  internal.persist("delivered", tostring(a.id), success)
end

local function recover_action(st, a)
  if a.delivered == 1 then -- done before the crash: its results are data now
    internal.started(st, "action", a.name)
    hooks.act_done(st, a.name, a.id, results_of(a, false))
    return
  end
  local cb = callback_of(a, "action")
  local have, missing, rerun = 0, 0, true
  local finished = {}
  for _, r in ipairs(a.results or {}) do
    if r.result ~= internal.json.null then finished[r.asset] = true end
  end
  for _, asset in ipairs(a.assets or {}) do
    if finished[asset] then have = have + 1 else missing = missing + 1 end
    -- running it again runs it on every asset, the finished ones too
    rerun = rerun and internal.idempotent(a.action, asset)
  end
  -- its app runs never went (delayed, or waiting for its reviewer): it
  -- starts again, asking the reviewer again
  local never = a.released ~= 1
  if missing > 0 and (rerun or never) then
    internal.persist("superseded", tostring(a.id), true) -- the new action run replaces it
    phantom.act(a.action, {parameters = a.parameters, assets = a.assets, callback = cb, name = a.name,
                           handle = null_to_nil(a.handle), reviewer = never and null_to_nil(a.reviewer) or nil,
                           loop_state = null_to_nil(a.loop_state),
                           start_time = null_to_nil(a.start_after) and a.start_after > internal.now() and a.start_after or nil})
    return
  end
  internal.started(st, "action", a.name)
  local results = results_of(a, true)
  internal.schedule(nil, deliver, st, a, cb, results)
end

local function recover_call(st, c)
  local cb = callback_of(c, c.kind == "playbook" and "child playbook" or "custom function")
  internal.persist("call_done", tostring(c.id), c.kind)
  if c.kind == "custom_function" then
    phantom.custom_function{custom_function = c.ref, parameters = c.parameters, name = c.name, callback = cb,
                            handle = null_to_nil(c.handle)}
    return
  end
  local status = null_to_nil(c.child_status)
  if status == nil and c.container_id == st.container.id then
    -- the crash came before the child's run was written: it starts now
    phantom.playbook{playbook = c.ref, container = st.container, name = c.name, callback = cb,
                     inputs = null_to_nil(c.inputs), handle = null_to_nil(c.handle)}
    return
  end
  internal.started(st, "playbook", c.name)
  local entry = {name = c.name, callback = cb, handle = null_to_nil(c.handle), id = c.child_run_id}
  if status == "running" then -- the child is recovered too: wait for it
    local token = internal.hold()
    field(st, "children")[token] = entry
    if not internal.link_child(c.child_run_id, token) then
      internal.cancel(token)
      field(st, "children")[token] = nil
      local key = "lost:" .. c.id
      field(st, "children")[key] = entry
      internal.schedule(nil, hooks.child_done, key, nil, true, "the child run could not be recovered")
    end
  else
    local key = "ended:" .. c.id
    field(st, "children")[key] = entry
    internal.schedule(nil, hooks.child_done, key,
                      {run_id = c.child_run_id, outputs = null_to_nil(c.child_outputs) or {}},
                      status ~= "success", status == nil and INTERRUPTED .. ": the child run had not started"
                        or null_to_nil(c.child_message) or "")
  end
end

local function recover_prompt(st, p)
  local cb = callback_of(p, p.type or "prompt")
  internal.started(st, "action", p.name)
  local remaining = math.max(0, (p.deadline or 0) - internal.now())
  internal.ask_prompt(st, p, remaining / 60, internal.prompt_done(st, p, cb))
end

-- On the run's thread, after the playbook's top level, instead of on_start.
function hooks.run_recover(st)
  local rec = st.recovery
  st.recovery = nil
  st.discontinued = rec.discontinued == 1 or nil
  for k, v in pairs(rec.run_data or {}) do field(st, "run_data")[k] = v end
  local actions = rec.actions or {}
  for _, a in ipairs(actions) do recover_action(st, a) end
  for _, c in ipairs(rec.calls or {}) do recover_call(st, c) end
  for _, p in ipairs(rec.prompts or {}) do
    -- an approval belongs to its action, which asks again when it starts again
    if p.type ~= "approval" then recover_prompt(st, p) end
  end
  if rec.started ~= 1 and #actions == 0 and #(rec.calls or {}) == 0 then
    -- it had started nothing: on_start runs again
    local on_start = internal.global("on_start")
    if type(on_start) ~= "function" then error("the playbook defines no on_start(container)", 0) end
    on_start(st.container)
  end
end
