---@meta
-- Lua Language Server definitions for the luasoar playbook API (`phantom`, `json`).
-- Put this folder in `workspace.library` (or `Lua.workspace.library`) of your editor.
-- The reference is docs/api.md; this file only describes shapes, it is never run.
-- Where a function takes a container, leaving it out means the run's container (the table on_start got).

-- ---------------------------------------------------------------------------
-- Shared shapes
-- ---------------------------------------------------------------------------

---JSON null (`phantom.null == json.null`): a NULL light userdata.
---@alias JsonNull lightuserdata

---A datapath string, e.g. "artifact:*.cef.sourceAddress" or "geolocate_ip_1:action_result.data.*.country_name".
---@alias Datapath string

---`"new"` (default), `"all"`, or a list of artifact ids.
---@alias Scope "new"|"all"|integer[]

---One condition: `{left, operator, right}`; each side a datapath, `"custom_list:NAME"` or a literal.
---@alias Condition { [1]: any, [2]: "=="|"!="|"<"|"<="|">"|">="|"in"|"not in", [3]: any }

---@class Artifact
---@field id integer
---@field container integer
---@field name? string
---@field label? string
---@field severity? string
---@field source_data_identifier? string
---@field type? string
---@field tags? string[]
---@field cef table<string, any>
---@field cef_types? table<string, string[]>
---@field data? table

---@class Note
---@field id integer
---@field title string
---@field content string
---@field note_type string
---@field note_format string

---@class Container
---@field id integer
---@field name? string
---@field label? string
---@field status? string
---@field severity? string
---@field sensitivity? string
---@field owner_name? string
---@field current_phase? string
---@field tags? string[]
---@field comments? string[]
---@field notes? Note[]
---@field artifact_count? integer
---@field artifacts Artifact[]
---@field [string] any

---The `action` kwarg of every callback.
---@class ActionInfo
---@field action_run_id integer nil only for a child playbook that could not start
---@field action_name string the action ("custom function", "playbook", "prompt", "task" for the others)
---@field action string same as action_name
---@field name string the name given to the call (defaults to the action)

---A parameter set as the app saw it, `context` completed by the engine.
---@class ActionParameter
---@field context? { guid: string, artifact_id?: integer, parent_action_run?: integer, [string]: any }
---@field [string] any

---One action result: one parameter set on one asset.
---@class ActionResult
---@field status "success"|"failed"
---@field message string
---@field data table[]
---@field summary table<string, any>
---@field parameter ActionParameter

---One element of a callback's `results`: one app run (one asset).
---@class AppRunResult
---@field action string
---@field app string
---@field app_id integer
---@field asset string
---@field asset_id integer
---@field name string
---@field app_run_id integer
---@field action_run_id integer
---@field status "success"|"failed"
---@field message string
---@field summary { total_objects: integer, total_objects_successful: integer }
---@field action_results ActionResult[]

---One element of a custom function callback's `results`: one parameter set.
---@class CustomFunctionResult
---@field status "success"|"failed"
---@field message string
---@field data any what the function returned ({} for nil)
---@field parameter table

---The one element of a child playbook callback's `results`.
---@class PlaybookResult
---@field status "success"|"failed"
---@field message string
---@field playbook_run_id? integer
---@field outputs table<string, any>

---@class CustomFunctionInfo
---@field name string
---@field custom_function string "repo/name"
---@field custom_function_run_id integer

---The one table every callback gets.
---@class CallbackKwargs
---@field action ActionInfo
---@field success boolean
---@field container Container the run's container (the table on_start got)
---@field results AppRunResult[]|CustomFunctionResult[]|PlaybookResult[]
---@field handle any the `handle` given to the call
---@field loop_state_json? string act with loop_state only
---@field custom_function? CustomFunctionInfo custom functions only
---@field filtered_artifacts? Artifact[] never set by the engine; blocks may pass it on
---@field filtered_results? AppRunResult[] never set by the engine; blocks may pass it on
---@field [string] any

---@alias Callback fun(kw: CallbackKwargs)

---@class SummaryAppRun
---@field app_run_id integer
---@field app string
---@field asset string
---@field status "success"|"failed"
---@field message string
---@field summary { total_objects: integer, total_objects_successful: integer }
---@field parameter ActionParameter the first parameter set

---@class SummaryEntry
---@field action_run_id integer
---@field name string
---@field action string
---@field status "success"|"failed"
---@field message string
---@field app_runs SummaryAppRun[]

