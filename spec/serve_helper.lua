-- serve_helper.lua: a `luasoar serve` on loopback for a spec: its own
-- scripts folder, store and port; requests through curl.
local H = require "spec.helper"

local S = {}

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end
S.sh = sh

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
S.q = q

local port_seed = 0
local function free_port()
  port_seed = port_seed + 1
  for _ = 1, 50 do
    -- below Linux's ephemeral ports (32768 and up by default): an outgoing
    -- connection cannot take it between this check and the bind
    local port = 20000 + (os.time() * 7 + port_seed * 131 + math.random(0, 9999)) % 12000
    if sh(("(exec 3<>/dev/tcp/127.0.0.1/%d) 2>/dev/null && echo used"):format(port)) == "" then return port end
  end
  error("no free port")
end

S.free_port = free_port

--- The store's backend of the servers the specs start: SQLite, or with
-- LUASOAR_TEST_DB=postgresql a fresh database of a real PostgreSQL for each
-- (spec/pg_helper.lua).
S.backend = os.getenv("LUASOAR_TEST_DB") == "postgresql" and "postgresql" or "sqlite"

--- Start a server over a fresh folder; files = {["playbooks/x.lua"] = text, ...};
-- extra: more command-line arguments.
function S.start(files, dir, db, extra)
  dir = dir or (H.tmp() .. "/serve" .. math.random(1, 1e9))
  if not db and S.backend == "postgresql" then db = require("spec.pg_helper").new_db() end
  local srv = {dir = dir, db = db or (dir .. "/luasoar.db"), port = free_port()}
  sh("mkdir -p " .. q(dir .. "/scripts/playbooks") .. " " .. q(dir .. "/scripts/apps"))
  sh("cp -r " .. q(H.fixtures .. "/serve/apps") .. "/. " .. q(dir .. "/scripts/apps/") .. " 2>/dev/null")
  sh("cp " .. q(H.fixtures .. "/serve/assets.json") .. " " .. q(dir .. "/scripts/assets.json"))
  for name, text in pairs(files or {}) do S.write(srv, name, text) end
  return S.launch(srv, extra)
end

function S.write(srv, name, text)
  local path = srv.dir .. "/scripts/" .. name
  sh("mkdir -p " .. q(path:match("(.*)/")))
  local f = assert(io.open(path .. ".tmp", "w"))
  f:write(text)
  f:close()
  os.rename(path .. ".tmp", path) -- one event for the watcher, as editors that rename do
end

--- How many times what occurs in text.
local function count(text, what)
  local n, i = 0, 1
  while true do
    local j = text:find(what, i, true)
    if not j then return n end
    n, i = n + 1, j + 1
  end
end

S.count = count

--- A query on srv's store through sqlite3 (waits up to 5 s for its lock),
-- or psql.
function S.sql(srv, query)
  if srv.db:match("^postgres") then return require("spec.pg_helper").sql(srv.db, query) end
  return (sh(("sqlite3 -cmd '.timeout 5000' %s %s"):format(q(srv.db), q(query))):gsub("\n$", ""))
end

--- Where srv keeps its own files (the token ...): beside a SQLite store, in
-- its folder with PostgreSQL (--node-dir).
function S.local_base(srv)
  return srv.db:match("^postgres") and (srv.dir .. "/luasoar") or srv.db
end

--- Start (again) the server of srv; extra: more command-line arguments.
function S.launch(srv, extra)
  srv.log = srv.dir .. "/serve.log"
  -- on PostgreSQL a node of its own name, the same when it starts again
  srv.node = srv.node or ("node" .. math.random(1, 1e9))
  local node = srv.db:match("^postgres") and ("--node-dir " .. q(srv.dir) .. " --node " .. q(srv.node)) or ""
  local up = false
  -- a port found free may be taken before the server binds it (by an
  -- outgoing connection's ephemeral port, the server's own to PostgreSQL
  -- among them): then another port
  for _ = 1, 5 do
    local before = count(S.log_text(srv), "listening on")
    local busy = count(S.log_text(srv), "Address already in use")
    srv.pid = tonumber(sh(("cd %s && %s serve --scripts scripts --db %s %s --listen 127.0.0.1:%d %s 2>>%s >/dev/null & echo $!")
      :format(q(srv.dir), q(H.bin), q(srv.db), node, srv.port, extra or "", q(srv.log))))
    for _ = 1, 200 do
      up = count(S.log_text(srv), "listening on") > before
      if up or count(S.log_text(srv), "Address already in use") > busy then break end
      sh("sleep 0.05")
    end
    if up or count(S.log_text(srv), "Address already in use") == busy then break end
    srv.port = free_port()
  end
  assert(up, "the server did not start:\n" .. S.log_text(srv))
  local f = io.open(S.local_base(srv) .. ".token")
  srv.token = f and f:read("l")
  if f then f:close() end
  return srv
end

function S.log_text(srv)
  local f = io.open(srv.log)
  local t = f and f:read("a") or ""
  if f then f:close() end
  return t
end

function S.logged(srv, text)
  return S.log_text(srv):find(text, 1, true) ~= nil
end

