-- Published Splunk SOAR connectors, unchanged (/work/shared/corpus/connectors:
-- http and dns), through `luasoar run --json` and `luasoar app test`, against
-- local servers: spec/fixtures/soar/web_server.py on [::1] (the HTTP
-- connector refuses 127.*), and Debian's dnsmasq on port 53 of a loopback
-- address of its own (the DNS connector's dns_server is an address only: no
-- port can be given).  Pending where the corpus or dnsmasq is missing.
local H = require "spec.helper"
local S = require "spec.serve_helper"

local CORPUS = "/work/shared/corpus/connectors"
local function exists(path) return os.execute("test -e " .. S.q(path)) == true end
local have_corpus = exists(CORPUS .. "/http/http.json") and exists(CORPUS .. "/dns/dns.json")

local function abs(path)
  if path:sub(1, 1) == "/" then return path end
  return S.sh("pwd"):gsub("\n$", "") .. "/" .. path
end
local WEB = abs(H.fixtures .. "/soar/web_server.py")

--- a scripts folder with the corpus's connectors copied unchanged, and assets
local function scripts(assets)
  local dir = H.tmp() .. "/real" .. math.random(1, 1e9)
  S.sh(("mkdir -p %s/apps && cp -r %s/http %s/dns %s/apps/"):format(S.q(dir), CORPUS, CORPUS, S.q(dir)))
  local f = assert(io.open(dir .. "/assets.json", "w"))
  f:write(H.json.encode(assets))
  f:close()
  return dir
end

local function run(dir, src)
  local out, err, code = H.cli("run", H.playbook(src), "--container", abs(H.fixtures .. "/soar/container.json"),
                               "--assets", dir .. "/assets.json", "--apps", dir .. "/apps", "--vault", dir .. "/vault",
                               "--json")
  assert(out ~= "", err)
  return H.json.decode(out), code
end

