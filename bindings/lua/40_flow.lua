-- 40_flow.lua: the asynchronous API written in Lua (reference §5.1.4-6,
-- §5.1.12, §5.1.14): custom functions, child playbooks, prompts and
-- approvals, LoopState.  Each keeps its run open through internal.schedule /
-- internal.hold, and calls its callback on the run's thread, later, never
-- from inside the call that started it.
local phantom, internal = ...
local json = internal.json
local array, fail, check, field = internal.array, internal.fail, internal.check, internal.field
local hooks = internal.hooks
local type, ipairs, pairs, tostring, pcall = type, ipairs, pairs, tostring, pcall

local function scripts_path(folder, ref)
  return internal.scripts_dir() .. "/" .. folder .. "/" .. ref .. ".lua"
end

-- Call a callback with kwargs, if there is one.
local function call_back(cb, kw)
  if cb ~= nil then cb(kw) end
end

-- "repo/name" -> the references to try under a folder of the scripts
local function candidates(ref)
  local repo, name = ref:match("^([^/]+)/(.+)$")
  return repo and {ref, name} or {ref}
end

-- fn(folder, ref, ...) of the first candidate reference that names a file
-- under folder (internal.load_chunk, internal.start_child), or nil and the
-- error for the call: a reference that could lead out of its folder is
-- refused naming the reference, never a file's content.
local function by_reference(what, folder, ref, fn, ...)
  local out, why
  for _, r in ipairs(candidates(ref)) do
    out, why = fn(folder, r, ...)
    if out or not why:match("^no file") then break end
  end
  if out then return out end
  if why:match("^no file") then return nil, ("unknown %s '%s' (no file %s)"):format(what, ref, scripts_path(folder, ref)) end
  local refused = why:match("^refused: (.*)")
  if refused then
    local quoted = ("%q"):format(ref):gsub("\\\n", "\\n")
    return nil, ("%s %s refused: %s"):format(what, quoted, refused)
  end
  return nil, ("%s '%s' does not %s: %s"):format(what, ref, what == "playbook" and "compile" or "load", why)
end

-- ---- custom functions ----

local CF = {"custom_function", "parameters", "name", "callback", "handle"}

--- custom_function{custom_function = "repo/name", parameters = {{...}, ...},
--- name, callback}: scripts/custom_functions/repo/name.lua returns a
--- function(params) -> outputs; it runs once per parameter set, and the
--- callback once after all.  Returns the custom function run's id.
function phantom.custom_function(...)
  local fname = "phantom.custom_function"
  local kw = internal.kwargs(fname, CF, CF, ...)
  local ref = check(fname, kw, "custom_function", "string")
  local params = kw.parameters or {{}}
  if type(params) ~= "table" then fail(fname, "argument 'parameters': expected a list of tables") end
  if #params == 0 and next(params) ~= nil then params = {params} end
  for i, p in ipairs(params) do
    if type(p) ~= "table" then fail(fname, "argument 'parameters': item %d: expected a table", i) end
  end
  if kw.callback ~= nil then check(fname, kw, "callback", "callable") end
  local name = kw.name or ref
  if type(name) ~= "string" then fail(fname, "argument 'name': expected a string") end
  local fn, why
  if internal.stub_call("custom_function", ref, "null") then -- a test stands in
    fn = function(p)
      local out = json.decode(internal.stub_call("custom_function", ref, json.encode(p)))
      if type(out) == "table" and out.__error then error(out.__error, 0) end
      return out
    end
  end
  if not fn then
    fn, why = by_reference("custom function", "custom_functions", ref, internal.load_chunk)
    if not fn then fail(fname, "%s", why) end
  end
  if type(fn) ~= "function" then
    fail(fname, "custom function '%s' must return a function(parameters), returned %s", ref, type(fn))
  end
  local st = internal.state(fname)
  if st.discontinued then
    internal.log("error", ("phantom.custom_function: '%s' not started: the run was discontinued"):format(name))
    return nil
  end
  local id = internal.next_id()
  params = internal.snapshot(fname, params)
  internal.started(st, "custom_function", name)
  if internal.persisting() then
    internal.persist("call", tostring(id), {kind = "custom_function", name = name, ref = ref, parameters = params,
      callback = kw.callback and (internal.global_name(kw.callback) or "(anonymous)"), handle = kw.handle})
  end
  internal.schedule(nil, function()
    local results, ok_any = array(), false
    for i, p in ipairs(params) do
      local ok, out = pcall(fn, p)
      if ok then
        ok_any = true
        results[i] = {status = "success", message = "", data = out == nil and {} or out, parameter = p}
      else
        local msg = tostring(out)
        internal.log("error", ("custom function '%s' (%s) failed: %s"):format(name, ref, msg))
        results[i] = {status = "failed", message = msg, data = {}, parameter = p}
      end
    end
    internal.done(st, "custom_function", name)
    local per = field(st, "cf_results")
    per[name] = per[name] or {}
    table.insert(per[name], results)
    if not st.discontinued then
      call_back(kw.callback, {
        action = {action_run_id = id, action_name = "custom function", action = "custom function", name = name},
        success = ok_any, container = st.container, results = results, handle = kw.handle,
        custom_function = {name = name, custom_function = ref, custom_function_run_id = id},
      })
    end
    if internal.persisting() then internal.persist("call_done", tostring(id), "custom_function") end
  end)
  return id