--- request(srv, method, path, body, {token = false | "x"}) -> status, body (decoded when JSON)
function S.request(srv, method, path, body, opts)
  opts = opts or {}
  local token = opts.token
  if token == nil then token = srv.token end
  local args = {"curl -s -o - -w '\\n%{http_code}' -X", method}
  if token then args[#args + 1] = "-H " .. q("ph-auth-token: " .. token) end
  if body then
    local f = assert(io.open(srv.dir .. "/body", "wb"))
    f:write(type(body) == "table" and H.json.encode(body) or body)
    f:close()
    args[#args + 1] = "--data-binary @" .. q(srv.dir .. "/body")
  end
  args[#args + 1] = q(("http://127.0.0.1:%d%s"):format(srv.port, path))
  local out = sh(table.concat(args, " "))
  local text, code = out:match("^(.*)\n(%d+)$")
  local decoded = text and text ~= "" and H.json.decode(text)
  return tonumber(code), decoded or text
end

--- Wait until fn() is true (polls every 50 ms, at most seconds).
function S.wait(fn, seconds)
  local deadline = os.time() + (seconds or 20)
  while os.time() <= deadline do
    local v = fn()
    if v then return v end
    sh("sleep 0.05")
  end
  return nil
end

function S.runs(srv, container)
  local _, r = S.request(srv, "GET", "/rest/playbook_run" .. (container and ("?_filter_container=" .. container) or ""))
  return r.data
end

function S.all_ended(srv, n)
  return S.wait(function()
    local runs = S.runs(srv)
    if n and #runs < n then return nil end
    for _, r in ipairs(runs) do
      if r.status == "running" then return nil end
    end
    return runs
  end)
end

function S.stop(srv, signal)
  sh(("kill -%s %d 2>/dev/null; for i in $(seq 100); do kill -0 %d 2>/dev/null || break; sleep 0.05; done"):format(
    signal or "TERM", srv.pid, srv.pid))
end

--- An attack of spec/serve_attacks.py on srv, beside its good client (from
-- 127.0.0.2, one request every 50 ms, each timed): the tool's JSON result.
-- opts: seconds, n, every (see the tool).
S.attacks = H.root .. "/spec/serve_attacks.py"
local function attack_cmd(srv, kind, opts)
  local args = {"ulimit -n 4096 2>/dev/null; exec python3", q(S.attacks), kind, "--port", srv.port, "--token",
                q(srv.token), "--pid", srv.pid, "--seconds", opts.seconds or 3}
  if opts.n then args[#args + 1] = "-n " .. opts.n end
  if opts.every then args[#args + 1] = "--every " .. opts.every end
  return table.concat(args, " ")
end

local function decode_attack(out)
  local ok, r = pcall(H.json.decode, out or "")
  assert(ok and type(r) == "table", "serve_attacks.py said: " .. tostring(out))
  return r
end

function S.attack(srv, kind, opts)
  return decode_attack(sh(attack_cmd(srv, kind, opts or {}) .. " 2>&1"))
end

--- The good client alone, in the background for seconds while the caller
-- attacks; :wait() gives its result (as S.attack's).
function S.beside(srv, seconds)
  local out = ("%s/beside%d.json"):format(srv.dir, math.random(1, 1e9))
  sh(("(%s) >%s 2>&1 &"):format(attack_cmd(srv, "none", {seconds = seconds}), q(out)))
  sh("sleep 0.1") -- its first request is out
  return {wait = function()
    local text = S.wait(function()
      local f = io.open(out)
      local t = f and f:read("a")
      if f then f:close() end
      return t and t:find("}%s*$") and t
    end, seconds + 30)
    return decode_attack(text)
  end}
end

--- A raw HTTP exchange over bash's /dev/tcp: what the server sent until it
-- closed the connection, or nil if it did not within seconds.
function S.raw(srv, request, seconds)
  local f = assert(io.open(srv.dir .. "/raw", "wb"))
  f:write(request)
  f:close()
  local out = sh(("bash -c %s"):format(q(("exec 3<>/dev/tcp/127.0.0.1/%d; cat %s >&3; timeout %s cat <&3; echo \"<rc $?>\"")
    :format(srv.port, srv.dir .. "/raw", seconds or 5))))
  local text, rc = out:match("^(.*)<rc (%d+)>%s*$")
  if rc ~= "0" then return nil, out end
  return text
end

--- The README's sh block after <!-- marker -->, with each (pattern,
-- replacement) of subs applied, run with bash in dir (a scripts folder
-- holding playbooks/login.lua, active on "events"), the built luasoar
-- first on PATH: its output, ending "<rc N>".
function S.readme_block(marker, subs, dir)
  local text = assert(io.open(H.root .. "/README.md")):read("a")
  local block = assert(text:match("<!%-%- " .. marker .. " %-%->\n```sh\n(.-)```"), "no " .. marker .. " block")
  for _, sub in ipairs(subs) do block = block:gsub(sub[1], sub[2]) end
  sh("mkdir -p " .. q(dir .. "/scripts/playbooks"))
  local f = assert(io.open(dir .. "/scripts/playbooks/login.lua", "w"))
  f:write("playbook_info = {labels = {'events'}, active = true}\nfunction on_start(c) end\n")
  f:close()
  f = assert(io.open(dir .. "/walk.sh", "w"))
  f:write("set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n", block)
  f:close()
  return sh(("cd %s && PATH=%s:$PATH bash walk.sh 2>&1; echo \"<rc $?>\""):format(q(dir), q(H.bin:match("(.*)/"))))
end

--- A playbook of two actions of the slow app on label "events": "wait"
-- (read_only: run again if interrupted) for seconds, then "count" (not
-- idempotent: interrupted, it fails); each callback's result in run data
-- (first, second), then a log line "last callback".
function S.two_acts(seconds)
  return ([[
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  phantom.act("wait", {parameters = {{seconds = %s}}, assets = {"slow"}, callback = first, name = "w1"})
end
function first(kw)
  phantom.save_run_data{key = "first", value = kw.results[1].message}
  phantom.act("count", {parameters = {{n = 1}}, assets = {"slow"}, callback = second, name = "w2"})
end
function second(kw)
  phantom.save_run_data{key = "second", value = kw.results[1].status .. ": " .. kw.results[1].message}
  phantom.debug("last callback")
end
]]):format(seconds)
end

return S
