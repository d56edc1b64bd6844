-- Exec apps that leave processes behind, under `luasoar serve` (issue 10,
-- part 8): serve is a child subreaper too.  Each app run ends within its
-- limits, every daemon dies, no zombie is left, a well-behaved run beside
-- them succeeds, and a client's REST requests are answered within 100 ms
-- throughout.  (Named *serve_spec: left out of the ASan run with the other
-- server specs.)
local H = require "spec.helper"
local S = require "spec.serve_helper"

local function leftovers(pattern)
  return (S.sh("env -u LD_PRELOAD pgrep -f '" .. pattern .. "'"):gsub("\n$", ""))
end

-- the luasoar process (srv.pid may be the shell that started it)
local function serve_pid(srv)
  local exe = S.sh("readlink /proc/" .. srv.pid .. "/exe"):gsub("\n", "")
  if exe:match("luasoar$") then return srv.pid end
  return tonumber(S.sh("env -u LD_PRELOAD pgrep -P " .. srv.pid):match("%d+"))
end

local function children(pid)
  return (S.sh("cat /proc/" .. pid .. "/task/*/children 2>/dev/null"):gsub("%s+$", ""))
end

describe("luasoar serve with exec apps that leave processes behind", function()
  it("ends each app run within its limits, kills every daemon, reaps every child, and answers REST throughout",
     function()
    local srv = S.start({
      ["playbooks/daemons.lua"] = [[
        playbook_info = {labels = {"daemons"}, active = true}
        function on_start(c)
          for _, a in ipairs{"daemon", "quiet daemon", "daemon hang", "orphan in group"} do
            phantom.act(a, {parameters = {{}}, assets = {"misbehave"}, callback = cb})
          end
        end
        function cb(kw)
          local r = kw.results[1]
          phantom.debug(("%s|%s|%s"):format(r.action, tostring(kw.success), r.message))
        end
      ]],
      ["playbooks/good.lua"] = [[
        playbook_info = {labels = {"good"}, active = true}
        function on_start(c)
          phantom.act("echo", {parameters = {{value = 1}}, assets = {"misbehave"}, callback = cb})
        end
        function cb(kw) phantom.debug("echo|" .. tostring(kw.success)) end
      ]],
    })
    finally(function() S.stop(srv) end)
    -- the Misbehave app of the exec specs, beside serve's own fixture app
    S.sh("cp -r " .. S.q(H.fixtures .. "/apps/misbehave") .. " " .. S.q(srv.dir .. "/scripts/apps/"))
    S.write(srv, "assets.json", '{"slow": {"app": "Slow", "id": 1}, "misbehave": {"app": "Misbehave", "id": 2}}')
    S.stop(srv)
    S.launch(srv)
    local pid = serve_pid(srv)
    assert.truthy(pid)

    local code, r = S.request(srv, "POST", "/rest/container", {name = "attack", label = "daemons"})
    assert.equal(200, code)
    local attack = r.id
    code, r = S.request(srv, "POST", "/rest/container", {name = "good", label = "good"})
    assert.equal(200, code)
    local good = r.id
    -- a client's requests while the apps run and are cleaned up after
    local slowest = 0
    local runs
    for _ = 1, 100 do
      local t = tonumber(S.sh(("curl -s -o /dev/null -w '%%{time_total}' -H 'ph-auth-token: %s'"
                               .. " http://127.0.0.1:%d/rest/playbook_run"):format(srv.token, srv.port)))
      slowest = math.max(slowest, t)
      runs = S.runs(srv)
      local ended = #runs == 2
      for _, run in ipairs(runs) do ended = ended and run.status ~= "running" end
      if ended then break end
      S.sh("sleep 0.05")
    end
    local by = {}
    for _, run in ipairs(runs) do by[run.container] = run end
    assert.equal("success", by[attack].status)
    assert.equal("success", by[good].status)
    local function log(run)
      local lines = {}
      for l in S.sh(("sqlite3 %s 'SELECT message FROM run_log WHERE run_id = %d'"):format(S.q(srv.db), run.id))
                  :gmatch("[^\n]+") do lines[#lines + 1] = l end
      table.sort(lines)
      return lines
    end
    assert.same({"daemon hang|false|timed out after 0.5s", "daemon|true|daemon started",
                 "orphan in group|true|orphaned", "quiet daemon|true|quiet"}, log(by[attack]))
    assert.same({"echo|true"}, log(by[good]))
    assert.is_true(slowest < 0.1, ("a REST request took %.3f s"):format(slowest))
    -- no daemon left, and no child of the server left, not even a zombie
    assert.equal("", leftovers("slee[p] 41[6-9]"))
    assert.truthy(S.wait(function() return children(pid) == "" end, 5), "children left: " .. children(pid))
  end)
end)
