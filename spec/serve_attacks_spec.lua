-- The server under attack (issue 10, part 7, and the log endpoint of part 5):
-- each attack (from 127.0.0.3) beside a well-behaved client on another address (127.0.0.2)
-- whose requests are answered, each within 100 ms, throughout.  The attacks
-- and the good client are spec/serve_attacks.py (raw sockets, timed).
local H = require "spec.helper"
local S = require "spec.serve_helper"

local TOKEN_REQUIRED = {failed = true, message = "a valid ph-auth-token header is required"}

local function good_throughout(r, what)
  local g = r.good
  print(("%s: good client %d requests, median %.1f ms, max %.1f ms"):format(what, g.n, g.median * 1000, g.max * 1000))
  assert.same({"200"}, g.statuses)
  assert.is_true(g.n >= 10, "the good client made too few requests: " .. g.n)
  assert.is_true(g.max < 0.1, ("a good request took %.0f ms"):format(g.max * 1000))
end

--- curl -i: status, headers (lower-case names), body decoded when JSON.
local function request(srv, method, path, opts)
  opts = opts or {}
  local cmd = ("curl -s -i -X %s %s %s"):format(S.q(method),
    opts.token == false and "" or "-H " .. S.q("ph-auth-token: " .. (opts.token or srv.token)),
    S.q(("http://127.0.0.1:%d%s"):format(srv.port, path)))
  local out = S.sh(cmd)
  local head, body = out:match("^(.-)\r\n\r\n(.*)$")
  local status = tonumber(head:match("^HTTP/1%.%d (%d+)"))
  local headers = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do headers[k:lower()] = v end
  local ok, decoded = pcall(H.json.decode, body)
  return status, headers, ok and decoded or body
end