---@class Summary
---@field result SummaryEntry[]

---A collect2 row: values by datapath position (nil when missing) and n = #datapath.
---@class Row
---@field n integer
---@field [integer] any

---@class PlaybookInfo
---@field name string
---@field repo_name string
---@field id integer
---@field run_id integer
---@field path string
---@field parent_playbook_run_id? integer

---Limits a playbook sets for its runs (docs/api.md §2.1); each a positive number.
---@class PlaybookLimits
---@field instructions_per_callback? number default 1e8 (a block: top level + on_start, a callback, on_finish)
---@field instructions_per_run? number default 1e9
---@field memory_mb? number default 64
---@field deadline_seconds? number default 86400

---@class PlaybookSettings
---@field labels? string[] the container labels it runs on under `luasoar serve` ({"*"}: every label)
---@field active? boolean under `luasoar serve`: runs on new containers of its labels
---@field limits? PlaybookLimits

---Set at the playbook's top level; read once the top level has run.
---@type PlaybookSettings?
playbook_info = nil

---@class StoredObject
---@field value table
---@field composite_key { key: string, container_id: integer }

-- ---------------------------------------------------------------------------
-- Keyword tables
-- ---------------------------------------------------------------------------

---@class ActKwargs
---@field action? string required (or positional)
---@field parameters? table[]|table one table per parameter set
---@field assets? string|string[] asset names (default: every asset whose app has the action)
---@field tags? string|string[]
---@field callback? Callback
---@field reviewer? string a user or role that must approve first
---@field handle? any given back as kw.handle
---@field start_time? number seconds since the epoch
---@field name? string defaults to the action
---@field asset_type? nil not supported
---@field app? string|{ name: string }
---@field parent_action? ActionInfo
---@field loop_state? string LoopState:to_json()

---@class Collect2Kwargs
---@field container? Container default: the run's container
---@field datapath Datapath[]|Datapath
---@field action_results? AppRunResult[]
---@field scope? Scope
---@field filter_artifacts? Artifact[]
---@field tags? any ignored
---@field limit? any ignored

---@class CollectKwargs
---@field container? Container|AppRunResult[]
---@field datapath Datapath
---@field scope? Scope
---@field limit? integer default 2000
---@field none_if_first? any ignored
---@field action_results? AppRunResult[]

---@class CollectFromContainsKwargs
---@field container? Container
---@field action_results? any ignored
---@field contains string[]
---@field scope? Scope
---@field tags? string[]

---@class GetActionResultsKwargs
---@field action_run_id? integer
---@field app_run_id? integer
---@field action_name? string
---@field result_data? boolean false empties every data
---@field flatten? boolean true returns action results

---@class ConditionKwargs
---@field container? Container default: the run's container
---@field conditions Condition[]
---@field logical_operator? "and"|"or"
---@field action_results? AppRunResult[] also makes bare words ("status", ...) datapaths
---@field scope? Scope
---@field name? string condition only: "filter_1:condition_1"
---@field case_sensitive? boolean default false; only true turns it on
---@field delimiter? string
---@field filter_artifacts? Artifact[]
---@field trace? any ignored

---@class FormatKwargs
---@field container? Container
---@field template string
---@field parameters? any[] datapaths or literals
---@field name? string
---@field separator? string default ", "
---@field drop_none? boolean default false: nil and null render as None
---@field scope? Scope default "all"
---@field trace? any ignored
---@field action_results? AppRunResult[]

---@class CompletedKwargs
---@field action_names? string[]
---@field playbook_names? string[]
---@field custom_function_names? string[]
---@field trace? any ignored

---@class RunDataKwargs
---@field value? any
---@field key string
---@field auto? any ignored

---@class ObjectKwargs
---@field key string
---@field value? table
---@field auto_delete? any ignored
---@field container_id? integer default: the run's container
---@field playbook_name? any ignored
---@field repo_name? any ignored

---@class ListKwargs
---@field list_name string
---@field values? any[]|any
---@field value? any
---@field case_sensitive? boolean check_list, delete_from_list: default false, any truthy value turns it on
---@field substring? boolean
---@field column? integer 0-based
---@field remove_all? boolean default true
---@field remove_row? boolean default true
---@field trace? any

---@class AddNoteKwargs
---@field container? Container|integer
---@field note_type? string default "general"
---@field title? string
---@field content? string
---@field note_format? string default "markdown"
---@field task_id? any
---@field trace? any

