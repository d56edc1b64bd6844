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
import io
import os
import re
import string
import sys
import tokenize

# --------------------------------------------------------------------------------------
# Tables of the Lua side
# --------------------------------------------------------------------------------------

LUA_KEYWORDS = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
    "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}
# Python names that would hide a Lua global the generated code uses: renamed with a "_".
LUA_RESERVED_GLOBALS = {
    "string", "table", "math", "type", "tostring", "tonumber", "pairs", "ipairs", "json",
    "error", "select", "next", "pcall", "print", "assert", "os", "utf8", "rawget", "load",
    "require", "setmetatable", "getmetatable", "kw", "phantom", "coroutine", "xpcall",
}
BLOCK_FIELDS = ["action", "success", "container", "results", "handle", "filtered_artifacts",
                "filtered_results", "custom_function", "loop_state_json"]

# Python's positional order of the prompt functions (their Lua positional order differs).
PROMPT_ORDER = {
    "prompt": ["container", "user", "message", "respond_in_mins", "name", "options", "callback"],
    "prompt2": ["container", "user", "message", "respond_in_mins", "name", "parameters",
                "response_types", "callback"],
    "task": ["user", "message", "respond_in_mins", "name", "callback"],
}

# Small runtime helpers, emitted (as locals at the top) only when the port uses them.
HELPERS = {
    "py_truthy": (
        "-- Python truthiness: false for nil, false, JSON null, 0, \"\" and an empty table\n"
        "local function py_truthy(v)\n"
        "  if v == nil or v == false or v == json.null or v == 0 or v == \"\" then return false end\n"
        "  if type(v) == \"table\" then return next(v) ~= nil end\n"
        "  return true\nend"),
    "py_in": (
        "-- Python `x in c`: substring for strings, element for lists, key for dicts\n"
        "local function py_in(x, c)\n"
        "  if type(c) == \"string\" then return string.find(c, tostring(x), 1, true) ~= nil end\n"
        "  if type(c) ~= \"table\" then return false end\n"
        "  for _, v in ipairs(c) do if v == x then return true end end\n"
        "  return c[x] ~= nil\nend"),
    "py_get": (
        "-- Python dict.get(k, default)\n"
        "local function py_get(t, k, default)\n"
        "  local v = t[k]\n"
        "  if v == nil then return default end\n"
        "  return v\nend"),
    "py_pop": (
        "-- Python dict.pop(k, default): the value, removed from the table\n"
        "local function py_pop(t, k, default)\n"
        "  local v = t[k]\n"
        "  t[k] = nil\n"
        "  if v == nil then return default end\n"
        "  return v\nend"),
    "py_split": (
        "-- Python str.split(sep, maxsplit): sep a plain string, or nil to split on white space\n"
        "local function py_split(s, sep, maxsplit)\n"
        "  local out = {}\n"
        "  if sep == nil then\n"
        "    for w in string.gmatch(s, \"%S+\") do out[#out + 1] = w end\n"
        "    return out\n"
        "  end\n"
        "  local i = 1\n"
        "  while true do\n"
        "    local a, b = string.find(s, sep, i, true)\n"
        "    if maxsplit and #out >= maxsplit then a = nil end\n"
        "    if not a then out[#out + 1] = string.sub(s, i); return out end\n"
        "    out[#out + 1] = string.sub(s, i, a - 1)\n"
        "    i = b + 1\n"
        "  end\nend"),
    "py_replace": (
        "-- Python str.replace(old, new): plain text, no patterns\n"
        "local function py_replace(s, old, new)\n"
        "  local out, i = {}, 1\n"
        "  if old == \"\" then return s end\n"
        "  while true do\n"
        "    local a, b = string.find(s, old, i, true)\n"
        "    if not a then out[#out + 1] = string.sub(s, i); return table.concat(out) end\n"
        "    out[#out + 1] = string.sub(s, i, a - 1) .. new\n"
        "    i = b + 1\n"
        "  end\nend"),
    "py_copy": (
        "-- Python list(x) / x.copy(): a shallow copy\n"
        "local function py_copy(t)\n"
        "  local out = {}\n"
        "  for k, v in pairs(t or {}) do out[k] = v end\n"
        "  return out\nend"),
    "py_unique": (
        "-- Python list(set(x)): the distinct values, in first-seen order\n"
        "local function py_unique(t)\n"
        "  local out, seen = {}, {}\n"
        "  for _, v in ipairs(t or {}) do\n"
        "    if not seen[v] then seen[v] = true; out[#out + 1] = v end\n"
        "  end\n"
        "  return out\nend"),
    "py_slice": (
        "-- Python x[i:j] on a string or a list (0-based, negative from the end)\n"
        "local function py_slice(x, i, j)\n"
        "  local n = #x\n"
        "  i = i or 0; j = j or n\n"
        "  if i < 0 then i = math.max(n + i, 0) end\n"
        "  if j < 0 then j = n + j end\n"
        "  if j > n then j = n end\n"
        "  if type(x) == \"string\" then return string.sub(x, i + 1, j) end\n"
        "  local out = {}\n"
        "  for k = i + 1, j do out[#out + 1] = x[k] end\n"
        "  return out\nend"),
    "py_loads": (
        "-- Python json.loads; nil for nil or \"\" (get_run_data of a missing key) and for null\n"
        "local function py_loads(s)\n"
        "  if s == nil or s == \"\" then return nil end\n"
        "  local v = json.decode(s)\n"
        "  if v == json.null then return nil end\n"
        "  return v\nend"),
    "py_add": (
        "-- Python a + b when the types are unknown: numbers add, strings and lists concatenate\n"
        "local function py_add(a, b)\n"
        "  if type(a) == \"string\" or type(b) == \"string\" then return tostring(a) .. tostring(b) end\n"
        "  if type(a) == \"table\" then\n"
        "    local out = {}\n"
        "    for _, v in ipairs(a) do out[#out + 1] = v end\n"
        "    for _, v in ipairs(b) do out[#out + 1] = v end\n"
        "    return out\n"
        "  end\n"
        "  return a + b\nend"),
}
HELPER_ORDER = list(HELPERS)
# `from math import x` functions and their Lua names
MATH_FUNCS = {"log": "log", "floor": "floor", "ceil": "ceil", "sqrt": "sqrt", "exp": "exp",
              "fabs": "abs"}

# Lua operator precedences (higher binds tighter); ATOM needs no parentheses.
P_OR, P_AND, P_CMP, P_BOR, P_BXOR, P_BAND, P_SHIFT, P_CONCAT, P_ADD, P_MUL, P_UNARY, P_POW = \
    1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14
P_ATOM = 100
PREFIX_TYPES = (ast.Name, ast.Attribute, ast.Subscript, ast.Call)


class Untranslatable(Exception):
    """A construct the port does not translate: `what` goes into the TODO line."""

    def __init__(self, what, node=None):
        super().__init__(what)
        self.what = what
        self.lineno = getattr(node, "lineno", None)


def load_phantom_api(path):
    """phantom.* function names and positional parameters, from docs/lls/phantom.lua."""
    api = {}
    try:
        text = open(path, encoding="utf-8").read()
    except OSError:
        return api
    for m in re.finditer(r"^function phantom\.(\w+)\(([^)]*)\)", text, re.M):
        api[m.group(1)] = [p.strip() for p in m.group(2).replace("\n", " ").split(",") if p.strip()]
    return api


HERE = os.path.dirname(os.path.abspath(__file__))
PHANTOM_API = load_phantom_api(os.path.join(HERE, "..", "docs", "lls", "phantom.lua"))
if not PHANTOM_API:  # the API file moved: fall back on the functions of the corpus
    PHANTOM_API = {n: [] for n in (
        "act collect2 collect condition decision format get_format_data save_run_data "
        "get_run_data completed custom_function playbook save_playbook_output_data prompt2 "
        "prompt task debug error comment add_note set_severity set_status get_summary "
        "discontinue concatenate pin update_pin get_container get_list").split()}


