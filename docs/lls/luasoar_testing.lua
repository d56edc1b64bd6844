---@meta luasoar.testing
-- Lua Language Server definitions for the test kit: `local lt = require "luasoar.testing"`.
-- Put this folder in `workspace.library` of your editor; the README's "Testing your
-- playbooks" is the reference. This file only describes shapes, it is never run.

---A stub's behaviour, per parameter set: a result table, a function of the parameter,
---or one of lt.fail, lt.app_error, lt.sequence, lt.delay, lt.real.
---@alias luasoar.Behaviour table|fun(param: table, asset: luasoar.StubAsset, info: luasoar.StubInfo): any|luasoar.Special

---@class luasoar.Special
---A special behaviour (lt.fail, lt.app_error, lt.sequence, lt.delay, lt.real).

---@class luasoar.StubAsset
---@field name string
---@field id integer
---@field config table

---@class luasoar.StubInfo
---@field action string the action, e.g. "block ip"
---@field name string the act's name, e.g. "block_ip_1"
---@field action_run_id integer
---@field app_run_id integer

---@class luasoar.StubCall
---@field parameter table
---@field asset string
---@field name string
---@field action_run_id integer

---@class luasoar.Stub
---@field action string
---@field asset? string
---@field calls luasoar.StubCall[] every parameter set the stub was given, in order

---@class luasoar.EngineOptions
---@field scripts? string the scripts folder (default: `.` if it has `playbooks/`, else `scripts`, or $LUASOAR_SCRIPTS)
---@field assets? table|string inline assets ({name = {app = ..., id = ..., config = ...}}) or a file
---@field apps? string the apps folder (default: SCRIPTS/apps)
---@field custom_lists? string (default: SCRIPTS/custom_lists)
---@field seed? integer
---@field real? boolean let actions that no stub covers run their real apps (default: such an action fails the run)

---@class luasoar.StubOptions
---@field asset? string only this asset
---@field real? boolean the real app runs (with no behaviour)

---@class luasoar.LogEntry
---@field level "debug"|"error"
---@field message string

---@class luasoar.ActionStarted
---@field action_run_id integer
---@field name string
---@field action string
---@field parameters table[]
---@field assets string[]
---@field callback? string

---@class luasoar.Run
---@field run_id integer
---@field status "success"|"failed"
---@field error string|lightuserdata the reason, or lt.null
---@field log luasoar.LogEntry[]
---@field summary table
---@field actions luasoar.ActionStarted[]
---@field calls {block: string, args: table}[]
---@field run_data table
local Run = {}
---@param level? "debug"|"error"
---@return string[]
function Run:messages(level) end
---@param block string
---@return table[] # each call's arguments
function Run:calls_of(block) end
---@param name string an act's name or its action
---@return luasoar.ActionStarted[]
function Run:started(name) end

---@class luasoar.Engine
---@field prompts table[] every prompt asked
local Engine = {}
---Stand in for an action: eng:stub(action, behaviour), eng:stub(action, {asset = NAME}, behaviour),
---or let its real app run: eng:stub(action, {real = true}) / eng:stub(action, {asset = NAME, real = true}).
---@param action string
---@param opts_or_behaviour luasoar.StubOptions|luasoar.Behaviour
---@param behaviour? luasoar.Behaviour
---@return luasoar.Stub
function Engine:stub(action, opts_or_behaviour, behaviour) end
---@param ref string "repo/name"
---@param outputs table|fun(params: table): table|luasoar.Special
function Engine:stub_custom_function(ref, outputs) end
---@param ref string "repo/name"
---@param outputs table|fun(inputs: table): table
function Engine:stub_playbook(ref, outputs) end
---@param playbook string a path, or its id below playbooks/
---@param container table|string a table or a JSON file
---@return luasoar.Run
function Engine:run(playbook, container) end
---@param playbook string
---@param container table|string
---@return integer run_id
function Engine:start(playbook, container) end
---@return luasoar.Run[] # in the order they ended
function Engine:wait() end
---@param prompt_name string
---@param responses string[]|fun(prompt: table): string[]
---@param opts? {after: number}
function Engine:answer(prompt_name, responses, opts) end
---@param act_name string
---@param opts? {after: number}
function Engine:approve(act_name, opts) end
---@param act_name string
---@param opts? {after: number}
function Engine:deny(act_name, opts) end
---@return number # the virtual clock, in seconds since the epoch
function Engine:now() end
function Engine:close() end

---@class luasoar.testing
---@field null lightuserdata JSON null
---@field real luasoar.Special the real app runs
---@field json {encode: fun(v: any): string, decode: fun(s: string): any}
local lt = {}

---An engine over a scripts folder; strict unless `real = true`.
---@param opts? luasoar.EngineOptions
---@return luasoar.Engine
function lt.engine(opts) end
---@param message? string
---@return luasoar.Special # a failed result
function lt.fail(message) end
---@param message? string
---@return luasoar.Special # the whole app run fails
function lt.app_error(message) end
---@param list luasoar.Behaviour[]
---@return luasoar.Special # one behaviour per call; the last repeats
function lt.sequence(list) end
---@param seconds number
---@param behaviour? luasoar.Behaviour
---@return luasoar.Special
function lt.delay(seconds, behaviour) end
---@param path string
---@return table
function lt.container(path) end

return lt
