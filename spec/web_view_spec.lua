-- The web view of luasoar serve: a real headless Chromium (spec/web_view.py)
-- signs in, sees a run appear and go on without a reload, opens it, answers
-- its approval from the page and signs out, over data that holds HTML and
-- script; and what the server answers before a session, without one, and to
-- forms that are not its own.
local H = require "spec.helper"
local S = require "spec.serve_helper"
local json = {decode = require("luasoar").json_decode}

local GATE = [[
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  phantom.debug("hello " .. c.name)
  local notes = phantom.collect2{container = c, datapath = {"artifact:*.cef.note"}}
  phantom.debug("note " .. tostring(notes[1] and notes[1][1]))
  phantom.act("wait", {parameters = {{seconds = 0.2}}, assets = {"slow"}, callback = gate, name = "first wait"})
end
function gate(kw)
  phantom.act("wait", {parameters = {{seconds = 0}}, assets = {"slow"}, reviewer = "admin", callback = done,
                       name = "gated wait"})
end
function done(kw) phantom.debug("approved: " .. kw.results[1].status) end
]]

local HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'

local function curl(srv, args)
  local out = S.sh(("curl -s -i %s 'http://127.0.0.1:%d%s'"):format(args.flags or "", srv.port, args.path))
  local status = tonumber(out:match("^HTTP/1%.1 (%d+)"))
  local headers, body = out:match("^(.-)\r\n\r\n(.*)$")
  return status, headers or "", body or ""
end