local function last_debug(report)
  return H.json.decode(report.log[#report.log].message)
end

local function start_web()
  local port = S.free_port()
  local pid = tonumber(S.sh(("/usr/bin/python3 %s %d >/dev/null 2>&1 & echo $!"):format(S.q(WEB), port)))
  assert(S.wait(function()
    return S.sh(("curl -sg http://[::1]:%d/status"):format(port)) == "ok"
  end, 10), "the web server did not start")
  return port, pid
end

local function kill(pid)
  if pid then S.sh(("kill %d 2>/dev/null; for i in $(seq 50); do kill -0 %d 2>/dev/null || break; sleep 0.05; done")
                   :format(pid, pid)) end
end

describe("the HTTP connector, unchanged", function()
  if not have_corpus then
    it("needs " .. CORPUS, function() pending("no connector corpus here") end)
    return
  end
  local port, pid, dir
  before_each(function()
    port, pid = start_web()
    dir = scripts({web = {app = "HTTP", id = 7, config = {base_url = ("http://[::1]:%d"):format(port),
                                                          test_path = "/status", auth_token = "tok-3f9a-hidden"}}})
  end)
  after_each(function() kill(pid) end)

  it("gets data and posts data, with the status, body and summary the connector reports", function()
    local report, code = run(dir, [[
      function on_start(c)
        phantom.act("get data", {parameters = {{location = "/status"}}, assets = {"web"}, callback = got})
      end
      function got(kw)
        phantom.debug(kw.results)
        phantom.act("post data", {parameters = {{location = "/echo", body = "hello=world&x=1"}}, assets = {"web"},
                                  callback = posted})
      end
      function posted(kw) phantom.debug(kw.results) end
    ]])
    assert.equal(0, code)
    assert.equal("success", report.status)
    local got
    for _, e in ipairs(report.log) do
      if e.message:sub(1, 2) == "[{" and not got then got = H.json.decode(e.message) end
    end
    local r = got[1]
    assert.equal("HTTP", r.app)
    assert.equal("290b7499-0374-4930-9cdc-5e9b05d65827", r.app_id)
    assert.equal("success", r.status)
    local ar = r.action_results[1]
    assert.equal("success", ar.status)
    assert.equal("Status code: 200, Reason: OK", ar.message)
    assert.same({status_code = 200, reason = "OK"}, ar.summary)
    assert.equal("ok", ar.data[1].response_body)
    assert.equal("GET", ar.data[1].method)
    assert.equal(("http://[::1]:%d/status"):format(port), ar.data[1].location)
    assert.equal("text/plain", ar.data[1].response_headers["Content-Type"])
    local p = last_debug(report)[1].action_results[1]
    assert.equal("success", p.status)
    assert.equal("Status code: 200, Reason: OK", p.message)
    assert.same({status_code = 200, reason = "OK"}, p.summary)
    assert.equal("POST", p.data[1].method)
    assert.same({method = "POST", path = "/echo", body = "hello=world&x=1"}, p.data[1].response_body)
    assert.same({method = "POST", path = "/echo", body = "hello=world&x=1"}, p.data[1].parsed_response_body)
    -- the password config value is nowhere in the output
    assert.is_nil(H.json.encode(report):find("tok-3f9a-hidden", 1, true))
  end)

  it("passes luasoar app test against the server, and fails it (exit 1) once the server is down", function()
    local out, err, code = H.cli("app", "test", "web", "--scripts", dir)
    assert.equal(0, code, out .. err)
    assert.truthy(out:find("^testing asset 'web' %(app 'HTTP', action 'test connectivity'%)\n"), out)
    assert.truthy(out:find("\ntest connectivity passed: [^\n]+\n$"), out)
    kill(pid)
    pid = nil
    out, err, code = H.cli("app", "test", "web", "--scripts", dir)
    assert.equal(1, code, out .. err)
    assert.truthy(out:find("\ntest connectivity failed: [^\n]+\n"), out)
  end)
end)

describe("the DNS connector, unchanged", function()
  if not have_corpus then
    it("needs " .. CORPUS, function() pending("no connector corpus here") end)
    return
  end
  local addr, pid, dir
  setup(function()
    if not exists("/usr/sbin/dnsmasq") then return end
    -- port 53 of a loopback address no one else uses (all of 127/8 reaches lo)
    for _ = 1, 10 do
      addr = ("127.%d.%d.%d"):format(math.random(10, 250), math.random(0, 250), math.random(2, 250))
      local log = H.tmp() .. "/dnsmasq.log"
      pid = tonumber(S.sh(("/usr/sbin/dnsmasq --no-daemon --port=53 --listen-address=%s --bind-interfaces " ..
        "--no-resolv --no-hosts --address=/example.test/10.1.2.3 --ptr-record=3.2.1.10.in-addr.arpa,host.example.test " ..
        "--pid-file= --conf-file=/dev/null >%s 2>&1 & echo $!"):format(addr, S.q(log))))
      if S.wait(function() return S.sh("cat " .. S.q(log)):find("started", 1, true) end, 5) then
        S.sh("sleep 0.2")
        if os.execute(("kill -0 %d 2>/dev/null"):format(pid)) == true then break end
      end
      kill(pid)
      pid = nil
    end
    dir = scripts({resolver = {app = "DNS", id = 8, config = {dns_server = addr, host_name = "www.example.test"}}})
  end)
  teardown(function() kill(pid) end)

  it("looks up a domain and an address on the asset's DNS server", function()
    if not pid then return pending("dnsmasq cannot run here") end
    local report, code = run(dir, [[
      function on_start(c)
        phantom.act("lookup domain", {parameters = {{domain = "www.example.test"}, {domain = "10.1.2.3"}},
                                      assets = {"resolver"}, callback = cb})
        phantom.act("lookup ip", {parameters = {{ip = "10.1.2.3"}}, assets = {"resolver"}, callback = cb})
      end
      function cb(kw) phantom.debug(kw.results[1]) end
    ]])
    assert.equal(0, code)
    local by = {}
    for _, e in ipairs(report.log) do
      if e.message:sub(1, 1) == "{" then
        local r = H.json.decode(e.message)
        by[r.action] = r
      end
    end
    local fwd = by["lookup domain"]
    assert.equal("DNS", fwd.app)
    assert.equal("876ab991-313e-48e7-bccd-e8c9650c239c", fwd.app_id)
    local a1, a2 = fwd.action_results[1], fwd.action_results[2]
    assert.equal("success", a1.status)
    assert.same({{record_infos = {"10.1.2.3"}, record_info_objects = {{record_info = "10.1.2.3"}}}}, a1.data)
    assert.same({total_record_infos = 1, cannonical_name = "www.example.test.", record_info = "10.1.2.3"}, a1.summary)
    assert.equal("failed", a2.status)
    assert.equal("Target is not a hostname", a2.message)
    assert.same({total_objects = 2, total_objects_successful = 1}, fwd.summary)
    local rev = by["lookup ip"].action_results[1]
    assert.equal("success", rev.status)
    assert.same({"host.example.test."}, rev.data)
    assert.same({ip = "10.1.2.3", hostname = "host.example.test.", cannonical_name = "3.2.1.10.in-addr.arpa."},
                rev.summary)
  end)

  it("passes luasoar app test against the server", function()
    if not pid then return pending("dnsmasq cannot run here") end
    local out, err, code = H.cli("app", "test", "resolver", "--scripts", dir)
    assert.equal(0, code, out .. err)
    assert.truthy(out:find("DNS progress: Found a record for www.example.test as 10.1.2.3...\n", 1, true), out)
    assert.truthy(out:find("\ntest connectivity passed: Connectivity to dns server was successful.\n$"), out)
  end)
end)
