# luasoar shim of Splunk SOAR's phantom.base_connector.BaseConnector.
# _handle_action(in_json_text, handle) is the entry point: it checks every
# parameter set against the manifest, calls initialize() once,
# handle_action(param) once per valid set and finalize() once, and returns the
# JSON text of the list of action results (one per set, in order).  Logs,
# state and engine calls go through the worker's channel (phantom._runtime);
# without a worker (a connector's own __main__ block) logs go to stderr.

import hashlib
import hmac
import json
import math
import re
import traceback
import uuid

from phantom import _runtime
from phantom.action_result import ActionResult  # noqa: F401 - re-exported as SOAR's
from phantom.app import APP_ERROR, APP_SUCCESS, is_fail

RT = _runtime.RT

_INT_RE = re.compile(r"\s*[+-]?[0-9]+\s*")
_FLOAT_RE = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")

STRING_TYPES_REFUSED = (list, tuple, dict)


def _show(value):
    if isinstance(value, str):
        return f"'{value}'"
    try:
        return json.dumps(_runtime.json_safe(value), ensure_ascii=False)
    except Exception:
        return repr(value)


def _blank(value):
    return value is None or value == ""


def convert_value(name, spec, value):
    """(ok, converted value or error message) for one declared parameter
    whose value is present (neither None nor "")."""
    data_type = spec.get("data_type", "string") if isinstance(spec, dict) else "string"
    if data_type == "numeric":
        if isinstance(value, bool):
            return False, f"parameter '{name}': expected a number, got {_show(value)}"
        if isinstance(value, int):
            return True, value
        if isinstance(value, float):
            if not math.isfinite(value):
                return False, f"parameter '{name}': expected a number, got {_show(value)}"
            return True, value
        if isinstance(value, str):
            if _INT_RE.fullmatch(value):
                return True, int(value)
            if _FLOAT_RE.fullmatch(value):
                f = float(value)
                if math.isfinite(f):
                    return True, f
        return False, f"parameter '{name}': expected a number, got {_show(value)}"
    if data_type == "boolean":
        if isinstance(value, bool):
            return True, value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return True, value.lower() == "true"
        return False, f"parameter '{name}': expected a boolean, got {_show(value)}"
    # string, password and every other string-like type
    if isinstance(value, str):
        return True, value
    if isinstance(value, (bool, int, float)):
        return True, str(value)
    return False, f"parameter '{name}': expected a string, got {_show(value)}"


