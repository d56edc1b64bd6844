-- A real PostgreSQL for the specs: Debian's server, a fresh cluster in a
-- temporary folder (initdb, trust authentication on 127.0.0.1 only), on a
-- free port, started once per spec process and stopped when that process
-- ends (a watcher stops it even if the process dies).  As root the cluster
-- belongs to nobody: PostgreSQL refuses to run as root.
local P = {}
local server

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- the newest installed server's programs
local function bindir()
  local out = sh("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1")
  local dir = out:match("^(%S+)")
  assert(dir, "PostgreSQL is not installed (Debian's postgresql package): install-deps.sh installs it")
  return dir
end

local function free_port()
  return require("spec.serve_helper").free_port()
end

--- The server, started the first time: {port =, dir =, bin =}.
function P.server()
  if server then return server end
  local bin = bindir()
  -- its own folder (the specs' is private to root)
  local dir = sh("mktemp -d /tmp/luasoar-pg.XXXXXX"):match("^(%S+)")
  local root = sh("id -u"):match("^0") ~= nil
  local as = root and "runuser -u nobody -- " or ""
  if root then sh("chown nobody " .. q(dir)) end
  local out, code = sh(("%s%s/initdb -D %s/data -A trust -U luasoar -E UTF8 --no-sync"):format(as, bin, q(dir)))
  assert(code == 0, "initdb failed:\n" .. out)
  local port
  for _ = 1, 5 do -- a port found free may be taken before the server binds it: then another
    port = free_port()
    out, code = sh(("%s%s/pg_ctl -D %s/data -w -l %s/log -o %s start"):format(as, bin, q(dir), q(dir),
      q(("-p %d -k %s -h 127.0.0.1 -c fsync=off -c max_connections=200"):format(port, dir))))
    if code == 0 or not sh("cat " .. q(dir .. "/log")):find("Address already in use", 1, true) then break end
    sh("rm -f " .. q(dir .. "/log"))
  end
  assert(code == 0, "the PostgreSQL server did not start:\n" .. out .. sh("cat " .. q(dir .. "/log")))
  -- stopped when this process ends, however it ends
  sh(("(while kill -0 %d 2>/dev/null; do sleep 0.5; done; %s%s/pg_ctl -D %s/data -m immediate stop; rm -rf %s)"
      .. " >/dev/null 2>&1 &"):format(tonumber((sh("echo $PPID"))), as, bin, q(dir), q(dir)))
  server = {port = port, dir = dir, bin = bin}
  return server
end

--- A fresh, empty database: its URI.
function P.new_db()
  local s = P.server()
  local name = "t" .. math.random(1, 1e9)
  local out, code = sh(("psql -At -h 127.0.0.1 -p %d -U luasoar -d postgres -c %s"):format(s.port,
    q("CREATE DATABASE " .. name)))
  assert(code == 0, "CREATE DATABASE failed:\n" .. out)
  return ("postgresql://luasoar@127.0.0.1:%d/%s"):format(s.port, name)
end

--- A query through psql: rows as sqlite3 prints them (columns joined by |).
function P.sql(uri, query)
  local out = sh(("psql -At -q %s -c %s"):format(q(uri), q(query)))
  return (out:gsub("\n$", ""))
end

local function pg_ctl(args)
  local root = sh("id -u"):match("^0") ~= nil
  return sh(("%s%s/pg_ctl -D %s/data %s"):format(root and "runuser -u nobody -- " or "", server.bin, q(server.dir), args))
end

--- Stop the server (as if the database went away) ...
function P.stop()
  pg_ctl("-m immediate stop")
end

--- ... and start it again, with its databases, on the same port.
function P.start_again()
  local out, code = pg_ctl(("-w -l %s/log -o %s start"):format(q(server.dir),
    q(("-p %d -k %s -h 127.0.0.1 -c fsync=off -c max_connections=200"):format(server.port, server.dir))))
  assert(code == 0, "the PostgreSQL server did not start again:\n" .. out)
end

return P