---@class AddArtifactKwargs
---@field container? Container|integer
---@field raw_data? table
---@field cef_data? table
---@field label? string
---@field name? string
---@field severity? string
---@field identifier? string
---@field artifact_type? string
---@field field_mapping? table<string, string[]>
---@field trace? any
---@field run_automation? any ignored
---@field tags? string[]

---@class CustomFunctionKwargs
---@field custom_function string "repo/name"
---@field parameters? table[]|table default {{}}
---@field name? string defaults to custom_function
---@field callback? Callback
---@field handle? any

---@class PlaybookKwargs
---@field playbook string "repo/name"
---@field container? Container default: the run's container
---@field name? string defaults to playbook
---@field callback? Callback
---@field inputs? table<string, any>
---@field handle? any
---@field show_debug? any ignored
---@field scope? any ignored

---@class PromptKwargs
---@field container? Container for the message's parameters; default: the run's container
---@field user? string
---@field role? string
---@field message? string a format template
---@field respond_in_mins? number default 30
---@field name? string default "prompt" ("task" for task)
---@field parameters? any[] datapaths for message (format with drop_none = true)
---@field response_types? table[] prompt2: {prompt, options}
---@field options? table prompt: {type = "list", choices = {...}}
---@field separator? string
---@field callback? Callback
---@field handle? any
---@field trace? any

---@class LoopStateFields
---@field current_iteration? integer default 1
---@field max_iterations? integer default 1
---@field max_ttl? number seconds
---@field delay_time? number seconds between iterations
---@field first_iteration_time? number default: now
---@field conditions? Condition[] exit conditions
---@field logical_operator? "and"|"or"

---@class LoopState: LoopStateFields
local LoopState = {}

---False once max_iterations is reached, max_ttl has passed, or the exit conditions hold.
---@param kw? { container?: Container, results?: AppRunResult[] }
---@return boolean
function LoopState:should_continue(kw) end

---current_iteration + 1
function LoopState:increment() end

---@return string json for act{loop_state = ...}
function LoopState:to_json() end

-- ---------------------------------------------------------------------------
-- phantom
-- ---------------------------------------------------------------------------

phantom = {}

---JSON null.
---@type JsonNull
phantom.null = nil

-- Actions -------------------------------------------------------------------

---Starts an action run; returns its action_run_id at once (nil when refused by the limit or discontinue()).
---@param action string
---@param parameters? table[]|table
---@param assets? string|string[]
---@param tags? string|string[]
---@param callback? Callback
---@param reviewer? string
---@param handle? any
---@param start_time? number
---@param name? string
---@param asset_type? nil
---@param app? string|{ name: string }
---@param parent_action? ActionInfo
---@param loop_state? string
---@return integer? action_run_id
---@overload fun(kw: ActKwargs): integer?
---@overload fun(action: string, kw: ActKwargs): integer?
function phantom.act(action, parameters, assets, tags, callback, reviewer, handle, start_time, name, asset_type, app,
                     parent_action, loop_state) end

---A copy of this run's summary: one entry per finished act.
---@return Summary
function phantom.get_summary() end

-- Data access ---------------------------------------------------------------

---Rows aligned as in docs/api.md §4.3; a missing value is nil, each row has n; a source with no rows: none.
---@param container? Container
---@param datapath Datapath[]|Datapath
---@param action_results? AppRunResult[]
---@param scope? Scope
---@param filter_artifacts? Artifact[]
---@param tags? any
---@param limit? any
---@return Row[]
---@overload fun(kw: Collect2Kwargs): Row[]
---@overload fun(container: Container, kw: Collect2Kwargs): Row[]
function phantom.collect2(container, datapath, action_results, scope, filter_artifacts, tags, limit) end

---A flat list of one datapath's values, missing ones left out.
---@param container? Container|AppRunResult[]
---@param datapath Datapath
---@param scope? Scope
---@param limit? integer
---@param none_if_first? any
---@return any[]
---@overload fun(kw: CollectKwargs): any[]
function phantom.collect(container, datapath, scope, limit, none_if_first) end

---Distinct values of the CEF fields of the given contains types.
---@param container? Container
---@param action_results? any
---@param contains string[]
---@param scope? Scope
---@param tags? string[]
---@return any[]
---@overload fun(kw: CollectFromContainsKwargs): any[]
function phantom.collect_from_contains(container, action_results, contains, scope, tags) end

