"""peer.py: a minimal CPython playbook engine, the peer of luasoar in bench/compare.

Single-threaded, standard library only, for /usr/bin/python3.  It does the
work luasoar does per action and per run, written the way a plain Python
engine would write it, so that bench/compare measures the two side by side.

What it mirrors (luasoar file in brackets):
- A run [bindings/run.c]: the container given as a dict crosses as JSON
  (encoded, decoded, shape checked: integer id, artifact objects with ids, each
  artifact's "container"), is kept in the engine's container store on first
  sight (a copy), a state dict per run (run_id, container_id, playbook,
  action_limit 1000, action_count, started/pending counters, results by name
  and by action run id: what the data API keeps for datapaths), a fresh
  namespace: the playbook's precompiled code executed in a new dict (as
  luasoar runs the precompiled chunk's top level on a fresh _ENV; copying a
  module's globals would leave its functions bound to the shared module
  dict), on_start(container), then when nothing is pending
  on_finish(container, summary JSON), and a report JSON (status, run_id,
  container_id, playbook, log, summary, error, container, run_data) that
  wait() decodes, as the Lua module's eng:wait() does.
- phantom.act [bindings/act.c]: keyword and positional arguments in the
  reference's order (Python binds them: unknown names and duplicates are
  errors), the type checks of every argument, the action and asset selection
  (unknown action, unknown asset, asset without the action, app, tags,
  duplicates), each parameter copied with its context filled {guid,
  artifact_id as given, parent_action_run} and JSON-encoded, the required
  parameters checked per asset, the action limit, the callback's global name
  looked up in the run's namespace, one app run per asset queued on a deque
  ready queue; the action_run_id returned at once.
- The app run [bindings/runner_lua.c]: the app module loaded once per engine
  (compiled and executed in a dict of its own), the asset dict {name, id,
  config decoded from JSON}, each parameter set decoded from its JSON and
  passed to the app function, the app's result checked (status, message,
  data, summary types; an error or a bad result fails that parameter set),
  the output {"action_results": [...]} encoded as JSON.
- The results [bindings/results.c]: the output decoded and checked
  (an object, an action_results list, one per parameter set sent, each an
  object with status success|failed, message string, data list, summary
  object; malformed output fails the app run with the reason), the results
  element (action, app, app_id, asset, asset_id, name, app_run_id,
  action_run_id, status, message, summary {total_objects,
  total_objects_successful}, action_results each with its parameter), the
  get_summary() entry of the action run (action_run_id, name, action, status,
  app_runs [{app_run_id, app, asset, status, message, summary, parameter}],
  message).
- The callback [act.c callback_block]: on a later turn of the loop, never
  inside act, with keyword arguments action {action_run_id, action_name,
  action, name}, success, container, results, handle, filtered_artifacts,
  filtered_results, custom_function, loop_state_json; an exception fails
  the run with its traceback in the log.

What it leaves out: no sandbox (a playbook can reach anything in the
interpreter; builtins are shared), no limits (instructions, memory,
deadline, per-action timeout, log size), no store or journal (nothing
written to SQLite), no datapaths / collect2 / conditions (the results are
kept by name, never read), no exec or SOAR runners (Python apps run inline,
as luasoar's Lua apps do), no reviewers, start_time delays or loop_state
(refused), no hot reload, no recovery, no test hooks or recording, no coroutine per
run (blocks are plain calls: a Python block cannot suspend inside act).
Where a plain Python engine would not repeat work, it does not: the
parameter of each action result is the engine's normalised copy (luasoar
decodes it from JSON a second time; a second app run of the same action gets
its own copy here too), and the summary JSON made for on_finish goes into the
report as it is (luasoar encodes the summary again for the report).
"""
import builtins
import json
import os
import traceback
from collections import deque

DEFAULT_ACTION_LIMIT = 1000
HERE = os.path.dirname(os.path.abspath(__file__))

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.loads

RUN_START, APP_RUN, CALLBACK = 0, 1, 2
RUNNING, FINISHING, ENDED = 0, 1, 2
M64 = (1 << 64) - 1


class PlaybookError(Exception):
    """An error raised by the phantom API: it names the function."""


