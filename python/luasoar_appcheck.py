#!/usr/bin/python3
"""luasoar app check: which Python modules a Splunk SOAR connector needs that
/usr/bin/python3 (with luasoar's `phantom` shim first on sys.path) cannot import,
and which Debian packages provide them.

Standard library only.  The app's .py files are parsed with `ast`, never run.
Exit status: 0 nothing missing, 1 something missing, 2 unusable input.
"""

import ast
import glob
import json
import os
import re
import subprocess
import sys

USAGE = """\
usage: luasoar app check DIR [--json] [--python PATH] [--no-site] [--shim DIR]

Checks that the Python modules a Splunk SOAR connector imports can be imported
by the interpreter that runs it, with luasoar's shim (phantom, phantom_common,
encryption_helper, pudb) first on sys.path, and names the Debian packages
that provide the missing ones.

  DIR            the connector folder (its manifest, *.py, requirements.txt)
  --json         print one JSON object instead of the report
  --python PATH  the interpreter to check (default /usr/bin/python3)
  --no-site      check it with -I -S: without site/dist-packages, as a bare
                 interpreter sees it
  --shim DIR     the shim folder (default: the folder holding this program)

exit status: 0 nothing missing, 1 modules missing, 2 unusable input"""

SHORT = USAGE.splitlines()[0] + "\n(--help for more)"
PROG = "luasoar app check"
DEFAULT_PYTHON = "/usr/bin/python3"
SHIM_MODULES = ("phantom", "phantom_common", "encryption_helper", "pudb")
PIP_KEYS = ("pip_dependencies", "pip39_dependencies", "pip313_dependencies")
# Python 2 standard library modules a connector may still import
PY2_STDLIB = {"urlparse", "urllib2", "httplib", "ConfigParser", "StringIO",
              "cStringIO", "cPickle", "Queue", "HTMLParser", "cookielib",
              "__builtin__", "htmlentitydefs", "xmlrpclib", "SocketServer",
              "BaseHTTPServer", "SimpleHTTPServer", "Cookie", "commands",
              "exceptions", "md5", "sha", "sets", "thread", "dummy_thread",
              "repr", "copy_reg", "anydbm", "dbhash", "whichdb", "robotparser",
              "UserDict", "UserList", "UserString"}
SKIP_DIRS = {"__pycache__", "wheels", "tests", "test", "venv", "node_modules"}

