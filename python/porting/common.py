"""Tables of the Lua side, and what the parts of luasoar port share."""

import ast
import os
import re

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


HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # python/
# the API's definitions: docs/lls/ in the source tree, lls/ beside python/ once installed
PHANTOM_API = (load_phantom_api(os.path.join(HERE, "..", "docs", "lls", "phantom.lua"))
               or load_phantom_api(os.path.join(HERE, "..", "lls", "phantom.lua")))
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