---Copies of this run's app runs (or action results when flatten).
---@param action_run_id? integer
---@param app_run_id? integer
---@param action_name? string
---@param result_data? boolean
---@param flatten? boolean
---@return AppRunResult[]|ActionResult[]
---@overload fun(kw: GetActionResultsKwargs): AppRunResult[]|ActionResult[]
function phantom.get_action_results(action_run_id, app_run_id, action_name, result_data, flatten) end

-- Decisions and filters -----------------------------------------------------

---True when the conditions hold for at least one row.
---@param container? Container
---@param conditions Condition[]
---@param logical_operator? "and"|"or"
---@return boolean
---@overload fun(kw: ConditionKwargs): boolean
---@overload fun(container: Container, kw: ConditionKwargs): boolean
function phantom.decision(container, conditions, logical_operator) end

---Matched artifacts and matched results, each nil when empty.
---@param container? Container
---@param conditions Condition[]
---@param logical_operator? "and"|"or"
---@return Artifact[]? matched_artifacts
---@return AppRunResult[]? matched_results
---@overload fun(kw: ConditionKwargs): Artifact[]?, AppRunResult[]?
---@overload fun(container: Container, kw: ConditionKwargs): Artifact[]?, AppRunResult[]?
function phantom.condition(container, conditions, logical_operator) end

-- Formats -------------------------------------------------------------------

---The rendered text; stored under name when given.
---@param container? Container
---@param template string
---@param parameters? any[]
---@param name? string
---@param separator? string
---@return string
---@overload fun(kw: FormatKwargs): string
function phantom.format(container, template, parameters, name, separator) end

---The text of a format (a list for "NAME__as_list"), or nil.
---@param name string
---@return string|string[]|nil
---@overload fun(kw: { name: string }): string|string[]|nil
function phantom.get_format_data(name) end

-- Run data, joins, limits ---------------------------------------------------

---Stores a value (as data) for the later blocks of this run. Python's order: value first.
---@param value any
---@param key string
---@param auto? any
---@return true
---@overload fun(kw: RunDataKwargs): true
function phantom.save_run_data(value, key, auto) end

---The saved value (a copy), or nil.
---@param key string
---@return any
---@overload fun(kw: { key: string }): any
function phantom.get_run_data(key) end

---True when every named item was started in this run and has finished.
---@param action_names? string[]
---@param playbook_names? string[]
---@param custom_function_names? string[]
---@param trace? any
---@return boolean
---@overload fun(kw: CompletedKwargs): boolean
function phantom.completed(action_names, playbook_names, custom_function_names, trace) end

---Legacy: completed{action_names = names}.
---@param names string[]
---@return boolean
function phantom.actions_done(names) end

---How many acts this run may start (default 1000).
---@param limit integer
function phantom.set_action_limit(limit) end

---Later acts, custom functions, child playbooks and prompts are refused (nil, logged); pending act and
---prompt callbacks are not called; on_finish still runs.
function phantom.discontinue() end

---@return PlaybookInfo[]
function phantom.get_playbook_info() end

---An identity decorator.
---@return fun(f: function): function
function phantom.playbook_block() end

-- Custom functions, child playbooks, prompts, LoopState ---------------------

---Runs custom_functions/REPO/NAME.lua once per parameter set, then the callback; returns its run id
---(nil after discontinue()).
---@param custom_function string
---@param parameters? table[]|table
---@param name? string
---@param callback? Callback
---@param handle? any
---@return integer?
---@overload fun(kw: CustomFunctionKwargs): integer?
function phantom.custom_function(custom_function, parameters, name, callback, handle) end

---Starts a child run of playbooks/REPO/NAME.lua; the parent waits for it. Returns the child's run id
---(nil after discontinue()).
---@param playbook string
---@param container? Container
---@param name? string
---@param callback? Callback
---@param inputs? table<string, any>
---@param handle? any
---@param show_debug? any
---@param scope? any
---@return integer?
---@overload fun(kw: PlaybookKwargs): integer?
function phantom.playbook(playbook, container, name, callback, inputs, handle, show_debug, scope) end

---This run's outputs, read by the parent as NAME:playbook_output:key.
---@param output table<string, any>
---@return true
---@overload fun(kw: { output: table<string, any> }): true
function phantom.save_playbook_output_data(output) end