# top-level module -> Debian package (bookworm names)
DEBIAN = {
    "requests": "python3-requests", "bs4": "python3-bs4",
    "magic": "python3-magic", "validators": "python3-validators",
    "xmltodict": "python3-xmltodict", "dns": "python3-dnspython",
    "dateutil": "python3-dateutil", "yaml": "python3-yaml",
    "OpenSSL": "python3-openssl", "paramiko": "python3-paramiko",
    "simplejson": "python3-simplejson", "django": "python3-django",
    "pdfminer": "python3-pdfminer", "docx": "python3-docx",
    "lxml": "python3-lxml", "cryptography": "python3-cryptography",
    "jwt": "python3-jwt", "ldap3": "python3-ldap3", "ldap": "python3-ldap",
    "netaddr": "python3-netaddr", "pytz": "python3-tz",
    "tldextract": "python3-tldextract", "urllib3": "python3-urllib3",
    "chardet": "python3-chardet", "idna": "python3-idna", "six": "python3-six",
    "boto3": "python3-boto3", "botocore": "python3-botocore",
    "msal": "python3-msal", "certifi": "python3-certifi",
    "charset_normalizer": "python3-charset-normalizer",
    "html5lib": "python3-html5lib", "bleach": "python3-bleach",
    "markdown": "python3-markdown", "jinja2": "python3-jinja2",
    "markupsafe": "python3-markupsafe", "pymysql": "python3-pymysql",
    "MySQLdb": "python3-mysqldb", "psycopg2": "python3-psycopg2",
    "pymongo": "python3-pymongo", "redis": "python3-redis",
    "ntlm_auth": "python3-ntlm-auth", "requests_ntlm": "python3-requests-ntlm",
    "requests_toolbelt": "python3-requests-toolbelt",
    "requests_oauthlib": "python3-requests-oauthlib",
    "requests_kerberos": "python3-requests-kerberos",
    "oauthlib": "python3-oauthlib", "Cryptodome": "python3-pycryptodome",
    "nacl": "python3-nacl", "bcrypt": "python3-bcrypt",
    "pyasn1": "python3-pyasn1", "rsa": "python3-rsa", "gnupg": "python3-gnupg",
    "netifaces": "python3-netifaces", "psutil": "python3-psutil",
    "xlrd": "python3-xlrd", "openpyxl": "python3-openpyxl",
    "pandas": "python3-pandas", "numpy": "python3-numpy", "PIL": "python3-pil",
    "PyPDF2": "python3-pypdf2", "pypdf": "python3-pypdf",
    "fitz": "python3-fitz", "email_validator": "python3-email-validator",
    "tabulate": "python3-tabulate", "termcolor": "python3-termcolor",
    "click": "python3-click", "attr": "python3-attr",
    "pydantic": "python3-pydantic", "httplib2": "python3-httplib2",
    "httpx": "python3-httpx", "aiohttp": "python3-aiohttp",
    "websocket": "python3-websocket", "socks": "python3-socks",
    "winrm": "python3-winrm", "kerberos": "python3-kerberos",
    "gssapi": "python3-gssapi", "jsonpath_rw": "python3-jsonpath-rw",
    "zeep": "python3-zeep", "xmlschema": "python3-xmlschema",
    "defusedxml": "python3-defusedxml", "jsonschema": "python3-jsonschema",
    "jmespath": "python3-jmespath", "ujson": "python3-ujson",
    "pyparsing": "python3-pyparsing", "packaging": "python3-packaging",
    "pkg_resources": "python3-pkg-resources",
    "setuptools": "python3-setuptools", "distutils": "python3-distutils",
    "lib2to3": "python3-lib2to3", "tkinter": "python3-tk",
    "googleapiclient": "python3-googleapi",
    "oauth2client": "python3-oauth2client", "tzlocal": "python3-tzlocal",
    "dateparser": "python3-dateparser", "arrow": "python3-arrow",
    "iso8601": "python3-iso8601", "html2text": "python3-html2text",
    "unidecode": "python3-unidecode", "phonenumbers": "python3-phonenumbers",
    "geoip2": "python3-geoip2", "maxminddb": "python3-maxminddb",
    "shodan": "python3-shodan", "elasticsearch": "python3-elasticsearch",
    "kafka": "python3-kafka", "pika": "python3-pika",
    "paho": "python3-paho-mqtt", "pyodbc": "python3-pyodbc",
    "sqlalchemy": "python3-sqlalchemy", "scapy": "python3-scapy",
    "pexpect": "python3-pexpect", "netmiko": "python3-netmiko",
    "ncclient": "python3-ncclient", "rarfile": "python3-rarfile",
    "py7zr": "python3-py7zr", "olefile": "python3-olefile",
    "pefile": "python3-pefile",
    "yara": "python3-yara", "toml": "python3-toml", "tomli": "python3-tomli",
    "cachetools": "python3-cachetools", "tenacity": "python3-tenacity",
    "retrying": "python3-retrying", "future": "python3-future",
    "past": "python3-future",
    "typing_extensions": "python3-typing-extensions", "mock": "python3-mock",
    "furl": "python3-furl", "rfc3986": "python3-rfc3986",
    "pyotp": "python3-pyotp", "pycurl": "python3-pycurl",
    "gevent": "python3-gevent", "pudb": "python3-pudb",
    "dotenv": "python3-dotenv", "msgpack": "python3-msgpack",
    "pysnmp": "python3-pysnmp4",
}

