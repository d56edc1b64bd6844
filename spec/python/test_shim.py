# Unit tests of python/luasoar_worker.py and the phantom shim, through the real
# worker process speaking the protocol over pipes, with the fixture connectors
# of spec/python/fixtures.

import hashlib
import json
import os
import re
import unittest

from .worker_harness import KEY, TempDir, Worker, copy_fixture, make_in


class WorkerCase(unittest.TestCase):
    fixture = "good"

    def setUp(self):
        self._tmp = TempDir()
        self.tmp = self._tmp.__enter__()
        self.app_dir, self.manifest = copy_fixture(self.fixture, self.tmp)
        self.w = Worker(self.app_dir, self.manifest, self.tmp)

    def tearDown(self):
        self.w.close()
        self._tmp.__exit__(None, None, None)

    def ready(self):
        kind, ident, value = self.w.read()
        self.assertEqual((kind, ident), ("ready", "0"), self.w.stderr())
        return value

    def run_action(self, ident, identifier, params, config=None, **kw):
        conf = {"base_url": "https://example.com", "password": "Pa55-word!"}
        conf.update(config or {})
        IN = make_in(identifier, params, conf, app_dir=self.app_dir)
        return self.w.run(ident, IN, **kw)

    def logs(self, lines, level=None):
        return [v["message"] for k, _i, v in lines if k == "log" and (level is None or v["level"] == level)]


class TestStart(WorkerCase):
    def test_ready_line(self):
        value = self.ready()
        self.assertEqual(value["python"], "3.11.2")
        self.assertEqual(value["connector"], "GoodConnector")
        self.assertEqual(value["pid"], self.w.proc.pid)
        self.assertEqual(sorted(value), ["connector", "pid", "python"])

    def test_eof_exits_0(self):
        self.ready()
        self.assertEqual(self.w.close(), 0)

    def test_unparseable_input_is_fatal(self):
        self.ready()
        self.w.send_raw(b"this is not a line\n")
        kind, ident, value = self.w.read()
        self.assertEqual((kind, ident), ("fatal", "0"))
        self.assertIn("unparseable", value["message"])
        self.assertEqual(self.w.close(), 3)

    def test_bad_json_is_fatal(self):
        self.ready()
        self.w.send_raw(b"run 1 {nope}\n")
        self.assertEqual(self.w.read()[0], "fatal")
        self.assertEqual(self.w.close(), 3)

    def test_stray_reply_is_fatal(self):
        self.ready()
        self.w.send("reply", "1", {"ok": True, "message": "", "result": None})
        self.assertEqual(self.w.read()[0], "fatal")
        self.assertEqual(self.w.close(), 3)


class TestImportError(WorkerCase):
    fixture = "importerr"

    def test_fatal_and_exit_3(self):
        got = self.w.read()
        self.assertEqual(got, ("fatal", "0", {"message": "ModuleNotFoundError: No module named 'luasoar_no_such_module'"}))
        self.assertIsNone(self.w.read())
        self.assertEqual(self.w.close(), 3)
        self.assertIn("Traceback (most recent call last)", self.w.stderr())


