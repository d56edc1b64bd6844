"""The translator of one file: its comments, its TODOs, the module (the statements,
expressions and calls are its parts in statements.py, expressions.py and calls.py)."""

import ast
import io
import os
import re
import tokenize

from porting.common import *  # noqa: F401,F403 (the tables and helpers every part uses)
from porting.calls import CallsMixin
from porting.expressions import ExpressionsMixin
from porting.statements import StatementsMixin


# --------------------------------------------------------------------------------------
# The translator of one file
# --------------------------------------------------------------------------------------

class Porter(StatementsMixin, ExpressionsMixin, CallsMixin):
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