# pip distribution name (normalized, PEP 503) -> top-level module(s)
DIST_MODULES = {
    "beautifulsoup4": ["bs4"], "python-magic": ["magic"],
    "dnspython": ["dns"], "pyyaml": ["yaml"], "python-dateutil": ["dateutil"],
    "pyopenssl": ["OpenSSL"], "python-docx": ["docx"], "pyjwt": ["jwt"],
    "pdfminer-six": ["pdfminer"], "pycryptodome": ["Crypto"],
    "pycryptodomex": ["Cryptodome"], "pillow": ["PIL"],
    "python-ldap": ["ldap"], "pynacl": ["nacl"], "python-gnupg": ["gnupg"],
    "pypdf2": ["PyPDF2"], "pymupdf": ["fitz"], "pywinrm": ["winrm"],
    "pykerberos": ["kerberos"], "pysocks": ["socks"],
    "websocket-client": ["websocket"], "paho-mqtt": ["paho"],
    "google-api-python-client": ["googleapiclient"],
    "python-whois": ["whois"], "pysmb": ["smb", "nmb"], "attrs": ["attr"],
    "psycopg2-binary": ["psycopg2"], "kafka-python": ["kafka"],
    "python-dotenv": ["dotenv"], "mysqlclient": ["MySQLdb"],
    "setuptools": ["setuptools", "pkg_resources"],
    "msgpack-python": ["msgpack"], "pytz": ["pytz"],
    "email-validator": ["email_validator"], "typing-extensions":
    ["typing_extensions"], "jsonpath-ng": ["jsonpath_ng"], "pyasn1": ["pyasn1"],
    "ntlm-auth": ["ntlm_auth"], "requests-ntlm": ["requests_ntlm"],
    "python-json-logger": ["pythonjsonlogger"], "pyparsing": ["pyparsing"],
    "scikit-learn": ["sklearn"], "opencv-python": ["cv2"],
    "python-keycloak": ["keycloak"], "azure-identity": ["azure"],
    "google-auth": ["google"], "protobuf": ["google"],
    "future": ["future", "past", "builtins"],
}


class Unusable(Exception):
    """Input we cannot check: exit 2.  `file` is the file at fault, relative
    to the connector folder (None: the folder or the interpreter)."""

    def __init__(self, msg, file=None):
        Exception.__init__(self, msg)
        self.file = file


def norm_dist(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_modules(name):
    """Top-level modules a pip distribution name most likely installs."""
    n = norm_dist(name)
    if n in DIST_MODULES:
        return DIST_MODULES[n]
    return [n.replace("-", "_")]


def dist_name(spec):
    """The distribution name of a requirement line or pip `module` entry, or None."""
    s = spec.strip()
    m = re.search(r"#egg=([A-Za-z0-9][A-Za-z0-9._-]*)", s)
    if m:
        return m.group(1)
    if not s or s.startswith("-"):
        return None
    if "://" in s and "@" not in s:
        return None
    s = re.split(r"\s+#", s, 1)[0]
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", s)
    return m.group(1) if m else None


# ---------------------------------------------------------------- manifest

def load_json(path, dirname):
    rel = os.path.relpath(path, dirname)
    try:
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)
    except OSError as e:
        raise Unusable("cannot read: %s" % (e.strerror or e), rel)
    except ValueError as e:
        raise Unusable("not valid JSON: %s" % e, rel)


def is_manifest(obj):
    return isinstance(obj, dict) and all(
        k in obj for k in ("main_module", "actions", "name", "appid"))


def find_manifest(d):
    """Returns (file name relative to d, manifest object)."""
    desc = os.path.join(d, "app.json")
    if os.path.isfile(desc):
        obj = load_json(desc, d)
        if isinstance(obj, dict) and "runner" in obj:
            if obj.get("runner") != "soar":
                raise Unusable('runner is %s, not "soar"'
                               % json.dumps(obj.get("runner")), "app.json")
            name = obj.get("manifest")
            if not isinstance(name, str) or not name:
                raise Unusable('"manifest" must name the SOAR manifest '
                               '(e.g. "manifest": "myapp.json")', "app.json")
            path = os.path.join(d, name)
            if not os.path.isfile(path):
                raise Unusable("manifest %s not found" % name, "app.json")
            man = load_json(path, d)
            if not is_manifest(man):
                raise Unusable("not a SOAR manifest (it %s)" % lacks(man), name)
            return name, man
    found, rejected = [], []
    for path in sorted(glob.glob(os.path.join(d, "*.json"))):
        name = os.path.basename(path)
        try:
            with open(path, encoding="utf-8-sig") as f:
                obj = json.load(f)
        except (OSError, ValueError):
            rejected.append("%s is not JSON" % name)
            continue
        if is_manifest(obj):
            found.append((name, obj))
        else:
            rejected.append("%s %s" % (name, lacks(obj)))
    if len(found) > 1:
        raise Unusable("several SOAR manifests: %s; name one in app.json "
                       '({"runner": "soar", "manifest": "FILE.json"})'
                       % ", ".join(n for n, _ in found), "")
    if not found:
        why = ("; " + "; ".join(rejected)) if rejected else ""
        raise Unusable("no SOAR manifest (a *.json object with main_module, "
                       "actions, name, appid)%s" % why, "")
    return found[0]