def argerror(fname, arg, msg):
    raise PlaybookError("%s: argument '%s': %s" % (fname, arg, msg))


def typename(v):
    if v is None:
        return "nil"
    return type(v).__name__


class App:
    __slots__ = ("name", "app_id", "dir", "runner", "actions", "module_path", "functions")

    def __init__(self, d, meta):
        self.name = meta["name"]
        self.app_id = meta.get("app_id")
        self.dir = d
        self.runner = meta.get("runner", "lua")
        self.actions = {}  # action -> tuple of required parameter names
        for action, spec in (meta.get("actions") or {}).items():
            params = (spec or {}).get("parameters") or {}
            self.actions[action] = tuple(k for k, p in params.items() if (p or {}).get("required"))
        path = os.path.join(HERE, "apps", os.path.basename(d) + ".py")
        self.module_path = path if os.path.exists(path) else None
        self.functions = None


class Asset:
    __slots__ = ("name", "id", "app", "config_json", "tags")

    def __init__(self, name, spec, app):
        self.name = name
        self.id = spec["id"]
        self.app = app
        self.config_json = _dumps(spec.get("config") or {})
        self.tags = tuple(spec.get("tags") or ())


class Run:
    __slots__ = ("id", "container_id", "container", "gen", "env", "state", "summary", "log",
                 "pending", "on_start_done", "failed", "error", "status", "actions", "summary_json")

    def __init__(self, rid, gen, container):
        self.id = rid
        self.gen = gen
        self.container = container
        self.container_id = container["id"]
        self.env = None
        self.state = {"run_id": rid, "container_id": self.container_id, "playbook": gen[0]}
        self.summary = {"result": []}
        self.log = []
        self.pending = 0
        self.on_start_done = False
        self.failed = False
        self.error = None
        self.status = RUNNING
        self.actions = []
        self.summary_json = None


class ActionRun:
    __slots__ = ("id", "run", "action", "name", "parent", "params", "param_objs", "app_runs",
                 "ndone", "success", "callback", "callback_name", "handle")


class AppRun:
    __slots__ = ("id", "ar", "asset", "sent", "missing", "result", "successes", "failed_whole")