---Asks a prompt; returns its action_run_id. Answers in NAME:action_result.summary.responses.<i>.
---@param kw PromptKwargs
---@return integer? nil after discontinue()
function phantom.prompt2(kw) end

---Legacy prompt (options); the answer is summary.response.
---@param kw PromptKwargs
---@return integer? nil after discontinue()
function phantom.prompt(kw) end

---A manual task to acknowledge.
---@param kw PromptKwargs
---@return integer? nil after discontinue()
function phantom.task(kw) end

---A loop state from a table or its JSON.
---@param state string|LoopStateFields
---@return LoopState
---@overload fun(kw: { state: string|LoopStateFields }): LoopState
function phantom.LoopState(state) end

-- Containers ----------------------------------------------------------------

---@param container? Container|integer
---@param severity string
---@return true, string
---@overload fun(kw: { container?: Container|integer, severity: string, trace?: any }): true, string
function phantom.set_severity(container, severity) end

---@param container? Container|integer
---@param status string
---@return true, string
---@overload fun(kw: { container?: Container|integer, status: string, trace?: any }): true, string
function phantom.set_status(container, status) end

---@param container? Container|integer
---@param label string
---@return true, string
---@overload fun(kw: { container?: Container|integer, label: string, trace?: any }): true, string
function phantom.set_label(container, label) end

---@param container? Container|integer
---@param sensitivity string
---@return true, string
---@overload fun(kw: { container?: Container|integer, sensitivity: string, trace?: any }): true, string
function phantom.set_sensitivity(container, sensitivity) end

---Sets owner_name.
---@param container? Container|integer
---@param user string
---@return true, string
---@overload fun(kw: { container?: Container|integer, user: string, trace?: any }): true, string
function phantom.set_owner(container, user) end

---Sets current_phase.
---@param container? Container|integer
---@param phase string
---@return true, string
---@overload fun(kw: { container?: Container|integer, phase: string, trace?: any }): true, string
function phantom.set_phase(container, phase) end

