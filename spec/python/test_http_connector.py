# The published Splunk SOAR http connector (test material in
# /work/shared/corpus/connectors/http, never part of the project) run through
# the real worker against a local web server on [::1].  Skipped when the
# corpus folder is absent.

import http.server
import json
import os
import shutil
import socket
import threading
import unittest

from .worker_harness import TempDir, Worker, make_in

CORPUS = os.environ.get("LUASOAR_SOAR_CORPUS", "/work/shared/corpus/connectors")
HTTP_APP = os.path.join(CORPUS, "http")


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/status":
            self._reply(200, {"status": "up", "n": 3})
        else:
            self._reply(404, {"error": {"message": "no such page"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        self._reply(201, {"got": body, "token": self.headers.get("ph-auth-token")})


class Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


@unittest.skipUnless(os.path.isdir(HTTP_APP), "the http connector corpus is absent")
class TestHttpConnector(unittest.TestCase):
    def setUp(self):
        self._tmp = TempDir()
        self.tmp = self._tmp.__enter__()
        self.app_dir = os.path.join(self.tmp, "http")
        shutil.copytree(HTTP_APP, self.app_dir)
        self.server = Server6(("::1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.w = Worker(self.app_dir, os.path.join(self.app_dir, "http.json"), self.tmp)
        kind, _ident, value = self.w.read()
        self.assertEqual(kind, "ready", self.w.stderr())
        self.assertEqual(value["connector"], "HttpConnector")

    def tearDown(self):
        self.w.close()
        self.server.shutdown()
        self.server.server_close()
        self._tmp.__exit__(None, None, None)

    def config(self, **extra):
        conf = {"base_url": f"http://[::1]:{self.port}", "auth_token_name": "ph-auth-token",
                "test_http_method": "GET"}
        conf.update(extra)
        return conf

    def test_get_data(self):
        IN = make_in("http_get", [{"location": "/status"}], self.config(), app_dir=self.app_dir,
                     action_name="get data")
        lines, done = self.w.run(1, IN)
        r = done["action_results"]
        self.assertEqual(len(r), 1)
        r = r[0]
        self.assertEqual(r["status"], "success", r)
        self.assertEqual(r["message"], "Status code: 200, Reason: OK")
        self.assertEqual(r["summary"], {"status_code": 200, "reason": "OK"})
        d = r["data"][0]
        self.assertEqual(d["method"], "GET")
        self.assertEqual(d["location"], f"http://[::1]:{self.port}/status")
        self.assertEqual(d["parsed_response_body"], {"status": "up", "n": 3})
        self.assertEqual(d["response_body"], {"status": "up", "n": 3})
        self.assertEqual(d["response_headers"]["Content-Type"], "application/json")
        self.assertEqual(r["parameter"], {"location": "/status"})
        self.assertIn({"state": {}}, [v for k, _i, v in lines if k == "state"])

    def test_get_data_404_and_missing_location(self):
        IN = make_in("http_get", [{"location": "/nope"}, {"verify_certificate": "false"}], self.config(),
                     app_dir=self.app_dir)
        _lines, done = self.w.run(1, IN)
        r = done["action_results"]
        self.assertEqual(r[0]["status"], "failed")
        self.assertIn("no such page", r[0]["message"])
        self.assertEqual(r[1]["message"], "missing required parameter 'location'")

    def test_post_data_masks_token(self):
        IN = make_in("http_post", [{"location": "/echo", "body": '{"a": 1}'}],
                     self.config(auth_token="tok-SECRET-42"), app_dir=self.app_dir, action_name="post data")
        _lines, done = self.w.run(1, IN)
        r = done["action_results"][0]
        self.assertEqual(r["status"], "success", r)
        self.assertEqual(r["summary"], {"status_code": 201, "reason": "Created"})
        self.assertEqual(r["data"][0]["method"], "POST")
        self.assertEqual(r["data"][0]["parsed_response_body"], {"got": '{"a": 1}', "token": "********"})
        self.assertNotIn(b"tok-SECRET-42", b"".join(self.w.raw))

    def test_test_connectivity(self):
        IN = make_in("test_connectivity", [{}], self.config(test_path="/status"), app_dir=self.app_dir)
        lines, done = self.w.run(1, IN)
        self.assertEqual(done["action_results"][0]["status"], "success")
        progress = [v["message"] for k, _i, v in lines if k == "log" and v["level"] == "progress"]
        self.assertIn("Test Connectivity Passed", progress)


if __name__ == "__main__":
    unittest.main()
