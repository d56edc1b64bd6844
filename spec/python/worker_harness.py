# Test helper: starts python/luasoar_worker.py as the engine does and plays the
# engine's side of the protocol over pipes.

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIM = os.path.join(ROOT, "python")
WORKER = os.path.join(SHIM, "luasoar_worker.py")
FIXTURES = os.path.join(ROOT, "spec", "python", "fixtures")
PYTHON = "/usr/bin/python3"
KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


class Worker:
    def __init__(self, app_dir, manifest, tmp):
        self.tmp = tmp
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "HOME": os.environ.get("HOME", tmp), "TMPDIR": tmp,
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}
        self.proc = subprocess.Popen([PYTHON, "-u", "-B", WORKER, app_dir, manifest],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=app_dir, env=env)
        self.lines = queue.Queue()
        self.raw = []
        self.err = []
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump_out(self):
        for line in self.proc.stdout:
            self.raw.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _pump_err(self):
        for line in self.proc.stderr:
            self.err.append(line.decode("utf-8", "replace"))

    def stderr(self):
        return "".join(self.err)

    def read(self, timeout=60):
        line = self.lines.get(timeout=timeout)
        if line is None:
            return None
        assert line.endswith(b"\n"), line
        text = line[:-1].decode("utf-8")
        kind, ident, body = text.split(" ", 2)
        return kind, ident, json.loads(body)

    def send_raw(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, kind, ident, value):
        self.send_raw(f"{kind} {ident} {json.dumps(value, ensure_ascii=False)}\n".encode("utf-8"))

    def run(self, ident, IN, state=None, on_call=None, asset="asset1", vault_dir=None):
        """Sends a run; answers calls with on_call(name, args) -> reply dict;
        returns (lines before done, done value)."""
        self.send("run", ident, {"in": IN, "state": state, "asset": asset,
                                 "vault_dir": vault_dir or os.path.join(self.tmp, "vault"),
                                 "key": KEY, "app_name": "Test"})
        seen = []
        while True:
            got = self.read()
            if got is None:
                raise AssertionError("worker ended during a run: " + self.stderr())
            kind, rid, value = got
            if kind == "done":
                assert rid == str(ident), got
                return seen, value
            seen.append(got)
            if kind == "call":
                reply = on_call(value["call"], value["args"]) if on_call else {"ok": False, "message": "no", "result": None}
                self.send("reply", rid, reply)

    def close(self):
        try:
            self.proc.stdin.close()
        except Exception:
            pass
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()


def copy_fixture(name, tmp):
    dst = os.path.join(tmp, name)
    shutil.copytree(os.path.join(FIXTURES, name), dst)
    return dst, os.path.join(dst, name + ".json")


def make_in(identifier, parameters, config=None, app_dir="/x", container_id=12, action_name=None):
    conf = dict(config or {})
    conf.update({"app_version": "1.0.0", "directory": app_dir, "main_module": "x.py"})
    return {"action": identifier, "identifier": identifier, "action_name": action_name or identifier,
            "asset_id": "7", "config": conf, "parameters": parameters, "container_id": container_id,
            "environment_variables": {}, "user_session_token": "", "dec_key": "",
            "action_run_id": 5, "connector_run_id": 9, "app_run_id": 9}


class TempDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="luasoar-pyspec-")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