class TestGood(WorkerCase):
    def test_test_connectivity_and_state(self):
        self.ready()
        lines, done = self.run_action(1, "test_connectivity", [{}], state={"runs": 4})
        self.assertEqual(done, {"action_results": [
            {"status": "success", "message": "connected", "data": [], "summary": {}, "parameter": {}}]})
        self.assertIn("Connecting to https://example.com...", self.logs(lines, "progress"))
        self.assertEqual([v for k, _i, v in lines if k == "state"], [{"state": {"runs": 5}}])
        for kind, ident, _v in lines:
            self.assertEqual(ident, "1")
        # a second run on the same worker: fresh connector, state from the run line
        lines, done = self.run_action(2, "test_connectivity", [{}], state=None)
        self.assertEqual(done["action_results"][0]["status"], "success")
        self.assertEqual([v for k, _i, v in lines if k == "state"], [{"state": {"runs": 1}}])

    def test_echo_converts_and_defaults(self):
        self.ready()
        params = [
            {"text": "hi", "count": "5", "flag": "TRUE", "color": "green", "context": {"guid": "g1"}, "extra": [1]},
            {"text": 12, "count": "2.5", "flag": False, "level": None},
            {"text": "x", "count": 3, "level": ""},
        ]
        _lines, done = self.run_action(1, "echo", params)
        r = done["action_results"]
        self.assertEqual(len(r), 3)
        self.assertEqual(r[0]["status"], "success")
        self.assertEqual(r[0]["message"], "echoed hi with -")
        self.assertEqual(r[0]["data"], [
            {"text": "hi", "count": 5, "flag": True, "color": "green", "level": 5, "secret": None},
            {"types": ["str", "int", "bool", "int"]}])
        self.assertEqual(r[0]["summary"], {"echoed": "hi"})
        self.assertEqual(r[0]["parameter"], {"text": "hi", "count": 5, "flag": True, "color": "green",
                                             "context": {"guid": "g1"}, "extra": [1], "level": 5})
        self.assertEqual(r[1]["data"][0], {"text": "12", "count": 2.5, "flag": False, "color": "red",
                                           "level": 5, "secret": None})
        self.assertEqual(r[2]["data"][0]["count"], 3)
        self.assertEqual(r[2]["data"][0]["level"], 5)

    def test_bad_parameters(self):
        self.ready()
        params = [
            {"text": "a", "count": "abc"},
            {"text": "b", "color": "purple"},
            {"count": 2},
            {"text": ""},
            {"text": "c", "count": True},
            {"text": "d", "flag": "yes"},
            {"text": ["list"]},
            {"text": "ok"},
        ]
        _lines, done = self.run_action(1, "echo", params)
        r = done["action_results"]
        expect = [
            "parameter 'count': expected a number, got 'abc'",
            "parameter 'color': must be one of: red, green, blue",
            "missing required parameter 'text'",
            "missing required parameter 'text'",
            "parameter 'count': expected a number, got true",
            "parameter 'flag': expected a boolean, got 'yes'",
            "parameter 'text': expected a string, got [\"list\"]",
        ]
        for i, msg in enumerate(expect):
            self.assertEqual(r[i], {"status": "failed", "message": msg, "data": [], "summary": {},
                                    "parameter": params[i]}, i)
        self.assertEqual(r[7]["status"], "success")
        self.assertEqual(r[7]["message"], "echoed ok with -")

    def test_missing_required_with_default_is_filled(self):
        self.ready()
        _lines, done = self.run_action(1, "echo", [{"text": "t", "level": None}])
        self.assertEqual(done["action_results"][0]["data"][0]["level"], 5)

    def test_passwords_are_masked(self):
        self.ready()
        params = [{"text": "say s3cr3t-Param", "secret": "s3cr3t-Param"}]
        lines, done = self.run_action(1, "echo", params, state={"pw": "Pa55-word!"})
        raw = b"".join(self.w.raw).decode("utf-8")
        self.assertNotIn("s3cr3t-Param", raw.replace('"pw": "Pa55-word!"', ""))
        self.assertNotIn("Pa55-word!", raw.replace('"pw": "Pa55-word!"', ""))
        r = done["action_results"][0]
        self.assertEqual(r["message"], "echoed say ******** with ********")
        self.assertEqual(r["data"][0]["secret"], "********")
        self.assertEqual(r["parameter"]["secret"], "********")
        self.assertEqual(r["parameter"]["text"], "say ********")
        self.assertIn("config password is '********'", self.logs(lines, "debug")[0].replace('"', "'"))
        self.assertIn('secret param {"secret": "********", "pw": "********"}', self.logs(lines, "debug"))
        # the state is the connector's own storage: not redacted
        self.assertEqual([v for k, _i, v in lines if k == "state"],
                         [{"state": {"pw": "Pa55-word!", "runs": 1}}])

    def test_engine_calls(self):
        self.ready()
        calls = []

        def on_call(name, args):
            calls.append((name, args))
            if name == "get_container_info":
                if args["container_id"] is None:
                    return {"ok": True, "message": "", "result": {"id": 12, "name": "c12"}}
                return {"ok": False, "message": "container 999 not found", "result": None}
            if name == "save_artifacts":
                n = len(args["artifacts"])
                return {"ok": True, "message": "saved", "result": list(range(100, 100 + n))}
            if name == "save_container":
                if args["container"]["name"] == "refused":
                    return {"ok": False, "message": "refused", "result": None}
                return {"ok": True, "message": "created", "result": 44}
            raise AssertionError(name)

        lines, done = self.run_action(1, "calls", [{}], on_call=on_call)
        self.assertEqual(calls, [
            ("get_container_info", {"container_id": None}),
            ("get_container_info", {"container_id": 999}),
            ("save_artifacts", {"artifacts": [{"name": "a1", "cef": {"sourceAddress": "10.0.0.1"}},
                                              {"name": "a2", "cef": {}}]}),
            ("save_artifacts", {"artifacts": [{"name": "a3"}]}),
            ("save_container", {"container": {"name": "new one", "label": "events"}}),
            ("save_container", {"container": {"name": "refused"}}),
        ])
        r = done["action_results"][0]
        self.assertEqual(r["status"], "success")
        self.assertEqual(r["data"], [{
            "info": [True, {"id": 12, "name": "c12"}, 200],
            "info_missing": [False, "container 999 not found", 404],
            "artifacts": [True, "saved", [100, 101]],
            "artifact": [True, "saved", 100],
            "container": [True, "created", 44],
            "container_refused": [False, "refused", None],
        }])
        self.assertEqual(sum(1 for k, _i, _v in lines if k == "call"), 6)

    def test_vault(self):
        self.ready()
        vault_dir = os.path.join(self.tmp, "v")
        _lines, done = self.run_action(1, "vault", [{}], vault_dir=vault_dir)
        r = done["action_results"][0]
        self.assertEqual(r["status"], "success", r)
        d = r["data"][0]
        sha = hashlib.sha1(b"hello vault\n").hexdigest()
        self.assertEqual(d["tmp_is_dir"], True)
        self.assertEqual(d["tmp_name"], "tmp")
        self.assertEqual(d["add"], [True, "success", sha])
        self.assertTrue(d["source_kept"])
        self.assertTrue(d["info_ok"])
        self.assertEqual(d["info"], [{"vault_id": sha, "name": "report.txt", "size": 12, "container_id": 12,
                                      "metadata": {"contains": ["text"]}, "hash": sha, "contains": ["text"]}])
        self.assertEqual(d["content"], "hello vault\n")
        self.assertEqual(d["attachment"], {"succeeded": True, "message": "success", "vault_id": sha, "hash": sha})
        self.assertTrue(d["file_path_ok"])
        self.assertEqual(d["info_by_name"], 1)
        self.assertEqual(d["info_by_container"], ["copy.txt"])
        self.assertEqual(d["delete_ambiguous"][0], False)
        self.assertEqual(d["delete_ambiguous"][2], [])
        self.assertEqual(d["delete_one"], [True, "deleted 1 vault item(s)", ["copy.txt"]])
        self.assertTrue(d["still_there"])
        self.assertEqual(d["delete_rest"], [True, "deleted 1 vault item(s)", ["report.txt"]])
        self.assertEqual(d["gone"], [False, "no vault item matches", []])
        self.assertTrue(d["file_gone"])
        self.assertEqual(d["missing"][0], False)
        self.assertEqual(sorted(os.listdir(vault_dir)), ["files", "lock", "meta", "tmp"])
        self.assertEqual(os.listdir(os.path.join(vault_dir, "files")), [])
        self.assertEqual(os.listdir(os.path.join(vault_dir, "meta")), [])

    def test_crypt(self):
        self.ready()
        _lines, done = self.run_action(1, "crypt", [{"value": "tök€n"}, {}])
        for r in done["action_results"]:
            self.assertEqual(r["status"], "success", r)
            d = r["data"][0]
            self.assertEqual({k: d[k] for k in ("round", "differs", "plain_absent", "tamper", "other_asset",
                                                "garbage")},
                             {"round": True, "differs": True, "plain_absent": True, "tamper": "ValueError",
                              "other_asset": "ValueError", "garbage": "ValueError"})
            self.assertIn("authentication failed", d["tamper_msg"])

    def test_misc(self):
        self.ready()
        lines, done = self.run_action(1, "misc", [{}], state={"old": 1})
        r = done["action_results"][0]
        self.assertEqual(r["status"], "success", r)
        self.assertEqual(r["message"], "Status code: 200, Reason: OK")
        d = r["data"][0]
        self.assertEqual(d["config_keys"], ["app_version", "base_url", "directory", "main_module", "password"])
        self.assertIsNone(d["retries"])  # the engine applies config defaults, not the shim
        self.assertEqual(d["identifier"], "misc")
        self.assertEqual(d["app_id"], "6f1c1b7e-2f4d-4d51-9a52-000000000001")
        self.assertEqual(d["asset_id"], "7")
        self.assertEqual(d["container_id"], 12)
        self.assertEqual(d["app_name"], "Good Test App")
        self.assertTrue(d["app_dir_ok"])
        self.assertRegex(d["install_id"], r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        self.assertTrue(d["install_id_stable"])
        self.assertEqual([d["poll_now"], d["ca_bundle"], d["base_url"], d["base_url2"], d["csrf"]],
                         [False, None, "https://127.0.0.1/", "https://127.0.0.1/", None])
        self.assertEqual(d["state"], {"old": 1})
        self.assertEqual(d["state_after_save"], {"saved": True, "nested": {"n": 1}})
        self.assertEqual(d["print_progress_message"], False)
        self.assertEqual([d["fips"], d["product_version"]], [False, "6.3.0"])
        self.assertEqual(d["set_status"], False)
        self.assertEqual(d["status"], [False, "bad. ValueError: why"])
        self.assertEqual(d["status_appended"], "bad. ValueError: why. more")
        self.assertEqual(d["ssp"], True)
        self.assertEqual(d["results_count"], 1)
        self.assertEqual(d["app"], {
            "success": [True, False, True, True],
            "get_value": [1, 0, 7],
            "host": ["example.com", "::1", "example.org"],
            "consts": ["test_asset_connectivity", "vault_id", "name", "hash", "size", "ip", "domain", "server",
                       "action_name", "app_run_id", "container_count", "container_id", "artifact_count", "url",
                       "Connecting to h...", True],
        })
        self.assertEqual(d["utils"], {
            "ip": [True, True, True, False, False, False, False],
            "domain": [True, True, False, False, False, False, False],
            "url": [True, True, True, False, False, False, False],
            "email": [True, False, False, False, False],
            "hash": [True, True, True, True, False, False, True, False],
        })
        self.assertEqual(d["action_result"], {
            "data": [{"x": 1}, {"y": 2}], "size": 2, "summary": {"total_objects": 2, "more": 1},
            "param": {"p": 2}, "status": [False, False], "message": "first. second",
            "update_summary": {"total_objects": 2, "more": 1}})
        self.assertEqual([v for k, _i, v in lines if k == "state"],
                         [{"state": {"saved": True, "nested": {"n": 1}}},
                          {"state": {"old": 1, "runs": 1}}])
        self.assertEqual(self.logs(lines, "progress"), ["progress saved", "sent 1 2", "plain {0}"])
        self.assertEqual(self.logs(lines, "error"), ["an error ValueError('oops')"])
        self.assertIn('a list [1, "two", null]', self.logs(lines, "debug"))
        self.assertIn("no object", self.logs(lines, "debug"))

    def test_raise_none_two(self):
        self.ready()
        lines, done = self.run_action(1, "raise", [{"boom": True}, {"boom": False}])
        r = done["action_results"]
        self.assertEqual(r[0], {"status": "failed", "message": "KeyError: 'boom'", "data": [], "summary": {},
                                "parameter": {"boom": True}})
        self.assertEqual(r[1]["status"], "success")
        self.assertEqual(r[1]["message"], "no boom")
        errors = self.logs(lines, "error")
        self.assertEqual(len(errors), 1)
        self.assertTrue(errors[0].startswith("Traceback (most recent call last)"))
        self.assertTrue(errors[0].endswith("KeyError: 'boom'"))

        _lines, done = self.run_action(2, "none", [{}])
        self.assertEqual(done["action_results"], [{"status": "failed",
                                                   "message": "the connector added no action result",
                                                   "data": [], "summary": {}, "parameter": {}}])
        _lines, done = self.run_action(3, "two", [{"a": 1}])
        self.assertEqual(done["action_results"], [{"status": "success", "message": "first", "data": [],
                                                   "summary": {}, "parameter": {"changed": True}}])

    def test_no_parameter_sets(self):
        self.ready()
        lines, done = self.run_action(1, "echo", [])
        self.assertEqual(done, {"action_results": []})

    def test_json_safe(self):
        self.ready()
        _lines, done = self.run_action(1, "odd", [{}])
        raw = [line for line in self.w.raw if line.startswith(b"done ")][0]
        self.assertEqual(raw.count(b"\n"), 1)
        self.assertEqual(done["action_results"][0]["data"], [
            {"nan": None, "inf": None, "obj": "<not json>", "bytes": "b'ab'", "tuple": [1, 2], "set": "{3}",
             "7": "int key", "nl": "a\nb"}])


class TestPrinter(WorkerCase):
    fixture = "printer"

    def test_stdout_goes_to_stderr(self):
        self.assertEqual(self.ready()["connector"], "PrinterConnector")
        lines, done = self.w.run(1, make_in("print", [{}], {}, app_dir=self.app_dir))
        self.assertEqual(lines, [])
        self.assertEqual(done, {"action_results": [{"status": "success", "message": "printed",
                                                    "data": [{"stdin": ""}], "summary": {}, "parameter": {}}]})
        self.assertEqual(self.w.close(), 0)
        err = self.w.stderr()
        for text in ("printed at import", "printed in initialize", 'done 1 {"action_results": []}',
                     "written to sys.stdout", "written to fd 1", "from a child process"):
            self.assertIn(text, err)
        kinds = [line.split(b" ", 1)[0] for line in self.w.raw]
        self.assertEqual(kinds, [b"ready", b"done"])


class TestInitFail(WorkerCase):
    fixture = "initfail"

    def test_initialize_fails(self):
        self.assertEqual(self.ready()["connector"], "InitFailConnector")
        lines, done = self.w.run(1, make_in("act", [{"n": 1}, {"n": "x"}], {"mode": "fail"}))
        self.assertEqual(done["action_results"], [
            {"status": "failed", "message": "cannot initialize", "data": [], "summary": {}, "parameter": {"n": 1}},
            {"status": "failed", "message": "parameter 'n': expected a number, got 'x'", "data": [],
             "summary": {}, "parameter": {"n": "x"}}])
        self.assertEqual(self.logs_of(lines, "progress"), ["finalize called"])
        self.assertTrue(any("finalize raised ValueError: finalize broke" in m for m in self.logs_of(lines, "error")))
        self.assertEqual(self.logs_of(lines, "debug"), [])

    def test_initialize_raises(self):
        self.ready()
        lines, done = self.w.run(1, make_in("act", [{"n": 1}, {"n": 2}], {"mode": "raise"}))
        self.assertEqual([r["message"] for r in done["action_results"]],
                         ["initialize raised RuntimeError: no init today"] * 2)
        self.assertEqual(self.logs_of(lines, "progress"), ["finalize called"])
        # the worker goes on with the next run
        lines, done = self.w.run(2, make_in("act", [{"n": "3"}], {"mode": "ok"}))
        self.assertEqual(done["action_results"], [{"status": "success", "message": "handled", "data": [],
                                                   "summary": {}, "parameter": {"n": 3}}])
        self.assertEqual(self.logs_of(lines, "debug"), ['handling {"n": 3}'])

    def logs_of(self, lines, level):
        return [v["message"] for k, _i, v in lines if k == "log" and v["level"] == level]


class TestLinesFormat(WorkerCase):
    def test_every_line_is_kind_id_json(self):
        self.ready()
        self.run_action(1, "misc", [{}])
        self.run_action(2, "echo", [{"text": "ünïcödé"}])
        pat = re.compile(rb"^(ready|log|state|call|done) (0|1|2) \S.*\n$")
        for line in self.w.raw:
            self.assertRegex(line, pat)
            json.loads(line.split(b" ", 2)[2])
        self.assertIn("ünïcödé".encode("utf-8"), b"".join(self.w.raw))
        self.assertEqual(len(KEY), 64)


if __name__ == "__main__":
    unittest.main()