def lacks(obj):
    if not isinstance(obj, dict):
        return "is not a JSON object"
    miss = [k for k in ("main_module", "actions", "name", "appid") if k not in obj]
    return "lacks " + ", ".join(miss)


def check_manifest(mname, man, d):
    for key in ("name", "main_module"):
        if not isinstance(man[key], str) or not man[key]:
            raise Unusable("%s must be a non-empty string" % key, mname)
    if not isinstance(man["actions"], list):
        raise Unusable("actions must be a list", mname)
    main = man["main_module"]
    path = os.path.join(d, main)
    if not os.path.isfile(path) and main.endswith(".pyc") \
            and os.path.isfile(path[:-1]):
        main = main[:-1]
    elif not os.path.isfile(path):
        raise Unusable("main_module %s not found" % main, mname)
    return main


# ---------------------------------------------------------------- requirements

def read_requirements(d):
    """[(dist name, source)] from requirements.txt."""
    path = os.path.join(d, "requirements.txt")
    out = []
    if not os.path.isfile(path):
        return out
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise Unusable("cannot read: %s" % (e.strerror or e), "requirements.txt")
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = dist_name(line.split(";", 1)[0])
        if name:
            out.append((name, "requirements.txt"))
    return out


def read_pip_dependencies(mname, man):
    out = []
    for key in PIP_KEYS:
        deps = man.get(key)
        if deps is None:
            continue
        if not isinstance(deps, dict):
            raise Unusable("%s must be an object like "
                           '{"wheel": [{"module": ..., "input_file": ...}]}'
                           % key, mname)
        for kind, entries in deps.items():
            if not isinstance(entries, list):
                raise Unusable("%s.%s must be a list" % (key, kind), mname)
            for e in entries:
                mod = e.get("module") if isinstance(e, dict) else None
                if not isinstance(mod, str):
                    raise Unusable('%s.%s: every entry needs a "module" name'
                                   % (key, kind), mname)
                name = dist_name(mod)
                if name:
                    out.append((name, key))
    return out


# ---------------------------------------------------------------- imports

def py_files(d):
    out = []
    for root, dirs, files in os.walk(d):
        dirs[:] = sorted(x for x in dirs
                         if not x.startswith(".") and x not in SKIP_DIRS)
        for f in sorted(files):
            if f.endswith(".py"):
                out.append(os.path.relpath(os.path.join(root, f), d))
    return out


def own_modules(d):
    own = set()
    for e in os.listdir(d):
        p = os.path.join(d, e)
        if e.endswith(".py") and os.path.isfile(p):
            own.add(e[:-3])
        elif os.path.isdir(p) and not e.startswith(".") and (
                glob.glob(os.path.join(p, "*.py"))):
            own.add(e)
    return own


def catches_import_error(node):
    for h in node.handlers:
        if h.type is None:
            return True
        names = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
        for n in names:
            if isinstance(n, ast.Name) and n.id in (
                    "ImportError", "ModuleNotFoundError", "Exception",
                    "BaseException"):
                return True
    return False


def version_test(node):
    try:
        src = ast.unparse(node.test)
    except Exception:
        return False
    return bool(re.search(
        r"version_info|PY2|PY3|python_version|sys\.version|TYPE_CHECKING", src))


def file_imports(tree):
    """[(dotted module name, optional)]: every import, at any depth."""
    out = []

    def visit(node, optional):
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append((a.name, optional))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                out.append((node.module, optional))
        elif isinstance(node, ast.Call):
            f = node.func
            fname = f.id if isinstance(f, ast.Name) else (
                f.attr if isinstance(f, ast.Attribute) else None)
            if fname in ("__import__", "import_module") and node.args \
                    and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str) \
                    and not node.args[0].value.startswith("."):
                out.append((node.args[0].value, optional))
        if isinstance(node, ast.Try) and catches_import_error(node):
            for child in ast.iter_child_nodes(node):
                visit(child, True)
            return
        if isinstance(node, ast.If) and version_test(node):
            for child in ast.iter_child_nodes(node):
                visit(child, True)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(tree, False)
    return out


