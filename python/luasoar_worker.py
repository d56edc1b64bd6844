# luasoar_worker.py: the worker that runs one published Splunk SOAR connector
# (Python) for luasoar's engine (engine/soar_runner.c).  Standard library only;
# runs under /usr/bin/python3.
#
#   /usr/bin/python3 -u -B <SHIM>/luasoar_worker.py APP_DIR MANIFEST_FILE
#
# Protocol, version 1 (summary; the engine's side is engine/soar_runner.c):
#
# Start.  The protocol's input and output are the original fd 0 and fd 1,
# duplicated to private fds; then fd 0 reads /dev/null and fd 1 writes to fd 2,
# so whatever the connector prints (print, os.write(1, ...), C libraries) lands
# on stderr, never in the protocol stream.  sys.path starts with <SHIM> (our
# `phantom` package) and then APP_DIR.  The manifest's main_module (extension
# stripped) is imported and the connector class found: the BaseConnector
# subclass defined in that module, or, if several, the one no other subclasses.
# Then the worker writes
#     ready 0 {"python": "3.11.2", "pid": N, "connector": "HttpConnector"}
# or, on failure, `fatal 0 {"message": <last line of the traceback>}` (the full
# traceback on stderr) and exits 3.
#
# Lines.  UTF-8, one per message: `KIND SP ID SP JSON\n` (json.dumps with
# ensure_ascii=False, never a newline inside).
#   engine -> worker
#     run ID {"in": IN, "state": STATE|null, "asset": NAME, "vault_dir": DIR,
#             "key": 64 hex, "app_name": NAME}
#         IN is exactly what SOAR gives BaseConnector._handle_action.
#     reply ID {"ok": bool, "message": str, "result": ANY}   answers a `call`
#     EOF: exit 0 at once.  Anything unparseable: `fatal 0 {...}`, exit 3.
#   worker -> engine (ID = the run's)
#     log ID {"level": "debug"|"error"|"progress", "message": str}
#     state ID {"state": {...}}                  save_state (never redacted)
#     call ID {"call": NAME, "args": {...}}      then block until `reply ID`;
#         get_container_info {"container_id"}, save_artifacts {"artifacts"},
#         save_container {"container"}
#     done ID {"action_results": [{status, message, data, summary, parameter}]}
#         one result per parameter set, in order.
# The semantics of a run (parameter checks against the manifest, initialize /
# handle_action / finalize, which ActionResult counts) live in
# phantom/base_connector.py.  Everything written is made JSON-safe (what json
# cannot encode becomes str(), NaN/inf null) and, except state lines, has the
# values of password-typed config keys and parameters replaced by ********.
#
# Choices of this worker beyond the protocol: a fresh connector instance per
# run (its constructor failing fails every set with "connector constructor
# raised ..."); a line of an unknown kind, a stray reply or a reply to another
# ID is treated like an unparseable line (fatal, exit 3).

import importlib
import inspect
import json
import os
import platform
import sys
import threading
import traceback

SHIM = os.path.dirname(os.path.abspath(__file__))
EXIT_FATAL = 3


class ProtocolError(Exception):
    pass


class Channel:
    """The protocol stream: one writer lock, lines in and out."""

    def __init__(self, fin, fout):
        self.fin = fin
        self.fout = fout
        self.lock = threading.RLock()
        self.run_id = None

    # ---------------------------------------------------------------- writing
    def write(self, kind, ident, payload, redact=True):
        from phantom import _runtime
        value = _runtime.json_safe(payload)
        if redact:
            value = _runtime.redact(value, _runtime.RT.secrets)
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        line = f"{kind} {ident} {text}\n".encode("utf-8", "replace")
        with self.lock:
            self.fout.write(line)
            self.fout.flush()

    def log(self, level, message):
        self.write("log", self._id(), {"level": level, "message": message})

    def send_state(self, state):
        self.write("state", self._id(), {"state": state}, redact=False)

    def _id(self):
        return self.run_id if self.run_id is not None else "0"

    # ---------------------------------------------------------------- reading
    def read(self):
        """(kind, id, value), or None at EOF; ProtocolError if unparseable."""
        raw = self.fin.readline()
        if not raw:
            return None
        if not raw.endswith(b"\n"):
            raise ProtocolError("truncated line (no newline before EOF)")
        try:
            text = raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("a line is not UTF-8") from None
        parts = text.split(" ", 2)
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise ProtocolError(f"unparseable line: {text[:200]}")
        kind, ident, body = parts
        try:
            value = json.loads(body)
        except ValueError as e:
            raise ProtocolError(f"unparseable JSON in a {kind} line: {e}") from None
        if kind not in ("run", "reply"):
            raise ProtocolError(f"unknown line kind: {kind[:50]}")
        if not isinstance(value, dict):
            raise ProtocolError(f"a {kind} line's JSON is not an object")
        return kind, ident, value

    def call(self, name, args):
        with self.lock:
            ident = self._id()
            self.write("call", ident, {"call": name, "args": args})
            try:
                got = self.read()
            except ProtocolError as e:
                raise_fatal(self, str(e))
            if got is None:
                os._exit(0)
            kind, rid, value = got
            if kind != "reply" or rid != ident:
                raise_fatal(self, f"expected reply {ident}, got {kind} {rid}")
            return value