end

-- ---- child playbooks ----

local PB = {"playbook", "container", "name", "callback", "inputs", "handle", "show_debug", "scope"}

--- playbook{playbook = "repo/name", container, name, callback, inputs = {k =
--- {...}}}: runs the child on the container; its callback comes after the
--- child's on_finish, and the parent waits for it.  Returns the child run's id.
function phantom.playbook(...)
  local fname = "phantom.playbook"
  local kw = internal.kwargs(fname, PB, PB, ...)
  local ref = check(fname, kw, "playbook", "string")
  if kw.callback ~= nil then check(fname, kw, "callback", "callable") end
  if kw.inputs ~= nil then check(fname, kw, "inputs", "table") end
  local name = kw.name or ref
  local st = internal.state(fname)
  if st.discontinued then
    internal.log("error", ("phantom.playbook: '%s' not started: the run was discontinued"):format(name))
    return nil
  end
  local container = kw.container or st.container
  if type(container) ~= "table" then fail(fname, "argument 'container': expected the container") end
  local token = internal.hold()
  local stubbed = internal.stub_call("playbook", ref, json.encode(kw.inputs or {}))
  if stubbed then -- a test stands in: the child "ends" with these outputs
    local out = json.decode(stubbed)
    local child = {run_id = internal.next_id(), outputs = type(out) == "table" and out or {}}
    internal.started(st, "playbook", name)
    field(st, "children")[token] = {name = name, callback = kw.callback, handle = kw.handle}
    internal.cancel(token)
    internal.schedule(nil, hooks.child_done, token, child, false, "")
    return child.run_id
  end
  local child_id, why = by_reference("playbook", "playbooks", ref, internal.start_child,
                                     json.encode(container), json.encode(kw.inputs or {}), name, token)
  if not child_id then
    internal.cancel(token)
    fail(fname, "%s", why)
  end
  internal.started(st, "playbook", name)
  field(st, "children")[token] = {name = name, callback = kw.callback, handle = kw.handle, id = child_id}
  if internal.persisting() then
    internal.persist("call", tostring(child_id), {kind = "playbook", name = name, ref = ref, child_run_id = child_id,
      container_id = container.id, inputs = kw.inputs or {}, callback = kw.callback and (internal.global_name(kw.callback) or "(anonymous)"), handle = kw.handle})
  end
  return child_id
end

-- The child ended (or could not start: child nil, why).
function hooks.child_done(token, child, failed, why)
  local st = internal.state("phantom.playbook")
  local c = field(st, "children")[token]
  if not c then return end
  field(st, "children")[token] = nil
  internal.done(st, "playbook", c.name)
  local outputs = child and child.outputs or {}
  field(st, "playbook_outputs")[c.name] = outputs
  local ok = child ~= nil and not failed
  if not ok then
    internal.log("error", ("child playbook '%s' %s: %s"):format(c.name, child and "failed" or "did not start", why))
  end
  if internal.persisting() and c.id then internal.persist("call_done", tostring(c.id), "playbook") end
  if st.discontinued then return end
  call_back(c.callback, {
    action = {action_run_id = child and child.run_id or c.id, action_name = "playbook", action = "playbook", name = c.name},
    success = ok, container = st.container,
    results = array{{status = ok and "success" or "failed", message = ok and "" or why,
                     playbook_run_id = child and child.run_id, outputs = outputs}},
    handle = c.handle,
  })