local function rss_kib(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  local t = f and f:read("a") or ""
  if f then f:close() end
  return tonumber(t:match("VmRSS:%s*(%d+)"))
end

describe("luasoar serve under attack", function()
  local srv
  setup(function() srv = S.start({}, nil, nil, "--header-deadline 2") end)
  teardown(function() S.stop(srv) end)

  it("answers a request without a token on its headers: 401 with a JSON reason, the body never read", function()
    -- headers only, announcing 16 MiB: the answer comes, and the connection
    -- closes, with no byte of the body sent
    local text = assert(S.raw(srv, "POST /rest/container HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" ..
      "Content-Length: 16777216\r\n\r\n", 3))
    assert.truthy(text:match("^HTTP/1%.1 401 "), text)
    assert.truthy(text:lower():find("\r\nconnection: close\r\n", 1, true), text)
    assert.same(TOKEN_REQUIRED, H.json.decode(text:match("\r\n\r\n(.*)$")))
    -- a wrong token likewise, and "Expect: 100-continue" gets no 100
    text = assert(S.raw(srv, "POST /rest/container HTTP/1.1\r\nHost: x\r\nph-auth-token: wrong-token-wrong-token\r\n" ..
      "Expect: 100-continue\r\nContent-Length: 16777216\r\n\r\n", 3))
    assert.truthy(text:match("^HTTP/1%.1 401 "), text)
    -- with the token, a body announced over 16 MiB is refused on the headers too
    text = assert(S.raw(srv, "POST /rest/container HTTP/1.1\r\nHost: x\r\nph-auth-token: " .. srv.token ..
      "\r\nContent-Length: 16777217\r\n\r\n", 3))
    assert.truthy(text:match("^HTTP/1%.1 413 "), text)
    assert.same({failed = true, message = "the request body is larger than 16777216 bytes"},
                H.json.decode(text:match("\r\n\r\n(.*)$")))
  end)

  it("keeps its memory and its answers while 40 clients without a token push 16 MB bodies", function()
    local r = S.attack(srv, "upload", {n = 40, seconds = 3})
    local kib = r.rss_kib
    print(("uploads: RSS %d KiB before, %d KiB peak (%d uploads)"):format(kib.before, kib.peak, #r.uploads))
    assert.equal(40, #r.uploads)
    for _, u in ipairs(r.uploads) do
      assert.equal(401, u.status)
      assert.same(TOKEN_REQUIRED, H.json.decode(u.body))
      assert.is_true(u.sent < 16 * 1024 * 1024, "a whole body went in: the server read it")
    end
    assert.is_true(kib.peak - kib.before < 16 * 1024, ("RSS grew by %d KiB"):format(kib.peak - kib.before))
    good_throughout(r, "uploads")
  end)

  it("closes connections whose headers trickle past the deadline; 1,000 from one address lock out no other", function()
    -- 1,000 connections from 127.0.0.3, a header line every 0.5 s (an idle
    -- timeout would never fire); the server runs with --header-deadline 2
    local r = S.attack(srv, "trickle", {n = 1000, every = 0.5, seconds = 5})
    print(("trickle: %d connected, %d refused at once (per-address cap), longest held %.2f s, %d still open"):format(
      r.connected, r.closed_within_1s, r.held_max, r.still_open))
    assert.equal(1000, r.connected)
    assert.equal(0, r.still_open)
    assert.equal(1000, r.closed)
    assert.is_true(r.closed_within_1s >= 1000 - 32, "the per-address cap let in " .. (1000 - r.closed_within_1s))
    assert.is_true(r.held_max >= 2 and r.held_max < 3.5, ("held for %.2f s"):format(r.held_max))
    assert.is_true(S.logged(srv, "whose request headers took more than 2 s"))
    good_throughout(r, "trickle")
    -- a request that is not trickled still gets its answer
    assert.equal(200, (request(srv, "GET", "/rest/container")))
  end)

  it("lets a request whose headers are in take longer than the deadline for its body", function()
    -- headers at once, then the body 3 s later: the deadline (2 s) is for headers only
    local body = '{"name": "slow body", "label": "x"}'
    local out = S.sh(("bash -c %s"):format(S.q((
      "exec 3<>/dev/tcp/127.0.0.1/%d; printf 'POST /rest/container HTTP/1.1\\r\\nHost: x\\r\\nph-auth-token: %s" ..
      "\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n' >&3; sleep 3; printf '%%s' %s >&3;" ..
      " timeout 5 cat <&3"):format(srv.port, srv.token, #body, S.q(body)))))
    assert.truthy(out:match("^HTTP/1%.1 200 "), out)
    local created = H.json.decode(out:match("\r\n\r\n(.*)$"))
    assert.is_true(created.success)
    local _, _, c = request(srv, "GET", "/rest/container/" .. created.id)
    assert.equal("slow body", c.name)
  end)

  it("matches methods exactly: 405 with Allow and a JSON reason", function()
    local beside = S.beside(srv, 2)
    for _, case in ipairs({
      {"PO", "/rest/container", "GET, POST"}, {"GE", "/rest/container", "GET, POST"},
      {"POSTX", "/rest/container", "GET, POST"}, {"T", "/rest/container", "GET, POST"},
      {"DELETE", "/rest/container", "GET, POST"}, {"POST", "/rest/container/1", "GET"},
      {"GET", "/rest/prompt/1/answer", "POST"}, {"P", "/rest/playbook_run/1/log", "GET"},
    }) do
      local method, path, allow = case[1], case[2], case[3]
      local status, headers, body = request(srv, method, path)
      assert.equal(405, status, method .. " " .. path)
      assert.equal(allow, headers.allow)
      assert.same({failed = true, message = ("method %s not allowed on %s (allowed: %s)"):format(method, path, allow)},
                  body)
    end
    -- the exact methods still work
    assert.equal(200, (request(srv, "GET", "/rest/container")))
    good_throughout(beside.wait(), "methods")
  end)

  it("parses ids and filters strictly: 400 on a sign, a space, trailing text, an overflow", function()
    local code, created = S.request(srv, "POST", "/rest/container", {name = "one", label = "x"})
    assert.equal(200, code)
    local id = created.id
    local beside = S.beside(srv, 2)
    for _, bad in ipairs({"+" .. id, "%20" .. id, id .. "%20", id .. "x", "-" .. id, id .. "%00", "0x1",
                          "99999999999999999999", "9223372036854775808", "", id .. ".0"}) do
      local status, _, body = request(srv, "GET", "/rest/container/" .. bad)
      assert.equal(400, status, bad)
      assert.equal(true, body.failed)
      assert.truthy(body.message:find("malformed id in /rest/container/", 1, true), body.message)
    end
    for _, path in ipairs({"/rest/playbook_run/+1/log", "/rest/artifact/1e3", "/rest/app_run/%2B1"}) do
      assert.equal(400, (request(srv, "GET", path)), path)
    end
    assert.equal(400, (request(srv, "POST", "/rest/prompt/+1/answer")))
    for _, filter in ipairs({"_filter_container=1%20OR%201=1", "_filter_container=1+OR+1=1", "_filter_container=+1",
                             "_filter_container=%201", "_filter_container=1%00", "_filter_container=",
                             "_filter_container=99999999999999999999"}) do
      for _, path in ipairs({"/rest/artifact", "/rest/playbook_run"}) do
        local status, _, body = request(srv, "GET", path .. "?" .. filter)
        assert.equal(400, status, path .. "?" .. filter)
        assert.equal(true, body.failed)
        assert.truthy(body.message:find("query argument '_filter_container': expected a whole number", 1, true))
      end
    end
    local status, _, body = request(srv, "GET", "/rest/action_run?_filter_playbook_run=1%20OR%201=1")
    assert.equal(400, status)
    assert.same({failed = true, message = "query argument '_filter_playbook_run': expected a whole number (digits only),"
                  .. " got '1 OR 1=1'"}, body)
    -- what is well formed still reads
    local ok, _, c1 = request(srv, "GET", "/rest/container/" .. id)
    assert.equal(200, ok)
    assert.equal("one", c1.name)
    assert.equal(200, (request(srv, "GET", "/rest/container/0" .. id)))
    assert.equal(404, (request(srv, "GET", "/rest/container/9223372036854775807")))
    local _, _, arts = request(srv, "GET", "/rest/artifact?_filter_container=" .. id)
    assert.equal(0, arts.count)
    good_throughout(beside.wait(), "ids")
  end)
end)

describe("the run log over REST", function()
  local srv
  local BIG = 80 -- lines of 64 KiB and more: 5 MB of log for one run, over an answer's 4 MiB
  setup(function()
    srv = S.start({})
    S.stop(srv)
    -- two finished runs, written straight into the store: run 1 with BIG
    -- long lines (a quote and a newline in each: JSON escapes them), run 2
    -- with three short ones
    local sql = srv.dir .. "/seed.sql"
    local f = assert(io.open(sql, "w"))
    f:write([[
INSERT INTO playbook_runs(id, container_id, playbook, generation, status, message, scope, start_time, update_time)
  VALUES (1, 1, 'big', 1, 'success', '', 'new', 0, 0), (2, 1, 'small', 1, 'success', '', 'new', 0, 0);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ]] .. BIG .. [[)
INSERT INTO run_log(run_id, level, message, time)
  SELECT 1, 'debug', i || ':"' || char(10) || printf('%.65536c', 'x'), 1700000000 + i FROM n;
INSERT INTO run_log(run_id, level, message, time) VALUES (2, 'debug', 'one', 1700000000),
  (2, 'error', 'two "2"', 1700000001), (2, 'debug', 'three', 1700000002);
]])
    f:close()
    S.sh(("sqlite3 %s < %s"):format(S.q(srv.db), S.q(sql)))
    S.launch(srv)
  end)
  teardown(function() S.stop(srv) end)

  local function line(i) return i .. ':"\n' .. ("x"):rep(65536) end

  local function get_log(query)
    local out = S.sh(("curl -s -w '\\n%%{http_code} %%{size_download}' -H %s %s"):format(
      S.q("ph-auth-token: " .. srv.token), S.q(("http://127.0.0.1:%d/rest/playbook_run/%s"):format(srv.port, query))))
    local body, code, size = out:match("^(.*)\n(%d+) (%d+)$")
    return tonumber(code), H.json.decode(body), tonumber(size)
  end

  it("answers a short log whole, as before, with SOAR's paging fields", function()
    local code, log = get_log("2/log")
    assert.equal(200, code)
    assert.same({count = 3, num_pages = 1, page = 0, page_size = 100}, {count = log.count,
      num_pages = log.num_pages, page = log.page, page_size = log.page_size})
    assert.same({"one", 'two "2"', "three"}, {log.data[1].message, log.data[2].message, log.data[3].message})
    assert.same({"debug", "error", "debug"}, {log.data[1].message_type, log.data[2].message_type,
      log.data[3].message_type})
    assert.equal("2023-11-14T22:13:21.000Z", log.data[2].time)
    assert.is_nil(log.data[1].truncated)
    local _, p1 = get_log("2/log?page=1&page_size=2")
    assert.same({3, 2, 1, 2}, {p1.count, p1.num_pages, p1.page, p1.page_size})
    assert.equal(1, #p1.data)
    assert.equal("three", p1.data[1].message)
  end)

  it("pages a 5 MB log: at most 1,000 lines and about 4 MiB an answer, each line whole on a page of its own", function()
    local beside = S.beside(srv, 3)
    local code, log, size = get_log("1/log")
    assert.equal(200, code)
    assert.same({BIG, 1, 0, 100}, {log.count, log.num_pages, log.page, log.page_size})
    assert.equal(BIG, #log.data)
    assert.is_true(size <= 4.5 * 1024 * 1024, "answered " .. size .. " bytes")
    -- the first lines whole; past the budget, a preview marked truncated
    assert.equal(line(1), log.data[1].message)
    assert.is_nil(log.data[1].truncated)
    local cut = log.data[BIG]
    assert.is_true(cut.truncated)
    assert.equal(#line(BIG), cut.message_bytes)
    assert.equal(line(BIG):sub(1, #cut.message), cut.message)
    assert.is_true(#cut.message < 256)
    -- pages of 30: the last one, a page past the end, and the cap on page_size
    local _, last = get_log("1/log?page=2&page_size=30")
    assert.same({BIG, 3, 2, 30, BIG - 60}, {last.count, last.num_pages, last.page, last.page_size, #last.data})
    assert.equal(line(61), last.data[1].message)
    assert.equal(line(BIG), last.data[BIG - 60].message)
    local _, past = get_log("1/log?page=9")
    assert.same({BIG, 0}, {past.count, #past.data})
    for _, q in ipairs({"page_size=100000", "page_size=0"}) do
      local _, all, bytes = get_log("1/log?" .. q)
      assert.same({1000, 1, BIG}, {all.page_size, all.num_pages, #all.data})
      assert.is_true(bytes <= 4.5 * 1024 * 1024, "answered " .. bytes .. " bytes")
    end
    -- any line, whole, on a page of one
    local _, one = get_log("1/log?page=79&page_size=1")
    assert.same({BIG, BIG, 1}, {one.count, one.num_pages, #one.data})
    assert.equal(line(80), one.data[1].message)
    assert.is_nil(one.data[1].truncated)
    good_throughout(beside.wait(), "log pages")
  end)

  it("refuses malformed paging arguments with 400, and an unknown run with 404", function()
    for _, q in ipairs({"page=-1", "page=%201", "page=1x", "page_size=+5", "page_size=", "page=99999999999999999999"}) do
      local code, body = get_log("1/log?" .. q)
      assert.equal(400, code, q)
      assert.equal(true, body.failed)
    end
    local code, body = get_log("99/log")
    assert.equal(404, code)
    assert.same({failed = true, message = "no playbook run 99"}, body)
    local big, huge = get_log("1/log?page=9223372036854775807&page_size=1000")
    assert.equal(200, big)
    assert.equal(0, #huge.data)
  end)
end)