def fatal(channel, message):
    try:
        channel.write("fatal", "0", {"message": message})
    except Exception:
        pass


def raise_fatal(channel, message):
    sys.stderr.write(f"luasoar_worker: {message}\n")
    sys.stderr.flush()
    fatal(channel, message)
    os._exit(EXIT_FATAL)


def setup_fds():
    """The protocol's private streams; fd 0 <- /dev/null, fd 1 -> fd 2."""
    pin = os.dup(0)
    pout = os.dup(1)
    for fd in (pin, pout):
        os.set_inheritable(fd, False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = open(0, "r", encoding="utf-8", errors="replace", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
    return os.fdopen(pin, "rb"), os.fdopen(pout, "wb")


def setup_path(app_dir):
    for p in (SHIM, app_dir):
        while p in sys.path:
            sys.path.remove(p)
    sys.path.insert(0, app_dir)
    sys.path.insert(0, SHIM)


def find_connector(module, base):
    found = [c for _n, c in inspect.getmembers(module, inspect.isclass)
             if issubclass(c, base) and c is not base and c.__module__ == module.__name__]
    leaves = [c for c in found if not any(o is not c and issubclass(o, c) for o in found)]
    if not leaves:
        raise LookupError(f"no BaseConnector subclass defined in module {module.__name__}")
    if len(leaves) > 1:
        names = ", ".join(sorted(c.__name__ for c in leaves))
        raise LookupError(f"several connector classes in module {module.__name__}: {names}")
    return leaves[0]


def load(app_dir, manifest_file):
    with open(manifest_file, encoding="utf-8") as f:
        manifest = json.load(f)
    if not isinstance(manifest, dict):
        raise ValueError(f"{manifest_file}: the manifest is not a JSON object")
    main = manifest.get("main_module")
    if not isinstance(main, str) or not main:
        raise ValueError(f"{manifest_file}: no main_module")
    name = os.path.basename(main)
    for ext in (".pyc", ".py"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    from phantom.base_connector import BaseConnector
    module = importlib.import_module(name)
    return manifest, find_connector(module, BaseConnector)


def run(channel, ident, value, cls):
    from phantom import _runtime
    from phantom.base_connector import _failed
    RT = _runtime.RT
    IN = value.get("in")
    if not isinstance(IN, dict):
        raise_fatal(channel, "a run line without an \"in\" object")
    RT.run_id = ident
    RT.state = value.get("state")
    RT.asset = value.get("asset")
    RT.vault_dir = value.get("vault_dir")
    RT.key = value.get("key")
    RT.app_name = value.get("app_name")
    RT.container_id = IN.get("container_id")
    channel.run_id = ident
    try:
        try:
            connector = cls()
        except Exception as e:
            sys.stderr.write(traceback.format_exc())
            text = str(e)
            msg = "connector constructor raised " + (f"{type(e).__name__}: {text}" if text else type(e).__name__)
            results = [_failed(msg, p) for p in (IN.get("parameters") or [])]
        else:
            text = connector._handle_action(json.dumps(IN, ensure_ascii=False), 0)
            results = json.loads(text)
        channel.write("done", ident, {"action_results": results})
    finally:
        channel.run_id = None
        RT.run_id = None
        RT.secrets = []


def main(argv):
    fin, fout = setup_fds()
    channel = Channel(fin, fout)
    if len(argv) != 3:
        sys.stderr.write("usage: luasoar_worker.py APP_DIR MANIFEST_FILE\n")
        fatal(channel, "usage: luasoar_worker.py APP_DIR MANIFEST_FILE")
        return EXIT_FATAL
    app_dir = os.path.abspath(argv[1])
    setup_path(app_dir)
    try:
        from phantom import _runtime
        manifest, cls = load(app_dir, argv[2])
    except BaseException as e:  # noqa: B036 - an import may sys.exit too
        if isinstance(e, KeyboardInterrupt):
            raise
        tb = traceback.format_exc()
        sys.stderr.write(tb)
        sys.stderr.flush()
        last = traceback.format_exception_only(type(e), e)[-1].strip().replace("\n", " ")
        fatal(channel, last)
        return EXIT_FATAL
    _runtime.RT.channel = channel
    _runtime.RT.app_json = manifest
    _runtime.RT.app_dir = app_dir
    channel.write("ready", "0", {"python": platform.python_version(), "pid": os.getpid(),
                                 "connector": cls.__name__})
    while True:
        try:
            got = channel.read()
        except ProtocolError as e:
            raise_fatal(channel, str(e))
        if got is None:
            return 0
        kind, ident, value = got
        if kind != "run":
            raise_fatal(channel, f"unexpected {kind} line outside a call")
        run(channel, ident, value, cls)


if __name__ == "__main__":
    code = main(sys.argv)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(code)