def collect_imports(d, files, main):
    """{top module: {"files": [...], "dotted": set(), "optional": bool}}, warnings."""
    mods, warnings = {}, []
    for rel in files:
        try:
            with open(os.path.join(d, rel), "rb") as f:
                src = f.read()
            tree = ast.parse(src, filename=rel)
        except SyntaxError as e:
            msg = "line %s: %s (not Python 3?)" % (e.lineno, e.msg)
            if rel == main:
                raise Unusable(msg, rel)
            warnings.append("%s %s; its imports are not checked" % (rel, msg))
            continue
        except (OSError, ValueError) as e:
            warnings.append("%s: cannot parse: %s; its imports are not checked"
                            % (rel, e))
            continue
        for name, optional in file_imports(tree):
            top = name.split(".")[0]
            if not top:
                continue
            m = mods.setdefault(top, {"files": [], "dotted": set(),
                                      "optional": True})
            if rel not in m["files"]:
                m["files"].append(rel)
            m["dotted"].add(name)
            if not optional:
                m["optional"] = False
    return mods, warnings


# ---------------------------------------------------------------- probe

PROBE = r"""
import importlib.util, json, os, sys
shim, appdir, tops, dotted = json.loads(sys.argv[1])
sys.path[:] = [shim, appdir] + [p for p in sys.path if p not in ("", os.getcwd())]
std = getattr(sys, "stdlib_module_names", frozenset())
res = {}
def where(origin, name):
    if origin and os.path.abspath(origin).startswith(os.path.join(shim, "")):
        return "shim"
    if name.split(".")[0] in std or name in sys.builtin_module_names:
        return "stdlib"
    return "installed"
for name in tops + dotted:
    try:
        spec = importlib.util.find_spec(name)
    except BaseException as e:
        res[name] = {"found": False, "error": "%s: %s" % (type(e).__name__, e)}
        continue
    if spec is None:
        res[name] = {"found": False}
    else:
        origin = spec.origin if spec.has_location else None
        if origin is None and spec.submodule_search_locations:
            origin = list(spec.submodule_search_locations)[0]
        res[name] = {"found": True, "origin": origin, "where": where(origin, name)}
print(json.dumps({"version": "%d.%d" % sys.version_info[:2],
                  "executable": sys.executable, "results": res}))
"""


def probe(python, no_site, shim, appdir, tops, dotted):
    cmd = [python, "-B"] + (["-I", "-S"] if no_site else []) + [
        "-c", PROBE, json.dumps([shim, appdir, tops, dotted])]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           cwd="/", timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unusable("cannot run %s: %s" % (python, e))
    try:
        return json.loads(p.stdout.decode("utf-8", "replace"))
    except ValueError:
        err = p.stderr.decode("utf-8", "replace").strip().splitlines()
        raise Unusable("%s could not check the modules (exit %d)%s" % (
            python, p.returncode, (": " + err[-1]) if err else ""))


# ---------------------------------------------------------------- packages

def apt_lists_present():
    return bool(glob.glob("/var/lib/apt/lists/*Packages*"))