def lua_string(s):
    """A Lua double-quoted literal for a Python str."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 32 or o == 127:
            out.append("\\%03d" % o)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def lua_pattern_escape(s):
    return re.sub(r"([%^$().\[\]*+\-?])", r"%\1", s)


def is_identifier(s):
    return isinstance(s, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) is not None \
        and s not in LUA_KEYWORDS


def names_in(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def contains_flow(stmts, kinds):
    """True if a statement of `kinds` occurs in stmts, outside nested functions."""
    stack = list(stmts)
    while stack:
        n = stack.pop()
        if isinstance(n, kinds):
            return True
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(n, (ast.For, ast.While)) and kinds != (ast.Return,):
            # break/continue inside an inner loop belong to it
            stack.extend(x for x in ast.iter_child_nodes(n) if x not in n.body)
            continue
        stack.extend(ast.iter_child_nodes(n))
    return False


# --------------------------------------------------------------------------------------
# Scopes: what a name means, and what kind of value it holds
# --------------------------------------------------------------------------------------

class Scope:
    """One Python function (or the module): its locals and what we know of their values."""

    def __init__(self, parent=None, is_block=False):
        self.parent = parent
        self.locals = set()      # names assigned in the function (declared `local` at its top)
        self.params = set()
        self.globals = set()     # `global x`
        self.kinds = {}          # name -> "str" | "num" | "bool" | "list" | "dict" | "niltable" | ...
        self.is_block = is_block
        self.loop_labels = []    # stack: the goto label of `continue` for each open loop
        self.label_count = 0

    def defines(self, name):
        s = self
        while s is not None:
            if name in s.locals or name in s.params:
                return True
            s = s.parent
        return False

    def kind(self, name):
        s = self
        while s is not None:
            if name in s.locals or name in s.params:
                return s.kinds.get(name)
            s = s.parent
        return None


def assigned_names(body):
    """Names a function body binds (its Python locals), outside nested functions' bodies."""
    found, glob = [], set()

    def target(t):
        if isinstance(t, ast.Name):
            found.append(t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                target(e)
        elif isinstance(t, ast.Starred):
            target(t.value)

    stack = list(reversed(body))
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(n.name)
            continue
        if isinstance(n, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(n, ast.Global):
            glob.update(n.names)
        elif isinstance(n, ast.Assign):
            for t in n.targets:
                target(t)
        elif isinstance(n, (ast.AugAssign, ast.AnnAssign)):
            target(n.target)
        elif isinstance(n, (ast.For, ast.AsyncFor)):
            target(n.target)
        elif isinstance(n, ast.NamedExpr) and n.target.id != "_":
            target(n.target)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            found.append(n.name)
        elif isinstance(n, (ast.With, ast.AsyncWith)):
            for it in n.items:
                if it.optional_vars is not None:
                    target(it.optional_vars)
        stack.extend(reversed(list(ast.iter_child_nodes(n))))
    seen, out = set(), []
    for f in found:
        if f not in seen and f not in glob:
            seen.add(f)
            out.append(f)
    return out, glob


# --------------------------------------------------------------------------------------
# The translator of one file
# --------------------------------------------------------------------------------------

class Porter:
    def __init__(self, source, filename):
        self.source = source
        self.src_lines = source.splitlines()
        self.filename = filename
        self.out = []
        self.todos = []          # (line, what)
        self.helpers = set()
        self.comments = {}       # line -> (text, own_line)
        self.comment_cursor = 0  # comments on lines <= this were emitted (or skipped)
        self.blocks = {}         # name -> Python parameter names, for block functions
        self.functions = {}      # name -> Python parameter names, for other functions
        self.scope = None
        self.imports = set()     # module names imported (json, re, ...)
        self.todo_bound = set()  # names bound by statements left untranslated ...
        self.ok_bound = set()    # ... and by translated ones
        self.from_imports = {}   # name -> module, for `from math import log`
        self.cf_main = None      # the function a custom function file returns (else None)
        self.cf_forward = set()  # its helpers and module names, declared local up front
        self.forced_cf = False   # the file lies in a custom_functions/ folder
        self._read_comments()

    # ---- comments ------------------------------------------------------------------
    def _read_comments(self):
        try:
            for tok in tokenize.generate_tokens(io.StringIO(self.source).readline):
                if tok.type == tokenize.COMMENT:
                    row, col = tok.start
                    own = self.src_lines[row - 1][:col].strip() == ""
                    self.comments[row] = (tok.string, own)
        except (tokenize.TokenError, IndentationError, SyntaxError):
            pass

    @staticmethod
    def lua_comment(text):
        if text.startswith("# "):
            return "-- " + text[2:]
        return "--" if text == "#" else "-- " + text

    def flush_comments(self, upto, indent):
        """Emit own-line comments of lines before `upto` not emitted yet."""
        for line in range(self.comment_cursor + 1, upto):
            c = self.comments.get(line)
            if c and c[1]:
                self.out.append(indent + self.lua_comment(c[0]))
        self.comment_cursor = max(self.comment_cursor, upto - 1)

    def trailing_comment(self, node):
        for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
            c = self.comments.get(line)
            if c and not c[1] and "pylint:" not in c[0] and "noqa" not in c[0]:
                return " " + self.lua_comment(c[0])
        return ""

    # ---- TODOs ---------------------------------------------------------------------
    def todo(self, node, what, indent, lineno=None):
        line = lineno or node.lineno
        self.todos.append((line, what))
        self.out.append(indent + "-- TODO(port): " + what)
        first = node.lineno
        if getattr(node, "decorator_list", None):
            first = min(d.lineno for d in node.decorator_list)
        col = node.col_offset
        for text in self.src_lines[first - 1:node.end_lineno]:
            text = text[col:] if text[:col].strip() == "" else text.lstrip()
            self.out.append((indent + "-- " + text).rstrip())
        self.comment_cursor = max(self.comment_cursor, node.end_lineno)

    # ---- module ------------------------------------------------------------------------
    def port(self, tree, names="python"):
        self.scope = Scope()
        self.cf_main = custom_function_main(tree, os.path.basename(self.filename), self.forced_cf)
        mod_names, _ = assigned_names([s for s in tree.body if not isinstance(s, ast.FunctionDef)])
        self.scope.locals.update(mod_names)
        for s in tree.body:
            if isinstance(s, ast.FunctionDef):
                self.scope.locals.add(s.name)
                params = [a.arg for a in s.args.posonlyargs + s.args.args + s.args.kwonlyargs]
                if self.is_block(s) and self.cf_main is None:
                    self.blocks[s.name] = params
                else:
                    self.functions[s.name] = params
        # imports anywhere in the file name modules, not variables
        for n in ast.walk(tree):
            if isinstance(n, ast.Import):
                for a in n.names:
                    self.imports.add(a.asname or a.name.split(".")[0])
            elif isinstance(n, ast.ImportFrom):
                for a in n.names:
                    self.imports.add(a.asname or a.name)
                    self.from_imports[a.asname or a.name] = n.module
        self.scope.locals -= self.imports
        self.collect_call_names(tree)
        if names != "python" and self.call_names is not None:
            self.call_names = set(names)
        body = tree.body
        doc = ast.get_docstring(tree)
        if doc is not None:
            for line in doc.strip().splitlines():
                self.out.append(("-- " + line).rstrip())
            self.out.append("")
            self.comment_cursor = body[0].end_lineno
            body = body[1:]
        if self.cf_main is not None:
            self.port_custom_function(body, mod_names)
        else:
            for s in body:
                self.stmt_safe(s, "", toplevel=True)
        self.flush_comments(len(self.src_lines) + 1, "")
        head = ["-- Ported from %s by luasoar port; review the TODO(port) lines." % os.path.basename(self.filename), ""]
        for h in HELPER_ORDER:
            if h in self.helpers:
                head.append(HELPERS[h])
                head.append("")
        text = "\n".join(head + self.out)
        text = re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"
        return text

    def port_custom_function(self, body, mod_names):
        """A custom function file: its module names and helpers as locals, then
        `return function(params)` for its one public function."""
        main = self.cf_main
        rest = [s for s in body if s is not main]
        # module names, and helpers some earlier statement refers to, are declared first
        seen = set()
        for s in rest:
            if isinstance(s, ast.FunctionDef) and s.name in seen:
                self.cf_forward.add(s.name)
            seen |= names_in(s)
        forward = [n for n in mod_names if n not in self.imports and n != main.name]
        forward += [s.name for s in rest if isinstance(s, ast.FunctionDef) and s.name in self.cf_forward]
        self.cf_forward.update(forward)
        if forward:
            self.out.append("local " + ", ".join(self.lua_name(n) for n in forward))
            self.out.append("")
        for s in rest:
            if isinstance(s, ast.FunctionDef) and self.out and self.out[-1] != "":
                self.out.append("")
            self.stmt_safe(s, "", toplevel=True)
        # the returned function comes last, even if helpers follow it in the Python file
        after = self.comment_cursor
        self.comment_cursor = min(after, main.lineno - 1 - len(main.decorator_list))
        self.flush_comments(main.lineno, "")
        mark = len(self.out)
        helpers = set(self.helpers)
        try:
            self.function(main, "", toplevel=True, cf_main=True)
        except Untranslatable as e:
            del self.out[mark:]
            self.helpers = helpers
            self.todo(main, e.what, "")
            self.out.append("return function(params) error(\"TODO(port): %s\") end" % main.name)
        self.comment_cursor = max(after, self.comment_cursor)

    # The calls that name something a datapath may refer to, as `luasoar check` reads
    # them: the `name` argument, else the argument given here (False: none).
    NAMING_CALLS = {"act": "action", "condition": False, "format": False,
                    "custom_function": "custom_function", "playbook": "playbook",
                    "prompt": False, "prompt2": False, "task": False}
    DATAPATH_RE = re.compile(
        r"^(?:filtered-data:(\w+):condition_\d+:)?(?:(\w+):(?:action_result|custom_function|"
        r"playbook_output|formatted_data|artifact:))?")
    DATAPATH_SOURCES = {"artifact", "container", "playbook_input"}

    def collect_call_names(self, tree):
        """The names given to acts, filters, formats ... (None if one is computed)."""
        self.call_names = set()

        def literal(v):
            return v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else None

        for n in ast.walk(tree):
            if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and
                    isinstance(n.func.value, ast.Name) and n.func.value.id == "phantom"):
                continue
            kws = {k.arg: k.value for k in n.keywords}
            f = n.func.attr
            if f == "save_run_data" and "key" in kws:
                key = literal(kws["key"])
                if key is None:
                    self.call_names = None
                    return
                m = re.match(r"^(\w+):", key)
                if m:
                    self.call_names.add(m.group(1))
            if f not in self.NAMING_CALLS:
                continue
            field = self.NAMING_CALLS[f]
            if "name" in kws:
                v = literal(kws["name"])
                v = v.split(":")[0] if v is not None else None
            elif field:
                v = literal(kws.get(field, n.args[0] if n.args else None))
            else:
                continue
            if v is None:
                self.call_names = None
                return
            self.call_names.add(v)

    def check_datapaths(self, n):
        """A datapath naming no call of the playbook, or malformed, fails `luasoar check`."""
        v = n.value
        if re.search(r"\s", v):
            return
        m = self.DATAPATH_RE.match(v)
        refs = [r for r in m.groups() if r and r not in self.DATAPATH_SOURCES]
        if not refs:
            return
        if v.endswith(".") or ".." in v:
            raise Untranslatable("malformed datapath '%s'" % v, n)
        if self.call_names is None:
            return
        for name in refs:
            if name not in self.call_names:
                raise Untranslatable("datapath '%s' names '%s', which no call of this playbook "
                                     "names" % (v, name), n)

    @staticmethod
    def is_block(fn):
        a = fn.args
        if a.vararg or a.posonlyargs or not a.args:
            return False
        if len(a.defaults) != len(a.args):
            return False
        if not all(isinstance(d, ast.Constant) and d.value is None for d in a.defaults):
            return False
        return any(x.arg in BLOCK_FIELDS for x in a.args)

    # ---- statements ------------------------------------------------------------------
    def stmt_safe(self, node, indent, toplevel=False, last=False):
        """Translate one statement; on failure keep it as a commented TODO."""
        first = node.lineno
        if getattr(node, "decorator_list", None):
            first = min(d.lineno for d in node.decorator_list)
        self.flush_comments(first, indent)
        mark = len(self.out)
        helpers = set(self.helpers)
        try:
            if toplevel and isinstance(node, ast.FunctionDef):
                self.function(node, indent, toplevel=True)
            else:
                self.stmt(node, indent, last)
        except Untranslatable as e:
            del self.out[mark:]
            self.helpers = helpers
            self.todo(node, e.what, indent, e.lineno)
            lost = [n for n in assigned_names([node])[0] if n not in self.imports]
            self.todo_bound.update(lost)
            if toplevel:  # module names the Lua must still define
                for n in lost:
                    self.out.append("%s = nil -- TODO(port): set by the code above" % self.lua_name(n))
                self.out.append("")
            return
        if not isinstance(node, (ast.If, ast.For, ast.While, ast.Try, ast.With)):
            self.ok_bound.update(assigned_names([node])[0])
        if not isinstance(node, (ast.FunctionDef, ast.If, ast.For, ast.While, ast.Try, ast.With)):
            self.comment_cursor = max(self.comment_cursor, node.end_lineno)
            tc = self.trailing_comment(node)
            if tc and len(self.out) > mark:
                self.out[-1] += tc

    def body(self, stmts, indent):
        for i, s in enumerate(stmts):
            self.stmt_safe(s, indent, last=(i == len(stmts) - 1))

    def stmt(self, node, indent, last=False):
        m = getattr(self, "s_" + type(node).__name__, None)
        if m is None:
            raise Untranslatable("statement '%s'" % type(node).__name__.lower(), node)
        m(node, indent, last)

    def emit(self, indent, text):
        for line in text.split("\n"):
            self.out.append(indent + line)

    def s_Import(self, node, indent, last):
        pass  # `phantom.rules` is the global `phantom`; `json` is the Lua `json`

    s_ImportFrom = s_Import

    def s_Pass(self, node, indent, last):
        pass

    def s_Global(self, node, indent, last):
        pass  # such names are not declared local

    def s_Expr(self, node, indent, last):
        v = node.value
        if isinstance(v, ast.Constant) and isinstance(v.value, str):  # a docstring or bare string
            for line in v.value.strip().splitlines():
                self.out.append((indent + "-- " + line).rstrip())
            return
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute):
            stmt = self.method_statement(v)
            if stmt is not None:
                self.emit(indent, stmt)
                return
        if not isinstance(v, ast.Call):
            raise Untranslatable("expression statement that is not a call", node)
        text, _ = self.expr(v)
        self.emit(indent, text)

    def method_statement(self, call):
        """List and dict methods used as statements: append, extend, insert, update, add."""
        f = call.func
        obj_kind = self.kind_of(f.value)
        if f.attr in ("append", "extend", "insert", "update", "add", "clear") and \
                isinstance(f.value, ast.Attribute) and isinstance(f.value.value, ast.Name) and \
                f.value.value.id == "phantom":
            return None
        if obj_kind in ("str",):
            return None
        args = call.args
        if call.keywords:
            return None
        if f.attr == "append" and len(args) == 1:
            t, tp = self.expr(f.value)
            v, _ = self.expr(args[0])
            if isinstance(f.value, (ast.Name, ast.Attribute)) or \
                    (isinstance(f.value, ast.Subscript) and not self.has_call(f.value)):
                return "%s[#%s + 1] = %s" % (t, t, v)
            return "table.insert(%s, %s)" % (t, v)
        if f.attr == "extend" and len(args) == 1:
            t, _ = self.expr(f.value)
            v, _ = self.expr(args[0])
            return "for _, _v in ipairs(%s) do table.insert(%s, _v) end" % (v, t)
        if f.attr == "insert" and len(args) == 2:
            t, _ = self.expr(f.value)
            i = self.list_index(args[0], f.value)
            v, _ = self.expr(args[1])
            return "table.insert(%s, %s, %s)" % (t, i, v)
        if f.attr == "update" and len(args) == 1 and obj_kind != "set":
            t, _ = self.expr(f.value)
            v, _ = self.expr(args[0])
            return "for _k, _v in pairs(%s) do %s[_k] = _v end" % (v, t)
        if f.attr == "add" and len(args) == 1:
            t, _ = self.expr(f.value)
            v, _ = self.expr(args[0])
            self.helpers.add("py_in")
            return "if not py_in(%s, %s) then table.insert(%s, %s) end" % (v, t, t, v)
        if f.attr == "clear" and not args:
            t, _ = self.expr(f.value)
            return "for _k in pairs(%s) do %s[_k] = nil end" % (t, t)
        return None

    @staticmethod
    def has_call(node):
        return any(isinstance(n, ast.Call) for n in ast.walk(node))

    def s_Assign(self, node, indent, last):
        if len(node.targets) != 1:
            raise Untranslatable("chained assignment", node)
        self.assign(node.targets[0], node.value, indent, node)

    def s_AnnAssign(self, node, indent, last):
        if node.value is None:
            return
        self.assign(node.target, node.value, indent, node)

    def assign(self, target, value, indent, node):
        if isinstance(target, ast.Name):
            name = self.name_target(target)
            # `x = [f(v) for v in xs]` as a loop, which reads better than a function
            if isinstance(value, (ast.ListComp, ast.DictComp, ast.SetComp)) and \
                    target.id not in names_in(value):
                self.emit(indent, "%s = {}" % name)
                for line in self.comprehension_lines(value, name):
                    self.emit(indent, line)
                return
            self.emit(indent, "%s = %s" % (name, self.value_expr(value)))
            return
        if isinstance(target, (ast.Tuple, ast.List)):
            names = []
            for t in target.elts:
                if isinstance(t, ast.Name):
                    names.append(self.name_target(t))
                elif isinstance(t, (ast.Subscript, ast.Attribute)):
                    names.append(self.expr(t)[0])
                else:
                    raise Untranslatable("unpacking into %s" % type(t).__name__, node)
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(names):
                vals = ", ".join(self.value_expr(v) for v in value.elts)
            elif isinstance(value, ast.Call) and self.returns_many(value):
                vals = self.expr(value)[0]
            else:
                vals = "table.unpack(%s)" % self.expr(value)[0]
            self.emit(indent, "%s = %s" % (", ".join(names), vals))
            return
        if isinstance(target, ast.Subscript):
            t, _ = self.expr(target)
            self.emit(indent, "%s = %s" % (t, self.value_expr(value)))
            return
        if isinstance(target, ast.Attribute):
            t, _ = self.expr(target)
            self.emit(indent, "%s = %s" % (t, self.value_expr(value)))
            return
        raise Untranslatable("assignment to %s" % type(target).__name__, node)

    def returns_many(self, call):
        """Calls whose Python tuple result is Lua multiple results."""
        f = call.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "phantom":
            return True
        if isinstance(f, ast.Name) and (f.id in self.functions or self.scope.defines(f.id)):
            return True
        return False

    def may_return_many(self, node):
        """A call whose Lua translation may give several results."""
        if not isinstance(node, ast.Call):
            return False
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "phantom":
            return True
        return isinstance(f, ast.Name) and (f.id in self.functions or self.shadowed(f.id))

    def value_expr(self, value):
        """The Lua text of an expression used where any expression may stand."""
        return self.expr(value)[0]

    def s_AugAssign(self, node, indent, last):
        t = node.target
        if isinstance(node.op, ast.Add) and self.kind_of(t) == "list":
            tt, _ = self.expr(t)
            v, _ = self.expr(node.value)
            self.emit(indent, "for _, _v in ipairs(%s) do table.insert(%s, _v) end" % (v, tt))
            return
        if not isinstance(t, (ast.Name, ast.Subscript, ast.Attribute)):
            raise Untranslatable("augmented assignment", node)
        if isinstance(t, ast.Name):
            self.name_target(t)
        load = ast.Name(id=t.id, ctx=ast.Load()) if isinstance(t, ast.Name) else t
        binop = ast.BinOp(left=load, op=node.op, right=node.value)
        ast.copy_location(binop, node)
        tt, _ = self.expr(t)
        self.emit(indent, "%s = %s" % (tt, self.expr(binop)[0]))

    def s_Delete(self, node, indent, last):
        for t in node.targets:
            if not isinstance(t, (ast.Subscript, ast.Attribute, ast.Name)):
                raise Untranslatable("del of %s" % type(t).__name__, node)
            if isinstance(t, ast.Subscript) and self.kind_of(t.value) == "list":
                self.emit(indent, "table.remove(%s, %s)" % (self.expr(t.value)[0], self.list_index(t.slice, t.value)))
            else:
                self.emit(indent, "%s = nil" % self.expr(t)[0])

    def s_Return(self, node, indent, last):
        kw = "return" if last else "do return"
        end = "" if last else " end"
        if node.value is None:
            self.emit(indent, kw + end)
        elif isinstance(node.value, ast.Tuple):
            self.emit(indent, "%s %s%s" % (kw, ", ".join(self.value_expr(v) for v in node.value.elts), end))
        else:
            self.emit(indent, "%s %s%s" % (kw, self.value_expr(node.value), end))

    def s_Break(self, node, indent, last):
        self.emit(indent, "break")

    def s_Continue(self, node, indent, last):
        if not self.scope.loop_labels:
            raise Untranslatable("continue outside a loop", node)
        self.scope.loop_labels[-1][1] = True
        self.emit(indent, "goto " + self.scope.loop_labels[-1][0])

    def s_Raise(self, node, indent, last):
        if node.exc is None:
            raise Untranslatable("bare raise", node)
        e = node.exc
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and len(e.args) <= 1 and not e.keywords:
            msg = self.value_expr(e.args[0]) if e.args else lua_string(e.func.id)
            self.emit(indent, "error(%s)" % msg)
            return
        raise Untranslatable("raise of %s" % ast.unparse(e)[:40], node)

    def s_Assert(self, node, indent, last):
        t = node.test
        if self.cf_main is not None and isinstance(t, ast.Call) and isinstance(t.func, ast.Attribute) \
                and isinstance(t.func.value, ast.Name) and t.func.value.id == "json" and t.func.attr == "dumps":
            return  # the editor's check that the outputs are JSON: Lua tables always are
        msg = (", " + self.value_expr(node.msg)) if node.msg is not None else ""
        self.emit(indent, "assert(%s%s)" % (self.cond(node.test), msg))

    def s_If(self, node, indent, last):
        self.emit(indent, "if %s then" % self.cond(node.test) + self.trailing_comment_line(node))
        self.comment_cursor = max(self.comment_cursor, node.test.end_lineno)
        self.body(node.body, indent + "  ")
        orelse = node.orelse
        while len(orelse) == 1 and isinstance(orelse[0], ast.If):
            elif_ = orelse[0]
            self.flush_comments(elif_.lineno, indent + "  ")
            try:
                test = self.cond(elif_.test)
            except Untranslatable:
                break
            self.emit(indent, "elseif %s then" % test)
            self.comment_cursor = max(self.comment_cursor, elif_.test.end_lineno)
            self.body(elif_.body, indent + "  ")
            orelse = elif_.orelse
        if orelse:
            self.emit(indent, "else")
            self.body(orelse, indent + "  ")
        self.emit(indent, "end")

    def trailing_comment_line(self, node):
        c = self.comments.get(node.lineno)
        if c and not c[1] and "pylint:" not in c[0]:
            return " " + self.lua_comment(c[0])
        return ""

    def loop_body(self, stmts, indent, prelude=()):
        self.scope.label_count += 1
        label = ["continue_%d" % self.scope.label_count, False]
        self.scope.loop_labels.append(label)
        for p in prelude:
            self.emit(indent, p)
        try:
            self.body(stmts, indent)
        finally:
            self.scope.loop_labels.pop()
        if label[1]:
            self.emit(indent, "::%s::" % label[0])

    def s_For(self, node, indent, last):
        if node.orelse:
            raise Untranslatable("for ... else", node)
        header, prelude = self.for_header(node.target, node.iter)
        self.emit(indent, header + self.trailing_comment_line(node))
        self.comment_cursor = max(self.comment_cursor, node.iter.end_lineno)
        self.loop_body(node.body, indent + "  ", prelude)
        self.emit(indent, "end")

    def s_While(self, node, indent, last):
        if node.orelse:
            raise Untranslatable("while ... else", node)
        self.emit(indent, "while %s do" % self.cond(node.test))
        self.comment_cursor = max(self.comment_cursor, node.test.end_lineno)
        self.loop_body(node.body, indent + "  ")
        self.emit(indent, "end")

    def s_Try(self, node, indent, last):
        # try/except as pcall: only when the body leaves by falling off its end
        if contains_flow(node.body, (ast.Return,)) or contains_flow(node.body, (ast.Break, ast.Continue)):
            raise Untranslatable("try whose body returns, breaks or continues", node)
        if len(node.handlers) > 1:
            raise Untranslatable("try with several except clauses", node)
        self.emit(indent, "do")
        inner = indent + "  "
        self.emit(inner, "local _ok, _err = pcall(function()")
        self.body(node.body, inner + "  ")
        self.emit(inner, "end)")
        if node.handlers:
            h = node.handlers[0]
            self.emit(inner, "if not _ok then")
            if h.name:
                self.emit(inner + "  ", "%s = _err" % self.lua_name(h.name))
            self.flush_comments(h.lineno, inner + "  ")
            self.body(h.body, inner + "  ")
            if node.orelse:
                self.emit(inner, "else")
                self.body(node.orelse, inner + "  ")
            self.emit(inner, "end")
        elif node.orelse:
            self.emit(inner, "if _ok then")
            self.body(node.orelse, inner + "  ")
            self.emit(inner, "end")
        if node.finalbody:
            self.body(node.finalbody, inner)
        if not node.handlers:
            self.emit(inner, "if not _ok then error(_err, 0) end")
        self.emit(indent, "end")

    def s_FunctionDef(self, node, indent, last):
        self.function(node, indent, toplevel=False)

    # ---- functions -------------------------------------------------------------------
    def function(self, node, indent, toplevel, cf_main=False):
        if node.args.vararg or node.args.kwonlyargs or (cf_main and node.args.posonlyargs):
            raise Untranslatable("function with *args or keyword-only parameters", node)
        for d in node.decorator_list:
            if not (isinstance(d, ast.Call) and ast.unparse(d.func) == "phantom.playbook_block"):
                raise Untranslatable("decorator %s" % ast.unparse(d), d)
        block = toplevel and self.is_block(node)
        outer = self.scope
        scope = Scope(parent=outer, is_block=block)
        params = [a.arg for a in node.args.args]
        scope.params.update(params)
        if node.args.kwarg:
            scope.params.add(node.args.kwarg.arg)
        names, glob = assigned_names(node.body)
        scope.globals = glob
        scope.locals = {n for n in names if n not in scope.params and n not in self.imports}
        self.scope = scope
        try:
            for _ in range(3):  # later assignments may use kinds found by earlier ones
                self.infer_kinds(node.body)
            used = names_in(node)
            body = node.body
            if cf_main:
                header, pre, body = self.custom_function_header(node, used)
            elif block:
                header = "function %s(kw)" % self.lua_name(node.name)
                pre = []
                bound = [p for p in params + ([node.args.kwarg.arg] if node.args.kwarg else []) if p in used]
                if bound:
                    vals = ["kw" if p == (node.args.kwarg.arg if node.args.kwarg else None) else "kw." + p for p in bound]
                    pre.append("local %s = %s" % (", ".join(self.lua_name(p) for p in bound), ", ".join(vals)))
            else:
                plist = ", ".join(self.lua_name(p) for p in params)
                if node.args.kwarg:
                    raise Untranslatable("function with **kwargs that is not a playbook block", node)
                if toplevel and self.cf_main is not None:  # a helper of a custom function
                    if node.name in self.cf_forward:
                        header = "%s = function(%s)" % (self.lua_name(node.name), plist)
                    else:
                        header = "local function %s(%s)" % (self.lua_name(node.name), plist)
                elif toplevel:
                    header = "function %s(%s)" % (self.lua_name(node.name), plist)
                elif outer.defines(node.name):
                    header = "%s = function(%s)" % (self.lua_name(node.name), plist)
                else:
                    header = "local function %s(%s)" % (self.lua_name(node.name), plist)
                pre = []
                defaults = node.args.defaults
                for p, d in zip(params[len(params) - len(defaults):], defaults):
                    if not (isinstance(d, ast.Constant) and d.value is None):
                        pre.append("if %s == nil then %s = %s end" % (self.lua_name(p), self.lua_name(p), self.value_expr(d)))
            loop_only = self.loop_only_names(node.body)
            locals_ = [n for n in names if n in scope.locals and n not in loop_only]
            self.emit(indent, header)
            self.comment_cursor = max(self.comment_cursor, node.body[0].lineno - 1 if node.body else node.lineno)
            # comments between the def line and the first statement
            for p in pre:
                self.emit(indent + "  ", p)
            decl_at = len(self.out)
            saved_bound = (self.todo_bound, self.ok_bound)
            self.todo_bound, self.ok_bound = set(), set()
            if body and isinstance(body[-1], ast.Return) and body[-1].value is None:
                body = body[:-1]  # the editor's closing `return`
            self.body(body, indent + "  ")
            if node.body:
                last_line = node.body[-1].end_lineno
                self.flush_comments(last_line + 1, indent + "  ")
            self.emit(indent, "end")
            # locals at the top; those only untranslated code sets are marked
            lost = [n for n in locals_ if n in self.todo_bound and n not in self.ok_bound]
            decl = [self.lua_name(n) for n in locals_ if n not in lost]
            lines = ["local " + ", ".join(decl[i:i + 12]) for i in range(0, len(decl), 12)]
            lines += ["local %s = nil -- TODO(port): set by untranslated code" % self.lua_name(n) for n in lost]
            self.out[decl_at:decl_at] = [indent + "  " + l for l in lines]
            self.todo_bound, self.ok_bound = saved_bound
            if toplevel:
                self.out.append("")
        finally:
            self.scope = outer

    def custom_function_header(self, node, used):
        """`return function(params)`, the lines binding the Python parameters, and the
        body left once the docstring (emitted above the header, as comments) is taken."""
        body = node.body
        doc = ast.get_docstring(node)
        if doc is not None:
            for line in doc.strip().splitlines():
                self.out.append(("-- " + line).rstrip())
            self.comment_cursor = max(self.comment_cursor, body[0].end_lineno)
            body = body[1:]
        params = [a.arg for a in node.args.args]
        pre = []
        if params:
            fields = ["params.%s" % p if is_identifier(p) else "params[%s]" % lua_string(p) for p in params]
            pre.append("local %s = %s" % (", ".join(self.lua_name(p) for p in params), ", ".join(fields)))
        kwarg = node.args.kwarg.arg if node.args.kwarg else None
        if kwarg and kwarg in names_in(ast.Module(body=body, type_ignores=[])):
            pre.append("local %s = params" % self.lua_name(kwarg))
        defaults = node.args.defaults
        for p, d in zip(params[len(params) - len(defaults):], defaults):
            if not (isinstance(d, ast.Constant) and d.value is None):
                pre.append("if %s == nil then %s = %s end" % (self.lua_name(p), self.lua_name(p), self.value_expr(d)))
        return "return function(params)", pre, body

    @staticmethod
    def loop_only_names(body):
        """Names bound only as `for` targets and read only inside those loops: the Lua
        loop declares them, so the function need not."""
        def targets(t):
            return {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}

        other, in_loop_targets, outside_reads = set(), set(), set()

        def walk(nodes, bound):
            for n in nodes:
                if isinstance(n, (ast.FunctionDef, ast.Lambda)):
                    # nested functions read what the loop variable held: keep it declared
                    outside_reads.update(x.id for x in ast.walk(n) if isinstance(x, ast.Name))
                    continue
                if isinstance(n, ast.For):
                    t = targets(n.target)
                    in_loop_targets.update(t)
                    walk([n.iter], bound)
                    walk(n.body + n.orelse, bound | t)
                    continue
                if isinstance(n, ast.Name):
                    if isinstance(n.ctx, ast.Store):
                        other.add(n.id)
                    elif n.id not in bound:
                        outside_reads.add(n.id)
                    continue
                if isinstance(n, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                    walk(list(ast.iter_child_nodes(n)), bound)
                    continue
                walk(list(ast.iter_child_nodes(n)), bound)
        walk(body, frozenset())
        return in_loop_targets - other - outside_reads

    # ---- kinds ------------------------------------------------------------------------
    def infer_kinds(self, body):
        """What each local holds, when every assignment agrees (None does not count)."""
        sc = self.scope
        seen = {}

        def note(name, kind):
            if kind is None or kind == "none":
                if kind is None:
                    seen.setdefault(name, set()).add(None)
                return
            seen.setdefault(name, set()).add(kind)

        for n in ast.walk(ast.Module(body=body, type_ignores=[])):
            if isinstance(n, ast.Assign) and len(n.targets) == 1:
                t = n.targets[0]
                if isinstance(t, ast.Name):
                    note(t.id, self.kind_of(n.value))
                elif isinstance(t, ast.Tuple) and isinstance(n.value, ast.Call):
                    k = self.call_kind(n.value)
                    for e in t.elts:
                        if isinstance(e, ast.Name):
                            note(e.id, "niltable" if k == "condition" else None)
            elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
                note(n.target.id, self.kind_of(n.value) if isinstance(n.op, ast.Add) else "num")
            elif isinstance(n, ast.For):
                known = self.loop_target_kinds(n.target, n.iter)
                for t in ast.walk(n.target):
                    if isinstance(t, ast.Name):
                        # in a custom function, a loop variable holds whatever the list
                        # holds: not the kind a later reassignment gives it (playbooks keep
                        # the older inference, so their ports do not change)
                        note(t.id, known.get(t.id, "any" if self.cf_main is not None else None))
        sc.kinds = {}
        for k, v in seen.items():
            rest = v - {None}
            if len(rest) != 1:
                continue
            kind = next(iter(rest))
            # a None-initialised name may still be nil: keep only kinds that never
            # decide truthiness (list/dict/str/set are tested with py_truthy anyway)
            if None not in v or kind in ("list", "dict", "str", "set"):
                sc.kinds[k] = kind

    @staticmethod
    def loop_target_kinds(target, it):
        """Kinds of loop variables we can tell from the iterable: indexes and dict keys."""
        first = target.elts[0] if isinstance(target, ast.Tuple) and target.elts else target
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name):
            if it.func.id == "range" and isinstance(target, ast.Name):
                return {target.id: "num"}
            if it.func.id == "enumerate" and isinstance(target, ast.Tuple) and isinstance(first, ast.Name):
                return {first.id: "num"}
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and \
                it.func.attr in ("items", "keys") and isinstance(first, ast.Name):
            return {first.id: "key"}
        return {}

    def kind_of(self, e):
        if isinstance(e, ast.Constant):
            v = e.value
            if v is None:
                return "none"
            if isinstance(v, bool):
                return "bool"
            if isinstance(v, (int, float)):
                return "num"
            if isinstance(v, str):
                return "str"
            return None
        if isinstance(e, ast.JoinedStr):
            return "str"
        if isinstance(e, (ast.List, ast.ListComp, ast.Tuple)):
            return "list"
        if isinstance(e, (ast.Dict, ast.DictComp)):
            return "dict"
        if isinstance(e, (ast.Set, ast.SetComp)):
            return "set"
        if isinstance(e, ast.Compare):
            return "bool"
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
            return "bool"
        if isinstance(e, ast.BoolOp):
            ks = {self.kind_of(v) for v in e.values}
            return "bool" if ks == {"bool"} else None
        if isinstance(e, ast.Name):
            return self.scope.kind(e.id) if self.scope else None
        if isinstance(e, ast.BinOp):
            a, b = self.kind_of(e.left), self.kind_of(e.right)
            if isinstance(e.op, ast.Mod) and a == "str":
                return "str"
            if isinstance(e.op, ast.Add):
                if "str" in (a, b):
                    return "str"
                if "list" in (a, b):
                    return "list"
            if a == "num" and b == "num":
                return "num"
            return None
        if isinstance(e, ast.Call):
            k = self.call_kind(e)
            return None if k == "condition" else k
        return None

    def call_kind(self, e):
        f = e.func
        if isinstance(f, ast.Attribute):
            if isinstance(f.value, ast.Name) and f.value.id == "phantom":
                return {"collect2": "list", "collect": "list", "condition": "condition",
                        "decision": "bool", "completed": "bool", "format": "str",
                        "LoopState": "loopstate", "concatenate": "list"}.get(f.attr)
            if isinstance(f.value, ast.Name) and f.value.id == "json" and f.attr == "dumps":
                return "str"
            if f.attr in ("lower", "upper", "strip", "lstrip", "rstrip", "replace", "join",
                          "format", "capitalize", "title"):
                return "str"
            if f.attr in ("split", "keys", "values", "items"):
                return "list"
            if f.attr in ("startswith", "endswith", "isdigit", "should_continue"):
                return "bool"
            if f.attr == "find":
                return "num"
            return None
        if isinstance(f, ast.Name):
            return {"str": "str", "len": "num", "int": "num", "float": "num", "list": "list",
                    "sorted": "list", "set": "set", "dict": "dict", "isinstance": "bool",
                    "bool": "bool", "any": "bool", "all": "bool", "sum": "num", "abs": "num",
                    "round": "num"}.get(f.id)
        return None

    # ---- names -------------------------------------------------------------------------
    def lua_name(self, name):
        if name in LUA_KEYWORDS or name in LUA_RESERVED_GLOBALS:
            return name + "_"
        return name

    def shadowed(self, name):
        """True if a function (not the module) binds `name`."""
        s = self.scope
        while s is not None and s.parent is not None:
            if name in s.locals or name in s.params:
                return True
            s = s.parent
        return False

    def name_target(self, t):
        return self.lua_name(t.id)

    def name_load(self, node):
        n = node.id
        if n in ("True", "False", "None"):
            return {"True": "true", "False": "false", "None": "nil"}[n]
        if self.scope.defines(n) or n in self.blocks or n in self.functions:
            return self.lua_name(n)
        if n == "phantom":
            return "phantom"
        raise Untranslatable("name '%s' (a module or builtin with no Lua equivalent)" % n, node)

    # ---- expressions -------------------------------------------------------------------
    def wrap(self, e, prec):
        text, p = self.expr(e)
        return "(%s)" % text if p < prec else text

    def prefix(self, e):
        """An expression usable before `:method()`, `[k]` or `.field`."""
        text, p = self.expr(e)
        if isinstance(e, PREFIX_TYPES) and p == P_ATOM and not text.startswith("("):
            return text
        if p == P_ATOM and text.startswith("(") and text.endswith(")") and self.balanced(text):
            return text
        return "(%s)" % text

    @staticmethod
    def balanced(text):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text) - 1:
                return False
        return True

    def expr(self, e):
        m = getattr(self, "e_" + type(e).__name__, None)
        if m is None:
            raise Untranslatable("expression '%s'" % type(e).__name__, e)
        return m(e)

    def cond(self, e):
        """A Lua condition with Python's truthiness."""
        if isinstance(e, ast.BoolOp):
            op, prec = ("and", P_AND) if isinstance(e.op, ast.And) else ("or", P_OR)
            parts = []
            for v in e.values:
                c = self.cond(v)
                if isinstance(v, ast.BoolOp) and not isinstance(v.op, type(e.op)):
                    c = "(%s)" % c
                parts.append(c)
            return (" %s " % op).join(parts)
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
            c = self.cond(e.operand)
            if isinstance(e.operand, (ast.BoolOp, ast.Compare)):
                c = "(%s)" % c
            return "not " + c
        k = self.kind_of(e)
        if k == "bool" or isinstance(e, ast.Compare):
            return self.expr(e)[0]
        if k == "niltable" or (isinstance(e, ast.Name) and k == "loopstate"):
            return self.expr(e)[0]
        if isinstance(e, ast.Call) and self.call_kind(e) in ("bool",):
            return self.expr(e)[0]
        self.helpers.add("py_truthy")
        return "py_truthy(%s)" % self.expr(e)[0]

    def e_Constant(self, e):
        v = e.value
        if v is None:
            return "nil", P_ATOM
        if v is True:
            return "true", P_ATOM
        if v is False:
            return "false", P_ATOM
        if isinstance(v, str):
            self.check_datapaths(e)
            return lua_string(v), P_ATOM
        if isinstance(v, int):
            return str(v), P_ATOM
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise Untranslatable("float constant %r" % v, e)
            return repr(v), P_ATOM
        raise Untranslatable("constant of type %s" % type(v).__name__, e)

    def e_Name(self, e):
        return self.name_load(e), P_ATOM

    def e_List(self, e):
        if any(isinstance(x, ast.Starred) for x in e.elts):
            raise Untranslatable("list with *unpacking", e)
        items = [self.value_expr(x) for x in e.elts]
        if e.elts and self.may_return_many(e.elts[-1]):
            items[-1] = "(%s)" % items[-1]  # one value, not every result of the call
        return "{" + ", ".join(items) + "}", P_ATOM

    e_Tuple = e_List
    e_Set = e_List

    def e_Dict(self, e):
        items = []
        for k, v in zip(e.keys, e.values):
            if k is None:
                raise Untranslatable("dict with **unpacking", e)
            val = self.value_expr(v)
            if isinstance(k, ast.Constant) and is_identifier(k.value):
                items.append("%s = %s" % (k.value, val))
            else:
                items.append("[%s] = %s" % (self.expr(k)[0], val))
        if len(items) > 3 or sum(len(i) for i in items) > 100:
            return "{\n  " + ",\n  ".join(items) + ",\n}", P_ATOM
        return "{" + ", ".join(items) + "}", P_ATOM

    def e_JoinedStr(self, e):
        parts = []
        for v in e.values:
            if isinstance(v, ast.Constant):
                if v.value:
                    parts.append(lua_string(v.value))
            elif isinstance(v, ast.FormattedValue):
                parts.append(self.formatted(v.value, v.format_spec, v.conversion, e))
            else:
                raise Untranslatable("f-string part", e)
        if not parts:
            return '""', P_ATOM
        if len(parts) == 1:
            return parts[0], P_ATOM if parts[0].startswith(('"', "tostring(", "string.")) else P_CONCAT
        return " .. ".join(parts), P_CONCAT

    def formatted(self, value, spec, conversion, node):
        """One `{value:spec}` of an f-string or str.format."""
        if spec is not None:
            if isinstance(spec, ast.JoinedStr):
                if not all(isinstance(x, ast.Constant) for x in spec.values):
                    raise Untranslatable("f-string with a computed format spec", node)
                spec = "".join(x.value for x in spec.values)
            if spec:
                m = re.fullmatch(r"([<>]?)(\d*)(?:\.(\d+))?([dfsxXeg]?)", spec)
                if not m:
                    raise Untranslatable("format spec '%s'" % spec, node)
                align, width, prec_, typ = m.groups()
                fmt = "%" + ("-" if align == "<" else "") + width + ("." + prec_ if prec_ else "") + (typ or "s")
                return "string.format(%s, %s)" % (lua_string(fmt), self.value_expr(value))
        if self.kind_of(value) == "str" and not isinstance(value, ast.Name):
            return self.wrap(value, P_CONCAT + 1)
        return "tostring(%s)" % self.value_expr(value)

    def e_FormattedValue(self, e):
        return self.formatted(e.value, e.format_spec, e.conversion, e), P_ATOM

    def e_BoolOp(self, e):
        kinds = {self.kind_of(v) for v in e.values}
        op = "and" if isinstance(e.op, ast.And) else "or"
        prec = P_AND if op == "and" else P_OR
        if kinds <= {"bool", "niltable"}:
            return (" %s " % op).join(self.wrap(v, prec + 1) for v in e.values), prec
        # value of `a or b` / `a and b` with Python's truthiness, `a` evaluated once
        self.helpers.add("py_truthy")
        text = self.value_expr(e.values[-1])
        prec = P_ATOM
        for v in reversed(e.values[:-1]):
            a = self.value_expr(v)
            if op == "or" and isinstance(v, (ast.Name, ast.Attribute, ast.Subscript)) and not self.has_call(v):
                # py_truthy(a) implies that a is true for Lua too
                text = "py_truthy(%s) and %s or %s" % (a, self.wrap(v, P_AND + 1),
                                                         text if prec >= P_OR else "(%s)" % text)
                prec = P_OR
                continue
            text = text if prec == P_ATOM else "(%s)" % text
            prec = P_ATOM
            if op == "or":
                text = "(function(_v) if py_truthy(_v) then return _v end return %s end)(%s)" % (text, a)
            else:
                text = "(function(_v) if not py_truthy(_v) then return _v end return %s end)(%s)" % (text, a)
        return text, prec

    def e_UnaryOp(self, e):
        if isinstance(e.op, ast.Not):
            c = self.cond(e.operand)
            if isinstance(e.operand, (ast.BoolOp, ast.Compare)):
                c = "(%s)" % c
            return "not " + c, P_UNARY
        if isinstance(e.op, ast.USub):
            return "-" + self.wrap(e.operand, P_UNARY), P_UNARY
        if isinstance(e.op, ast.UAdd):
            return self.expr(e.operand)
        if isinstance(e.op, ast.Invert):
            return "~" + self.wrap(e.operand, P_UNARY), P_UNARY
        raise Untranslatable("unary operator", e)

    def e_BinOp(self, e):
        op = e.op
        lk, rk = self.kind_of(e.left), self.kind_of(e.right)
        if isinstance(op, ast.Add):
            if "str" in (lk, rk):
                return "%s .. %s" % (self.concat_operand(e.left, lk), self.concat_operand(e.right, rk, right=True)), P_CONCAT
            if lk == "num" or rk == "num":
                return "%s + %s" % (self.wrap(e.left, P_ADD), self.wrap(e.right, P_ADD + 1)), P_ADD
            self.helpers.add("py_add")
            return "py_add(%s, %s)" % (self.value_expr(e.left), self.value_expr(e.right)), P_ATOM
        if isinstance(op, ast.Mod) and lk == "str":
            return self.percent_format(e), P_ATOM
        if isinstance(op, ast.Mult) and "str" in (lk, rk):
            s, n = (e.left, e.right) if lk == "str" else (e.right, e.left)
            return "string.rep(%s, %s)" % (self.value_expr(s), self.value_expr(n)), P_ATOM
        if isinstance(op, ast.Mult) and "list" in (lk, rk):
            raise Untranslatable("list repetition", e)
        table = {ast.Sub: ("-", P_ADD), ast.Mult: ("*", P_MUL), ast.Div: ("/", P_MUL),
                 ast.FloorDiv: ("//", P_MUL), ast.Mod: ("%", P_MUL), ast.Pow: ("^", P_POW),
                 ast.BitAnd: ("&", P_BAND), ast.BitOr: ("|", P_BOR), ast.BitXor: ("~", P_BXOR),
                 ast.LShift: ("<<", P_SHIFT), ast.RShift: (">>", P_SHIFT)}
        if type(op) not in table:
            raise Untranslatable("operator %s" % type(op).__name__, e)
        if isinstance(op, ast.Mod) and lk not in ("num",):
            raise Untranslatable("'%' on a value that may be a string", e)
        sym, prec = table[type(op)]
        if isinstance(op, ast.Pow):
            return "%s ^ %s" % (self.wrap(e.left, prec + 1), self.wrap(e.right, prec)), prec
        return "%s %s %s" % (self.wrap(e.left, prec), sym, self.wrap(e.right, prec + 1)), prec

    def concat_operand(self, e, kind, right=False):
        if kind in ("str", "num"):
            return self.wrap(e, P_CONCAT)
        return "tostring(%s)" % self.value_expr(e)

    def percent_format(self, e):
        if not isinstance(e.left, ast.Constant):
            raise Untranslatable("'%' formatting with a computed format", e)
        fmt = e.left.value
        if re.search(r"%\(", fmt):
            raise Untranslatable("'%' formatting with named fields", e)
        args = e.right.elts if isinstance(e.right, ast.Tuple) else [e.right]
        if not isinstance(e.right, ast.Tuple) and self.kind_of(e.right) not in ("str", "num"):
            raise Untranslatable("'%' formatting with a value that may be a tuple", e)
        fmt = re.sub(r"%(-?\d*(?:\.\d+)?)r", r"%\1s", fmt)
        return "string.format(%s)" % ", ".join([lua_string(fmt)] + [self.value_expr(a) for a in args])

    def e_Compare(self, e):
        parts = []
        left = e.left
        for op, right in zip(e.ops, e.comparators):
            parts.append(self.compare(left, op, right, e))
            left = right
        if len(parts) == 1:
            return parts[0], P_CMP
        return " and ".join("(%s)" % p for p in parts), P_AND

    def compare(self, left, op, right, node):
        if isinstance(op, (ast.In, ast.NotIn)):
            t = self.membership(left, right, node)
            return ("not (%s)" % t) if isinstance(op, ast.NotIn) else t
        empty = lambda x: isinstance(x, (ast.List, ast.Tuple, ast.Dict)) and not (x.keys if isinstance(x, ast.Dict) else x.elts)
        if isinstance(op, (ast.Eq, ast.NotEq)) and (empty(right) or empty(left)):
            other = left if empty(right) else right
            v = self.wrap(other, P_CMP + 1)
            if not isinstance(other, (ast.Name, ast.Attribute, ast.Subscript)) or self.has_call(other):
                raise Untranslatable("comparison of a computed value with an empty list or dict", node)
            test = 'type(%s) == "table" and next(%s) == nil' % (v, v)
            return test if isinstance(op, ast.Eq) else "not (%s)" % test
        sym = {ast.Eq: "==", ast.NotEq: "~=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
               ast.GtE: ">=", ast.Is: "==", ast.IsNot: "~="}[type(op)]
        if isinstance(op, (ast.Is, ast.IsNot)) and not (isinstance(right, ast.Constant) and right.value in (None, True, False)):
            raise Untranslatable("'is' between two objects", node)
        return "%s %s %s" % (self.wrap(left, P_CMP + 1), sym, self.wrap(right, P_CMP + 1))

    def membership(self, left, right, node):
        if isinstance(right, (ast.List, ast.Tuple, ast.Set)) and len(right.elts) <= 6 and \
                isinstance(left, (ast.Name, ast.Attribute, ast.Subscript, ast.Constant)) and \
                all(isinstance(x, ast.Constant) for x in right.elts) and right.elts:
            l = self.wrap(left, P_CMP + 1)
            return " or ".join("%s == %s" % (l, self.expr(x)[0]) for x in right.elts)
        rk, lk = self.kind_of(right), self.kind_of(left)
        if rk == "str" and lk == "str":
            return "string.find(%s, %s, 1, true) ~= nil" % (self.value_expr(right), self.value_expr(left))
        if rk == "dict":
            return "%s[%s] ~= nil" % (self.prefix(right), self.value_expr(left))
        self.helpers.add("py_in")
        return "py_in(%s, %s)" % (self.value_expr(left), self.value_expr(right))

    def e_IfExp(self, e):
        test = self.cond(e.test)
        body = self.value_expr(e.body)
        orelse = self.value_expr(e.orelse)
        safe = isinstance(e.body, (ast.List, ast.Dict, ast.JoinedStr, ast.Tuple)) or \
            (isinstance(e.body, ast.Constant) and e.body.value not in (None, False)) or \
            self.kind_of(e.body) in ("str", "num", "list", "dict") and not isinstance(e.body, (ast.Name, ast.Call, ast.Subscript, ast.Attribute))
        if safe:
            return "%s and %s or %s" % (test if " or " not in test else "(%s)" % test,
                                        self.wrap(e.body, P_AND + 1), self.wrap(e.orelse, P_OR + 1)), P_OR
        return "(function() if %s then return %s end return %s end)()" % (test, body, orelse), P_ATOM

    def e_Attribute(self, e):
        if isinstance(e.value, ast.Name) and e.value.id == "phantom":
            if e.attr in PHANTOM_API or e.attr == "null":
                return "phantom." + e.attr, P_ATOM
            raise Untranslatable("phantom.%s is not in the Lua API" % e.attr, e)
        if isinstance(e.value, ast.Name) and e.value.id == "math" and e.attr in MATH_FUNCS.values():
            return "math." + e.attr, P_ATOM
        if isinstance(e.value, ast.Name) and e.value.id in self.imports and not self.scope.defines(e.value.id):
            raise Untranslatable("module attribute %s.%s" % (e.value.id, e.attr), e)
        return "%s.%s" % (self.prefix(e.value), self.lua_field(e.attr)), P_ATOM

    def lua_field(self, attr):
        if attr in LUA_KEYWORDS:
            raise Untranslatable("attribute named '%s' (a Lua keyword)" % attr)
        return attr

    def e_Subscript(self, e):
        s = e.slice
        obj = self.prefix(e.value)
        if isinstance(s, ast.Slice):
            if s.step is not None:
                raise Untranslatable("slice with a step", e)
            self.helpers.add("py_slice")
            lo = self.value_expr(s.lower) if s.lower is not None else "nil"
            hi = self.value_expr(s.upper) if s.upper is not None else "nil"
            return "py_slice(%s, %s, %s)" % (self.value_expr(e.value), lo, hi), P_ATOM
        if isinstance(s, ast.Constant) and isinstance(s.value, str):
            if is_identifier(s.value):
                return "%s.%s" % (obj, s.value), P_ATOM
            return "%s[%s]" % (obj, lua_string(s.value)), P_ATOM
        return "%s[%s]" % (obj, self.list_index(s, e.value)), P_ATOM

    def list_index(self, s, container):
        """The Lua key for Python's `container[s]`: 0-based list indexes become 1-based."""
        ck = self.kind_of(container)
        if isinstance(s, ast.Constant) and isinstance(s.value, bool):
            raise Untranslatable("boolean index", s)
        if isinstance(s, ast.Constant) and isinstance(s.value, int):
            if ck == "dict":
                return str(s.value)
            if s.value >= 0:
                return str(s.value + 1)
            if isinstance(container, ast.Name):
                return "#%s%s" % (self.expr(container)[0], "" if s.value == -1 else " - %d" % (-s.value - 1))
            raise Untranslatable("negative index of a computed list", s)
        if isinstance(s, ast.UnaryOp) and isinstance(s.op, ast.USub) and isinstance(s.operand, ast.Constant) \
                and not self.has_call(container):
            k = s.operand.value
            if not isinstance(k, int) or isinstance(k, bool):
                raise Untranslatable("index %s" % ast.unparse(s), s)
            return "#%s%s" % (self.expr(container)[0], "" if k == 1 else " - %d" % (k - 1))
        sk = self.kind_of(s)
        if sk in ("str", "key") or ck == "dict":
            return self.value_expr(s)
        if sk == "num" or ck == "list":
            return "%s + 1" % self.wrap(s, P_ADD)
        raise Untranslatable("index '%s' that may be a list index or a dict key" % ast.unparse(s), s)

    def e_Lambda(self, e):
        a = e.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.defaults:
            raise Untranslatable("lambda with special parameters", e)
        outer = self.scope
        self.scope = Scope(parent=outer)
        self.scope.params.update(x.arg for x in a.args)
        try:
            body = self.value_expr(e.body)
        finally:
            self.scope = outer
        return "function(%s) return %s end" % (", ".join(self.lua_name(x.arg) for x in a.args), body), P_ATOM

    # ---- comprehensions ---------------------------------------------------------------
    def comprehension_lines(self, e, acc):
        """Lines that fill the table `acc` as comprehension `e` does."""
        outer = self.scope
        self.scope = Scope(parent=outer)
        try:
            for g in e.generators:
                for t in ast.walk(g.target):
                    if isinstance(t, ast.Name):
                        self.scope.params.add(t.id)
            lines, depth = [], 0
            for g in e.generators:
                if g.is_async:
                    raise Untranslatable("async comprehension", e)
                header, prelude = self.for_header(g.target, g.iter)
                lines.append("  " * depth + header)
                depth += 1
                lines.extend("  " * depth + p for p in prelude)
                for c in g.ifs:
                    lines.append("  " * depth + "if %s then" % self.cond(c))
                    depth += 1
            pad = "  " * depth
            if isinstance(e, ast.DictComp):
                lines.append(pad + "%s[%s] = %s" % (acc, self.value_expr(e.key), self.value_expr(e.value)))
            elif isinstance(e, ast.SetComp):
                self.helpers.add("py_in")
                v = self.value_expr(e.elt)
                lines.append(pad + "if not py_in(%s, %s) then %s[#%s + 1] = %s end" % (v, acc, acc, acc, v))
            else:
                lines.append(pad + "%s[#%s + 1] = %s" % (acc, acc, self.value_expr(e.elt)))
            while depth > 0:
                depth -= 1
                lines.append("  " * depth + "end")
            return lines
        finally:
            self.scope = outer

    def comprehension_expr(self, e):
        lines = self.comprehension_lines(e, "_r")
        return "(function() local _r = {} %s return _r end)()" % " ".join(l.strip() for l in lines), P_ATOM

    e_ListComp = comprehension_expr
    e_DictComp = comprehension_expr
    e_SetComp = comprehension_expr
    e_GeneratorExp = comprehension_expr

    def for_header(self, target, it):
        """`for` header and the lines that open the loop body, for Python's `for target in it`."""
        def tgt(t):
            if isinstance(t, ast.Name):
                return self.lua_name(t.id)
            raise Untranslatable("loop target %s" % ast.unparse(t), t)

        def unpack(t, src):
            if isinstance(t, ast.Name):
                return tgt(t), []
            if isinstance(t, ast.Tuple):
                names = [tgt(x) for x in t.elts]
                return src, ["local %s = %s" % (", ".join(names), ", ".join("%s[%d]" % (src, i + 1) for i in range(len(names))))]
            raise Untranslatable("loop target %s" % ast.unparse(t), t)

        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and not it.keywords and \
                not self.scope.defines(it.func.id):
            fn, args = it.func.id, it.args
            if fn == "range" and 1 <= len(args) <= 3:
                lo = "0" if len(args) == 1 else self.value_expr(args[0])
                hi_node = args[0] if len(args) == 1 else args[1]
                step = ""
                down = False
                if len(args) == 3:
                    st = args[2]
                    if isinstance(st, ast.UnaryOp) and isinstance(st.op, ast.USub) and isinstance(st.operand, ast.Constant):
                        down = True
                    elif not isinstance(st, ast.Constant):
                        raise Untranslatable("range with a computed step", it)
                    step = ", " + self.value_expr(st)
                hi = "%s %s 1" % (self.wrap(hi_node, P_ADD), "+" if down else "-")
                return "for %s = %s, %s%s do" % (tgt(target), lo, hi, step), []
            if fn == "enumerate" and len(args) == 1 and isinstance(target, ast.Tuple) and len(target.elts) == 2 \
                    and isinstance(args[0], ast.Call) and isinstance(args[0].func, ast.Name) and args[0].func.id == "zip":
                header, pre = self.for_header(target.elts[1], args[0])
                return header, ["local %s = _i - 1" % tgt(target.elts[0])] + pre
            if fn == "enumerate" and len(args) == 1 and isinstance(target, ast.Tuple) and len(target.elts) == 2:
                i = tgt(target.elts[0])
                v, pre = unpack(target.elts[1], "_v")
                return "for _i, %s in ipairs(%s) do" % (v, self.value_expr(args[0])), ["local %s = _i - 1" % i] + pre
            if fn == "zip" and len(args) >= 2 and isinstance(target, ast.Tuple) and len(target.elts) == len(args):
                if not all(isinstance(a, (ast.Name, ast.Attribute)) for a in args):
                    raise Untranslatable("zip over computed lists", it)
                lists = [self.value_expr(a) for a in args]
                names = [tgt(t) for t in target.elts]
                return ("for _i = 1, math.min(%s) do" % ", ".join("#" + l for l in lists),
                        ["local %s = %s" % (", ".join(names), ", ".join("%s[_i]" % l for l in lists))])
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and not it.args and \
                it.func.attr in ("items", "keys", "values"):
            d = self.value_expr(it.func.value)
            if it.func.attr == "items":
                if isinstance(target, ast.Tuple) and len(target.elts) == 2:
                    return "for %s, %s in pairs(%s) do" % (tgt(target.elts[0]), tgt(target.elts[1]), d), []
                raise Untranslatable("loop over items() into one name", it)
            if it.func.attr == "keys":
                return "for %s in pairs(%s) do" % (tgt(target), d), []
            return "for _, %s in pairs(%s) do" % (tgt(target), d), []
        if self.kind_of(it) == "dict":
            return "for %s in pairs(%s) do" % (tgt(target), self.value_expr(it)), []
        if self.kind_of(it) == "str":
            raise Untranslatable("loop over the characters of a string", it)
        v, pre = unpack(target, "_row")
        return "for _, %s in ipairs(%s) do" % (v, self.value_expr(it)), pre

    # ---- calls -------------------------------------------------------------------------
    def e_Call(self, e):
        f = e.func
        if any(isinstance(a, ast.Starred) for a in e.args) or any(k.arg is None for k in e.keywords):
            raise Untranslatable("call with *args or **kwargs", e)
        if isinstance(f, ast.Attribute):
            if isinstance(f.value, ast.Name) and f.value.id == "phantom" and not self.scope.defines("phantom"):
                return self.phantom_call(e)
            if isinstance(f.value, ast.Name) and f.value.id == "json" and not self.scope.defines("json"):
                return self.json_call(e)
            return self.method_call(e)
        if isinstance(f, ast.Name):
            n = f.id
            if n in self.blocks and not self.shadowed(n):
                return self.block_call(e)
            if self.scope.defines(n) or n in self.functions:
                return self.user_call(e)
            return self.builtin_call(e)
        if isinstance(f, ast.Call):  # phantom.playbook_block()(f) and the like
            raise Untranslatable("call of a call result", e)
        raise Untranslatable("call of %s" % type(f).__name__, e)

    def kwtable(self, pairs):
        items = ["%s = %s" % (k, v) for k, v in pairs]
        text = "{" + ", ".join(items) + "}"
        if len(text) > 110:
            text = "{\n  " + ",\n  ".join(items) + ",\n}"
        return text

    def phantom_call(self, e):
        name = e.func.attr
        if name not in PHANTOM_API:
            raise Untranslatable("phantom.%s is not in the Lua API" % name, e)
        args = [self.value_expr(a) for a in e.args]
        kws = [(k.arg, self.value_expr(k.value)) for k in e.keywords]
        for k, _ in kws:
            if k in LUA_KEYWORDS:
                raise Untranslatable("keyword argument '%s'" % k, e)
        if name in PROMPT_ORDER and args:
            order = PROMPT_ORDER[name]
            if len(args) > len(order):
                raise Untranslatable("phantom.%s with too many positional arguments" % name, e)
            kws = list(zip(order, args)) + kws
            args = []
        if e.args and self.may_return_many(e.args[-1]):
            args[-1] = "(%s)" % args[-1]
        if not kws:
            return "phantom.%s(%s)" % (name, ", ".join(args)), P_ATOM
        if not args:
            return "phantom.%s%s" % (name, self.kwtable(kws)), P_ATOM
        return "phantom.%s(%s, %s)" % (name, ", ".join(args), self.kwtable(kws)), P_ATOM

    def json_call(self, e):
        name = e.func.attr
        if name == "dumps" and len(e.args) == 1:
            return "json.encode(%s)" % self.value_expr(e.args[0]), P_ATOM
        if name == "loads" and len(e.args) == 1 and not e.keywords:
            a = e.args[0]
            # json.loads(_ if (_ := phantom.get_run_data(...)) != "" else "null")
            if isinstance(a, ast.IfExp) and isinstance(a.test, ast.Compare) and \
                    isinstance(a.test.left, ast.NamedExpr):
                inner = a.test.left.value
                self.helpers.add("py_loads")
                return "py_loads(%s)" % self.value_expr(inner), P_ATOM
            self.helpers.add("py_loads")
            return "py_loads(%s)" % self.value_expr(a), P_ATOM
        raise Untranslatable("json.%s with these arguments" % name, e)

    def block_call(self, e):
        """A block called by keyword: one table."""
        params = self.blocks[e.func.id]
        if len(e.args) > len(params):
            raise Untranslatable("too many arguments to block %s" % e.func.id, e)
        pairs = list(zip(params, [self.value_expr(a) for a in e.args]))
        pairs += [(k.arg, self.value_expr(k.value)) for k in e.keywords]
        return "%s%s" % (self.lua_name(e.func.id), self.kwtable(pairs)), P_ATOM

    def user_call(self, e):
        """A function of the playbook, called positionally (keywords put in place)."""
        n = e.func.id
        args = [self.value_expr(a) for a in e.args]
        if e.keywords:
            params = self.functions.get(n)
            if params is None:
                params = self.local_signature(n)
            if params is None:
                raise Untranslatable("keyword call of %s, whose parameters are unknown" % n, e)
            slots = args + ["nil"] * (len(params) - len(args))
            for k in e.keywords:
                if k.arg not in params:
                    raise Untranslatable("keyword '%s' that %s does not take" % (k.arg, n), e)
                slots[params.index(k.arg)] = self.value_expr(k.value)
            while slots and slots[-1] == "nil":
                slots.pop()
            args = slots
        return "%s(%s)" % (self.lua_name(n), ", ".join(args)), P_ATOM

    def local_signature(self, name):
        for node in ast.walk(self.tree):
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return [a.arg for a in node.args.args]
        return None

    def builtin_call(self, e):
        n, args = e.func.id, e.args
        if e.keywords and n not in ("sorted",):
            raise Untranslatable("%s() with keyword arguments" % n, e)
        one = len(args) == 1
        if n == "len" and one:
            return "#" + self.wrap(args[0], P_UNARY), P_UNARY
        if n == "str" and one:
            if self.kind_of(args[0]) == "str":
                return self.expr(args[0])
            return "tostring(%s)" % self.value_expr(args[0]), P_ATOM
        if n == "str" and not args:
            return '""', P_ATOM
        if n == "int" and one and self.kind_of(args[0]) == "num":
            return "math.floor(%s)" % self.value_expr(args[0]), P_ATOM
        if n == "int" and one:
            return "math.floor(tonumber(%s))" % self.value_expr(args[0]), P_ATOM
        if n == "float" and one:
            return "tonumber(%s)" % self.value_expr(args[0]), P_ATOM
        if n == "bool" and one:
            return self.cond(args[0]), P_OR
        if n == "round" and one:  # halves round up, not to even as in Python
            return "math.floor(%s + 0.5)" % self.wrap(args[0], P_ADD), P_ATOM
        if n == "abs" and one:
            return "math.abs(%s)" % self.value_expr(args[0]), P_ATOM
        if n in ("min", "max") and args:
            fn = "math." + n
            if one:
                return "%s(table.unpack(%s))" % (fn, self.value_expr(args[0])), P_ATOM
            return "%s(%s)" % (fn, ", ".join(self.value_expr(a) for a in args)), P_ATOM
        if n in ("list", "dict", "set") and not args:
            return "{}", P_ATOM
        if n == "list" and one:
            a = args[0]
            if isinstance(a, ast.Call) and isinstance(a.func, ast.Name) and a.func.id == "set" and len(a.args) == 1:
                self.helpers.add("py_unique")
                return "py_unique(%s)" % self.value_expr(a.args[0]), P_ATOM
            if isinstance(a, ast.Call) and isinstance(a.func, ast.Attribute) and a.func.attr in ("keys", "values") and not a.args:
                d = self.value_expr(a.func.value)
                loop = "for _k in pairs(%s) do _r[#_r + 1] = _k end" if a.func.attr == "keys" else \
                    "for _, _v in pairs(%s) do _r[#_r + 1] = _v end"
                return "(function() local _r = {} %s return _r end)()" % (loop % d), P_ATOM
            if isinstance(a, (ast.ListComp, ast.GeneratorExp)):
                return self.expr(a)
            self.helpers.add("py_copy")
            return "py_copy(%s)" % self.value_expr(a), P_ATOM
        if n == "set" and one:
            self.helpers.add("py_unique")
            return "py_unique(%s)" % self.value_expr(args[0]), P_ATOM
        if n == "dict" and one:
            self.helpers.add("py_copy")
            return "py_copy(%s)" % self.value_expr(args[0]), P_ATOM
        if n == "sorted" and one and not e.keywords:
            self.helpers.add("py_copy")
            return "(function() local _r = py_copy(%s) table.sort(_r) return _r end)()" % self.value_expr(args[0]), P_ATOM
        if n == "isinstance" and len(args) == 2:
            types = args[1].elts if isinstance(args[1], ast.Tuple) else [args[1]]
            lua_types = []
            for t in types:
                tn = t.id if isinstance(t, ast.Name) else None
                lt = {"str": "string", "list": "table", "dict": "table", "tuple": "table",
                      "int": "number", "float": "number", "bool": "boolean", "set": "table"}.get(tn)
                if lt is None:
                    raise Untranslatable("isinstance of %s" % ast.unparse(t), e)
                if lt not in lua_types:
                    lua_types.append(lt)
            v = self.value_expr(args[0])
            if len(lua_types) == 1:
                return "type(%s) == %s" % (v, lua_string(lua_types[0])), P_CMP
            return "(%s)" % " or ".join("type(%s) == %s" % (v, lua_string(t)) for t in lua_types), P_ATOM
        if n in ("any", "all") and one:
            self.helpers.add("py_truthy")
            seq = self.value_expr(args[0])
            if n == "any":
                return "(function() for _, _v in ipairs(%s) do if py_truthy(_v) then return true end end return false end)()" % seq, P_ATOM
            return "(function() for _, _v in ipairs(%s) do if not py_truthy(_v) then return false end end return true end)()" % seq, P_ATOM
        if n == "sum" and one:
            return "(function() local _s = 0 for _, _v in ipairs(%s) do _s = _s + _v end return _s end)()" % self.value_expr(args[0]), P_ATOM
        if n in MATH_FUNCS and self.from_imports.get(n) == "math":
            return "math.%s(%s)" % (MATH_FUNCS[n], ", ".join(self.value_expr(a) for a in args)), P_ATOM
        if n == "print":
            return "print(%s)" % ", ".join(self.value_expr(a) for a in args), P_ATOM
        if n == "type" and one:
            raise Untranslatable("type() (Python types have no Lua equivalent)", e)
        raise Untranslatable("call of %s()" % n, e)

    def method_call(self, e):
        f, args = e.func, e.args
        m = f.attr
        obj = f.value
        ok = self.kind_of(obj)
        if ok == "loopstate":
            kws = [(k.arg, self.value_expr(k.value)) for k in e.keywords]
            a = ", ".join(self.value_expr(x) for x in args)
            if kws:
                return "%s:%s%s" % (self.prefix(obj), m, self.kwtable(kws)), P_ATOM
            return "%s:%s(%s)" % (self.prefix(obj), m, a), P_ATOM
        if isinstance(obj, ast.Name) and obj.id in self.imports and not self.scope.defines(obj.id):
            raise Untranslatable("%s.%s() (module %s)" % (obj.id, m, obj.id), e)
        self.expr(obj)
        if m == "format" and isinstance(obj, ast.Constant) and isinstance(obj.value, str):
            return self.str_format(obj.value, e)
        if e.keywords:
            raise Untranslatable(".%s() with keyword arguments" % m, e)
        p = self.prefix(obj) if ok != "str" or isinstance(obj, PREFIX_TYPES) else "(%s)" % self.value_expr(obj)
        n = len(args)
        sargs = lambda i: self.value_expr(args[i])
        const = lambda i: isinstance(args[i], ast.Constant) and isinstance(args[i].value, str)
        if m in ("lower", "upper") and n == 0:
            return "%s:%s()" % (p, m), P_ATOM
        if m == "strip" and n == 0:
            return '%s:match("^%%s*(.-)%%s*$")' % p, P_ATOM
        if m == "lstrip" and n == 0:
            return '%s:match("^%%s*(.*)$")' % p, P_ATOM
        if m == "rstrip" and n == 0:
            return '%s:match("^(.-)%%s*$")' % p, P_ATOM
        if m in ("strip", "lstrip", "rstrip") and n == 1 and const(0) and args[0].value:
            cls = "[" + "".join("%" + c if not c.isalnum() else c for c in args[0].value) + "]"
            pat = {"strip": "^%s*(.-)%s*$", "lstrip": "^%s*(.*)$", "rstrip": "^(.-)%s*$"}[m]
            pat = pat.replace("%s", cls)
            return "%s:match(%s)" % (p, lua_string(pat)), P_ATOM
        if m == "split" and n <= 2:
            self.helpers.add("py_split")
            rest = ", ".join(self.value_expr(a) for a in args)
            return "py_split(%s%s)" % (self.value_expr(obj), ", " + rest if rest else ""), P_ATOM
        if m == "replace" and n == 2:
            if const(0) and const(1) and args[0].value:
                return "(%s:gsub(%s, %s))" % (p, lua_string(lua_pattern_escape(args[0].value)),
                                              lua_string(args[1].value.replace("%", "%%"))), P_ATOM
            self.helpers.add("py_replace")
            return "py_replace(%s, %s, %s)" % (self.value_expr(obj), sargs(0), sargs(1)), P_ATOM
        if m in ("startswith", "endswith") and n == 1:
            vals = args[0].elts if isinstance(args[0], ast.Tuple) else [args[0]]
            if not all(isinstance(v, ast.Constant) and isinstance(v.value, str) for v in vals):
                raise Untranslatable(".%s() with a computed argument" % m, e)
            if not isinstance(obj, (ast.Name, ast.Attribute, ast.Subscript)) and len(vals) > 1:
                raise Untranslatable(".%s() of several prefixes on a computed string" % m, e)
            tests = []
            for v in vals:
                k = len(v.value.encode("utf-8"))
                if m == "startswith":
                    tests.append("%s:sub(1, %d) == %s" % (p, k, lua_string(v.value)))
                else:
                    tests.append("%s:sub(-%d) == %s" % (p, k, lua_string(v.value)) if k else "true")
            return " or ".join(tests), (P_CMP if len(tests) == 1 else P_OR)
        if m == "join" and n == 1:
            return "table.concat(%s, %s)" % (self.value_expr(args[0]), self.value_expr(obj)), P_ATOM
        if m == "format" and isinstance(obj, ast.Constant) and isinstance(obj.value, str):
            return self.str_format(obj.value, e)
        if m == "capitalize" and n == 0 and isinstance(obj, (ast.Name, ast.Attribute, ast.Subscript)):
            return "%s:sub(1, 1):upper() .. %s:sub(2):lower()" % (p, p), P_CONCAT
        if m == "isdigit" and n == 0:
            return '%s:match("^%%d+$") ~= nil' % p, P_CMP
        if m == "find" and n == 1 and ok == "str":
            return "(%s:find(%s, 1, true) or 0) - 1" % (p, sargs(0)), P_ADD
        if m == "get" and n in (1, 2):
            key = self.dict_key(args[0])
            if n == 1 or (isinstance(args[1], ast.Constant) and args[1].value is None):
                return "%s%s" % (p, key), P_ATOM
            self.helpers.add("py_get")
            return "py_get(%s, %s, %s)" % (self.value_expr(obj), self.value_expr(args[0]), sargs(1)), P_ATOM
        if m == "pop":
            if n == 0 and ok != "dict":
                return "table.remove(%s)" % self.value_expr(obj), P_ATOM
            if n == 1 and isinstance(args[0], ast.Constant) and isinstance(args[0].value, int) and ok != "dict":
                return "table.remove(%s, %d)" % (self.value_expr(obj), args[0].value + 1), P_ATOM
            if n in (1, 2) and (ok == "dict" or self.kind_of(args[0]) in ("str", "key")):
                self.helpers.add("py_pop")
                return "py_pop(%s, %s%s)" % (self.value_expr(obj), sargs(0), (", " + sargs(1)) if n == 2 else ""), P_ATOM
        if m == "copy" and n == 0:
            self.helpers.add("py_copy")
            return "py_copy(%s)" % self.value_expr(obj), P_ATOM
        if m in ("keys", "values") and n == 0:
            d = self.value_expr(obj)
            loop = "for _k in pairs(%s) do _r[#_r + 1] = _k end" if m == "keys" else "for _, _v in pairs(%s) do _r[#_r + 1] = _v end"
            return "(function() local _r = {} %s return _r end)()" % (loop % d), P_ATOM
        if m in ("append", "extend", "update", "add", "insert"):
            raise Untranslatable(".%s() used as a value" % m, e)
        raise Untranslatable("method .%s()" % m, e)

    def dict_key(self, k):
        if isinstance(k, ast.Constant) and is_identifier(k.value):
            return "." + k.value
        return "[%s]" % self.value_expr(k)

    def str_format(self, fmt, e):
        """"...{0}...{name}".format(...) as a concatenation."""
        parts, auto = [], 0
        try:
            parsed = list(string.Formatter().parse(fmt))
        except ValueError as err:
            raise Untranslatable("format string: %s" % err, e)
        kws = {k.arg: k.value for k in e.keywords}
        for literal, field, spec, conv in parsed:
            if literal:
                parts.append(lua_string(literal))
            if field is None:
                continue
            if field == "":
                field = str(auto)
                auto += 1
            if field.isdigit():
                i = int(field)
                if i >= len(e.args):
                    raise Untranslatable("format field {%s} beyond the arguments" % field, e)
                value = e.args[i]
            elif field in kws:
                value = kws[field]
            else:
                raise Untranslatable("format field {%s}" % field, e)
            parts.append(self.formatted(value, spec or None, conv, e))
        if not parts:
            return '""', P_ATOM
        if len(parts) == 1:
            return parts[0], P_ATOM if parts[0].startswith(("\"", "tostring", "string.")) else P_CONCAT
        return " .. ".join(parts), P_CONCAT

    def e_NamedExpr(self, e):
        raise Untranslatable("assignment expression ':='", e)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def custom_function_main(tree, filename, forced=False):
    """The function a SOAR custom function file defines, or None for a playbook: the
    file has no on_start and one public (not `_`) top-level function; in a
    custom_functions/ folder, the one named after the file also does."""
    defs = [s for s in tree.body if isinstance(s, ast.FunctionDef)]
    if any(d.name == "on_start" for d in defs):
        return None
    public = [d for d in defs if not d.name.startswith("_") and
              not any(ast.unparse(x).startswith("phantom.playbook_block") for x in d.decorator_list)]
    if len(public) == 1:
        return public[0]
    if forced:
        stem = filename[:-3] if filename.endswith(".py") else filename
        named = [d for d in public if d.name == stem]
        if len(named) == 1:
            return named[0]
    return None


def lua_call_names(text):
    """Names (`name = "x"`) given in the Lua code, comments left out."""
    code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("--"))
    names = {m.split(":")[0] for m in re.findall(r'\bname = "([^"\\]+)"', code)}
    names |= set(re.findall(r'\bkey = "(\w+):', code))
    names |= set(re.findall(r'\b(?:custom_function|playbook) = "([^"\\]+)"', code))
    names |= set(re.findall(r'\bphantom\.(?:act|custom_function|playbook)\("([^"\\]+)"', code))
    return names


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