class Engine:
    """engine = Engine(apps_dir, assets_file); engine.start(path, container);
    engine.wait() -> reports; engine.run(path, container) -> report."""

    def __init__(self, apps_dir, assets_file, seed=0):
        self.apps = {}
        for d in sorted(os.listdir(apps_dir)):
            meta_path = os.path.join(apps_dir, d, "app.json")
            if os.path.exists(meta_path):
                with open(meta_path) as f:
                    app = App(os.path.join(apps_dir, d), json.load(f))
                self.apps[app.name] = app
        with open(assets_file) as f:
            spec = json.load(f)
        self.assets = []
        self.asset_by_name = {}
        for name, a in spec.items():
            app = self.apps.get(a.get("app"))
            if app is None:
                raise ValueError("%s: asset '%s': unknown app '%s'" % (assets_file, name, a.get("app")))
            asset = Asset(name, a, app)
            self.assets.append(asset)
            self.asset_by_name[name] = asset
        self.ready = deque()
        self.next_run_id = 1
        self.next_action_run_id = 1
        self.next_app_run_id = 1
        self.guid_seed = seed
        self.guid_counter = 0
        self.gens = {}
        self.containers = {}
        self.reports = []
        self.current = None
        self.phantom = Phantom(self)

    def close(self):
        self.ready.clear()
        self.reports.clear()
        self.containers.clear()
        self.gens.clear()
        for app in self.apps.values():
            app.functions = None

    # ---- runs ----

    def load(self, path):
        gen = self.gens.get(path)
        if gen is None:
            with open(path) as f:
                gen = (path, compile(f.read(), path, "exec"))
            self.gens[path] = gen
        return gen

    def start(self, path, container):
        gen = self.load(path)
        c = _loads(_dumps(container))
        check_container(c)
        run = Run(self.next_run_id, gen, c)
        self.next_run_id += 1
        self.ready.append((RUN_START, run))
        return run.id

    def wait(self):
        self.drain()
        out = [_loads(r) for r in self.reports]
        self.reports.clear()
        return out

    def run(self, path, container):
        rid = self.start(path, container)
        for r in self.wait():
            if r["run_id"] == rid:
                return r
        raise RuntimeError("run %d did not end" % rid)

    def drain(self):
        ready = self.ready
        while ready:
            kind, obj = ready.popleft()
            if kind == CALLBACK:
                self.dispatch(obj)
            elif kind == APP_RUN:
                self.start_app_run(obj)
            else:
                self.run_start(obj)

    def block(self, run, fn, *args):
        """A block of the run (top level, on_start, callback, on_finish): an
        exception fails the run, with its traceback in the log."""
        outer = self.current
        self.current = run
        try:
            fn(*args)
        except Exception as e:
            if not run.failed:
                run.failed = True
                run.error = "%s: %s" % (type(e).__name__, e)
            run.log.append(("error", traceback.format_exc()))
        finally:
            self.current = outer

    def run_start(self, run):
        self.block(run, self.start_block, run)
        run.on_start_done = True
        self.settle(run)

    def start_block(self, run):
        run.env = env = {"__builtins__": builtins, "phantom": self.phantom}
        st = run.state
        st["action_limit"] = DEFAULT_ACTION_LIMIT
        st["action_count"] = 0
        st["container"] = run.container
        stored = self.containers.get(run.container_id)
        if stored is None:  # the engine's copy, which the report shows
            stored = self.containers[run.container_id] = _loads(_dumps(run.container))
        st["stored_container"] = stored
        exec(run.gen[1], env)  # the playbook's top level, in the run's namespace
        on_start = env.get("on_start")
        if on_start is None:
            raise PlaybookError("%s: the playbook defines no on_start(container)" % run.gen[0])
        if not callable(on_start):
            raise PlaybookError("%s: 'on_start' is a %s, not a function" % (run.gen[0], typename(on_start)))
        on_start(run.container)

    def finish_block(self, run):
        on_finish = run.env.get("on_finish")
        if on_finish is None:
            return
        if not callable(on_finish):
            raise PlaybookError("%s: 'on_finish' is a %s, not a function" % (run.gen[0], typename(on_finish)))
        run.summary_json = _dumps(run.summary)
        on_finish(run.container, run.summary_json)

    def settle(self, run):
        if run.status == ENDED:
            return
        if not run.failed and run.on_start_done and run.pending == 0 and run.status == RUNNING:
            run.status = FINISHING
            self.block(run, self.finish_block, run)
        if run.failed or (run.status == FINISHING and run.pending == 0):
            self.run_end(run)

    def run_end(self, run):
        run.status = ENDED
        for ar in run.actions:  # still in flight: they end on their own, unseen
            ar.run = None
        run.actions = []
        summary = run.summary_json if run.summary_json is not None else _dumps(run.summary)
        log = _dumps([{"level": lv, "message": m} for lv, m in run.log])
        self.reports.append(
            '{"status":%s,"run_id":%d,"container_id":%d,"playbook":%s,"log":%s,"summary":%s,'
            '"error":%s,"container":%s,"run_data":%s}'
            % ('"failed"' if run.failed else '"success"', run.id, run.container_id, _dumps(run.gen[0]),
               log, summary, _dumps(run.error), _dumps(self.containers.get(run.container_id, run.container)),
               _dumps(run.state.get("run_data", {}))))
        if run.env is not None:
            run.env.clear()  # the namespace and its functions form a cycle: break it now
        run.env = None
        run.state = None

    # ---- actions ----

    def guid(self):
        # splitmix64 twice, as lsr_guid
        x = (self.guid_seed + (self.guid_counter + 1) * 0x9E3779B97F4A7C15) & M64
        self.guid_counter += 1
        a = x
        a = ((a ^ (a >> 30)) * 0xBF58476D1CE4E5B9) & M64
        a = ((a ^ (a >> 27)) * 0x94D049BB133111EB) & M64
        a ^= a >> 31
        b = (a + 0x9E3779B97F4A7C15) & M64
        b = ((b ^ (b >> 30)) * 0xBF58476D1CE4E5B9) & M64
        b = ((b ^ (b >> 27)) * 0x94D049BB133111EB) & M64
        b ^= b >> 31
        return "%08x-%04x-4%03x-%04x-%012x" % (a >> 32, (a >> 16) & 0xFFFF, a & 0xFFF,
                                               0x8000 | ((b >> 48) & 0x3FFF), b & 0xFFFFFFFFFFFF)

    def can_run(self, asset, action):
        return action in asset.app.actions

    def select_assets(self, action, assets, tags, app):
        if not any(action in a.actions for a in self.apps.values()):
            raise PlaybookError("phantom.act: unknown action '%s' (no app provides it)" % action)
        app_name = None
        if isinstance(app, dict):
            app_name = app.get("name")
        elif isinstance(app, str):
            app_name = app
        if app is not None and not isinstance(app_name, str):
            argerror("phantom.act", "app", 'expected {"name": "App name"}')
        if app_name is not None and app_name not in self.apps:
            argerror("phantom.act", "app", "unknown app '%s'" % app_name)
        names = string_list(assets, "assets")
        tags = string_list(tags, "tags")
        sel = []
        if names is not None:
            for n in names:
                a = self.asset_by_name.get(n)
                if a is None:
                    raise PlaybookError("phantom.act: unknown asset '%s'" % n)
                if not self.can_run(a, action):
                    raise PlaybookError("phantom.act: asset '%s' (app '%s') has no action '%s'" % (a.name, a.app.name, action))
                if app_name is not None and a.app.name != app_name:
                    raise PlaybookError("phantom.act: asset '%s' is of app '%s', not '%s'" % (a.name, a.app.name, app_name))
                if tags is not None and not any(t in a.tags for t in tags):
                    continue
                if a not in sel:
                    sel.append(a)
        else:
            for a in self.assets:
                if self.can_run(a, action) and (app_name is None or a.app.name == app_name) and \
                        (tags is None or any(t in a.tags for t in tags)):
                    sel.append(a)
        if not sel:
            raise PlaybookError("phantom.act: no asset%s can run action '%s'" % (
                (" of app '%s'" % app_name if app_name else "") + (" with the given tags" if tags else ""), action))
        return sel

    def act(self, action=None, parameters=None, assets=None, tags=None, callback=None, reviewer=None,
            handle=None, start_time=None, name=None, asset_type=None, app=None, parent_action=None,
            loop_state=None):
        run = self.current
        if run is None:
            raise PlaybookError("phantom.act: called outside a playbook run")
        if not isinstance(action, str):
            argerror("phantom.act", "action", "expected an action name, got %s" % typename(action))
        if name is not None and not isinstance(name, str):
            argerror("phantom.act", "name", "expected a string, got %s" % typename(name))
        if name is None:
            name = action
        if callback is not None and not callable(callback):
            argerror("phantom.act", "callback", "expected a function, got %s" % typename(callback))
        if asset_type is not None:
            argerror("phantom.act", "asset_type", "is not supported")
        if start_time is not None or reviewer or loop_state is not None:
            raise PlaybookError("phantom.act: start_time, reviewer and loop_state are left out of the peer")
        parent = 0
        if parent_action is not None:
            if not isinstance(parent_action, dict):
                argerror("phantom.act", "parent_action", "expected the action of a callback")
            parent = parent_action.get("action_run_id") or 0
        if parameters is None:
            parameters = []
        elif isinstance(parameters, dict):
            parameters = [parameters]
        elif not isinstance(parameters, (list, tuple)):
            argerror("phantom.act", "parameters", "expected a list of dicts, got %s" % typename(parameters))
        for i, p in enumerate(parameters, 1):
            if not isinstance(p, dict):
                argerror("phantom.act", "parameters", "item %d: expected a dict, got %s" % (i, typename(p)))
        sel = self.select_assets(action, assets, tags, app)
        # every parameter set copied, its context completed, encoded
        param_objs, params = [], []
        for i, p in enumerate(parameters, 1):
            q = dict(p)
            ctx = p.get("context")
            if ctx is not None and not isinstance(ctx, dict):
                argerror("phantom.act", "parameters", "item %d: 'context' must be a dict" % i)
            ctx = dict(ctx) if ctx else {}
            ctx["guid"] = self.guid()
            if parent:
                ctx["parent_action_run"] = parent
            q["context"] = ctx
            try:
                params.append(_dumps(q))
            except (TypeError, ValueError) as e:
                argerror("phantom.act", "parameters", "item %d: %s" % (i, e))
            param_objs.append(q)
        # the action limit (set_action_limit, discontinue)
        st = run.state
        if st.get("discontinued"):
            run.log.append(("error", "phantom.act: '%s' not started: the run was discontinued" % name))
            return None
        if st["action_count"] >= st["action_limit"]:
            run.log.append(("error", "phantom.act: '%s' not started: the run reached its action limit of %d"
                            % (name, st["action_limit"])))
            return None
        st["action_count"] += 1
        ar = ActionRun()
        ar.id = self.next_action_run_id
        self.next_action_run_id += 1
        ar.run = run
        ar.action = action
        ar.name = name
        ar.parent = parent
        ar.params = params
        ar.param_objs = param_objs
        ar.ndone = 0
        ar.success = False
        ar.handle = handle
        ar.callback = callback
        ar.callback_name = None
        if callback is not None:  # what a run resumed after a restart would call
            for k, v in run.env.items():
                if v is callback:
                    ar.callback_name = k
                    break
        ar.app_runs = []
        if params:
            for a in sel:
                apr = AppRun()
                apr.id = self.next_app_run_id
                self.next_app_run_id += 1
                apr.ar = ar
                apr.asset = a
                apr.result = None
                apr.successes = 0
                apr.failed_whole = False
                req = a.app.actions.get(action, ())
                apr.missing = [missing_required(p, req) for p in parameters]
                apr.sent = [i for i, m in enumerate(apr.missing) if m is None]
                ar.app_runs.append(apr)
        run.actions.append(ar)
        run.pending += 1
        for apr in ar.app_runs:
            self.ready.append((APP_RUN, apr))
        if not ar.app_runs:
            self.action_done(ar)
        key = ("action", name)
        started = st.setdefault("started", {})
        pending = st.setdefault("pending", {})
        started[key] = started.get(key, 0) + 1
        pending[key] = pending.get(key, 0) + 1
        return ar.id

    def start_app_run(self, apr):
        ar = apr.ar
        if ar.run is None or ar.run.failed:
            return self.app_run_done(apr, False, None, "cancelled: the playbook run ended")
        if not apr.sent:
            return self.app_run_done(apr, True, '{"action_results":[]}', None)
        app = apr.asset.app
        if app.module_path is None:
            return self.app_run_done(apr, False, None, "app '%s' has no Python peer" % app.name)
        out = failure = None
        try:
            out = self.python_app_run(apr, app)
        except Exception as e:
            failure = str(e)
        self.app_run_done(apr, failure is None, out, failure)

    def python_app_run(self, apr, app):
        if app.functions is None:  # loaded once per engine, in a namespace of its own
            with open(app.module_path) as f:
                ns = {"__builtins__": builtins, "__name__": "peer_app"}
                exec(compile(f.read(), app.module_path, "exec"), ns)
            app.functions = ns["actions"]
        ar = apr.ar
        fn = app.functions.get(ar.action)
        if fn is None:
            raise PlaybookError("app '%s' has no function for action '%s'" % (app.name, ar.action))
        asset = apr.asset
        asset_arg = {"name": asset.name, "id": asset.id, "config": _loads(asset.config_json)}
        results = []
        for i in apr.sent:
            param = _loads(ar.params[i])
            try:
                r = fn(param, asset_arg)
                bad = bad_result(r) if isinstance(r, dict) else \
                    "the app returned %s, expected a result dict" % typename(r)
            except Exception as e:
                bad = str(e) or "the app raised %s" % type(e).__name__
            if bad is not None:
                r = {"status": "failed", "message": bad}
            results.append(r)
        return _dumps({"action_results": results})

    def app_run_done(self, apr, ok, out, failure):
        ar = apr.ar
        if ar.run is not None and not ar.run.failed:
            try:
                self.build_element(apr, ok, out, failure)
            except OutputError as e:  # malformed output: the app run fails with the reason
                self.build_element(apr, False, None, str(e))
        ar.ndone += 1
        if ar.ndone == len(ar.app_runs):
            self.action_done(ar)

    def build_element(self, apr, ok, out, failure):
        ar = apr.ar
        asset = apr.asset
        nsent = len(apr.sent)
        got = decode_output(out, nsent) if ok and nsent else None
        action_results = []
        successes = 0
        j = 0
        first = ar.app_runs[0] is apr
        for i, missing in enumerate(apr.missing):
            param = ar.param_objs[i] if first else _loads(ar.params[i])
            if missing is not None:
                r = failed_result("missing required parameter '%s'" % missing)
            elif failure is not None:
                r = failed_result(failure)
            else:
                r = action_result(got[j], j + 1)
                j += 1
                successes += r["status"] == "success"
            r["parameter"] = param
            action_results.append(r)
        n = len(ar.params)
        if failure is not None:
            message = failure
        elif n == 1:
            message = action_results[0]["message"]
        else:
            message = "%d of %d actions succeeded" % (successes, n)
        apr.successes = successes
        apr.failed_whole = failure is not None
        apr.result = {
            "action_results": action_results, "action": ar.action, "app": asset.app.name,
            "app_id": asset.app.app_id, "asset": asset.name, "asset_id": asset.id, "name": ar.name,
            "app_run_id": apr.id, "action_run_id": ar.id, "status": "success" if successes else "failed",
            "message": message, "summary": {"total_objects": n, "total_objects_successful": successes},
        }

    def action_done(self, ar):
        if ar.run is None:
            return
        ar.success = any(apr.successes > 0 for apr in ar.app_runs)
        self.ready.append((CALLBACK, ar))

    def dispatch(self, ar):
        run = ar.run
        if run is None:  # its run ended while it was in flight
            return
        run.actions.remove(ar)
        if not run.failed:
            self.summary_entry(run, ar)
            self.block(run, self.callback_block, run, ar)
        run.pending -= 1
        ar.app_runs = None  # app runs point back at it
        ar.run = None
        self.settle(run)

    def summary_entry(self, run, ar):
        app_runs = []
        ok_runs = 0
        for apr in ar.app_runs:
            ok_runs += apr.successes > 0
            el = apr.result
            app_runs.append({
                "app_run_id": apr.id, "app": apr.asset.app.name, "asset": apr.asset.name,
                "status": el["status"], "message": el["message"], "summary": el["summary"],
                "parameter": el["action_results"][0]["parameter"] if el["action_results"] else None,
            })
        run.summary["result"].append({
            "action_run_id": ar.id, "name": ar.name, "action": ar.action,
            "status": "success" if ar.success else "failed", "app_runs": app_runs,
            "message": "%d of %d app runs succeeded" % (ok_runs, len(ar.app_runs)) if ar.params
            else "no parameters: nothing to run",
        })

    def callback_block(self, run, ar):
        results = [apr.result for apr in ar.app_runs]
        st = run.state
        key = ("action", ar.name)  # the data API learns the results
        pending = st["pending"]
        pending[key] = pending.get(key, 1) - 1
        st.setdefault("results", {}).setdefault(ar.name, []).append(results)
        st.setdefault("action_runs", {})[ar.id] = results
        if st.get("discontinued") or ar.callback is None:
            return
        ar.callback(action={"action_run_id": ar.id, "action_name": ar.action, "action": ar.action,
                            "name": ar.name},
                    success=ar.success, container=run.container, results=results, handle=ar.handle,
                    filtered_artifacts=None, filtered_results=None, custom_function=None,
                    loop_state_json=None)