end

--- save_playbook_output_data{output = {key = value_or_list}}: this run's
--- outputs, read by the parent as NAME:playbook_output:key.
function phantom.save_playbook_output_data(...)
  local kw = internal.kwargs("phantom.save_playbook_output_data", {"output"}, {"output"}, ...)
  check("phantom.save_playbook_output_data", kw, "output", "table")
  local st = internal.state("phantom.save_playbook_output_data")
  local out = field(st, "outputs")
  for k, v in pairs(internal.snapshot("phantom.save_playbook_output_data", kw.output)) do out[k] = v end
  if internal.persisting() then internal.persist("outputs", tostring(st.run_id), out) end
  return true
end

-- ---- prompts and approvals ----

local PROMPT = {"container", "user", "role", "message", "respond_in_mins", "name", "parameters",
                "response_types", "options", "separator", "callback", "handle", "trace"}

-- Ask for an answer; deliver(responses or nil) runs once, at the answer or
-- at the deadline, whichever comes first.
-- An answer of null means none will come: the prompt times out at once.
local function ask(st, prompt, minutes, deliver)
  local box = {}
  local id = prompt.action_run_id
  local function finish(via, responses)
    if box.done then return end
    box.done = true
    field(st, "waiting")[id] = nil
    for _, other in ipairs({"timeout", "answer"}) do
      if other ~= via and box[other] then internal.cancel(box[other]) end
    end
    if internal.persisting() then
      internal.persist("prompt_done", tostring(id), {status = responses and "answered" or "timed out",
                                                     responses = responses})
    end
    deliver(responses)
  end
  -- an answer may also come later from outside (POST /rest/prompt/ID/answer)
  field(st, "waiting")[id] = finish
  prompt.deadline = internal.now() + minutes * 60
  if internal.persisting() then internal.persist("prompt", tostring(id), prompt) end
  local answer, delay = internal.ask(json.encode(prompt))
  local responses
  if answer ~= nil then
    responses = json.decode(answer)
    if responses == json.null then responses = nil end
    if type(responses) ~= "table" and responses ~= nil then responses = {responses} end
    box.answer = internal.schedule(delay and delay > 0 and delay or nil, finish, "answer", responses)
  end
  if responses ~= nil or answer == nil then
    box.timeout = internal.schedule(minutes * 60, finish, "timeout", nil)
  end
end

local prompt_done

local function prompt(fname, kind, ...)
  local kw = internal.kwargs(fname, PROMPT, PROMPT, ...)
  local st = internal.state(fname)
  local name = kw.name or kind
  if type(name) ~= "string" then fail(fname, "argument 'name': expected a string") end
  if st.discontinued then
    internal.log("error", ("%s: '%s' not started: the run was discontinued"):format(fname, name))
    return nil
  end
  local minutes = kw.respond_in_mins or 30
  if type(minutes) ~= "number" or minutes <= 0 then
    fail(fname, "argument 'respond_in_mins': expected a positive number of minutes")
  end
  if kw.callback ~= nil then check(fname, kw, "callback", "callable") end
  local message = kw.message or ""
  if type(message) ~= "string" then fail(fname, "argument 'message': expected a string") end
  if kw.parameters then
    message = phantom.format{container = kw.container, template = message, parameters = kw.parameters,
                             separator = kw.separator or ", ", drop_none = true}
  end
  local id = internal.next_id()
  local questions = kw.response_types or (kw.options and {{prompt = message, options = kw.options}}) or {}
  local p = {type = kind, name = name, message = message, user = kw.user, role = kw.role,
             respond_in_mins = minutes, questions = questions, action_run_id = id, run_id = st.run_id,
             callback = kw.callback and (internal.global_name(kw.callback) or "(anonymous)"), handle = kw.handle}
  internal.started(st, "action", name)
  ask(st, p, minutes, prompt_done(st, p, kw.callback))
  return id
end

