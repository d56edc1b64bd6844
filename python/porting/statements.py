"""The statements and functions of a playbook, as Lua (a part of Porter)."""

import ast

from porting.common import *  # noqa: F401,F403 (the tables and helpers every part uses)


class StatementsMixin:
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
