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

--- hooks.lint(source, file, actions) -> findings, each {line, message};
--- actions is the set of action names the apps folder provides (nil: do
--- not check actions).
function hooks.lint(src, file, actions)
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
          report(t.line, "undefined global '%s' (nothing in the playbook defines it)", t.value)
        end
      end
      -- callback = name
      if t.value == "callback" and nxt and nxt.value == "=" then
        local target = toks[i + 2]
        if target and target.type == "name" and not (toks[i + 3] and (toks[i + 3].value == "." or toks[i + 3].value == "(")) then
          if not defined[target.value] and not locals[target.value] then
            report(target.line, "callback '%s' names no function", target.value)
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
      -- the rule and the words a run fails with (10_datapath.lua)
      local _, err = internal.datapath_or_literal(t.value)
      if err then report(t.line, "%s", err) end
    end
  end
  table.sort(findings, function(a, b) return a.line < b.line end)
  return findings
end
