-- 10_datapath.lua: the datapath language (reference §4) and the data access
-- API over it: collect2, collect, collect_from_contains, get_action_results.
--
-- A datapath is parsed once and cached.  Evaluating it walks its source
-- (artifacts in scope, an action's results by name, a filter's matches, ...)
-- and yields entries {keys, value}: keys are the indexes taken at each `*`,
-- so entries of several datapaths can be aligned row by row (§4.3).
local phantom, internal = ...
local json = internal.json
local array, is_array, fail, field = internal.array, internal.is_array, internal.fail, internal.field
local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local concat, sort = table.concat, table.sort

-- ---- parsing ----

-- App-run fields a NAME:path datapath may start with, and what they step into.
local APP_RUN_FIELDS = {
  action_result = true, ["filtered-action_result"] = true, summary = true, status = true,
  message = true, app = true, action = true, asset = true, app_id = true, asset_id = true,
  app_run_id = true, action_run_id = true, name = true,
}

local function malformed(dp, bad, why)
  return ("malformed datapath '%s' at '%s': %s"):format(dp, bad, why)
end

-- "a.*.b.0" -> steps {field a} {iter} {field b} {index 0}
local function path_steps(dp, path)
  local steps = {}
  if path == "" then return steps end
  for seg in (path .. "."):gmatch("(.-)%.") do
    if seg == "" then return nil, malformed(dp, path, "an empty name between two dots") end
    if seg == "*" then
      steps[#steps + 1] = {iter = true}
    elseif seg:match("^%d+$") then
      steps[#steps + 1] = {index = tonumber(seg)}
    else
      steps[#steps + 1] = {field = seg}
    end
  end
  return steps
end

-- Steps for a path that must start with '*' (artifact:*...).
local function starred(dp, path, what)
  if path ~= "*" and path:sub(1, 2) ~= "*." then
    return nil, malformed(dp, path, what .. " is a list: the path after it starts with '*' (" .. what .. ":*.cef.field)")
  end
  return path_steps(dp, path:sub(3))
end

local function parse_source(dp, rest)
  local parts = {}
  for p in (rest .. ":"):gmatch("(.-):") do parts[#parts + 1] = p end
  local head = parts[1]
  if head == "" then return nil, malformed(dp, rest, "a source name is missing before ':'") end
  local spec, err
  if #parts == 1 then
    -- a bare path over given action_results: action_result.data.*.x, status, ...
    local first = head:match("^([^%.]+)")
    if not APP_RUN_FIELDS[first] then return nil end
    spec = {kind = "bare"}
    spec.steps, err = path_steps(dp, head)
  elseif head == "artifact" or head == "filtered-artifact" then
    if #parts ~= 2 then return nil, malformed(dp, rest, "too many ':'") end
    spec = {kind = head == "artifact" and "artifact" or "filtered_artifact"}
    spec.steps, err = starred(dp, parts[2], head)
  elseif head == "container" then
    if #parts ~= 2 or parts[2] == "" then return nil, malformed(dp, rest, "expected container:field") end
    spec = {kind = "container"}
    spec.steps, err = path_steps(dp, parts[2])
  elseif head == "playbook_input" then
    if #parts ~= 2 or parts[2] == "" then return nil, malformed(dp, rest, "expected playbook_input:name") end
    local key, sub = parts[2]:match("^([^%.]+)%.?(.*)$")
    if not key then return nil, malformed(dp, parts[2], "expected playbook_input:name") end
    spec = {kind = "input", key = key}
    spec.steps, err = path_steps(dp, sub)
  elseif head == "custom_list" then
    if #parts ~= 2 or parts[2] == "" then return nil, malformed(dp, rest, "expected custom_list:name") end
    spec = {kind = "custom_list", list = parts[2], steps = {}}
  elseif not head:match("^[%w_%-%.]+$") then
    return nil
  elseif parts[2] == "artifact" then
    if #parts ~= 3 then return nil, malformed(dp, rest, "expected NAME:artifact:*.field") end
    spec = {kind = "named_artifact", name = head}
    spec.steps, err = starred(dp, parts[3], head .. ":artifact")
  elseif parts[2] == "custom_function" then
    if #parts ~= 3 or parts[3] == "" then return nil, malformed(dp, rest, "expected NAME:custom_function:output") end
    local key, sub = parts[3]:match("^([^%.]+)%.?(.*)$")
    if not key then return nil, malformed(dp, parts[3], "expected NAME:custom_function:output") end
    spec = {kind = "code_output", name = head, key = key}
    spec.steps, err = path_steps(dp, sub)
  elseif parts[2] == "playbook_output" then
    if #parts ~= 3 or parts[3] == "" then return nil, malformed(dp, rest, "expected NAME:playbook_output:key") end
    local key, sub = parts[3]:match("^([^%.]+)%.?(.*)$")
    if not key then return nil, malformed(dp, parts[3], "expected NAME:playbook_output:key") end
    spec = {kind = "playbook_output", name = head, key = key}
    spec.steps, err = path_steps(dp, sub)
  elseif #parts == 2 then
    local path = parts[2]
    local first = path:match("^([^%.]*)")
    if first == "custom_function_result" then
      spec = {kind = "cf_result", name = head}
      spec.steps, err = path_steps(dp, path:sub(#first + 2))
    elseif first == "formatted_data" then
      local sub = path:sub(#first + 2)
      if sub ~= "" and sub ~= "*" then return nil, malformed(dp, path, "expected formatted_data or formatted_data.*") end
      spec = {kind = "formatted", name = head, list = sub == "*", steps = {}}
    elseif APP_RUN_FIELDS[first] then
      spec = {kind = "action", name = head}
      spec.steps, err = path_steps(dp, path)
    else
      return nil, malformed(dp, first ~= "" and first or path,
        "expected action_result, summary, status, message, custom_function_result or formatted_data after '" .. head .. ":'")
    end
  else
    return nil, malformed(dp, rest, "too many ':'")
  end
  if err then return nil, err end
  -- a[n]ction_result (and its legacy filtered- twin) is one result per parameter set
  local s = spec.steps
  if (spec.kind == "action" or spec.kind == "bare") and s[1] and
     (s[1].field == "action_result" or s[1].field == "filtered-action_result") then
    s[1] = {field = "action_results"}
    table.insert(s, 2, {iter = true})
  end
  return spec
end

local cache, cache_size = {}, 0

--- Parse a datapath: the spec, or nil and why.  A string that does not look
--- like a datapath at all gives nil and no reason (a literal, in conditions).
local function parse(dp)
  local hit = cache[dp]
  if hit ~= nil then
    if hit == false then return nil end
    if type(hit) == "string" then return nil, hit end
    return hit
  end
  local spec, err
  local filter, rest = dp:match("^filtered%-data:([^:]+:[^:]+):(.+)$")
  if filter then
    spec, err = parse_source(dp, rest)
    if not spec and not err then err = malformed(dp, rest, "not a datapath after the filter name") end
    if spec then spec.filter = filter end
  elseif dp:match("^filtered%-data:") then
    err = malformed(dp, dp, "expected filtered-data:FILTER:CONDITION:datapath")
  else
    spec, err = parse_source(dp, dp)
  end
  if spec then spec.text = dp end
  if #dp <= 512 then -- a bounded cache: 10,000 short datapaths at most
    if cache_size > 10000 then cache, cache_size = {}, 0 end
    cache[dp] = spec or err or false
    cache_size = cache_size + 1
  end
  return spec, err
end
internal.parse_datapath = parse

-- What starts like a datapath (docs/api.md §4.1, "Datapath or literal"): a
-- string with no white space that starts with a source word, or with
-- NAME: and a word of a block's output (a prefix: action_results is caught).
local SOURCE_WORDS = {"artifact:", "container:", "filtered%-data:", "filtered%-artifact:", "playbook_input:",
                      "custom_list:", "custom_function_result:"}
local AFTER_NAME = {"action_result", "filtered%-action_result", "artifact", "custom_function", "playbook_output",
                    "formatted_data", "summary"}
local function looks_like(s)
  if type(s) ~= "string" or s:find("%s") then return false end
  for _, w in ipairs(SOURCE_WORDS) do
    if s:find("^" .. w) then return true end
  end
  local after = s:match("^[%w_%-%.]+:(.*)$")
  if not after then return false end
  for _, w in ipairs(AFTER_NAME) do
    if after:find("^" .. w) then return true end
  end
  return false
end
internal.looks_like_datapath = looks_like

--- A string in a datapath position (a condition's side, a format parameter):
--- its spec when it parses; nil when it is a literal; nil and the error when
--- it starts like a datapath but does not parse.  `luasoar check` reports
--- the same error for the same string.
local function datapath_or_literal(s)
  if type(s) ~= "string" then return nil end
  local spec, err = parse(s)
  if spec then return spec end
  if not looks_like(s) then return nil end
  return nil, err or malformed(s, s, "not a datapath")
end
internal.datapath_or_literal = datapath_or_literal

--- A datapath that must parse (collect2, format parameters ...).
local function must_parse(fname, dp)
  if type(dp) ~= "string" then fail(fname, "a datapath must be a string, got %s", type(dp)) end
  local spec, err = parse(dp)
  if not spec then fail(fname, "%s", err or ("'" .. dp .. "' is not a datapath")) end
  return spec
end
internal.must_parse = must_parse

-- ---- sources ----

local function is_list(v)
  return type(v) == "table" and (is_array(v) or v[1] ~= nil or next(v) == nil)
end

-- The artifacts a call sees: the stored container's current artifacts (or
-- the given container's, if the store does not have it), in scope, by id.
local function artifacts(ctx)
  if ctx.artifacts then return ctx.artifacts end
  local c = ctx.container
  local stored = c and type(c) == "table" and c.id and internal.stored_container(c.id)
  local all = (stored or c or {}).artifacts or {}
  local scope = ctx.scope or "new"
  local keep
  if scope == "all" then
    keep = function() return true end
  elseif scope == "new" then
    local ids = ctx.st and ctx.st.scope_ids
    keep = function(a) return not ids or ids[a.id] end
  elseif type(scope) == "table" then
    local ids = {}
    for _, id in ipairs(scope) do ids[id] = true end
    keep = function(a) return ids[a.id] end
  else
    fail(ctx.fname, "argument 'scope': expected \"new\", \"all\" or a list of artifact ids")
  end
  local out = {}
  for _, a in ipairs(all) do
    if keep(a) then out[#out + 1] = a end
  end
  sort(out, function(x, y) return (tonumber(x.id) or 0) < (tonumber(y.id) or 0) end)
  ctx.artifacts = out
  return out
end

-- App runs of the action runs named `name`: from the given action_results
-- (only that name's) or from this run's store of results.
local function app_runs(ctx, name)
  local out = {}
  if ctx.action_results then
    for _, r in ipairs(ctx.action_results) do
      if name == nil or r.name == name then out[#out + 1] = r end
    end
    if name == nil or #out > 0 then return out end
  end
  if name == nil then return out end
  local by_name = ctx.st and ctx.st.results and ctx.st.results[name]
  for _, results in ipairs(by_name or {}) do
    for _, r in ipairs(results) do out[#out + 1] = r end
  end
  return out
end

local function decode_maybe(v)
  if type(v) ~= "string" then return v end
  local ok, d = pcall(json.decode, v)
  if ok and d ~= nil then return d end
  return v
end

-- The root list of a spec and whether its rows are keyed by it.  Each root is
-- one row unit of the first level.
local function roots(spec, ctx)
  local st = ctx.st
  local filt
  if spec.filter then
    filt = st and st.filters and st.filters[spec.filter]
    if not filt then return {}, "never ran" end
  end
  local k = spec.kind
  if k == "artifact" or k == "filtered_artifact" then
    if filt then return filt.artifacts or {}, "artifact" end
    if k == "filtered_artifact" then
      if not ctx.filter_artifacts then
        fail(ctx.fname, "'%s' needs filter_artifacts = the matched artifacts of a condition", spec.text)
      end
      return ctx.filter_artifacts, "filtered_artifact"
    end
    return artifacts(ctx), "artifact"
  elseif k == "action" or k == "bare" then
    local key = "action:" .. (spec.name or "")
    if filt then return (filt.sources[key] or {}), key end
    return app_runs(ctx, spec.name), key
  elseif k == "named_artifact" then
    local by_id = {}
    for _, a in ipairs(artifacts({container = ctx.container, scope = "all", st = st})) do by_id[a.id] = a end
    local out = {}
    for _, r in ipairs(app_runs(ctx, spec.name)) do
      for _, ar in ipairs(r.action_results or {}) do
        local ctx_ = type(ar.parameter) == "table" and ar.parameter.context
        local a = type(ctx_) == "table" and by_id[ctx_.artifact_id]
        if a then out[#out + 1] = a end
      end
    end
    return out, "named_artifact:" .. spec.name
  elseif k == "container" then
    return {ctx.container or {}}, "container"
  elseif k == "input" then
    local key = "input:" .. spec.key
    if filt then return filt.sources[key] or {}, key end
    local v = st and st.inputs and st.inputs[spec.key]
    if v == nil then return {}, key end
    if is_list(v) then return v, key end
    return {v}, key
  elseif k == "custom_list" then
    local _, _, rows = phantom.get_list{list_name = spec.list}
    return rows or {}, "custom_list:" .. spec.list
  elseif k == "cf_result" then
    local key = "cf:" .. spec.name
    if filt then return filt.sources[key] or {}, key end
    local list = {}
    for _, run in ipairs(st and st.cf_results and st.cf_results[spec.name] or {}) do
      for _, r in ipairs(run) do list[#list + 1] = r end
    end
    return list, key
  elseif k == "code_output" then
    local rd = st and st.run_data or {}
    local v = decode_maybe(rd[spec.name .. ":" .. spec.key])
    if v == nil then return {}, "code:" .. spec.name end
    if is_list(v) then return v, "code:" .. spec.name end
    return {v}, "code:" .. spec.name
  elseif k == "playbook_output" then
    local outputs = st and st.playbook_outputs and st.playbook_outputs[spec.name] or {}
    local v = outputs[spec.key]
    if v == nil then return {}, "output:" .. spec.name end
    if is_list(v) then return v, "output:" .. spec.name end
    return {v}, "output:" .. spec.name
  elseif k == "formatted" then
    local f = st and st.formats or {}
    if spec.list then return f[spec.name .. "__as_list"] or {}, "format:" .. spec.name end
    local v = f[spec.name]
    return v == nil and {} or {v}, "format:" .. spec.name
  end
  error("datapath kind " .. tostring(k))
end

-- ---- walking ----

local function walk(v, steps, i, keys, out)
  local step = steps[i]
  if not step then
    out[#out + 1] = {keys = {table.unpack(keys)}, value = v}
    return
  end
  if step.iter then
    if type(v) == "table" and #v > 0 then
      for j = 1, #v do
        keys[#keys + 1] = j
        walk(v[j], steps, i + 1, keys, out)
        keys[#keys] = nil
      end
    else
      out[#out + 1] = {keys = {table.unpack(keys)}, value = nil}
    end
  elseif type(v) ~= "table" then
    out[#out + 1] = {keys = {table.unpack(keys)}, value = nil}
  elseif step.index then
    local x
    if is_array(v) or v[1] ~= nil then x = v[step.index + 1] else x = v[tostring(step.index)] end
    walk(x, steps, i + 1, keys, out)
  else
    walk(v[step.field], steps, i + 1, keys, out)
  end
end

--- Entries {keys, value} of one spec, and its source's key and roots.
--- A filtered source is a source of its own.
local function entries(spec, ctx)
  local list, source = roots(spec, ctx)
  if spec.filter then source = spec.filter .. "|" .. source end
  local out = {}
  for j, root in ipairs(list) do
    walk(root, spec.steps, 1, {j}, out)
  end
  return out, source, list
end

local function keystr(keys, n)
  return concat(keys, ",", 1, n or #keys)
end

local function key_less(a, b)
  for i = 1, math.min(#a, #b) do
    if a[i] ~= b[i] then return a[i] < b[i] end
  end
  return #a < #b
end

--- Align several specs row by row (§4.3).  Returns rows, each
--- {values = {v1..vn}, keys = K, source = key, roots = list}; specs of
--- sources that yield one row are repeated on every row of the others.
local function align(specs, ctx)
  local groups, order = {}, {}
  for i, spec in ipairs(specs) do
    local list, source, rootlist = entries(spec, ctx)
    local g = groups[source]
    if not g then
      g = {source = source, roots = rootlist, members = {}}
      groups[source] = g
      order[#order + 1] = g
    end
    local map = {}
    for _, e in ipairs(list) do
      local ks = keystr(e.keys)
      if map[ks] == nil then map[ks] = {e.value} end
    end
    g.members[#g.members + 1] = {index = i, map = map, list = list}
  end
  -- the rows of each group: its deepest key tuples, in source order
  local multi, single, any = nil, {}, {}
  for _, g in ipairs(order) do
    local seen, tuples = {}, {}
    for _, m in ipairs(g.members) do
      for _, e in ipairs(m.list) do
        local ks = keystr(e.keys)
        if not seen[ks] then
          seen[ks] = true
          tuples[#tuples + 1] = e.keys
        end
      end
    end
    -- a tuple that is a prefix of another is not a row of its own
    for _, t in ipairs(tuples) do
      for n = 1, #t - 1 do
        if seen[keystr(t, n)] then seen[keystr(t, n)] = "prefix" end
      end
    end
    local rows = {}
    for _, t in ipairs(tuples) do
      if seen[keystr(t)] ~= "prefix" then rows[#rows + 1] = t end
    end
    sort(rows, key_less)
    g.rows = rows
    if #rows > 1 then
      if multi and multi ~= g then
        -- conditions compare against any value of a second source
        if not ctx.any_fallback then
          fail(ctx.fname, "datapaths of different sources ('%s' and '%s') cannot be aligned row by row",
               specs[multi.members[1].index].text, specs[g.members[1].index].text)
        end
        any[#any + 1] = g
      else
        multi = g
      end
    else
      single[#single + 1] = g
    end
  end
  local function value(m, t)
    for n = #t, 1, -1 do
      local v = m.map[keystr(t, n)]
      if v then return v[1] end
    end
    return nil
  end
  local main = multi or order[1]
  local out = {}
  if not main then return out end
  -- a source with nothing in it: no rows (rows come from the data)
  for _, g in ipairs(order) do
    if #g.rows == 0 then return out end
  end
  for _, t in ipairs(main.rows) do
    local values = {}
    for _, m in ipairs(main.members) do values[m.index] = value(m, t) end
    for _, g in ipairs(single) do
      if g ~= main then
        for _, m in ipairs(g.members) do values[m.index] = g.rows[1] and value(m, g.rows[1]) end
      end
    end
    for _, g in ipairs(any) do
      for _, m in ipairs(g.members) do
        local all = {}
        for _, r in ipairs(g.rows) do all[#all + 1] = value(m, r) end
        values[m.index] = {__any = all}
      end
    end
    out[#out + 1] = {values = values, keys = t, source = main.source, roots = main.roots}
  end
  -- every source empty but a single-row one: no rows at all (§4.3: rows
  -- come from the data); a source with no roots gives no rows
  return out
end
internal.align = align

-- The context of a data call: what its datapaths read.  Without a
-- container, the run's own.
local function context(fname, kw)
  local ok, st = pcall(internal.state, fname)
  st = ok and st or nil
  local container = kw.container
  if container == nil and st then container = st.container end
  return {
    fname = fname, st = st, container = container, scope = kw.scope,
    action_results = kw.action_results, filter_artifacts = kw.filter_artifacts,
  }
end
internal.data_context = context

-- ---- the API ----

local C2 = {"container", "datapath", "action_results", "scope", "filter_artifacts", "tags", "limit"}

--- collect2{container, datapath = {...}, action_results, scope, filter_artifacts}
--- -> rows, each {v1, ..., vn, n = #datapath}; a missing value is nil.
function phantom.collect2(...)
  local kw = internal.kwargs("phantom.collect2", C2, C2, ...)
  local dps = kw.datapath
  if type(dps) == "string" then dps = {dps} end
  if type(dps) ~= "table" or #dps == 0 then
    fail("phantom.collect2", "argument 'datapath': expected a list of datapaths")
  end
  local specs = {}
  for i, dp in ipairs(dps) do specs[i] = must_parse("phantom.collect2", dp) end
  local ctx = context("phantom.collect2", kw)
  local out = array()
  for _, row in ipairs(align(specs, ctx)) do
    local r = array(row.values)
    r.n = #specs
    out[#out + 1] = r
  end
  return out
end

--- collect(container_or_results, datapath, scope, limit) -> a flat list of
--- the values, missing ones left out.
function phantom.collect(...)
  local kw = internal.kwargs("phantom.collect", {"container", "datapath", "scope", "limit", "none_if_first"},
                             {"container", "datapath", "scope", "limit", "none_if_first", "action_results"}, ...)
  local dp = kw.datapath
  if type(dp) ~= "string" then fail("phantom.collect", "argument 'datapath': expected a datapath string") end
  local spec = must_parse("phantom.collect", dp)
  local c = kw.container
  if type(c) == "table" and (is_array(c) or c[1] ~= nil) and c[1] and c[1].action_results then
    kw.action_results, kw.container = c, nil
  end
  local ctx = context("phantom.collect", kw)
  local limit = kw.limit or 2000
  local out = array()
  for _, e in ipairs((entries(spec, ctx))) do
    if e.value ~= nil and e.value ~= internal.json.null then out[#out + 1] = e.value end
    if #out >= limit then break end
  end
  return out
end

-- CEF fields and their contains types when an artifact's cef_types says nothing.
local CEF_TYPES = {
  sourceAddress = {"ip"}, destinationAddress = {"ip"}, deviceAddress = {"ip"},
  sourceTranslatedAddress = {"ip"}, destinationTranslatedAddress = {"ip"}, deviceTranslatedAddress = {"ip"},
  requestURL = {"url"}, fileHash = {"hash"}, fileHashMd5 = {"hash", "md5"}, fileHashSha1 = {"hash", "sha1"},
  fileHashSha256 = {"hash", "sha256"}, fileName = {"file name"}, filePath = {"file path"},
  sourceHostName = {"host name"}, destinationHostName = {"host name"}, deviceHostname = {"host name"},
  sourceDnsDomain = {"domain"}, destinationDnsDomain = {"domain"}, sourceUserName = {"user name"},
  destinationUserName = {"user name"}, sourceMacAddress = {"mac address"},
  destinationMacAddress = {"mac address"}, sourcePort = {"port"}, destinationPort = {"port"},
}

--- collect_from_contains{container, contains = {"ip", ...}, scope, tags}
--- -> the distinct values of every artifact CEF field of those types.
function phantom.collect_from_contains(...)
  local A = {"container", "action_results", "contains", "scope", "tags"}
  local kw = internal.kwargs("phantom.collect_from_contains", A, A, ...)
  local contains = internal.check("phantom.collect_from_contains", kw, "contains", "list")
  local want = {}
  for _, c in ipairs(contains) do want[c] = true end
  local tags
  if kw.tags then
    tags = {}
    for _, t in ipairs(kw.tags) do tags[t] = true end
  end
  local out, seen = array(), {}
  for _, a in ipairs(artifacts(context("phantom.collect_from_contains", kw))) do
    local tagged = not tags
    for _, t in ipairs(a.tags or {}) do tagged = tagged or tags[t] end
    if tagged and type(a.cef) == "table" then
      local names = {}
      for k in pairs(a.cef) do names[#names + 1] = k end
      sort(names)
      for _, k in ipairs(names) do
        local types = (type(a.cef_types) == "table" and a.cef_types[k]) or CEF_TYPES[k] or {}
        local hit = false
        for _, t in ipairs(types) do hit = hit or want[t] end
        local v = a.cef[k]
        if hit and v ~= nil and not seen[v] then
          seen[v] = true
          out[#out + 1] = v
        end
      end
    end
  end
  return out
end

--- get_action_results{action_run_id | app_run_id | action_name, result_data,
--- flatten} -> app-run dicts of this run (or action results when flatten).
function phantom.get_action_results(...)
  local A = {"action_run_id", "app_run_id", "action_name", "result_data", "flatten"}
  local kw = internal.kwargs("phantom.get_action_results", A, A, ...)
  local st = internal.state("phantom.get_action_results")
  local picked = {}
  if kw.action_run_id then
    for _, r in ipairs(field(st, "action_runs")[kw.action_run_id] or {}) do picked[#picked + 1] = r end
  elseif kw.action_name then
    for _, results in ipairs(field(st, "results")[kw.action_name] or {}) do
      for _, r in ipairs(results) do picked[#picked + 1] = r end
    end
  elseif kw.app_run_id then
    for _, results in pairs(field(st, "action_runs")) do
      for _, r in ipairs(results) do
        if r.app_run_id == kw.app_run_id then picked[#picked + 1] = r end
      end
    end
  else
    fail("phantom.get_action_results", "give action_run_id, app_run_id or action_name")
  end
  local out = array()
  for _, r in ipairs(picked) do
    local copy = internal.copy(r)
    if kw.result_data == false then
      for _, ar in ipairs(copy.action_results or {}) do ar.data = array() end
    end
    if kw.flatten then
      for _, ar in ipairs(copy.action_results or {}) do out[#out + 1] = ar end
    else
      out[#out + 1] = copy
    end
  end
  return out
end

-- for the fuzz harness of the parser (spec/fuzz)
internal.hooks.parse_datapath = parse
