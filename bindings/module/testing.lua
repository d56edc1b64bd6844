-- luasoar.testing: unit tests for playbooks, with busted.
--
-- A spec creates an engine over a scripts folder (the same engine as
-- production, in-process), stubs the actions it wants to control, runs a
-- playbook on a container to completion on a virtual clock, and reads back
-- what happened: status, log, every action started, every block called with
-- its arguments, the summary.  Runs are deterministic: same ids, same order,
-- same guids every time.
local luasoar = require "luasoar"

local M = {}
local json = {encode = luasoar.json_encode, decode = luasoar.json_decode}
M.json = json
M.null = luasoar.null

-- ---- behaviours of a stub ----

local Behaviour = {__name = "luasoar.testing behaviour"}
local function behaviour(kind, t)
  t.kind = kind
  return setmetatable(t, Behaviour)
end

--- Let the real app run (for one asset when a generic stub covers the action).
M.real = behaviour("real", {})

--- Every parameter set fails with this message.
function M.fail(message)
  return behaviour("fail", {message = message or "failed"})
end

--- The whole app run fails, as when an app crashes: every parameter set gets
--- this message.
function M.app_error(message)
  return behaviour("app_error", {message = message or "app error"})
end

--- One behaviour per call, in order; the last one repeats.
function M.sequence(list)
  assert(type(list) == "table" and #list > 0, "luasoar.testing.sequence: give a non-empty list")
  return behaviour("sequence", {list = list, i = 0})
end

--- The app run finishes after this many seconds of virtual time.
function M.delay(seconds, inner)
  assert(type(seconds) == "number" and seconds >= 0, "luasoar.testing.delay: give seconds >= 0")
  return behaviour("delay", {seconds = seconds, inner = inner or {}})
end

local function copy_result(r)
  local out = {}
  for k, v in pairs(r) do out[k] = v end
  if out.status == nil then out.status = "success" end
  if out.message == nil then out.message = "" end
  return out
end

-- One parameter set through a behaviour: result, delay, or app_error message.
local function resolve(b, param, asset, info)
  if getmetatable(b) == Behaviour then
    if b.kind == "fail" then return {status = "failed", message = b.message}, 0 end
    if b.kind == "app_error" then return nil, 0, b.message end
    if b.kind == "sequence" then
      b.i = math.min(b.i + 1, #b.list)
      return resolve(b.list[b.i], param, asset, info)
    end
    if b.kind == "delay" then
      local r, d, err = resolve(b.inner, param, asset, info)
      return r, d + b.seconds, err
    end
    error("luasoar.testing: the real app cannot stand for a parameter set", 0)
  elseif type(b) == "function" then
    local ok, r = pcall(b, param, asset, info)
    if not ok then return {status = "failed", message = tostring(r)}, 0 end
    if r == nil then r = {} end
    return resolve(r, param, asset, info)
  elseif type(b) == "table" then
    return copy_result(b), 0
  end
  error("luasoar.testing: a stub's behaviour is a function, a result table, fail, app_error, "
        .. "sequence, delay or real; got " .. type(b), 0)
end

local function handler(stub)
  return function(params, asset, info)
    local results, delay = {}, 0
    for i, p in ipairs(params) do
      stub.calls[#stub.calls + 1] = {parameter = p, asset = asset.name, name = info.name,
                                     action_run_id = info.action_run_id}
      local r, d, err = resolve(stub.behaviour, p, asset, info)
      delay = math.max(delay, d)
      if err then return err, delay end
      results[i] = r
    end
    return results, delay
  end
end

-- ---- runs ----

local Run = {}
Run.__index = Run

--- The log's messages, optionally of one level ("debug" or "error").
function Run:messages(level)
  local out = {}
  for _, e in ipairs(self.log) do
    if not level or e.level == level then out[#out + 1] = e.message end
  end
  return out
end

--- The calls of one block, each the list of its arguments (args[1] is the
--- kwargs table of a block called with one).
function Run:calls_of(block)
  local out = {}
  for _, c in ipairs(self.calls or {}) do
    if c.block == block then out[#out + 1] = c.args end
  end
  return out
end

--- The actions started under this name (the act's name or its action).
function Run:started(name)
  local out = {}
  for _, a in ipairs(self.actions or {}) do
    if a.name == name or a.action == name then out[#out + 1] = a end
  end
  return out
end

local function as_run(report)
  report.run_data = report.run_data or {}
  report.actions = report.actions or {}
  report.calls = report.calls or {}
  return setmetatable(report, Run)
end

-- ---- the engine ----

local Engine = {}
Engine.__index = Engine
local prompt_handler -- below: answers to prompts and approvals

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

local function default_scripts()
  local env = os.getenv("LUASOAR_SCRIPTS")
  if env and env ~= "" then return env end
  if exists("playbooks") then return "." end
  return "scripts"
end

--- lt.engine{scripts = DIR, assets = {name = {app = ..., config = ...}} or FILE,
---           apps = DIR, seed = N, real = bool}
--- Assets given inline may name apps that are not installed: stub their actions.
--- An action that no stub covers fails the run, unless real = true: then its
--- real app runs.
function M.engine(opts)
  opts = opts or {}
  local scripts = opts.scripts or default_scripts()
  local assets_file, assets_json
  if type(opts.assets) == "table" then
    assets_json = json.encode(opts.assets)
  elseif type(opts.assets) == "string" then
    assets_file = opts.assets
  elseif exists(scripts .. "/assets.json") then
    assets_file = scripts .. "/assets.json"
  end
  local c = luasoar.engine{
    apps = opts.apps or (scripts .. "/apps"), assets = assets_file, assets_json = assets_json,
    custom_lists = opts.custom_lists or (scripts .. "/custom_lists"), scripts = scripts,
    seed = opts.seed or 0, virtual_clock = true, record = true, strict = not opts.real,
  }
  local eng = setmetatable({c = c, scripts = scripts}, Engine)
  prompt_handler(eng)
  return eng
end

--- eng:stub(action, behaviour) or eng:stub(action, {asset = NAME}, behaviour);
--- eng:stub(action, {real = true}) or eng:stub(action, {asset = NAME, real = true}):
--- the real app runs (as the behaviour lt.real does).
--- Returns the stub; stub.calls lists each parameter set it was given.
function Engine:stub(action, a, b)
  local asset, beh = nil, a
  if b ~= nil then
    asset, beh = type(a) == "table" and a.asset or a, b
  elseif type(a) == "table" and getmetatable(a) == nil and a.real == true then
    asset, beh = a.asset, M.real
  end
  if type(action) ~= "string" then error("stub: the first argument is an action name", 2) end
  if beh == nil then
    error("stub: give a behaviour: a function, a result table, fail(), app_error(), sequence{}, delay() or real "
          .. "(or {real = true})", 2)
  end
  local stub = {action = action, asset = asset, behaviour = beh, calls = {}}
  self.c:stub(action, asset, beh ~= M.real and handler(stub) or nil)
  return stub
end

--- eng:stub_custom_function("repo/name", behaviour): the custom function's
--- outputs per parameter set: a table, a function(params) -> outputs, or
--- lt.fail(message) (that invocation fails).
function Engine:stub_custom_function(ref, beh)
  self.c:stub_named("custom_function", ref, function(params)
    local b = beh
    if type(b) == "function" then b = b(params) end
    if getmetatable(b) == Behaviour and b.kind == "fail" then error(b.message, 0) end
    return b
  end)
end

--- eng:stub_playbook("repo/name", outputs or function(inputs) -> outputs):
--- the child playbook does not run; it ends at once with these outputs.
function Engine:stub_playbook(ref, outputs)
  self.c:stub_named("playbook", ref, function(inputs)
    if type(outputs) == "function" then return outputs(inputs) end
    return outputs or {}
  end)
end

function prompt_handler(self)
  if self.answers then return end
  self.answers, self.prompts = {}, {}
  self.c:on_prompt(function(p)
    self.prompts[#self.prompts + 1] = p
    local a = self.answers[p.type == "approval" and ("approval:" .. p.name) or p.name]
    if not a then return nil end
    local r = a.responses
    if type(r) == "function" then r = r(p) end
    return r, a.after
  end)
end

--- eng:answer(prompt_name, responses, {after = seconds}): the answer a prompt
--- gets (a list, one per question; or a function(prompt) -> list).
--- Unanswered prompts time out.  eng.prompts lists every prompt asked.
function Engine:answer(name, responses, opts)
  prompt_handler(self)
  self.answers[name] = {responses = responses, after = opts and opts.after}
end

--- eng:approve(action_name, {after = seconds}) / eng:deny(action_name):
--- the reviewer's answer to an act with a reviewer.
function Engine:approve(name, opts)
  prompt_handler(self)
  self.answers["approval:" .. name] = {responses = {"approve"}, after = opts and opts.after}
end

function Engine:deny(name, opts)
  prompt_handler(self)
  self.answers["approval:" .. name] = {responses = {"deny"}, after = opts and opts.after}
end

--- A playbook's path: a path to a file, or its id below playbooks/.
function Engine:playbook_path(pb)
  if exists(pb) then return pb end
  local path = self.scripts .. "/playbooks/" .. pb:gsub("%.lua$", "") .. ".lua"
  if not exists(path) then error("no playbook '" .. pb .. "' (looked for " .. path .. ")", 3) end
  return path
end

--- Start a run of a playbook on a container (a table or a JSON file); returns
--- its run id.  eng:wait() runs every started run to its end.
function Engine:start(playbook, container)
  return self.c:start(self:playbook_path(playbook), container)
end

function Engine:wait()
  local out = {}
  for i, r in ipairs(self.c:wait()) do out[i] = as_run(r) end
  return out
end

--- Run a playbook on a container to its end; returns the run.
function Engine:run(playbook, container)
  local id = self:start(playbook, container)
  for _, r in ipairs(self:wait()) do
    if r.run_id == id then return r end
  end
  error("run " .. id .. " did not end", 2)
end

function Engine:now() return self.c:now() end
function Engine:stats() return self.c:stats() end
function Engine:close() self.c:close() end

--- A container table from a JSON file.
function M.container(path)
  local f = assert(io.open(path))
  local c, err = json.decode(f:read("a"))
  f:close()
  if not c then error(path .. ": " .. err, 2) end
  return c
end

-- ---- luassert helpers ----

local function subset(expected, actual)
  if type(expected) ~= "table" then return expected == actual end
  if type(actual) ~= "table" then return false end
  for k, v in pairs(expected) do
    if not subset(v, actual[k]) then return false end
  end
  return true
end

local function params_match(expected, actual)
  if #expected ~= #actual then return false end
  for i = 1, #expected do
    if not subset(expected[i], actual[i]) then return false end
  end
  return true
end

local function describe_actions(run)
  local lines = {}
  for _, a in ipairs(run.actions or {}) do
    local params = {}
    for i, p in ipairs(a.parameters) do
      local q = {}
      for k, v in pairs(p) do if k ~= "context" then q[k] = v end end
      params[i] = q
    end
    lines[#lines + 1] = ("  %s (%s) on %s with %s"):format(a.name, a.action,
      table.concat(a.assets, ", "), json.encode(params))
  end
  return #lines > 0 and table.concat(lines, "\n") or "  (none)"
end

--- Does run have a started action `name` (its name or action) matching
--- `expected` = {parameters = {...} (each a subset), assets = {...}}?
function M.action_started(run, name, expected)
  expected = expected or {}
  for _, a in ipairs(run:started(name)) do
    local ok = true
    if expected.parameters and not params_match(expected.parameters, a.parameters) then ok = false end
    if expected.assets and not subset(expected.assets, a.assets) then ok = false end
    if expected.assets and #expected.assets ~= #a.assets then ok = false end
    if ok then return true end
  end
  return false
end

local function register_assertions()
  local ok_a, luassert = pcall(require, "luassert")
  local ok_s, say = pcall(require, "say")
  if not (ok_a and ok_s) then return end

  say:set("assertion.action_started.positive",
          "Expected action %s to have been started with %s.\nActions started:\n%s")
  say:set("assertion.action_started.negative",
          "Expected action %s not to have been started with %s.\nActions started:\n%s")
  luassert:register("assertion", "action_started", function(_, args)
    local run, name, expected = args[1], args[2], args[3]
    local found = M.action_started(run, name, expected)
    args[1], args[2], args[3] = name, json.encode(expected or {}), describe_actions(run)
    args.n = 3
    return found
  end, "assertion.action_started.positive", "assertion.action_started.negative")

  say:set("assertion.block_called.positive", "Expected block %s to be called %s, it was called %s time(s)")
  say:set("assertion.block_called.negative", "Expected block %s not to be called %s, it was called %s time(s)")
  luassert:register("assertion", "block_called", function(_, args)
    local run, name, times = args[1], args[2], args[3]
    local n = #run:calls_of(name)
    args[1], args[2], args[3] = name, times and (times .. " time(s)") or "at least once", n
    args.n = 3
    if times then return n == times end
    return n > 0
  end, "assertion.block_called.positive", "assertion.block_called.negative")

  say:set("assertion.run_succeeded.positive", "Expected the run to succeed; it %s: %s\nLog:\n%s")
  say:set("assertion.run_succeeded.negative", "Expected the run to fail; it %s%s\nLog:\n%s")
  luassert:register("assertion", "run_succeeded", function(_, args)
    local run = args[1]
    args[1], args[2] = run.status, run.error ~= luasoar.null and tostring(run.error) or ""
    args[3] = table.concat(run:messages(), "\n")
    args.n = 3
    return run.status == "success"
  end, "assertion.run_succeeded.positive", "assertion.run_succeeded.negative")

  say:set("assertion.logged.positive", "Expected the run log to hold %s.\nLog:\n%s")
  say:set("assertion.logged.negative", "Expected the run log not to hold %s.\nLog:\n%s")
  luassert:register("assertion", "logged", function(_, args)
    local run, text = args[1], args[2]
    local found = false
    for _, m in ipairs(run:messages()) do found = found or m == text end
    args[1], args[2] = ("%q"):format(text), table.concat(run:messages(), "\n")
    args.n = 2
    return found
  end, "assertion.logged.positive", "assertion.logged.negative")
end

register_assertions()

return M