---A copy of the stored container (default: the run's), or nil.
---@param container_id? integer|Container
---@return Container?
---@overload fun(kw: { container_id?: integer|Container, container?: Container }): Container?
function phantom.get_container(container_id) end

---status = "closed"
---@param container? Container|integer
---@return true, string
---@overload fun(kw: { container?: Container|integer, trace?: any }): true, string
function phantom.close(container) end

---@param container? Container|integer
---@param update_dict table<string, any>
---@return true, string
---@overload fun(kw: { container?: Container|integer, update_dict: table<string, any>, trace?: any }): true, string
function phantom.update(container, update_dict) end

---@param container? Container|integer
---@param tags string|string[]
---@return true, string
---@overload fun(kw: { container?: Container|integer, tags: string|string[], trace?: any }): true, string
function phantom.add_tags(container, tags) end

---@param container? Container|integer
---@param tags string|string[]
---@return true, string
---@overload fun(kw: { container?: Container|integer, tags: string|string[], trace?: any }): true, string
function phantom.remove_tags(container, tags) end

---@param container? Container|integer
---@param comment string
---@return true, string
---@overload fun(kw: { container?: Container|integer, comment: string, trace?: any }): true, string
function phantom.comment(container, comment) end

---@param container? Container|integer
---@param note_type? string
---@param title? string
---@param content? string
---@param note_format? string
---@param task_id? any
---@param trace? any
---@return true ok
---@return string message
---@return integer note_id
---@overload fun(kw: AddNoteKwargs): true, string, integer
function phantom.add_note(container, note_type, title, content, note_format, task_id, trace) end

---@param container? Container|integer
---@param raw_data? table
---@param cef_data? table
---@param label? string
---@param name? string
---@param severity? string
---@param identifier? string
---@param artifact_type? string
---@param field_mapping? table<string, string[]>
---@param trace? any
---@param run_automation? any
---@param tags? string[]
---@return true ok
---@return string message
---@return integer artifact_id
---@overload fun(kw: AddArtifactKwargs): true, string, integer
function phantom.add_artifact(container, raw_data, cef_data, label, name, severity, identifier, artifact_type,
                              field_mapping, trace, run_automation, tags) end

-- Custom lists --------------------------------------------------------------

---Appends one row; creates the list if needed.
---@param list_name string
---@param values any[]|any
---@return true, string
---@overload fun(kw: ListKwargs): true, string
function phantom.add_list(list_name, values) end

---@param list_name string
---@return boolean ok
---@return string message
---@return string[][]? rows
---@overload fun(kw: ListKwargs): boolean, string, string[][]?
function phantom.get_list(list_name) end

---@param list_name string
---@param value any
---@param case_sensitive? boolean
---@param substring? boolean
---@return boolean found
---@return string message
---@return integer matching_rows
---@overload fun(kw: ListKwargs): boolean, string, integer
function phantom.check_list(list_name, value, case_sensitive, substring) end

---Case-insensitive unless the keyword case_sensitive is truthy.
---@param list_name string
---@param value any
---@param column? integer 0-based; default: any column
---@param remove_all? boolean default true
---@param remove_row? boolean default true
---@return boolean removed
---@return string message
---@overload fun(kw: ListKwargs): boolean, string
function phantom.delete_from_list(list_name, value, column, remove_all, remove_row) end

---@param list_name string
---@return boolean existed
---@return string message
---@overload fun(kw: ListKwargs): boolean, string
function phantom.remove_list(list_name) end

-- Objects -------------------------------------------------------------------

---@param key string
---@param value table
---@param auto_delete? any
---@param container_id? integer
---@param playbook_name? any
---@param repo_name? any
---@return true
---@overload fun(kw: ObjectKwargs): true
function phantom.save_object(key, value, auto_delete, container_id, playbook_name, repo_name) end

---@param key string
---@param value? any
---@param auto_delete? any
---@param container_id? integer
---@param playbook_name? any
---@param repo_name? any
---@return StoredObject[]
---@overload fun(kw: ObjectKwargs): StoredObject[]
function phantom.get_object(key, value, auto_delete, container_id, playbook_name, repo_name) end

---@param key string
---@param value? any
---@param auto_delete? any
---@param container_id? integer
---@param playbook_name? any
---@param repo_name? any
---@return true
---@overload fun(kw: ObjectKwargs): true
function phantom.clear_object(key, value, auto_delete, container_id, playbook_name, repo_name) end

-- Helpers -------------------------------------------------------------------

---The data items of every successful action result.
---@param results AppRunResult[]
---@return table[]
function phantom.parse_success(results) end

---The messages of every failed action result.
---@param results AppRunResult[]
---@return string[]
function phantom.parse_errors(results) end

---The successful action results.
---@param results AppRunResult[]
---@return ActionResult[]
function phantom.get_successful_action_results_v2(results) end

---One flat list; a last {dedup = true} removes duplicates.
---@param ... any
---@return any[]
function phantom.concatenate(...) end

-- Logging -------------------------------------------------------------------

---A debug line: a string as it is, anything else as its JSON.
---@param value any
function phantom.debug(value) end

---An error-level line; the run goes on.
---@param value any
function phantom.error(value) end

-- ---------------------------------------------------------------------------
-- json
-- ---------------------------------------------------------------------------

json = {}

---JSON null (== phantom.null).
---@type JsonNull
json.null = nil

---Strict: functions, NaN, infinities, other keys than strings and numbers, invalid UTF-8 are errors.
---@param value any
---@return string
function json.encode(value) end

---Integers stay integers; null is json.null; arrays carry a marker (an empty one encodes as []).
---@param text string
---@return any
function json.decode(text) end


-- 35_misc.lua: smaller calls of real playbooks

---@return boolean ok, string message, integer pin_id
function phantom.pin(...) end
---@return boolean ok, string message
function phantom.update_pin(...) end
---@param pin_id integer
---@return boolean ok, string message
function phantom.delete_pin(pin_id) end
---@return boolean ok, string message
function phantom.promote(...) end
---@return table[] notes
function phantom.get_notes(...) end
---@return string[]|nil assets
function phantom.get_assets(...) end
---@param s string
---@return boolean
function phantom.valid_ip(s) end
---@param s string
---@return boolean
function phantom.is_ip(s) end
---@param s string
---@return boolean
function phantom.valid_net(s) end
---@param ip string
---@param cidr string
---@return boolean
function phantom.address_in_network(ip, cidr) end
---@return string url
function phantom.build_phantom_rest_url(...) end
---@return string
function phantom.get_base_url() end
---@return string
function phantom.get_rest_base_url() end
---@return string
function phantom.get_effective_user() end
---@return integer
function phantom.get_current_container_id_() end
---@param value any
---@param key? string
---@return string key
function phantom.save_data(value, key) end
---@param key string
---@param clear_data? boolean
---@return any
function phantom.get_data(key, clear_data) end
