"""Calls: phantom.*, json, blocks, builtins and methods, as Lua (a part of Porter)."""

import ast
import string

from porting.common import *  # noqa: F401,F403 (the tables and helpers every part uses)


class CallsMixin:
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