def apt_known(names):
    """{name: True|False|None}: None when apt-cache cannot tell."""
    names = sorted(set(names))
    if not names:
        return {}
    try:
        p = subprocess.run(["apt-cache", "show", "--no-all-versions"] + names,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {n: None for n in names}
    out = p.stdout.decode("utf-8", "replace")
    found = set(re.findall(r"^Package:\s*(\S+)", out, re.M))
    lists = apt_lists_present()
    return {n: True if n in found else (False if lists else None)
            for n in names}


def deb_candidates(module, declared):
    cands = ["python3-" + module.lower().replace("_", "-")]
    for name in declared:
        n = norm_dist(name)
        if n.startswith("python-"):
            n = n[len("python-"):]
        c = "python3-" + n
        if c not in cands:
            cands.append(c)
    return cands


def packages_for(missing, declared_by_mod):
    """{module: (package or None, source)} for missing modules; source is
    "table", "apt-cache", "guess", "shim", "python2" or "unknown"."""
    out, ask = {}, {}
    for m in missing:
        top = m.split(".")[0]
        if top in SHIM_MODULES and (top != "pudb" or "." in m):
            out[m] = (None, "shim")
        elif m in DEBIAN:
            out[m] = (DEBIAN[m], "table")
        elif m in PY2_STDLIB:
            out[m] = (None, "python2")
        else:
            ask[m] = deb_candidates(m, declared_by_mod.get(m, []))
    known = apt_known([c for cs in ask.values() for c in cs])
    for m, cands in ask.items():
        ok = [c for c in cands if known.get(c)]
        unsure = [c for c in cands if known.get(c) is None]
        if ok:
            out[m] = (ok[0], "apt-cache")
        elif unsure:
            out[m] = (unsure[0], "guess")
        else:
            out[m] = (None, "unknown")
    return out


# ---------------------------------------------------------------- check

def version_ok(decl, version):
    if decl is None:
        return True
    items = decl if isinstance(decl, list) else str(decl).split(",")
    items = [str(x).strip() for x in items if str(x).strip()]
    if not items:
        return True
    major = version.split(".")[0]
    return any(x == version or x == major for x in items)


def check(d, python=DEFAULT_PYTHON, no_site=False, shim=None):
    """The check's result (see report()); raises Unusable naming the file
    (DIR/FILE as given) and what is wrong."""
    try:
        return check_dir(d, python, no_site, shim)
    except Unusable as e:
        if e.file is not None:
            raise Unusable("%s: %s" % (os.path.join(d, e.file) if e.file
                                       else d, e))
        raise


def check_dir(d, python, no_site, shim):
    shim = os.path.abspath(shim or os.path.dirname(os.path.abspath(__file__)))
    d = os.path.abspath(d)
    if not os.path.isdir(d):
        raise Unusable("no such directory", "")
    mname, man = find_manifest(d)
    main = check_manifest(mname, man, d)
    declared = read_requirements(d) + read_pip_dependencies(mname, man)
    mods, warnings = collect_imports(d, py_files(d), main)
    own = own_modules(d)
    for m in list(mods):
        if m in own or m in ("__main__", "__init__"):
            del mods[m]
    tops = sorted(mods)
    dotted = sorted(n for m in tops if m in SHIM_MODULES
                    for n in mods[m]["dotted"] if "." in n)
    pr = probe(python, no_site, shim, d, tops, dotted)
    res = pr["results"]

    # declarations: module -> [(dist name, source)]
    decl_by_mod = {}
    unimported = []
    for name, src in declared:
        hits = [m for m in dist_modules(name) if m in mods]
        if not hits:
            hits = [m for m in mods if m.lower() == norm_dist(name).replace("-", "_")]
        if hits:
            for m in hits:
                decl_by_mod.setdefault(m, [])
                if (name, src) not in decl_by_mod[m]:
                    decl_by_mod[m].append((name, src))
        elif (name, src) not in unimported:
            unimported.append((name, src))

    present, missing, optional = [], [], []
    for m in tops:
        r = res.get(m, {"found": False})
        if r.get("found"):
            present.append({"module": m, "source": r.get("where")})
        elif mods[m]["optional"]:
            optional.append(m)
        else:
            missing.append(m)
    # submodules of the shim (phantom.vault ...) the shim does not have
    for n in dotted:
        top = n.split(".")[0]
        if res.get(top, {}).get("found") and not res.get(n, {}).get("found"):
            missing.append(n)
    pkgs = packages_for(missing + optional,
                        {m: [n for n, _ in v] for m, v in decl_by_mod.items()})

    def entry(m):
        top = m.split(".")[0]
        package, source = pkgs[m]
        names, srcs = [], []
        for n, src in decl_by_mod.get(top, []):
            if n not in names:
                names.append(n)
            if src not in srcs:
                srcs.append(src)
        e = {"module": m, "package": package, "package_source": source,
             "imported_by": sorted(mods[top]["files"]),
             "declared_as": ", ".join(names) or None, "declared_in": srcs}
        if res.get(m, {}).get("error"):
            e["error"] = res[m]["error"]
        return e

    if not version_ok(man.get("python_version"), pr["version"]):
        warnings.insert(0, "%s declares python_version %s; %s is %s"
                        % (mname, json.dumps(man.get("python_version")),
                           python, pr["version"]))
    missing = [entry(m) for m in missing]
    pk = []
    for e in missing:
        if e["package"] and e["package"] not in pk:
            pk.append(e["package"])
    return {
        "app": man["name"], "manifest": mname, "main_module": main,
        "actions": len(man["actions"]), "python": python,
        "python_version": pr["version"], "shim": shim,
        "missing": missing,
        "optional_missing": [entry(m) for m in optional],
        "present": present,
        "install": ("apt-get install " + " ".join(pk)) if pk else None,
        "declared_not_imported": [{"name": n, "declared_in": s}
                                  for n, s in unimported],
        "warnings": warnings,
    }


NOTES = {"guess": "(guess) ", "unknown": "(no Debian package known) ",
         "shim": "(luasoar shim) ", "python2": "(Python 2 only) "}


def fmt_rows(entries):
    w1 = max(len(e["module"]) for e in entries)
    w2 = max(len(e["package"] or "-") for e in entries)
    lines = []
    for e in entries:
        why = "imported by " + ", ".join(e["imported_by"])
        if e["declared_as"]:
            why += "; %s: %s" % (", ".join(e["declared_in"]), e["declared_as"])
        lines.append("  %-*s  %-*s  %s(%s)" % (
            w1, e["module"], w2, e["package"] or "-",
            NOTES.get(e["package_source"], ""), why))
    return lines


def report(r):
    acts = "%d action%s" % (r["actions"], "" if r["actions"] == 1 else "s")
    lines = ["%s (%s): %s, main module %s" % (r["app"], r["manifest"], acts,
                                             r["main_module"])]
    lines += ["warning: " + w for w in r["warnings"]]
    miss = r["missing"]
    if miss:
        lines.append("missing Python modules (%d):" % len(miss))
        lines += fmt_rows(miss)
    else:
        lines.append("all Python modules are present")
    if r["install"]:
        lines.append("install them with:")
        lines.append("  " + r["install"])
    unknown = [e["module"] for e in miss if e["package_source"] == "unknown"]
    if unknown:
        lines.append("no Debian package known for: %s; install %s where %s "
                     "finds %s (e.g. with pip)" % (
                         ", ".join(unknown), "it" if len(unknown) == 1 else "them",
                         r["python"], "it" if len(unknown) == 1 else "them"))
    shim = [e["module"] for e in miss if e["package_source"] == "shim"]
    if shim:
        lines.append("luasoar's shim (%s) lacks: %s" % (r["shim"], ", ".join(shim)))
    py2 = [e["module"] for e in miss if e["package_source"] == "python2"]
    if py2:
        lines.append("Python 2 modules (%s): the app needs porting to Python 3"
                     % ", ".join(py2))
    if r["optional_missing"]:
        lines.append("missing optional modules, imported under try/except "
                     "ImportError or a version test (%d):"
                     % len(r["optional_missing"]))
        lines += fmt_rows(r["optional_missing"])
    if r["declared_not_imported"]:
        seen = []
        for d in r["declared_not_imported"]:
            if d["name"] not in seen:
                seen.append(d["name"])
        lines.append("declared in requirements but not imported: "
                     + ", ".join(seen))
    return "\n".join(lines) + "\n"


def main(argv):
    args, opts = [], {"json": False, "python": DEFAULT_PYTHON,
                      "no_site": False, "shim": None}
    it = iter(argv)
    for a in it:
        if a in ("-h", "--help"):
            sys.stdout.write(USAGE + "\n")
            return 0
        elif a == "--json":
            opts["json"] = True
        elif a == "--no-site":
            opts["no_site"] = True
        elif a in ("--python", "--shim"):
            v = next(it, None)
            if v is None:
                sys.stderr.write("%s: %s needs a value\n%s\n" % (PROG, a, SHORT))
                return 2
            opts[a[2:]] = v
        elif a.startswith("-") and a != "-":
            sys.stderr.write("%s: unknown option %s\n%s\n" % (PROG, a, SHORT))
            return 2
        else:
            args.append(a)
    if len(args) != 1:
        sys.stderr.write(SHORT + "\n")
        return 2
    if not os.path.exists(opts["python"]) and opts["python"] == DEFAULT_PYTHON:
        opts["python"] = sys.executable
    try:
        r = check(args[0], opts["python"], opts["no_site"], opts["shim"])
    except Unusable as e:
        sys.stderr.write("%s: %s\n" % (PROG, e))
        if opts["json"]:
            sys.stdout.write(json.dumps({"error": str(e)}) + "\n")
        return 2
    if opts["json"]:
        sys.stdout.write(json.dumps(r, indent=1) + "\n")
    else:
        sys.stdout.write(report(r))
    return 1 if r["missing"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