class Phantom:
    """The phantom module a playbook sees: the few functions the benchmark uses."""

    def __init__(self, engine):
        self._engine = engine
        self.act = engine.act

    def debug(self, x):
        run = self._engine.current
        if run is None:
            raise PlaybookError("phantom.debug: called outside a playbook run")
        run.log.append(("debug", x if isinstance(x, str) else _dumps(x)))

    def set_action_limit(self, limit):
        run = self._engine.current
        if run is None:
            raise PlaybookError("phantom.set_action_limit: called outside a playbook run")
        if type(limit) is not int or limit < 0:
            raise PlaybookError("phantom.set_action_limit: expected a non-negative integer, got %r" % (limit,))
        run.state["action_limit"] = limit

    def get_summary(self):
        return self._engine.current.summary


class OutputError(Exception):
    pass


def string_list(v, key):
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    if not isinstance(v, (list, tuple)):
        argerror("phantom.act", key, "expected a list of names, got %s" % typename(v))
    for i, s in enumerate(v, 1):
        if not isinstance(s, str):
            argerror("phantom.act", key, "item %d: expected a name, got %s" % (i, typename(s)))
    return v


def missing_required(p, required):
    for k in required:
        v = p.get(k)
        if v is None or v == "":
            return k
    return None


def bad_result(r):
    st = r.get("status")
    if not isinstance(st, str):
        return 'the app returned %s status, expected "success" or "failed"' % ("no" if st is None else typename(st))
    if st != "success" and st != "failed":
        return 'the app returned status "%.60s", expected "success" or "failed"' % st
    for field, types, what in (("message", str, "a string"), ("data", (list, dict), "a list"),
                               ("summary", (dict, list), "a table")):
        v = r.get(field)
        if v is not None and not isinstance(v, types):
            return "the app returned a %s '%s', expected %s" % (typename(v), field, what)
    return None