-- What happens when a prompt is answered or times out.
function prompt_done(st, p, callback)
  local kind, name, id = p.type, p.name, p.action_run_id
  return function(responses)
    local ok = responses ~= nil
    local summary = {responses = array(responses or {}), response = responses and responses[1] or nil}
    local results = array{{
      action = kind, app = "prompt", asset = p.user or p.role, name = name, status = ok and "success" or "failed",
      message = ok and "answered" or "timed out", app_run_id = id, action_run_id = id,
      summary = {total_objects = 1, total_objects_successful = ok and 1 or 0},
      action_results = array{{status = ok and "success" or "failed", message = ok and "answered" or "timed out",
                              data = array{{responses = summary.responses}}, summary = summary,
                              parameter = {message = p.message, user = p.user, role = p.role}}},
    }}
    if hooks.act_done(st, name, id, results) then
      call_back(callback, {
        action = {action_run_id = id, action_name = kind, action = kind, name = name},
        success = ok, container = st.container, results = results, handle = p.handle,
      })
    end
  end
end
internal.prompt_done = prompt_done
internal.ask_prompt = ask

--- prompt2{container, user, role, message, respond_in_mins = 30, name,
--- parameters, response_types, separator, callback}: pending until answered
--- or timed out; answers in NAME:action_result.summary.responses.<i>.
function phantom.prompt2(...) return prompt("phantom.prompt2", "prompt", ...) end
--- prompt{..., options}: the legacy form; the answer is summary.response.
function phantom.prompt(...) return prompt("phantom.prompt", "prompt", ...) end
--- task{user, message, respond_in_mins, name}: a manual task to acknowledge.
function phantom.task(...) return prompt("phantom.task", "task", ...) end

-- An answer from outside the run (the REST API), on the run's thread.
function hooks.prompt_answer(id, responses)
  local finish = field(internal.state("prompt"), "waiting")[id]
  if not finish then return end
  if type(responses) ~= "table" then responses = {responses} end
  finish("answer", responses)
end

-- An act with a reviewer: its app runs wait for "approve"; anything else,
-- or no answer within the hour, denies it.
local APPROVAL_MINUTES = 60
function hooks.act_approval(st, id, name, action, reviewer)
  local p = {type = "approval", name = name, action = action, reviewer = reviewer, action_run_id = id,
             message = ("approve action '%s' (%s)?"):format(name, action), run_id = st.run_id,
             respond_in_mins = APPROVAL_MINUTES}
  ask(st, p, APPROVAL_MINUTES, function(responses)
    local answer = responses and tostring(responses[1]):lower()
    local ok = answer == "approve" or answer == "approved" or answer == "yes" or answer == "true"
    internal.approve(id, ok, responses and ("denied by " .. reviewer) or ("no approval from " .. reviewer .. " in time"))
  end)
end

-- ---- LoopState ----

-- Every run's loop states share these methods: through a read-only view, so
-- no run can change what another's loop state does (state.__index is nil).
local loop_methods = {}
local LoopState = {__metatable = "LoopState"}

--- phantom.LoopState{state = loop_state_json or table}
function phantom.LoopState(...)
  local kw = internal.kwargs("phantom.LoopState", {"state"}, {"state"}, ...)
  local s = kw.state
  if type(s) == "string" then
    s = json.decode(s)
    if type(s) ~= "table" then fail("phantom.LoopState", "argument 'state': not the JSON of a loop state") end
  elseif type(s) ~= "table" then
    fail("phantom.LoopState", "argument 'state': expected a loop state (table or JSON)")
  end
  local self = setmetatable({}, LoopState)
  for k, v in pairs(s) do self[k] = v end
  self.current_iteration = self.current_iteration or 1
  self.max_iterations = self.max_iterations or 1
  self.first_iteration_time = self.first_iteration_time or internal.now()
  return self
end

--- False once max_iterations is reached, max_ttl has passed, or the exit
--- conditions hold for the results.
function loop_methods:should_continue(kw)
  kw = kw or {}
  if self.current_iteration >= self.max_iterations then return false end
  if self.max_ttl and internal.now() - self.first_iteration_time >= self.max_ttl then return false end
  if self.conditions and #self.conditions > 0 then
    local done = phantom.decision{container = kw.container, action_results = kw.results,
                                  conditions = self.conditions, logical_operator = self.logical_operator or "and"}
    if done then return false end
  end
  return true
end

function loop_methods:increment()
  self.current_iteration = self.current_iteration + 1
end

function loop_methods:to_json()
  local t = {}
  for k, v in pairs(self) do t[k] = v end
  return json.encode(t)
end

LoopState.__index = internal.freeze(loop_methods, "LoopState")
