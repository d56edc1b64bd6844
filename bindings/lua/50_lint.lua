-- 50_lint.lua: `luasoar check`, a lint of playbooks that needs no container.
-- The file has already compiled; this reads its tokens and reports, each
-- as {line, message}:
--   - reads of globals that nothing defines (not the playbook, not a local
--     or parameter anywhere in the file, not the base environment);
--   - callbacks (callback = name) that name no function;
--   - phantom.act of an action that no app in the apps folder provides;
--   - string literals that look like datapaths but do not parse.
-- It is a lint, not a compiler: it errs on the side of silence.
local phantom, internal = ...
local hooks = internal.hooks

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or repeat
  return then true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

-- Tokens {type = "name"|"string"|"number"|"op", value, line}.
local function tokens(src)
  local out, i, line, n = {}, 1, 1, #src
  local function push(t, v) out[#out + 1] = {type = t, value = v, line = line} end
  while i <= n do
    local c = src:sub(i, i)
    if c == "\n" then
      line = line + 1
      i = i + 1
    elseif c:match("%s") then
      i = i + 1
    elseif src:sub(i, i + 1) == "--" then
      local eq = src:match("^%[(=*)%[", i + 2)
      local close
      if eq then
        close = select(2, src:find("]" .. eq .. "]", i, true))
      else
        close = src:find("\n", i, true)
        close = close and close - 1
      end
      close = close or n
      for _ in src:sub(i, close):gmatch("\n") do line = line + 1 end
      i = close + 1
    elseif c:match("[%a_]") then
      local w = src:match("^[%w_]+", i)
      push(KEYWORDS[w] and "keyword" or "name", w)
      i = i + #w
    elseif c:match("%d") or (c == "." and src:sub(i + 1, i + 1):match("%d")) then
      local num = src:match("^0[xX][%x%.pP]+", i) or src:match("^[%d%.]+[eE][%+%-]?%d+", i) or src:match("^[%d%.]+", i)
      push("number", num)
      i = i + #num
    elseif c == '"' or c == "'" then
      local j, buf, start = i + 1, {}, line
      while j <= n do
        local d = src:sub(j, j)
        if d == "\\" then
          local e = src:sub(j + 1, j + 1)
          buf[#buf + 1] = ({n = "\n", t = "\t"})[e] or e
          if e == "\n" then line = line + 1 end
          j = j + 2
        elseif d == c or d == "\n" then
          break
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      out[#out + 1] = {type = "string", value = table.concat(buf), line = start}
      i = j + 1
    elseif c == "[" and src:match("^%[=*%[", i) then
      local eq = src:match("^%[(=*)%[", i)
      local s, e = src:find("]" .. eq .. "]", i, true)
      local body = src:sub(i + #eq + 2, (s or n + 1) - 1)
      out[#out + 1] = {type = "string", value = body, line = line}
      for _ in body:gmatch("\n") do line = line + 1 end
      i = (e or n) + 1
    else
      local op = src:match("^%.%.%.", i) or src:match("^[=~<>]=", i) or src:match("^%.%.", i)
                 or src:match("^::", i) or src:match("^//", i) or src:match("^<<", i) or src:match("^>>", i) or c
      push("op", op)
      i = i + #op
    end
  end
  return out
end

-- Names that do not need a definition in the playbook.
local function base_names()
  local names = {_ENV = true, _G = true, self = true}
  for _, k in ipairs({"assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "rawequal", "rawget",
                      "rawlen", "rawset", "select", "tonumber", "tostring", "type", "_VERSION", "setmetatable",
                      "getmetatable", "string", "table", "math", "utf8", "coroutine", "os", "phantom", "json",
                      "require", "print"}) do
    names[k] = true
  end
  return names
end

-- The LuaLS definitions (docs/lls/phantom.lua, given as text) are the one
-- list of each call's keyword names: its @param names and the fields of the
-- keyword tables its @param and @overload lines name; also of the operators
-- (the Condition alias) and of playbook_info's keys (PlaybookSettings).
local lls_cache
local function lls_signatures(lls)
  if lls_cache then return lls_cache end
  local classes, sigs, ops, doc, class = {}, {}, {}, {}, nil
  for line in (lls .. "\n"):gmatch("([^\n]*)\n") do
    local cname = line:match("^%-%-%-@class ([%w_]+)")
    if cname then
      class = {}
      classes[cname] = class
    elseif class and line:match("^%-%-%-@field ") then
      local f, ty = line:match("^%-%-%-@field ([%w_]+)%??%s+(%S+)")
      if f then class[f] = ty end
    else
      class = nil
    end
    local alias = line:match("^%-%-%-@alias Condition (.*)")
    if alias then
      for op in (alias:match("%[2%]:%s*([^,]*)") or ""):gmatch('"([^"]+)"') do ops[#ops + 1] = op end
    end
    if line:match("^%-%-%-") then
      doc[#doc + 1] = line
    else
      local fname = line:match("^function phantom%.([%w_]+)%(")
      if fname then
        local sig = {positional = {}, allowed = {}, types = {}}
        local function fields(cls)
          for f in pairs(classes[cls] or {}) do sig.allowed[f] = true end
        end
        for _, d in ipairs(doc) do
          local p, ty = d:match("^%-%-%-@param ([%w_]+)%??%s+(%S+)")
          if p then
            if ty:match("^[%w_]+Kwargs$") then
              fields(ty)
            else
              sig.positional[#sig.positional + 1] = p
              sig.types[p] = ty
              sig.allowed[p] = true
            end
          end
          local ov = d:match("^%-%-%-@overload (.*)")
          if ov then
            for cls in ov:gmatch("([%w_]+Kwargs)") do fields(cls) end
            local inline = ov:match("kw:%s*(%b{})")
            if inline then
              for k in inline:gmatch("([%w_]+)%??:") do sig.allowed[k] = true end
            end
          end
        end
        sigs[fname] = sig
      end
      doc = {}
    end
  end
  lls_cache = {classes = classes, sigs = sigs, ops = ops}
  return lls_cache
end

-- The literal values a container setter accepts (case-insensitive).
local VALUE_SETS = {
  set_severity = {"severity", {"high", "medium", "low"}},
  set_status = {"status", {"new", "open", "closed"}},
  set_sensitivity = {"sensitivity", {"white", "green", "amber", "red"}},
}

-- Calls whose name (or default name) a datapath can name, and the argument
-- the default name comes from.
local NAMED = {act = "action", condition = false, format = false, custom_function = "custom_function",
               playbook = "playbook", prompt = false, prompt2 = false, task = false}

-- Does an app that declares its outputs (a SOAR manifest's data paths)
-- give path?  What it declares, a part of it (action_result.data), the
-- parameters (always there), status and message.
local ALWAYS = {action_result = true, ["action_result.status"] = true, ["action_result.message"] = true,
                ["action_result.data"] = true, ["action_result.summary"] = true, ["action_result.parameter"] = true}
local function declared_output(declared, path)
  path = path:gsub("%.$", "")
  if ALWAYS[path] or path:match("^action_result%.parameter%.") then return true end
  for _, d in ipairs(declared) do
    if d == path or d:sub(1, #path + 1) == path .. "." then return true end
  end
  return false
end

-- The edit distance of two short names.
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = {[0] = i}
    for j = 1, #b do
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a:byte(i) == b:byte(j) and 0 or 1))
    end
    prev = cur
  end
  return prev[#b]
end

-- Static checks of phantom.* calls: unknown functions, keyword names,
-- operators, setter values, assets, playbook_info, datapath names, and the
-- format sections that pair rows of different sources (a warning).
local function static_checks(toks, ctx, report, warn)
  local lls = lls_signatures(ctx.lls)
  local function op(t, v) return t and t.type == "op" and t.value == v end
  local OPEN = {["("] = ")", ["{"] = "}", ["["] = "]"}
  -- the index of the token closing the bracket at j
  local function close_of(j)
    local depth = 0
    for k = j, #toks do
      local t = toks[k]
      if t.type == "op" and OPEN[t.value] then depth = depth + 1
      elseif t.type == "op" and (t.value == ")" or t.value == "}" or t.value == "]") then
        depth = depth - 1
        if depth == 0 then return k end
      end
    end
    return #toks
  end
  -- the entries of the list between j (an opening bracket) and its close:
  -- each {first, last}
  local function entries(j)
    local out, k, last, start = {}, j + 1, close_of(j), j + 1
    while k < last do
      local t = toks[k]
      if t.type == "op" and OPEN[t.value] then
        k = close_of(k) + 1
      else
        if op(t, ",") or op(t, ";") then
          out[#out + 1] = {start, k - 1}
          start = k + 1
        end
        k = k + 1
      end
    end
    if start <= last - 1 then out[#out + 1] = {start, last - 1} end
    return out, last
  end
  -- a table constructor at j: keys (name -> value span), items (spans), other
  local function constructor(j)
    local tc = {keys = {}, keynames = {}, items = {}, other = 0, at = j}
    local list
    list, tc.close = entries(j)
    for _, e in ipairs(list) do
      local a, b = e[1], e[2]
      if toks[a] and toks[a].type == "name" and op(toks[a + 1], "=") then
        tc.keys[toks[a].value] = {a + 2, b}
        tc.keynames[#tc.keynames + 1] = toks[a]
      elseif op(toks[a], "[") then
        tc.other = tc.other + 1
      else
        tc.items[#tc.items + 1] = {a, b}
      end
    end
    return tc
  end
  local function single(span) -- the one token of a span, or nil
    if span and span[1] == span[2] then return toks[span[1]] end
  end
  local function literal_string(span)
    local t = single(span)
    if t and t.type == "string" then return t end
  end
  local function is_constructor(span)
    return span and op(toks[span[1]], "{") and close_of(span[1]) == span[2]
  end
  -- strings of a span: one string, or a constructor of strings (nil: not literal)
  local function strings(span)
    local s = literal_string(span)
    if s then return {s} end
    if not is_constructor(span) then return nil end
    local tc, out = constructor(span[1]), {}
    if next(tc.keys) or tc.other > 0 then return nil end
    for _, it in ipairs(tc.items) do
      local t = literal_string(it)
      if not t then return nil end
      out[#out + 1] = t
    end
    return out
  end

  local defined_names, dynamic, formats, conds = {}, false, {}, {}
  local checked_conds = {}
  local function check_conditions(fname, span)
    if not is_constructor(span) or checked_conds[span[1]] then return end
    checked_conds[span[1]] = true
    local known = {}
    for _, o in ipairs(lls.ops) do known[o] = true end
    for i, it in ipairs(constructor(span[1]).items) do
      if is_constructor(it) then
        local c = constructor(it[1])
        local o = literal_string(c.items[2])
        if #c.items == 3 and o and not known[o.value] then
          report(o.line, "%s: conditions[%d]: unknown operator '%s' (%s)", fname, i, o.value, table.concat(lls.ops, ", "))
        end
      end
    end
  end

  for i, t in ipairs(toks) do
    local fn = toks[i + 2]
    if t.type == "name" and t.value == "phantom" and not op(toks[i - 1], ".") and not op(toks[i - 1], ":") and
       op(toks[i + 1], ".") and fn and fn.type == "name" and not op(toks[i + 3], "=") then
      local name = fn.value
      local fname = "phantom." .. name
      if ctx.phantom[name] == nil and not (toks[i - 1] and toks[i - 1].value == "function") then
        local best, bd = nil, 3 -- the nearest name, at most 2 edits away
        for k in pairs(ctx.phantom) do
          local d = distance(name, k)
          if d < bd or (d == bd and best and k < best) then best, bd = k, d end
        end
        report(fn.line, "unknown function '%s'%s", fname, best and (" (phantom.%s?)"):format(best) or "")
      end
      local sig = lls.sigs[name]
      -- the arguments
      local args, nxt = nil, toks[i + 3]
      if op(nxt, "(") then
        args = entries(i + 3)
      elseif op(nxt, "{") then
        args = {{i + 3, close_of(i + 3)}}
      elseif nxt and nxt.type == "string" then
        args = {{i + 3, i + 3}}
      end
      if sig and args then
        local by_name = {}
        local kwspan = args[#args]
        local kw = is_constructor(kwspan) and constructor(kwspan[1])
        local is_kw = false
        if kw then
          local known, unknown = 0, {}
          for _, k in ipairs(kw.keynames) do
            if sig.allowed[k.value] then known = known + 1 else unknown[#unknown + 1] = k end
          end
          local first_ty = sig.types[sig.positional[1] or ""] or ""
          if known > 0 and kw.keys.id == nil then
            is_kw = true
          elseif known == 0 and #args == 1 and #kw.keynames > 0 and #kw.items == 0 and kw.other == 0 and
                 kw.keys.id == nil and next(sig.allowed) and not first_ty:match("table") and
                 not first_ty:match("Fields") and not first_ty:match("^any") then
            is_kw = true -- f{misspelt = ...}: no known name at all
          end
          if is_kw then
            for _, k in ipairs(unknown) do report(k.line, "%s: unknown argument '%s'", fname, k.value) end
            for k, span in pairs(kw.keys) do by_name[k] = span end
          end
        end
        for a = 1, is_kw and #args - 1 or #args do
          local p = sig.positional[a]
          if p then by_name[p] = args[a] end
        end
        -- checks by argument
        if name == "decision" or name == "condition" then check_conditions(fname, by_name.conditions) end
        local set = VALUE_SETS[name]
        if set then
          local v = literal_string(by_name[set[1]])
          if v then
            local ok = false
            for _, s in ipairs(set[2]) do ok = ok or s == v.value:lower() end
            if not ok then
              report(v.line, "%s: '%s' is not a %s (%s)", fname, v.value, set[1], table.concat(set[2], ", "))
            end
          end
        end
        if name == "act" and ctx.assets and by_name.assets then
          for _, s in ipairs(strings(by_name.assets) or {}) do
            local asset, action = ctx.assets[s.value], literal_string(by_name.action)
            if not asset then
              report(s.line, "phantom.act: no asset named '%s' in the assets file", s.value)
            elseif asset.actions and action and not asset.actions[action.value] then
              report(s.line, "phantom.act: asset '%s' (app '%s') has no action '%s'", s.value, asset.app, action.value)
            end
          end
        end
        if NAMED[name] ~= nil then
          -- an act's name stands for its action: the outputs its app declares
          local n, a = by_name.name, name == "act" and literal_string(by_name.action)
          if n then
            local s = literal_string(n)
            if s then defined_names[s.value:match("^[^:]*")] = a and a.value or true else dynamic = true end
          elseif NAMED[name] then
            local s = literal_string(by_name[NAMED[name]])
            if s then defined_names[s.value] = a and a.value or true else dynamic = true end
          end
        end
        if name == "save_run_data" and by_name.key then -- a code block's outputs: key "NAME:output"
          local s = literal_string(by_name.key)
          if not s then dynamic = true elseif s.value:match("^[%w_]+:") then defined_names[s.value:match("^[%w_]+")] = true end
        end
        if name == "format" then
          formats[#formats + 1] = {template = literal_string(by_name.template), parameters = by_name.parameters,
                                   line = fn.line}
        end
      end
    elseif t.type == "name" and t.value == "conditions" and op(toks[i + 1], "=") and op(toks[i + 2], "{") and
           (op(toks[i - 1], "{") or op(toks[i - 1], ",") or op(toks[i - 1], ";")) then
      conds[#conds + 1] = {i + 2, close_of(i + 2)}
    elseif t.type == "name" and t.value == "playbook_info" and op(toks[i + 1], "=") and op(toks[i + 2], "{") and
           not op(toks[i - 1], ".") and not op(toks[i - 1], ",") and not op(toks[i - 1], "{") then
      -- playbook_info: keys and literal types, as PlaybookSettings declares
      local function check_table(j, cls, path)
        local fields = lls.classes[cls] or {}
        local tc = constructor(j)
        local names = {}
        for f in pairs(fields) do names[#names + 1] = f end
        table.sort(names)
        for _, k in ipairs(tc.keynames) do
          local ty = fields[k.value]
          if not ty then
            report(k.line, "%s: unknown key '%s' (keys: %s)", path, k.value, table.concat(names, ", "))
          else
            local span, p = tc.keys[k.value], path .. "." .. k.value
            local v = single(span)
            local base = ty:gsub("%?$", "")
            local got = v and (v.type == "string" and "string" or v.type == "number" and "number" or
                               (v.value == "true" or v.value == "false") and "boolean" or
                               v.value == "nil" and "nil") or (is_constructor(span) and "table")
            if got and got ~= "nil" then
              local want = (base == "boolean" or base == "number" or base == "string") and base or "table"
              if got ~= want then
                report(v and v.line or toks[span[1]].line, "%s: expected a %s, got a %s", p, want, got)
              elseif want == "table" and lls.classes[base] then
                check_table(span[1], base, p)
              end
            end
          end
        end
      end
      check_table(i + 2, "PlaybookSettings", "playbook_info")
    end
  end
  for _, span in ipairs(conds) do check_conditions("conditions", span) end

  -- datapaths naming what nothing in the playbook names
  if not dynamic then
    local BUILTIN = {artifact = true, container = true, playbook_input = true}
    for _, t in ipairs(toks) do
      if t.type == "string" and not t.value:find("%s") then
        local v, refs = t.value, {}
        local f, rest = v:match("^filtered%-data:([%w_]+):condition_%d+:(.*)$")
        if f then refs[1] = f else rest = v end
        local n, tail = rest:match("^([%w_]+):(.*)$")
        if n and not BUILTIN[n] and (tail:match("^action_result") or tail:match("^custom_function") or
           tail:match("^playbook_output") or tail:match("^formatted_data") or tail:match("^artifact:")) then
          refs[#refs + 1] = n
        end
        if #refs > 0 and internal.parse_datapath(v) then
          for _, r in ipairs(refs) do
            if not defined_names[r] then
              report(t.line, "datapath '%s': no act, filter, format, custom function, prompt or child playbook of this playbook is named '%s'", v, r)
            end
          end
          local action = type(defined_names[refs[#refs]]) == "string" and defined_names[refs[#refs]]
          local declared = action and ctx.actions and ctx.actions[action]
          local path = tail and tail:match("^(action_result[%w_.*]*)")
          if type(declared) == "table" and path and not declared_output(declared, path) then
            warn(t.line, "datapath '%s': the app of action '%s' declares no output '%s'", v, action, path)
          end
        end
      end
    end
  end

  -- a %% section of a format template whose parameters come from different
  -- row sources: rows are paired by position
  for _, f in ipairs(formats) do
    local ps = f.template and f.parameters and is_constructor(f.parameters) and constructor(f.parameters[1])
    if ps then
      local function source(i)
        local s = literal_string(ps.items[i + 1])
        if not s then return nil end
        local v = s.value
        local fl, rest = v:match("^filtered%-data:([%w_]+):condition_%d+:(.*)$")
        rest = rest or v
        if rest:match("^artifact:%*") then return fl and ("filter " .. fl) or "the artifacts", v end
        local n = rest:match("^([%w_]+):action_result")
        if n then return "action " .. n, v end
      end
      for section in f.template.value:gmatch("%%%%(.-)%%%%") do
        local first, firstdp
        for idx in section:gmatch("{(%d+)}") do
          local src, dp = source(tonumber(idx))
          if src and not first then
            first, firstdp = src, dp
          elseif src and src ~= first then
            warn(f.template.line, "phantom.format: a %%%% section pairs the rows of '%s' (%s) and '%s' (%s) by position: row i takes the i-th value of each",
                 firstdp, first, dp, src)
            break
          end
        end
      end
    end
  end
end

--- hooks.lint(source, file, actions, assets, lls) -> findings, each {line,
--- message, warning}; actions is the set of action names the apps folder
--- provides, assets the set of asset names (nil: do not check them); lls the
--- text of docs/lls/phantom.lua; serving: for `luasoar serve`'s load, which
--- leaves out the lint's guesses (undefined globals, callbacks naming no
--- function: the environment may be filled at run time).
function hooks.lint(src, file, actions, assets, lls, serving)
  local toks = tokens(src)
  local defined, locals = base_names(), {}
  -- what the file defines: globals assigned or declared as functions, and
  -- every local and parameter name (anywhere: scopes are not tracked)
  local function op(t, v) return t and t.type == "op" and t.value == v end
  for i, t in ipairs(toks) do
    local prev, nxt = toks[i - 1], toks[i + 1]
    if t.type == "keyword" and t.value == "function" then
      local j = i + 1
      if toks[j] and toks[j].type == "name" and not op(toks[j + 1], ".") and not op(toks[j + 1], ":") then
        defined[toks[j].value] = true -- function name(...)
      end
      while toks[j] and not op(toks[j], "(") do j = j + 1 end
      j = j + 1
      while toks[j] and not op(toks[j], ")") do -- the parameters
        if toks[j].type == "name" then locals[toks[j].value] = true end
        j = j + 1
      end
    elseif t.type == "keyword" and (t.value == "local" or t.value == "for") then
      local j = i + 1
      if toks[j] and toks[j].type == "keyword" and toks[j].value == "function" then j = j + 1 end
      while toks[j] and (toks[j].type == "name" or op(toks[j], ",") or op(toks[j], "<") or op(toks[j], ">")) do
        if toks[j].type == "name" and not op(toks[j - 1], "<") then locals[toks[j].value] = true end
        j = j + 1
      end
    elseif t.type == "name" and op(nxt, "=") and not (op(prev, ".") or op(prev, ":") or op(prev, "{") or op(prev, ",")) then
      defined[t.value] = true -- name = value: a global
    end
  end
  local findings = {}
  local function report(line, fmt, ...)
    findings[#findings + 1] = {line = line, message = fmt:format(...)}
  end
  local seen = {}
  for i, t in ipairs(toks) do
    local prev, nxt = toks[i - 1], toks[i + 1]
    if t.type == "name" then
      local after_dot = prev and prev.type == "op" and (prev.value == "." or prev.value == ":" or prev.value == "::")
      -- {key = v} and the later names of a, b = ...: not reads
      local is_key = nxt and nxt.type == "op" and nxt.value == "=" and prev and prev.type == "op" and
                     (prev.value == "{" or prev.value == ",")
      local is_label = prev and prev.type == "keyword" and prev.value == "goto"
      if not after_dot and not is_key and not is_label and not defined[t.value] and not locals[t.value] then
        local key = t.value .. "@" .. t.line
        if not seen[key] then
          seen[key] = true
          if not serving then report(t.line, "undefined global '%s' (nothing in the playbook defines it)", t.value) end
        end
      end
      -- callback = name
      if t.value == "callback" and nxt and nxt.value == "=" then
        local target = toks[i + 2]
        if target and target.type == "name" and not (toks[i + 3] and (toks[i + 3].value == "." or toks[i + 3].value == "(")) then
          if not defined[target.value] and not locals[target.value] then
            if not serving then report(target.line, "callback '%s' names no function", target.value) end
            seen[target.value .. "@" .. target.line] = true
          end
        end
      end
      -- phantom.act("action", ...) / phantom.act{action = "..."}
      if actions and t.value == "act" and prev and prev.value == "." and toks[i - 2] and toks[i - 2].value == "phantom" then
        local a
        if nxt and nxt.value == "(" and toks[i + 2] and toks[i + 2].type == "string" then a = toks[i + 2] end
        if nxt and (nxt.value == "{" or (nxt.value == "(" and toks[i + 2] and toks[i + 2].value == "{")) then
          for j = i + 1, math.min(i + 8, #toks) do
            if toks[j].value == "action" and toks[j + 1] and toks[j + 1].value == "=" and toks[j + 2] and
               toks[j + 2].type == "string" then
              a = toks[j + 2]
              break
            end
          end
        end
        if a and not actions[a.value] then
          report(a.line, "phantom.act: no app in the apps folder provides action '%s'", a.value)
        end
      end
    elseif t.type == "string" then
      -- the rule and the words a run fails with (10_datapath.lua); a piece
      -- of a concatenation ("custom_list:" .. name) is no datapath
      local joined = (prev and prev.value == "..") or (nxt and nxt.value == "..")
      local _, err = internal.datapath_or_literal(t.value)
      if err and not joined then report(t.line, "%s", err) end
    end
  end
  if lls then
    static_checks(toks, {lls = lls, phantom = phantom, assets = assets, actions = actions}, report, function(line, fmt, ...)
      findings[#findings + 1] = {line = line, message = "warning: " .. fmt:format(...), warning = true}
    end)
  end
  for i, f in ipairs(findings) do f.order = i end
  table.sort(findings, function(a, b) return a.line < b.line or (a.line == b.line and a.order < b.order) end)
  return findings
end
