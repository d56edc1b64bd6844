-- 20_decisions.lua: decisions and filters (reference §4.4, §5.1.2-3), custom
-- lists (§5.4) and format (§5.2.7).
--
-- Conditions are evaluated row by row over the rows their datapaths align
-- to (an artifact, an action result ...), and combined per row with the
-- logical operator.  A literal is any value that is not a datapath string.
local phantom, internal = ...
local json = internal.json
local null = json.null
local array, is_array, fail, field = internal.array, internal.is_array, internal.fail, internal.field
local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber

-- ---- custom lists ----

local function lists()
  local store = internal.store()
  store.lists = store.lists or {}
  return store.lists
end

local function list_changed(name)
  if internal.persisting() then internal.persist("list", name, lists()[name]) end
end

local function cell(v)
  if v == nil or v == null then return "" end
  if type(v) == "table" then return json.encode(v) end
  return tostring(v)
end

--- Seed a custom list from JSON text (a list of rows, or of values).
function internal.hooks.seed_list(name, text)
  if text == "null" then -- gone from the store (another node of a cluster removed it)
    lists()[name] = nil
    return
  end
  local rows = json.decode(text)
  if type(rows) ~= "table" then error("expected a list of rows", 0) end
  local out = {}
  for i, row in ipairs(rows) do
    local r = {}
    if type(row) == "table" then
      for j, v in ipairs(row) do r[j] = cell(v) end
    else
      r[1] = cell(row)
    end
    out[i] = r
  end
  lists()[name] = out
end

local LIST = {"list_name", "values", "value", "case_sensitive", "substring", "column", "remove_all",
              "remove_row", "trace"}

local function list_name(fname, kw)
  return internal.check(fname, kw, "list_name", "string")
end

