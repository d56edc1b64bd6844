"""luasoar app check (python/luasoar_appcheck.py): a SOAR connector's imports,
requirements and the Debian packages for what /usr/bin/python3 lacks.

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s spec/python -t .
"""

import ast
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "python", "luasoar_appcheck.py")
FIX = "spec/python/fixtures/appcheck"          # relative to REPO, as users type it
SHIM = os.path.join(FIX, "shim")
CORPUS = "/work/shared/corpus/connectors"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

sys.path.insert(0, os.path.join(REPO, "python"))
import luasoar_appcheck as appcheck  # noqa: E402

NOAPT_DIR = tempfile.mkdtemp(prefix="appcheck-noapt-")   # a PATH without apt-cache


def have_apt():
    return bool(shutil.which("apt-cache")) and bool(
        glob.glob("/var/lib/apt/lists/*Packages*"))


def probe_version():
    return subprocess.run([PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          stdout=subprocess.PIPE, check=True).stdout.decode().strip()


def run(*args, apt=True):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if not apt:
        env["PATH"] = NOAPT_DIR
    p = subprocess.run([PYTHON, SCRIPT] + list(args), cwd=REPO, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def tearDownModule():
    shutil.rmtree(NOAPT_DIR, ignore_errors=True)


class FixtureReports(unittest.TestCase):
    maxDiff = None

    def test_basic_report_without_apt_cache(self):
        rc, out, err = run(FIX + "/basic", "--shim", SHIM, "--no-site", apt=False)
        self.assertEqual(err, "")
        self.assertEqual(out.splitlines(), [
            "Basic Fixture (basic.json): 2 actions, main module basic_connector.py",
            "missing Python modules (5):",
            "  luasoar_helper_dep_xyz      python3-luasoar-helper-dep-xyz      (guess) (imported by helpers/tools.py)",
            "  luasoar_nested_xyz          python3-luasoar-nested-xyz          (guess) (imported by basic_connector.py)",
            "  luasoar_no_such_module_xyz  python3-luasoar-no-such-module-xyz  (guess) (imported by basic_connector.py; requirements.txt: luasoar-no-such-module-xyz)",
            "  requests                    python3-requests                    (imported by basic_connector.py; requirements.txt, pip39_dependencies: requests)",
            "  phantom.nosuch              -                                   (luasoar shim) (imported by basic_connector.py)",
            "install them with:",
            "  apt-get install python3-luasoar-helper-dep-xyz python3-luasoar-nested-xyz python3-luasoar-no-such-module-xyz python3-requests",
            "luasoar's shim (%s) lacks: phantom.nosuch" % os.path.join(REPO, SHIM),
            "missing optional modules, imported under try/except ImportError or a version test (1):",
            "  luasoar_optional_xyz  python3-luasoar-optional-xyz  (guess) (imported by basic_connector.py)",
            "declared in requirements but not imported: beautifulsoup4, python-magic",
        ])
        self.assertEqual(rc, 1)

    @unittest.skipUnless(have_apt(), "apt-cache with package lists")
    def test_basic_report_with_apt_cache(self):
        rc, out, err = run(FIX + "/basic", "--shim", SHIM, "--no-site")
        self.assertEqual(err, "")
        self.assertEqual(out.splitlines(), [
            "Basic Fixture (basic.json): 2 actions, main module basic_connector.py",
            "missing Python modules (5):",
            "  luasoar_helper_dep_xyz      -                 (no Debian package known) (imported by helpers/tools.py)",
            "  luasoar_nested_xyz          -                 (no Debian package known) (imported by basic_connector.py)",
            "  luasoar_no_such_module_xyz  -                 (no Debian package known) (imported by basic_connector.py; requirements.txt: luasoar-no-such-module-xyz)",
            "  requests                    python3-requests  (imported by basic_connector.py; requirements.txt, pip39_dependencies: requests)",
            "  phantom.nosuch              -                 (luasoar shim) (imported by basic_connector.py)",
            "install them with:",
            "  apt-get install python3-requests",
            "no Debian package known for: luasoar_helper_dep_xyz, luasoar_nested_xyz, luasoar_no_such_module_xyz; "
            "install them where /usr/bin/python3 finds them (e.g. with pip)",
            "luasoar's shim (%s) lacks: phantom.nosuch" % os.path.join(REPO, SHIM),
            "missing optional modules, imported under try/except ImportError or a version test (1):",
            "  luasoar_optional_xyz  -  (no Debian package known) (imported by basic_connector.py)",
            "declared in requirements but not imported: beautifulsoup4, python-magic",
        ])
        self.assertEqual(rc, 1)

    def test_basic_json(self):
        rc, out, err = run(FIX + "/basic", "--shim", SHIM, "--no-site", "--json", apt=False)
        self.assertEqual((rc, err), (1, ""))
        r = json.loads(out)
        self.assertEqual((r["app"], r["manifest"], r["main_module"], r["actions"]),
                         ("Basic Fixture", "basic.json", "basic_connector.py", 2))
        self.assertEqual([m["module"] for m in r["missing"]], [
            "luasoar_helper_dep_xyz", "luasoar_nested_xyz",
            "luasoar_no_such_module_xyz", "requests", "phantom.nosuch"])
        req = r["missing"][3]
        self.assertEqual(req, {
            "module": "requests", "package": "python3-requests",
            "package_source": "table", "imported_by": ["basic_connector.py"],
            "declared_as": "requests",
            "declared_in": ["requirements.txt", "pip39_dependencies"]})
        self.assertEqual(r["missing"][0]["package_source"], "guess")
        self.assertEqual(r["missing"][4]["package"], None)
        self.assertEqual(r["missing"][4]["package_source"], "shim")
        present = {p["module"]: p["source"] for p in r["present"]}
        # the shim's phantom and pudb, the standard library incl. __main__-only argparse
        self.assertEqual(present, {"argparse": "stdlib", "json": "stdlib",
                                   "os": "stdlib", "xml": "stdlib",
                                   "phantom": "shim", "pudb": "shim"})
        # the app's own modules and relative imports are not dependencies
        for own in ("basic_consts", "helpers", "tools"):
            self.assertNotIn(own, present)
        self.assertEqual([m["module"] for m in r["optional_missing"]],
                         ["luasoar_optional_xyz"])
        self.assertEqual(r["install"],
                         "apt-get install python3-luasoar-helper-dep-xyz "
                         "python3-luasoar-nested-xyz "
                         "python3-luasoar-no-such-module-xyz python3-requests")
        self.assertEqual(r["declared_not_imported"], [
            {"name": "beautifulsoup4", "declared_in": "requirements.txt"},
            {"name": "python-magic", "declared_in": "requirements.txt"}])
        self.assertEqual(r["warnings"], [])
        self.assertEqual(r["shim"], os.path.join(REPO, SHIM))

    def test_requests_present_with_site_packages(self):
        # without --no-site, requests is present exactly when /usr/bin/python3 has it
        has = subprocess.run([PYTHON, "-c", "import requests"],
                             stderr=subprocess.DEVNULL).returncode == 0
        rc, out, err = run(FIX + "/basic", "--shim", SHIM, "--json", apt=False)
        missing = [m["module"] for m in json.loads(out)["missing"]]
        self.assertEqual("requests" in missing, not has)
        self.assertEqual(rc, 1)

    def test_clean_app_json_and_pyc_main_module(self):
        rc, out, err = run(FIX + "/clean", "--shim", SHIM, apt=False)
        lines = ["Clean (clean_app.json): 1 action, main module clean_connector.py"]
        v = probe_version()
        if v not in ("3.9", "3.13"):
            lines.append('warning: clean_app.json declares python_version "3.9, 3.13"; '
                         "/usr/bin/python3 is %s" % v)
        lines += ["all Python modules are present",
                  "missing optional modules, imported under try/except ImportError "
                  "or a version test (1):"]
        self.assertEqual(out.splitlines()[:len(lines)], lines)
        self.assertEqual(out.splitlines()[len(lines):], [
            "  luasoar_py2_only_xyz  python3-luasoar-py2-only-xyz  (guess) "
            "(imported by clean_connector.py)"])
        self.assertEqual((rc, err), (0, ""))

    def test_python2_connector(self):
        rc, out, err = run(FIX + "/py2", "--shim", SHIM)
        self.assertEqual(out.splitlines(), [
            "Old (py2.json): 1 action, main module old_connector.py",
            "warning: old_helper.py line 2: Missing parentheses in call to 'print'. "
            "Did you mean print(...)? (not Python 3?); its imports are not checked",
            "missing Python modules (1):",
            "  httplib  -  (Python 2 only) (imported by old_connector.py)",
            "Python 2 modules (httplib): the app needs porting to Python 3",
            "missing optional modules, imported under try/except ImportError or a version test (1):",
            "  urlparse  -  (Python 2 only) (imported by old_connector.py)",
        ])
        self.assertEqual((rc, err), (1, ""))

    def test_default_shim_is_the_programs_folder(self):
        rc, out, err = run(FIX + "/clean", "--json", apt=False)
        self.assertEqual(json.loads(out)["shim"], os.path.join(REPO, "python"))


class UnusableInput(unittest.TestCase):
    maxDiff = None

    def check_error(self, name, message):
        rc, out, err = run(FIX + "/" + name)
        self.assertEqual((rc, out, err),
                         (2, "", "luasoar app check: %s/%s%s\n" % (FIX, name, message)))
        rc, out, err = run(FIX + "/" + name, "--json")
        self.assertEqual(rc, 2)
        self.assertEqual(json.loads(out), {"error": "%s/%s%s" % (FIX, name, message)})

    def test_no_manifest(self):
        self.check_error("nomanifest", ": no SOAR manifest (a *.json object with "
                         "main_module, actions, name, appid); notes.json is not JSON; "
                         "widgets.json lacks main_module, actions, name, appid")

    def test_two_manifests(self):
        self.check_error("twomanifests", ": several SOAR manifests: a.json, b.json; "
                         'name one in app.json ({"runner": "soar", "manifest": "FILE.json"})')

    def test_app_json_of_another_runner(self):
        self.check_error("wrongrunner", '/app.json: runner is "lua", not "soar"')

    def test_main_module_missing(self):
        self.check_error("nomain", "/nomain.json: main_module gone_connector.py not found")

    def test_main_module_not_python3(self):
        self.check_error("badsyntax", "/bad_connector.py: line 3: invalid syntax (not Python 3?)")

    def test_no_such_directory(self):
        self.check_error("nonexistent", ": no such directory")

    def test_usage(self):
        rc, out, err = run()
        self.assertEqual((rc, out), (2, ""))
        self.assertTrue(err.startswith("usage: luasoar app check DIR [--json]"), err)
        rc, out, err = run("--help")
        self.assertEqual((rc, err), (0, ""))
        self.assertIn("exit status: 0 nothing missing, 1 modules missing, 2 unusable input", out)
        rc, out, err = run("--frobnicate", FIX + "/clean")
        self.assertEqual(rc, 2)
        self.assertTrue(err.startswith("luasoar app check: unknown option --frobnicate\n"))


class Functions(unittest.TestCase):

    def test_requirement_names(self):
        cases = {
            "requests>=2.0 ; python_version >= '3'": "requests",
            "beautifulsoup4[lxml] ~= 4.9  # comment": "beautifulsoup4",
            "python-magic": "python-magic", "PyYAML==6.0": "PyYAML",
            "pdfminer.six==20221105": "pdfminer.six",
            "-r other.txt": None, "--index-url https://x": None,
            "-e git+https://example.invalid/x.git#egg=foo_bar": "foo_bar",
            "https://example.invalid/x.whl": None,
            "name @ https://example.invalid/x.whl": "name",
        }
        for line, want in cases.items():
            self.assertEqual(appcheck.dist_name(line.split(";")[0]), want, line)

    def test_read_requirements(self):
        got = appcheck.read_requirements(os.path.join(REPO, FIX, "basic"))
        self.assertEqual([n for n, _ in got], ["requests", "luasoar-no-such-module-xyz",
                                               "beautifulsoup4", "python-magic"])

    def test_distribution_to_module(self):
        for dist, mod in [("beautifulsoup4", "bs4"), ("python-magic", "magic"),
                          ("dnspython", "dns"), ("PyYAML", "yaml"),
                          ("python-dateutil", "dateutil"), ("pyOpenSSL", "OpenSSL"),
                          ("PyJWT", "jwt"), ("pdfminer.six", "pdfminer"),
                          ("requests", "requests"), ("Some_Thing", "some_thing")]:
            self.assertEqual(appcheck.dist_modules(dist)[0], mod, dist)

    def test_debian_table(self):
        for mod, pkg in [("requests", "python3-requests"), ("bs4", "python3-bs4"),
                         ("magic", "python3-magic"), ("validators", "python3-validators"),
                         ("xmltodict", "python3-xmltodict"), ("dns", "python3-dnspython"),
                         ("dateutil", "python3-dateutil"), ("yaml", "python3-yaml"),
                         ("OpenSSL", "python3-openssl"), ("pytz", "python3-tz")]:
            self.assertEqual(appcheck.packages_for([mod], {}), {mod: (pkg, "table")})
        self.assertGreaterEqual(len(appcheck.DEBIAN), 80)
        self.assertEqual(appcheck.packages_for(["phantom.vault", "encryption_helper"], {}),
                         {"phantom.vault": (None, "shim"),
                          "encryption_helper": (None, "shim")})

    @unittest.skipUnless(have_apt(), "apt-cache with package lists")
    def test_debian_table_names_exist(self):
        known = appcheck.apt_known(appcheck.DEBIAN.values())
        self.assertEqual([p for p, ok in known.items() if not ok], [])

    def test_apt_cache_confirms_guesses(self):
        if not have_apt():
            self.skipTest("apt-cache with package lists")
        # not in the table, found by apt-cache; a declared distribution name helps
        self.assertEqual(appcheck.packages_for(["luasoar_no_such_module_xyz"], {}),
                         {"luasoar_no_such_module_xyz": (None, "unknown")})
        self.assertEqual(appcheck.deb_candidates("foo_bar", ["python-foo-bar", "PyFoo"]),
                         ["python3-foo-bar", "python3-pyfoo"])

    def test_optional_imports(self):
        tree = ast.parse(
            "import a.b\n"
            "from c import d\n"
            "from . import e\n"
            "try:\n    import f\nexcept ImportError:\n    import g\n"
            "try:\n    import h\nexcept ValueError:\n    pass\n"
            "if sys.version_info[0] < 3:\n    import i\n"
            "def k():\n    import l\n"
            "importlib.import_module('m')\n")
        self.assertEqual(appcheck.file_imports(tree), [
            ("a.b", False), ("c", False), ("f", True), ("g", True),
            ("h", False), ("i", True), ("l", False), ("m", False)])

    def test_python_version(self):
        self.assertTrue(appcheck.version_ok("3.9, 3.13", "3.13"))
        self.assertFalse(appcheck.version_ok("3.9, 3.13", "3.11"))
        self.assertTrue(appcheck.version_ok("3", "3.11"))
        self.assertTrue(appcheck.version_ok(None, "3.11"))
        self.assertTrue(appcheck.version_ok(["3.11"], "3.11"))


@unittest.skipUnless(os.path.isdir(CORPUS), "the connector corpus in " + CORPUS)
class RealConnectors(unittest.TestCase):
    """splunk-soar-connectors http and dns, as published."""
    maxDiff = None

    def header(self, name, manifest, actions, main):
        lines = ["%s (%s): %d actions, main module %s" % (name, manifest, actions, main)]
        v = probe_version()
        if v not in ("3.9", "3.13"):
            lines.append('warning: %s declares python_version "3.9, 3.13"; '
                         "/usr/bin/python3 is %s" % (manifest, v))
        return lines

    def test_http_nothing_missing(self):
        rc, out, err = run(CORPUS + "/http", "--shim", SHIM)
        self.assertEqual(out.splitlines(),
                         self.header("HTTP", "http.json", 10, "http_connector.py")
                         + ["all Python modules are present"])
        self.assertEqual((rc, err), (0, ""))

    def test_dns_nothing_missing(self):
        rc, out, err = run(CORPUS + "/dns", "--shim", SHIM)
        self.assertEqual(out.splitlines(),
                         self.header("DNS", "dns.json", 3, "dns_connector.py")
                         + ["all Python modules are present"])
        self.assertEqual((rc, err), (0, ""))

    def test_http_without_dist_packages(self):
        rc, out, err = run(CORPUS + "/http", "--shim", SHIM, "--no-site")
        self.assertEqual(out.splitlines(),
                         self.header("HTTP", "http.json", 10, "http_connector.py") + [
            "missing Python modules (5):",
            "  bs4         python3-bs4         (imported by http_connector.py)",
            "  magic       python3-magic       (imported by http_connector.py)",
            "  requests    python3-requests    (imported by http_connector.py)",
            "  validators  python3-validators  (imported by http_connector.py; "
            "requirements.txt, pip39_dependencies, pip313_dependencies: validators)",
            "  xmltodict   python3-xmltodict   (imported by http_connector.py)",
            "install them with:",
            "  apt-get install python3-bs4 python3-magic python3-requests "
            "python3-validators python3-xmltodict",
        ])
        self.assertEqual((rc, err), (1, ""))

    def test_dns_without_dist_packages_json(self):
        rc, out, err = run(CORPUS + "/dns", "--shim", SHIM, "--no-site", "--json")
        self.assertEqual((rc, err), (1, ""))
        r = json.loads(out)
        self.assertEqual([(m["module"], m["package"], m["imported_by"], m["declared_as"])
                          for m in r["missing"]], [
            ("bs4", "python3-bs4", ["dns_connector.py"], None),
            ("dns", "python3-dnspython", ["dns_connector.py"], "dnspython"),
            ("requests", "python3-requests", ["dns_connector.py"], None)])
        self.assertEqual(r["install"],
                         "apt-get install python3-bs4 python3-dnspython python3-requests")
        self.assertEqual(r["declared_not_imported"], [])

    def test_with_luasoar_shim(self):
        # python/ (phantom, encryption_helper, pudb) provides what both import
        for app in ("http", "dns"):
            rc, out, err = run(CORPUS + "/" + app, "--json")
            r = json.loads(out)
            self.assertEqual(r["missing"], [], app)
            sources = {p["module"]: p["source"] for p in r["present"]}
            self.assertEqual(sources["phantom"], "shim")
            self.assertEqual(sources["pudb"], "shim")
            self.assertEqual(rc, 0)


if __name__ == "__main__":
    unittest.main()
