"""Expressions, the kinds guessed for names, and comprehensions, as Lua (a part of Porter)."""

import ast
import re

from porting.common import *  # noqa: F401,F403 (the tables and helpers every part uses)


class ExpressionsMixin:
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