--- add_list{list_name, values}: append one row (values become strings);
--- creates the list if needed.  -> true, message
function phantom.add_list(...)
  local kw = internal.kwargs("phantom.add_list", {"list_name", "values"}, LIST, ...)
  local name = list_name("phantom.add_list", kw)
  local values = kw.values
  local row = {}
  if type(values) == "table" then
    for i = 1, #values do row[i] = cell(values[i]) end
  else
    row[1] = cell(values)
  end
  local rows = field(lists(), name)
  rows[#rows + 1] = row
  list_changed(name)
  return true, ("added a row to list '%s'"):format(name)
end

--- get_list{list_name} -> true, message, rows  (false, message, nil if none)
function phantom.get_list(...)
  local kw = internal.kwargs("phantom.get_list", {"list_name"}, LIST, ...)
  local name = list_name("phantom.get_list", kw)
  local rows = lists()[name]
  if not rows then return false, ("custom list '%s' not found"):format(name), nil end
  local out = array()
  for i, r in ipairs(rows) do out[i] = array({table.unpack(r)}) end
  return true, ("custom list '%s': %d rows"):format(name, #rows), out
end

local function cell_matches(c, value, case_sensitive, substring)
  value = cell(value)
  if not case_sensitive then
    c, value = c:lower(), value:lower()
  end
  if substring then return c:find(value, 1, true) ~= nil end
  return c == value
end

--- check_list{list_name, value, case_sensitive = false, substring = false}
--- -> found, message, number of matching rows
function phantom.check_list(...)
  local kw = internal.kwargs("phantom.check_list", {"list_name", "value", "case_sensitive", "substring"}, LIST, ...)
  local name = list_name("phantom.check_list", kw)
  local rows = lists()[name]
  if not rows then return false, ("custom list '%s' not found"):format(name), 0 end
  local n = 0
  for _, r in ipairs(rows) do
    local hit = false
    for _, c in ipairs(r) do hit = hit or cell_matches(c, kw.value, kw.case_sensitive == true, kw.substring == true) end
    if hit then n = n + 1 end
  end
  return n > 0, ("%d matching row(s) in '%s'"):format(n, name), n
end

--- delete_from_list{list_name, value, column, remove_all = true, remove_row = true}
function phantom.delete_from_list(...)
  local kw = internal.kwargs("phantom.delete_from_list", {"list_name", "value", "column", "remove_all", "remove_row"},
                             LIST, ...) -- case_sensitive defaults to false, as in check_list
  local name = list_name("phantom.delete_from_list", kw)
  local rows = lists()[name]
  if not rows then return false, ("custom list '%s' not found"):format(name) end
  local remove_all, remove_row = kw.remove_all ~= false, kw.remove_row ~= false
  local kept, removed = {}, 0
  for _, r in ipairs(rows) do
    local hit
    for j, c in ipairs(r) do
      local col = kw.column == nil or kw.column + 1 == j
      if col and (remove_all or removed == 0) and cell_matches(c, kw.value, kw.case_sensitive == true, false) then hit = hit or j end
    end
    if hit and remove_row then
      removed = removed + 1
    else
      if hit then
        r[hit] = ""
        removed = removed + 1
      end
      kept[#kept + 1] = r
    end
  end
  lists()[name] = kept
  list_changed(name)
  return removed > 0, ("removed %d value(s) from '%s'"):format(removed, name)
end

function phantom.remove_list(...)
  local kw = internal.kwargs("phantom.remove_list", {"list_name"}, LIST, ...)
  local name = list_name("phantom.remove_list", kw)
  local had = lists()[name] ~= nil
  lists()[name] = nil
  list_changed(name)
  return had, had and ("removed list '%s'"):format(name) or ("custom list '%s' not found"):format(name)
end

-- ---- comparisons ----

local OPERATORS = {["=="] = true, ["!="] = true, ["<"] = true, ["<="] = true, [">"] = true,
                   [">="] = true, ["in"] = true, ["not in"] = true}

local function missing(v) return v == nil or v == null end

local function number_of(v)
  if type(v) == "number" then return v end
  if type(v) == "string" then return tonumber(v) end
  return nil
end

local function ipv4(s)
  local a, b, c, d = tostring(s):match("^%s*(%d+)%.(%d+)%.(%d+)%.(%d+)%s*$")
  if not a then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then return nil end
  return ((a * 256 + b) * 256 + c) * 256 + d
end

local function in_cidr(ip, cidr)
  local net, bits = tostring(cidr):match("^%s*([%d%.]+)/(%d+)%s*$")
  if not net then return nil end
  local n, a = ipv4(net), ipv4(ip)
  bits = tonumber(bits)
  if not n or not a or bits > 32 then return nil end
  local shift = 32 - bits
  return (a >> shift) == (n >> shift)
end
internal.in_cidr = in_cidr

local function text(v, cs)
  if type(v) == "boolean" then v = v and "true" or "false" end
  local s = type(v) == "table" and json.encode(v) or tostring(v)
  return cs and s or s:lower()
end

local function equal(a, b, cs)
  if missing(a) then a = "" end
  if missing(b) then b = "" end
  if type(a) == "number" or type(b) == "number" then
    local x, y = number_of(a), number_of(b)
    if x and y then return x == y end
  end
  if type(a) == "boolean" and type(b) == "boolean" then return a == b end
  return text(a, cs) == text(b, cs)
end

local function member(a, b, opts)
  if type(b) == "table" then
    for _, x in ipairs(b) do
      if type(x) == "table" then
        if member(a, x, opts) then return true end
      elseif equal(a, x, opts.case_sensitive) or in_cidr(a, x) then
        return true
      end
    end
    return false
  end
  if opts.delimiter and type(b) == "string" then
    for part in (b .. opts.delimiter):gmatch("(.-)" .. opts.delimiter:gsub("%p", "%%%0")) do
      part = part:match("^%s*(.-)%s*$")
      if equal(a, part, opts.case_sensitive) or in_cidr(a, part) then return true end
    end
    return false
  end
  local cidr = in_cidr(a, b)
  if cidr ~= nil then return cidr end
  return text(b, opts.case_sensitive):find(text(a, opts.case_sensitive), 1, true) ~= nil
end

local function compare(a, op, b, opts)
  -- another source's values, on either side: any of them
  for _, side in ipairs({a, b}) do
    if type(side) == "table" and side.__any then
      for _, x in ipairs(side.__any) do
        if side == a and compare(x, op, b, opts) or side == b and compare(a, op, x, opts) then return true end
      end
      return false
    end
  end
  if op == "==" then return equal(a, b, opts.case_sensitive) end
  if op == "!=" then return not equal(a, b, opts.case_sensitive) end
  if op == "in" or op == "not in" then
    -- a missing value is in nothing and not-in nothing (reference TC-28)
    if missing(a) or missing(b) then return false end
    local m = member(a, b, opts)
    if op == "in" then return m end
    return not m
  end
  if missing(a) or missing(b) then return false end
  local x, y = number_of(a), number_of(b)
  if not (x and y) then
    if type(a) ~= "string" or type(b) ~= "string" then return false end
    x, y = a, b -- ISO dates and other strings compare as text
  end
  if op == "<" then return x < y end
  if op == "<=" then return x <= y end
  if op == ">" then return x > y end
  return x >= y
end
internal.compare = compare

-- ---- evaluating conditions ----

local COND = {"container", "conditions", "logical_operator", "action_results", "scope", "name",
              "case_sensitive", "delimiter", "filter_artifacts", "trace"}

-- One side of a condition: a datapath (index into specs), a custom list, or
-- a literal.  A string that starts like a datapath but does not parse is an
-- error (the words of `luasoar check`), never a literal.
local function operand(fname, x, specs, with_results)
  if type(x) == "string" then
    local spec, err = internal.datapath_or_literal(x)
    if err then fail(fname, "%s", err) end
    if spec and spec.kind == "bare" and not with_results then spec = nil end -- "status": a literal
    if spec and spec.kind == "custom_list" then
      local _, _, rows = phantom.get_list{list_name = spec.list}
      return {literal = rows or {}}
    end
    if spec then
      specs[#specs + 1] = spec
      return {index = #specs}
    end
  end
  return {literal = x}
end

-- The action sources ("action:NAME") whose rows are data items: a datapath
-- of theirs walks action_result.data.*, and none walks another list below
-- the action result (whose index would stand in the same place).
local function data_rows(specs)
  local out, other = {}, {}
  for _, spec in ipairs(specs) do
    local s = spec.steps
    if (spec.kind == "action" or spec.kind == "bare") and s[1] and s[1].field == "action_results" then
      local key = "action:" .. (spec.name or "")
      local deeper = false
      for i = 3, #s do deeper = deeper or s[i].iter == true end
      if s[3] and s[3].field == "data" and s[4] and s[4].iter then
        out[key] = true
      elseif deeper then
        other[key] = true
      end
    end
  end
  for key in pairs(other) do out[key] = nil end
  return out
end

local function evaluate(fname, kw)
  local conditions = kw.conditions
  if type(conditions) ~= "table" or #conditions == 0 then
    fail(fname, "argument 'conditions': expected a list of {left, operator, right}")
  end
  local lop = kw.logical_operator or "and"
  if lop ~= "and" and lop ~= "or" then
    fail(fname, "argument 'logical_operator': expected \"and\" or \"or\", got %s", tostring(lop))
  end
  local specs, parsed = {}, {}
  for i, c in ipairs(conditions) do
    if type(c) ~= "table" or c[2] == nil then
      fail(fname, "conditions[%d]: expected {left, operator, right}", i)
    end
    local op = c[2]
    if not OPERATORS[op] then
      fail(fname, "conditions[%d]: unknown operator '%s' (==, !=, <, <=, >, >=, in, not in)", i, tostring(op))
    end
    local r = kw.action_results ~= nil
    parsed[i] = {operand(fname, c[1], specs, r), op, operand(fname, c[3], specs, r)}
  end
  local opts = {case_sensitive = kw.case_sensitive == true, delimiter = kw.delimiter}
  if opts.delimiter ~= nil and type(opts.delimiter) ~= "string" then
    fail(fname, "argument 'delimiter': expected a string")
  end
  local ctx = internal.data_context(fname, kw)
  ctx.any_fallback = true
  local rows
  if #specs == 0 then
    rows = {{values = {}}}
  else
    rows = internal.align(specs, ctx)
  end
  for _, row in ipairs(rows) do
    local v = row.values
    local result = lop == "and"
    for _, p in ipairs(parsed) do
      local a, b = p[1].literal, p[3].literal
      if p[1].index then a = v[p[1].index] end -- false is a value too
      if p[3].index then b = v[p[3].index] end
      local t = compare(a, p[2], b, opts)
      if lop == "and" then result = result and t else result = result or t end
    end
    row.matched = result
  end
  return rows, data_rows(specs)
end

local D = COND

--- decision{container, conditions, logical_operator, action_results, scope,
--- case_sensitive = false, delimiter} -> true when some row matches.
function phantom.decision(...)
  local kw = internal.kwargs("phantom.decision", {"container", "conditions", "logical_operator"}, D, ...)
  for _, row in ipairs(evaluate("phantom.decision", kw)) do
    if row.matched then return true end
  end
  return false
end

-- The matches of a condition, by source: artifacts, and reduced results.
-- An action source keeps, of each app run, the action results of matching
-- rows; when its rows are data items (data_rows), each kept action result
-- keeps only the data items of matching rows (a copy; status, message,
-- summary and parameter as they were).
local function matches(rows, data_rows)
  local arts, art_seen = array(), {}
  local sources = {}
  for _, row in ipairs(rows) do
    if row.matched and row.source then
      local key, root = row.source:gsub("^[^|]*|", ""), row.roots[row.keys[1]]
      local src = sources[key]
      if not src then
        src = {order = {}, picked = {}}
        sources[key] = src
      end
      if key == "artifact" or key == "filtered_artifact" or key:match("^named_artifact:") then
        if not art_seen[root] then
          art_seen[root] = true
          arts[#arts + 1] = root
        end
      end
      local p = src.picked[root]
      if not p then
        p = {whole = false, ars = {}, list = {}}
        src.picked[root] = p
        src.order[#src.order + 1] = root
      end
      local i = row.keys[2]
      if key:match("^action:") and i then
        local a = p.ars[i]
        if not a then
          a = {whole = false, idx = {}, list = {}}
          p.ars[i] = a
          p.list[#p.list + 1] = i
        end
        local d = row.keys[3]
        if data_rows[key] and d then
          if not a.idx[d] then
            a.idx[d] = true
            a.list[#a.list + 1] = d
          end
        else
          a.whole = true
        end
      else
        p.whole = true
      end
    end
  end
  local reduced, results = {}, array()
  for key, src in pairs(sources) do
    local list = array()
    for _, root in ipairs(src.order) do
      local p = src.picked[root]
      if key:match("^action:") then
        local copy = {}
        for k, v in pairs(root) do copy[k] = v end
        if not p.whole then
          local ars = array()
          table.sort(p.list)
          for _, i in ipairs(p.list) do
            local ar, a = root.action_results[i], p.ars[i]
            if not a.whole and type(ar) == "table" and type(ar.data) == "table" then
              local kept = {}
              for k, v in pairs(ar) do kept[k] = v end
              local data = array()
              table.sort(a.list)
              for _, d in ipairs(a.list) do data[#data + 1] = ar.data[d] end
              kept.data = data
              ar = kept
            end
            ars[#ars + 1] = ar
          end
          copy.action_results = ars
        end
        list[#list + 1] = copy
        results[#results + 1] = copy
      else
        list[#list + 1] = root
      end
    end
    reduced[key] = list
  end
  return arts, results, reduced
end

--- condition{container, conditions, ..., name = "filter_1:condition_1"}
--- -> matched artifacts, matched results (each nil when there is none).  A
--- name stores the matches for filtered-data:filter_1:condition_1:...
function phantom.condition(...)
  local kw = internal.kwargs("phantom.condition", {"container", "conditions", "logical_operator"}, COND, ...)
  local rows, data = evaluate("phantom.condition", kw)
  local arts, results, reduced = matches(rows, data)
  if kw.name ~= nil then
    if type(kw.name) ~= "string" then fail("phantom.condition", "argument 'name': expected a string") end
    local st = internal.state("phantom.condition")
    field(st, "filters")[kw.name] = {artifacts = arts, sources = reduced}
  end
  return #arts > 0 and arts or nil, #results > 0 and results or nil
end

-- ---- format ----

local FORMAT = {"container", "template", "parameters", "name", "separator", "drop_none", "scope", "trace",
                "action_results"}

local function render(v)
  if missing(v) then return "None" end
  if type(v) == "table" then return json.encode(v) end
  if type(v) == "boolean" then return v and "True" or "False" end
  return tostring(v)
end

-- {0} {1} ... replaced through get(i) -> string
local function fill(template, get)
  return (template:gsub("{(%d+)}", function(i) return get(tonumber(i)) end))
end

--- format{container, template, parameters = {datapaths...}, name, separator
--- = ", ", drop_none} -> the rendered text; also stored under name.
function phantom.format(...)
  local kw = internal.kwargs("phantom.format", {"container", "template", "parameters", "name", "separator"},
                             FORMAT, ...)
  local template = internal.check("phantom.format", kw, "template", "string")
  local params = kw.parameters or {}
  if type(params) ~= "table" then fail("phantom.format", "argument 'parameters': expected a list of datapaths") end
  local sep = kw.separator or ", "
  local drop = kw.drop_none == true
  local ctx = internal.data_context("phantom.format", kw)
  if kw.scope == nil then ctx.scope = "all" end
  -- each parameter's values (a datapath's column, or a literal)
  local values = {}
  for i, p in ipairs(params) do
    local spec, err = internal.datapath_or_literal(p)
    if err then fail("phantom.format", "%s", err) end
    if spec and spec.kind == "bare" and not kw.action_results then spec = nil end -- "status": a literal
    local list = {n = 0} -- a missing value keeps its place (its row)
    if spec then
      for _, row in ipairs(internal.align({spec}, ctx)) do
        list.n = list.n + 1
        list[list.n] = row.values[1]
      end
    else
      list.n, list[1] = 1, p
    end
    values[i - 1] = list
  end
  local function joined(i)
    local list = values[i]
    if not list then fail("phantom.format", "the template uses {%d}; only %d parameters were given", i, #params) end
    local parts = {}
    for j = 1, list.n do
      local v = list[j]
      if not (drop and missing(v)) then parts[#parts + 1] = render(v) end
    end
    return table.concat(parts, sep)
  end
  local rows = {}
  local out = template:gsub("%%%%(.-)%%%%", function(section)
    local n = 0
    for i in section:gmatch("{(%d+)}") do
      local list = values[tonumber(i)]
      if list and list.n > n then n = list.n end
    end
    local copies = {}
    for r = 1, n do
      local skip = false
      local copy = fill(section, function(i)
        local list = values[i]
        if not list then fail("phantom.format", "the template uses {%d}; only %d parameters were given", i, #params) end
        local v = list[r]
        if list.n == 1 then v = list[1] end -- one value (a literal, container:x) on every row
        if missing(v) and drop then
          skip = true
          return ""
        end
        return render(v)
      end)
      if not skip then
        copy = copy:gsub("^\n", ""):gsub("\n$", "")
        copies[#copies + 1] = copy
        rows[#rows + 1] = copy
      end
    end
    return table.concat(copies, "\n")
  end)
  out = fill(out, joined)
  if kw.name ~= nil then
    local name = internal.check("phantom.format", kw, "name", "string")
    local formats = field(internal.state("phantom.format"), "formats")
    formats[name] = out
    formats[name .. "__as_list"] = #rows > 0 and array(rows) or array{out}
  end
  return out
end

--- get_format_data{name} -> the text of a format block (name .. "__as_list":
--- one string per %% row), or nil.
function phantom.get_format_data(...)
  local kw = internal.kwargs("phantom.get_format_data", {"name"}, {"name"}, ...)
  local name = internal.check("phantom.get_format_data", kw, "name", "string")
  return internal.copy(field(internal.state("phantom.get_format_data"), "formats")[name])
end