def decode_output(out, nsent):
    if not out:
        raise OutputError("app output is not the expected JSON: the app printed nothing")
    try:
        doc = _loads(out)
    except ValueError as e:
        raise OutputError("app output is not JSON (%s): '%s'" % (e, out[:60]))
    if not isinstance(doc, dict):
        raise OutputError("app output is not the expected JSON: expected an object")
    ars = doc.get("action_results")
    if ars is None:
        raise OutputError("app output is not the expected JSON: no 'action_results' field")
    if not isinstance(ars, list):
        raise OutputError("app output is not the expected JSON: 'action_results' is not a list")
    if len(ars) != nsent:
        raise OutputError("app output is not the expected JSON: %d action_results for %d parameter sets"
                          % (len(ars), nsent))
    return ars


def bad_output(msg, i):
    raise OutputError("app output is not the expected JSON: action_results[%d]: %s" % (i, msg))


def action_result(r, i):
    """One action result of the app's, checked and made canonical."""
    if not isinstance(r, dict):
        bad_output("expected an object", i)
    status = r.get("status")
    if status != "success" and status != "failed":
        bad_output("'status' must be \"success\" or \"failed\"", i)
    message = r.get("message")
    if message is None:
        message = ""
    elif not isinstance(message, str):
        bad_output("'message' must be a string", i)
    data = r.get("data")
    if data is None or data == {}:
        data = []
    elif not isinstance(data, list):
        bad_output("'data' must be a list", i)
    summary = r.get("summary")
    if summary is None or summary == []:
        summary = {}
    elif not isinstance(summary, dict):
        bad_output("'summary' must be an object", i)
    return {"status": status, "message": message, "data": data, "summary": summary}


def failed_result(msg):
    return {"status": "failed", "message": msg, "data": [], "summary": {}}


def check_container(c):
    if not isinstance(c, dict):
        raise ValueError("container: a container must be a JSON object")
    cid = c.get("id")
    if cid is None:
        c["id"] = cid = 1
    elif type(cid) is not int:
        raise ValueError("container: field 'id': expected an integer, got %s" % typename(cid))
    arts = c.get("artifacts")
    if arts is None or arts == {}:
        c["artifacts"] = []
        return
    if not isinstance(arts, list):
        raise ValueError("container: field 'artifacts': expected a list")
    max_id = 0
    for i, a in enumerate(arts, 1):
        if not isinstance(a, dict):
            raise ValueError("container: artifacts[%d]: expected an object" % i)
        aid = a.get("id")
        if aid is not None:
            if type(aid) is not int or aid < 1:
                raise ValueError("container: artifacts[%d].id: expected a positive integer" % i)
            max_id = max(max_id, aid)
    for a in arts:
        if a.get("id") is None:
            max_id += 1
            a["id"] = max_id
        a["container"] = cid
