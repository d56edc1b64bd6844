#!/usr/bin/python3
"""luasoar port: convert Splunk SOAR Python playbooks into luasoar Lua playbooks.

    luasoar_port.py FILE.py [-o FILE.lua] [--strict]
    luasoar_port.py DIR -o OUTDIR [--repo NAME] [--strict]

A custom function file (no on_start, one public top-level function; or, in a
custom_functions/ folder, the function named after the file) becomes a Lua file that
returns `function(params) ... return outputs end`. DIR with a custom_functions/ folder is
a SOAR repository: its custom_functions/*.py go to OUTDIR/custom_functions/REPO/NAME.lua
(REPO: --repo, else DIR's name) and its playbooks (DIR/*.py, DIR/playbooks/*.py) to
OUTDIR/playbooks/NAME.lua; any other DIR ports file by file to OUTDIR.

Only the standard library is used; the input is parsed with `ast`. What cannot be
translated is kept as commented Python under a `-- TODO(port): <what>` line, and each
TODO is printed as `FILE.py:LINE: TODO(port): <what>`. Exit status: 0, 1 with --strict
and some TODO, 2 for bad usage or a file Python cannot parse.
"""

import ast
import os
import re
import sys

from porting.common import *  # noqa: F401,F403
from porting.porter import Porter

# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def port_file(src_path, dst_path, shown_name, forced_cf=False):
    """Port one file. Returns the TODO count, or None if Python cannot parse it.
    forced_cf: the file comes from a custom_functions/ folder."""
    try:
        source = open(src_path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as err:
        print("%s:1: cannot parse: %s" % (shown_name, err), file=sys.stderr)
        return None
    try:
        tree = ast.parse(source, filename=src_path)
    except SyntaxError as err:
        print("%s:%s: cannot parse: %s" % (shown_name, err.lineno or 1, err.msg), file=sys.stderr)
        return None
    # A datapath may name a call the port had to leave commented out: port again with
    # only the names the Lua keeps, until they no longer change.
    names = "python"
    for _ in range(4):
        porter = Porter(source, src_path)
        porter.forced_cf = forced_cf
        porter.tree = tree
        text = porter.port(tree, names)
        if porter.call_names is None:
            break
        kept = lua_call_names(text)
        if kept >= porter.call_names:
            break
        names = kept
    os.makedirs(os.path.dirname(os.path.abspath(dst_path)), exist_ok=True)
    with open(dst_path, "w", encoding="utf-8") as fh:
        fh.write(text)
    for line, what in sorted(porter.todos):
        print("%s:%d: TODO(port): %s" % (shown_name, line, what))
    return len(porter.todos)


USAGE = ("usage: luasoar port FILE.py [-o FILE.lua] [--strict]\n"
         "       luasoar port DIR -o OUTDIR [--repo NAME] [--strict]")


def repo_name(name):
    """A custom-function repository name: letters, digits, `_` and `-`."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")
    return name or "local"


def repository_jobs(src, out, repo):
    """The jobs for a SOAR repository layout (DIR/custom_functions/*.py): custom
    functions to OUT/custom_functions/REPO/NAME.lua, the playbooks (DIR/*.py,
    DIR/playbooks/*.py) to OUT/playbooks/NAME.lua."""
    repo = repo_name(repo if repo is not None else os.path.basename(os.path.abspath(src)))
    jobs = []

    def py_files(d):
        if not os.path.isdir(d):
            return []
        return [os.path.join(d, n) for n in sorted(os.listdir(d))
                if n.endswith(".py") and os.path.isfile(os.path.join(d, n))]

    for path in py_files(os.path.join(src, "custom_functions")):
        name = os.path.basename(path)[:-3]
        jobs.append((path, os.path.join(out, "custom_functions", repo, name + ".lua"), path, True))
    targets = {}
    for path in py_files(src) + py_files(os.path.join(src, "playbooks")):
        name = os.path.basename(path)[:-3]
        dst = os.path.join(out, "playbooks", name + ".lua")
        if dst in targets:
            print("%s: skipped: %s already ports to %s" % (path, targets[dst], dst), file=sys.stderr)
            continue
        targets[dst] = path
        jobs.append((path, dst, path, False))
    return jobs


def main(argv):
    src, out, strict, repo = None, None, False, None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--strict":
            strict = True
        elif a == "-o":
            if i + 1 >= len(argv):
                print(USAGE, file=sys.stderr)
                return 2
            out = argv[i + 1]
            i += 1
        elif a == "--repo":
            if i + 1 >= len(argv):
                print(USAGE, file=sys.stderr)
                return 2
            repo = argv[i + 1]
            i += 1
        elif a in ("-h", "--help"):
            print(USAGE)
            return 0
        elif a.startswith("-") or src is not None:
            print(USAGE, file=sys.stderr)
            return 2
        else:
            src = a
        i += 1
    if src is None:
        print(USAGE, file=sys.stderr)
        return 2
    jobs = []
    if os.path.isdir(src):
        if out is None:
            print(USAGE + "\n(a directory needs -o OUTDIR)", file=sys.stderr)
            return 2
        layout = os.path.isdir(os.path.join(src, "custom_functions"))
        if layout:
            jobs = repository_jobs(src, out, repo)
        for root, dirs, files in ([] if layout else os.walk(src)):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    rel = os.path.relpath(path, src)
                    jobs.append((path, os.path.join(out, rel[:-3] + ".lua"), path, False))
    elif os.path.isfile(src):
        dst = out if out is not None else (src[:-3] if src.endswith(".py") else src) + ".lua"
        in_cf = os.path.basename(os.path.dirname(os.path.abspath(src))) == "custom_functions"
        jobs.append((src, dst, src, in_cf))
    else:
        print("%s: no such file or directory\n%s" % (src, USAGE), file=sys.stderr)
        return 2
    ported = todos = 0
    failed = False
    for path, dst, shown, forced_cf in jobs:
        n = port_file(path, dst, shown, forced_cf)
        if n is None:
            failed = True
            continue
        ported += 1
        todos += n
    print("ported %d file(s), %d TODO(s)" % (ported, todos))
    if failed:
        return 2
    if strict and todos:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