def check_parameters(declared, given):
    """(ok, the converted set or the error message) for one parameter set."""
    if not isinstance(given, dict):
        return False, f"parameter set is not an object: {_show(given)}"
    out = dict(given)
    for name, spec in (declared or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        value = out.get(name)
        if _blank(value) and "default" in spec and not _blank(spec.get("default")):
            value = spec["default"]
            out[name] = value
        if _blank(value):
            if spec.get("required"):
                return False, f"missing required parameter '{name}'"
            continue
        ok, converted = convert_value(name, spec, value)
        if not ok:
            return False, converted
        values = spec.get("value_list")
        if isinstance(values, list) and values and converted not in values:
            return False, f"parameter '{name}': must be one of: " + ", ".join(str(v) for v in values)
        out[name] = converted
    return True, out


def _failed(message, parameter):
    return {"status": "failed", "message": message, "data": [], "summary": {}, "parameter": parameter}


class BaseConnector:
    def __init__(self):
        self.__action_results = []
        self.__status = APP_SUCCESS
        self.__status_message = ""
        self.__in = {}
        self.__config = {}
        self.__current_param = None
        self.__state = None
        self.__validators = {}
        self.print_progress_message = False

    # ----------------------------------------------------------- overridables
    def initialize(self):
        return APP_SUCCESS

    def finalize(self):
        return APP_SUCCESS

    def handle_action(self, param):
        return self.set_status(APP_ERROR, f"action '{self.get_action_identifier()}' is not implemented")

    def handle_exception(self, exception):
        pass

    def validate_parameters(self, param):
        return APP_SUCCESS

    # -------------------------------------------------------------- the entry
    def _handle_action(self, in_json, handle):
        IN = json.loads(in_json) if isinstance(in_json, (str, bytes, bytearray)) else dict(in_json)
        self.__in = IN
        self.__config = IN.get("config") or {}
        self.__action_results = []
        self.__status = APP_SUCCESS
        self.__status_message = ""
        app_json = self.get_app_json()
        identifier = self.get_action_identifier()
        action = None
        for a in app_json.get("actions") or []:
            if isinstance(a, dict) and a.get("identifier") == identifier:
                action = a
                break
        declared = (action or {}).get("parameters") or {}
        params = IN.get("parameters") or []
        if RT.channel is not None:
            RT.container_id = IN.get("container_id")
        self._register_secrets(app_json, declared, params)

        results = [None] * len(params)
        valid = []
        for i, given in enumerate(params):
            ok, out = check_parameters(declared, given)
            if ok:
                valid.append((i, out))
            else:
                results[i] = _failed(out, given)

        init_failure = None
        try:
            ret = self.initialize()
            if is_fail(ret):
                init_failure = self.get_status_message() or "initialize failed"
        except Exception as e:
            self._log("error", traceback.format_exc().rstrip())
            init_failure = "initialize raised " + _runtime.exception_text(e)
        except SystemExit as e:
            init_failure = "initialize raised " + _runtime.exception_text(e)

        for i, param in valid:
            if init_failure is not None:
                results[i] = _failed(init_failure, param)
                continue
            results[i] = self._run_one(param)

        try:
            self.finalize()
        except BaseException as e:  # noqa: B036 - a connector's sys.exit too
            if isinstance(e, KeyboardInterrupt):
                raise
            self._log("error", "finalize raised " + _runtime.exception_text(e) + "\n" + traceback.format_exc().rstrip())

        return json.dumps(_runtime.json_safe(results), ensure_ascii=False)

    def _run_one(self, param):
        start = len(self.__action_results)
        self.__current_param = param
        self.__status, self.__status_message = APP_SUCCESS, ""  # this set's own
        error = None
        try:
            self.handle_action(param)
        except Exception as e:
            error = _runtime.exception_text(e)
            self._log("error", traceback.format_exc().rstrip())
        except SystemExit as e:
            error = _runtime.exception_text(e)
            self._log("error", traceback.format_exc().rstrip())
        finally:
            self.__current_param = None
        added = self.__action_results[start:]
        if error is not None:
            if added:
                ar = added[0]
                return {"status": "failed", "message": error, "data": ar.get_data(),
                        "summary": ar.get_summary(), "parameter": ar.get_param()}
            return _failed(error, param)
        if not added:
            # as SOAR does for a connector that only set its own status (test
            # connectivity often does): the result is that status and message
            message = self.get_status_message() or "the connector added no action result"
            return {"status": "success" if self.get_status() == APP_SUCCESS and self.get_status_message() else "failed",
                    "message": message, "data": [], "summary": {}, "parameter": param}
        ar = added[0]
        return {
            "status": "success" if ar.get_status() == APP_SUCCESS else "failed",
            "message": ar.get_message(),
            "data": ar.get_data(),
            "summary": ar.get_summary(),
            "parameter": ar.get_param(),
        }

    def _register_secrets(self, app_json, declared, params):
        values = []
        conf_spec = app_json.get("configuration") or {}
        for key, spec in conf_spec.items():
            if isinstance(spec, dict) and spec.get("data_type") == "password":
                values.append(self.__config.get(key))
        for name, spec in declared.items():
            if isinstance(spec, dict) and spec.get("data_type") == "password":
                for p in params:
                    if isinstance(p, dict):
                        values.append(p.get(name))
        _runtime.set_secrets(values)

    # ------------------------------------------------------------ the run's input
    def get_config(self):
        return self.__config

    def get_action_identifier(self):
        return self.__in.get("identifier") or self.__in.get("action")

    def get_action_name(self):
        return self.__in.get("action_name") or self.get_action_identifier()

    def get_app_id(self):
        return self.get_app_json().get("appid")

    def get_asset_id(self):
        asset_id = self.__in.get("asset_id")
        return None if asset_id is None else str(asset_id)

    def get_container_id(self):
        return self.__in.get("container_id")

    def get_app_run_id(self):
        return self.__in.get("app_run_id", self.__in.get("connector_run_id"))

    def get_connector_run_id(self):
        return self.__in.get("connector_run_id")

    def get_action_run_id(self):
        return self.__in.get("action_run_id")

    def get_current_param(self):
        return self.__current_param

    def get_app_json(self):
        if RT.app_json is not None:
            return RT.app_json
        return {}

    def get_app_dir(self):
        return RT.app_dir or self.__config.get("directory")

    def get_product_installation_id(self):
        key = (RT.key or "").encode()
        digest = hmac.new(key, b"luasoar product installation id", hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16]))

    def get_product_version(self):
        return "6.3.0"

    def get_ph_version(self):
        return self.get_product_version()

    def is_poll_now(self):
        return False

    def get_ca_bundle(self):
        return None

    def set_validator(self, contains, validator):
        self.__validators[contains] = validator
        return APP_SUCCESS

    @classmethod
    def _get_phantom_base_url(cls):
        return "https://127.0.0.1/"

    def get_phantom_base_url(self):
        return self._get_phantom_base_url()

    def _set_csrf_info(self, *args, **kwargs):
        return None

    # ------------------------------------------------------------ action results
    def add_action_result(self, action_result):
        self.__action_results.append(action_result)
        return action_result

    def get_action_results(self):
        return self.__action_results

    # ------------------------------------------------------------ status
    def set_status(self, status, message="", exception=None):
        self.__status = status
        self.__status_message = _runtime.status_text(message, exception)
        return status

    def get_status(self):
        return self.__status

    def get_status_message(self):
        return self.__status_message

    def append_to_message(self, message):
        self.__status_message = _runtime.joined(self.__status_message, message)
        return self.__status_message

    def set_status_save_progress(self, status, message="", *args, **kwargs):
        self.set_status(status, message)
        self.save_progress(message, *args, **kwargs)
        return status

    # ------------------------------------------------------------ logs
    def _log(self, level, message):
        if RT.channel is not None:
            RT.channel.log(level, message)
        else:
            _runtime.stderr_line(f"[{level}] {message}")

    @staticmethod
    def _format(message, args, kwargs):
        text = "" if message is None else str(message)
        if args or kwargs:
            try:
                text = text.format(*args, **kwargs)
            except Exception:
                pass
        return text

    def save_progress(self, message, *args, **kwargs):
        self._log("progress", self._format(message, args, kwargs))

    def send_progress(self, message, *args, **kwargs):
        self._log("progress", self._format(message, args, kwargs))

    def debug_print(self, message, dump_object=None):
        self._log("debug", self._dump(message, dump_object))

    def error_print(self, message, dump_object=None):
        self._log("error", self._dump(message, dump_object))

    @staticmethod
    def _dump(message, dump_object):
        text = "" if message is None else str(message)
        if dump_object is None:
            return text
        if isinstance(dump_object, (dict, list, tuple, str, int, float, bool)):
            try:
                extra = json.dumps(_runtime.json_safe(dump_object), ensure_ascii=False)
            except Exception:
                extra = repr(dump_object)
        else:
            extra = repr(dump_object)
        return f"{text} {extra}"

    # ------------------------------------------------------------ state
    def load_state(self):
        if self.__state is not None:
            return json.loads(json.dumps(self.__state))
        state = RT.state
        if not isinstance(state, dict):
            return {}
        return json.loads(json.dumps(state))

    def save_state(self, state):
        safe = _runtime.json_safe(state)
        self.__state = safe if isinstance(safe, dict) else {}
        RT.state = self.__state
        if RT.channel is not None:
            RT.channel.send_state(safe)
        return APP_SUCCESS

    def get_state_dir(self):
        import os
        import tempfile
        d = os.path.join(tempfile.gettempdir(), "luasoar-state")
        os.makedirs(d, exist_ok=True)
        return d

    # ------------------------------------------------------------ engine calls
    def _call(self, name, args):
        if RT.channel is None:
            return {"ok": False, "message": "not running under the luasoar worker", "result": None}
        return RT.channel.call(name, args)

    def get_container_info(self, container_id=None):
        reply = self._call("get_container_info", {"container_id": container_id})
        if reply.get("ok") and isinstance(reply.get("result"), dict):
            return APP_SUCCESS, reply["result"], 200
        return APP_ERROR, reply.get("message") or "container not found", 404

    def save_container(self, container, fail_on_duplicate=False):
        reply = self._call("save_container", {"container": container})
        if reply.get("ok"):
            return APP_SUCCESS, reply.get("message") or "", reply.get("result")
        return APP_ERROR, reply.get("message") or "save_container failed", None

    def save_containers(self, containers):
        results = []
        for c in containers:
            results.append(self.save_container(c))
        ok = all(r[0] for r in results)
        return (APP_SUCCESS if ok else APP_ERROR), "", [
            {"success": bool(r[0]), "message": r[1], "id": r[2]} for r in results]

    def save_artifacts(self, artifacts):
        reply = self._call("save_artifacts", {"artifacts": list(artifacts)})
        if reply.get("ok"):
            ids = reply.get("result")
            return APP_SUCCESS, reply.get("message") or "", ids if isinstance(ids, list) else []
        return APP_ERROR, reply.get("message") or "save_artifacts failed", None

    def save_artifact(self, artifact):
        status, message, ids = self.save_artifacts([artifact])
        if status and ids:
            return APP_SUCCESS, message, ids[0]
        return APP_ERROR, message or "save_artifact failed", None