describe("the web view", function()
  it("in Chromium: signs in, shows a run live, its actions and log, takes an answer, runs nothing it shows", function()
    local srv = S.start({["playbooks/gate.lua"] = GATE})
    finally(function() S.stop(srv) end)
    local out = S.sh(("/usr/bin/python3 %s http://127.0.0.1:%d %s 2>&1"):format(S.q(H.root .. "/spec/web_view.py"), srv.port,
                                                                       S.q(srv.token)))
    local ok, seen = pcall(json.decode, out:match("{.*}") or "")
    assert(ok and type(seen) == "table", out)
    assert.is_nil(seen.failed, out)
    assert.equal(("http://127.0.0.1:%d/"):format(srv.port), seen.signed_out_url)
    assert.equal("That token is not the server's.", seen.wrong_token)
    assert.same({httpOnly = true, sameSite = "Strict", expires = true}, seen.cookie)
    assert.equal("gate", seen.list_playbook)
    assert.equal("waiting", seen.list_status)
    assert.same({"first wait", "gated wait"}, seen.actions)
    assert.same({"hello " .. HOSTILE, "note " .. HOSTILE}, seen.log)
    assert.equal(2, seen.bars)
    assert.equal("success", seen.after_answer)
    assert.same({"hello " .. HOSTILE, "note " .. HOSTILE, "approved: success"}, seen.log_after)
    assert.equal("success", seen.rest_status)
    assert.is_false(seen.pwned)
    assert.is_false(seen.alert)
    assert.same({"1", HOSTILE, "events", "", "new", "1"}, {table.unpack(seen.container_row, 1, 6)})
    assert.is_false(seen.pwned_after)
    -- the browser's console: only the wrong token's 401, nothing the policy blocked
    assert.equal(1, #seen.console_errors, table.concat(seen.console_errors, "\n"))
    assert.matches("/session %- Failed to load resource: the server responded with a status of 401",
                   seen.console_errors[1])
    assert.equal(("http://127.0.0.1:%d/"):format(srv.port), seen.after_signout_url)
  end)

  it("answers the sign-in page to anyone, every other page only to a session, and forms only from its pages", function()
    local srv = S.start({["playbooks/gate.lua"] = GATE})
    finally(function() S.stop(srv) end)
    local status, headers, body = curl(srv, {path = "/"})
    assert.equal(200, status)
    assert.matches('<form method="post" action="/session">.-<input type="password" id="token" name="token"', body)
    assert.matches("Content%-Security%-Policy: default%-src 'none'; script%-src 'self'; style%-src 'self';", headers)
    assert.matches("Content%-Type: text/html; charset=utf%-8", headers)
    for _, path in ipairs({"/runs", "/runs/1", "/playbooks"}) do
      status, headers = curl(srv, {path = path})
      assert.equal(303, status, path)
      assert.matches("Location: /\r\n", headers, 1, false)
    end
    status, headers = curl(srv, {path = "/static/app.js"})
    assert.equal(200, status)
    assert.matches("Content%-Type: text/javascript", headers)
    assert.matches("Cache%-Control: public, max%-age=300", headers)
    status, _, body = curl(srv, {path = "/session", flags = "-d token=wrong"})
    assert.equal(401, status)
    assert.matches("That token is not the server&#39;s.", body, 1, true)
    status, headers = curl(srv, {path = "/session", flags = "-d token=" .. srv.token})
    assert.equal(303, status)
    local cookie = headers:match("Set%-Cookie: (luasoar_session=%x+); Path=/; HttpOnly; SameSite=Strict; Max%-Age=43200")
    assert.truthy(cookie, headers)
    local jar = "-H " .. S.q("Cookie: " .. cookie)
    status, _, body = curl(srv, {path = "/runs", flags = jar})
    assert.equal(200, status)
    local csrf = body:match('name="csrf" value="(%x+)"')
    assert.truthy(csrf)
    -- a form without the page's csrf value is refused, with the cookie or not
    status = curl(srv, {path = "/signout", flags = jar .. " -d csrf=0"})
    assert.equal(403, status)
    status = curl(srv, {path = "/runs/1/again", flags = jar .. " -d x=1"})
    assert.equal(403, status)
    -- a form body is small, and refused on its length before it is read
    status = curl(srv, {path = "/session", flags = "-H 'Content-Length: 70000' --data-binary @/dev/null"})
    assert.equal(413, status)
    local big = srv.dir .. "/big"
    S.sh(("head -c 1048576 /dev/zero | tr '\\0' a > %s"):format(S.q(big)))
    -- one that does not say its length is cut off once past the cap
    status = curl(srv, {path = "/session", flags = "-H 'Transfer-Encoding: chunked' --data-binary @" .. S.q(big)})
    assert.is_nil(status)
    assert.equal(200, (curl(srv, {path = "/"})))
    status, headers = curl(srv, {path = "/runs", flags = "-X DELETE " .. jar})
    assert.equal(405, status)
    assert.matches("Allow: GET", headers)
    assert.equal(404, (curl(srv, {path = "/nothing", flags = jar})))
    -- a page shows the newest 500 containers (or runs), and says so
    local cfg = {}
    for i = 1, 501 do
      cfg[i] = ('url = "http://127.0.0.1:%d/rest/container"\nheader = "ph-auth-token: %s"\ndata = "{\\"name\\": \\"c%d\\", \\"label\\": \\"quiet\\"}"\noutput = "/dev/null"\n')
        :format(srv.port, srv.token, i)
    end
    local cf = assert(io.open(srv.dir .. "/many.cfg", "w"))
    cf:write(table.concat(cfg, "next\n"))
    cf:close()
    S.sh("curl -s -K " .. S.q(srv.dir .. "/many.cfg"))
    status, _, body = curl(srv, {path = "/containers", flags = jar})
    assert.equal(200, status)
    assert.equal(500, S.count(body, "<tr><td><a href=\"/containers/"))
    assert.matches('<tr><td><a href="/containers/501">501</a></td><td><a href="/containers/501">c501</a>', body, 1, true)
    assert.matches("The newest 500 shown: search to see others.", body, 1, true)
    -- the REST routes still want the token, not the cookie
    assert.equal(401, (curl(srv, {path = "/rest/container", flags = jar})))
    -- signed out, the cookie opens nothing
    status, headers = curl(srv, {path = "/signout", flags = jar .. " -d csrf=" .. csrf})
    assert.equal(303, status)
    assert.matches("Set%-Cookie: luasoar_session=; Path=/; HttpOnly; SameSite=Strict; Max%-Age=0", headers)
    assert.equal(303, (curl(srv, {path = "/runs", flags = jar})))
  end)
end)
