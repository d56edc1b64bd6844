-- The luasoar command line: the contract of DESIGN.md (forms, --json, exit
-- status 0 / 1 / 2) and a clear one-line error for every bad input.
local H = require "spec.helper"
local json = H.json

local EXAMPLE = H.root .. "/scripts/playbooks/geolocate_example.lua"
local CONTAINER = H.root .. "/scripts/data/example_container.json"
local FIX_APPS = H.fixtures .. "/apps"
local FIX_ASSETS = H.fixtures .. "/assets.json"

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

describe("luasoar run", function()
  it("runs the example playbook with the real GeoIP database", function()
    local out, err, code = H.cli("run", EXAMPLE, "--container", CONTAINER)
    assert.equal("", err)
    assert.equal(0, code)
    assert.same({
      "geolocating the IP addresses of container 101",
      "[act] geolocate_ip_1 (geolocate ip) on geoip: 5 parameter sets",
      "[act] geolocate_ip_1: 3 of 5 succeeded",
      "[act]   geoip, parameter set 2: Private IP",
      "[act]   geoip, parameter set 3: Private IP",
      "8.8.8.8: United States",
      "10.1.1.1: no country (Private IP)",
      "192.168.1.5: no country (Private IP)",
      "81.2.69.160: United Kingdom",
      "1.1.1.1: Australia",
      "countries: Australia, United Kingdom, United States",
      "finished: 1 action run(s)",
      "[container] 101: severity medium, status new, no tags, 0 notes, 4 artifacts",
      "run 1 on container 101: success",
    }, lines(out))
  end)

  it("prints one JSON report with --json", function()
    local out, err, code = H.cli("run", EXAMPLE, "--container", CONTAINER, "--json")
    assert.equal(0, code)
    assert.equal("", err)
    local r = assert(json.decode(out))
    local keys = {}
    for k in pairs(r) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same({"container", "container_id", "error", "log", "playbook", "run_id", "status", "summary"}, keys)
    assert.equal("success", r.status)
    assert.equal(1, r.run_id)
    assert.equal(101, r.container_id)
    assert.equal(EXAMPLE, r.playbook)
    assert.equal(H.luasoar.null, r.error)
    assert.equal(8, #r.log)
    assert.same({level = "debug", message = "8.8.8.8: United States", time = r.log[2].time}, r.log[2])
    -- times as REST and `luasoar runs --json` give them: ISO 8601 UTC with milliseconds
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", r.log[2].time)
    assert.equal(1, #r.summary.result)
    assert.equal("geolocate_ip_1", r.summary.result[1].name)
    assert.same({total_objects = 5, total_objects_successful = 3}, r.summary.result[1].app_runs[1].summary)
  end)

  it("exits 1 when the run fails, with the reason in the report", function()
    local pb = H.playbook("function on_start(c)\n  phantom.debug('x')\n  error('broken')\nend\n")
    local out, _, code = H.cli("run", pb, "--container", CONTAINER, "--apps", FIX_APPS, "--assets", FIX_ASSETS, "--json")
    assert.equal(1, code)
    local r = json.decode(out)
    assert.equal("failed", r.status)
    assert.equal(pb .. ":3: broken", r.error)
    assert.same({level = "debug", message = "x", time = r.log[1].time}, r.log[1])
    assert.equal("error", r.log[2].level)
    assert.matches("^" .. pb:gsub("%p", "%%%0") .. ":3: broken\nstack traceback:", r.log[2].message)
    out, _, code = H.cli("run", pb, "--container", CONTAINER, "--apps", FIX_APPS, "--assets", FIX_ASSETS)
    assert.equal(1, code)
    assert.equal("run 1 on container 101: failed: " .. pb .. ":3: broken", lines(out)[#lines(out)])
  end)

  describe("with unusable input exits 2 with one line naming the file and the problem", function()
    local ok_pb = H.playbook("function on_start(c) end\n", "ok")
    local cases = {
      {"a missing container file", {"run", ok_pb, "--container", "/nonexistent/c.json"},
       "luasoar run: /nonexistent/c.json: cannot open: No such file or directory"},
      {"a container that is not JSON", {"run", ok_pb, "--container", H.write("bad.json", '{\n  "id": 1,\n  "x": [1,\n}\n')},
       "luasoar run: " .. H.tmp() .. "/bad.json: invalid JSON at line 4, column 1: unallowed token at this point in JSON text"},
      {"an empty container file", {"run", ok_pb, "--container", H.write("empty.json", "")},
       "luasoar run: " .. H.tmp() .. "/empty.json: invalid JSON at line 1, column 1: empty document"},
      {"a container that is not an object", {"run", ok_pb, "--container", H.write("list.json", "[1, 2]")},
       "luasoar run: " .. H.tmp() .. "/list.json: a container must be a JSON object"},
      {"a container id that is not an integer", {"run", ok_pb, "--container", H.write("id.json", '{"id": "7"}')},
       "luasoar run: " .. H.tmp() .. "/id.json: field 'id': expected an integer, got string"},
      {"artifacts that are not a list", {"run", ok_pb, "--container", H.write("arts.json", '{"id": 1, "artifacts": {"a": 1}}')},
       "luasoar run: " .. H.tmp() .. "/arts.json: field 'artifacts': expected a list"},
      {"an artifact that is not an object", {"run", ok_pb, "--container", H.write("art.json", '{"id": 1, "artifacts": [{}, 5]}')},
       "luasoar run: " .. H.tmp() .. "/art.json: artifacts[2]: expected an object"},
      {"a playbook that does not compile", {"run", H.playbook("function on_start(c)\n  if x then\nend\n", "syntax"), "--container", CONTAINER},
       "luasoar run: " .. H.tmp() .. "/syntax.lua:4: 'end' expected (to close 'function' at line 1) near <eof>"},
      {"a missing playbook", {"run", "/nonexistent/pb.lua", "--container", CONTAINER},
       "luasoar run: /nonexistent/pb.lua: cannot open: No such file or directory"},
      {"an assets file naming an unknown app", {"run", ok_pb, "--container", CONTAINER, "--apps", FIX_APPS,
        "--assets", H.write("assets_bad.json", '{"x": {"app": "NoSuchApp"}}')},
       "luasoar run: " .. H.tmp() .. "/assets_bad.json: asset 'x': unknown app 'NoSuchApp'"},
      {"a missing assets file", {"run", ok_pb, "--container", CONTAINER, "--assets", "/nonexistent/a.json"},
       "luasoar run: /nonexistent/a.json: cannot open: No such file or directory"},
      {"an apps folder that is not one", {"run", ok_pb, "--container", CONTAINER, "--apps", "/nonexistent/apps"},
       "luasoar run: /nonexistent/apps: not a folder of apps"},
      {"an unknown option", {"run", ok_pb, "--container", CONTAINER, "--jsn"},
       "luasoar run: unknown option '--jsn' (see 'luasoar run --help')"},
      {"no --container", {"run", ok_pb},
       "luasoar run: --container FILE is required (see 'luasoar run --help')"},
      {"an option without its value", {"run", ok_pb, "--container"},
       "luasoar run: option '--container' needs a value (see 'luasoar run --help')"},
      {"no playbook", {"run", "--container", CONTAINER},
       "luasoar run: no playbook given (see 'luasoar run --help')"},
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        local out, err, code = H.cli(table.unpack(case[2]))
        assert.equal(2, code)
        assert.equal("", out)
        assert.equal(case[3] .. "\n", err)
      end)
    end

    it("an app manifest with a bad field", function()
      local dir = H.tmp() .. "/badapps/x"
      os.execute("mkdir -p " .. dir)
      local f = io.open(dir .. "/app.json", "w")
      f:write('{"name": "X", "runner": "python", "actions": {}}')
      f:close()
      local _, err, code = H.cli("run", ok_pb, "--container", CONTAINER, "--apps", H.tmp() .. "/badapps")
      assert.equal(2, code)
      assert.equal("luasoar run: " .. dir .. "/app.json: field 'runner': expected \"lua\", \"exec\" or \"soar\"\n", err)
    end)
  end)

  it("takes engine limits with --limit", function()
    local pb = H.playbook("function on_start(c)\n  while true do end\nend\n", "spin")
    local out, _, code = H.cli("run", pb, "--container", CONTAINER, "--limit", "instructions_per_callback=2000000")
    assert.equal(1, code)
    assert.equal("run 1 on container 101: failed: " .. pb .. ":2: instruction limit exceeded (2000000 instructions per callback)",
                 lines(out)[#lines(out)])
    local _, err
    _, err, code = H.cli("run", pb, "--container", CONTAINER, "--limit", "bogus=1")
    assert.equal(2, code)
    assert.matches("^luasoar run: %-%-limit bogus: unknown limit", err)
  end)

  it("describes every flag in --help", function()
    local out, _, code = H.cli("run", "--help")
    assert.equal(0, code)
    for _, flag in ipairs({"--container", "--assets", "--apps", "--answers", "--limit", "--json", "--quiet", "--help"}) do
      assert.truthy(out:find(flag, 1, true), flag)
    end
    out, _, code = H.cli("--help")
    assert.equal(0, code)
    assert.truthy(out:find("run PLAYBOOK.lua --container FILE", 1, true))
    local _, err
    _, err, code = H.cli("fly")
    assert.equal(2, code)
    assert.equal("luasoar: unknown command 'fly'", lines(err)[1])
  end)
end)

describe("luasoar check", function()
  it("exits 0 when every playbook compiles and 1 with file:line otherwise", function()
    local good = H.playbook("function on_start(c) end\n", "good")
    local bad = H.playbook("function on_start(c)\n  x = = 1\nend\n", "bad")
    local out, _, code = H.cli("check", good)
    assert.equal(0, code)
    assert.equal("", out)
    out, _, code = H.cli("check", good, bad)
    assert.equal(1, code)
    assert.equal(bad .. ":2: unexpected symbol near '='\n", out)
  end)

  it("lints: undefined globals, callbacks naming no function, unknown actions, malformed datapaths", function()
    local pb = H.playbook([[
local helper = 1
function on_start(container)
  local rows = phantom.collect2{container = container, datapath = {"artifact:cef.sourceAddress", "artifact:*.id"}}
  for i, row in ipairs(rows) do phantom.debug(row[1] .. helper) end
  phantom.act("geolocate ip", {parameters = {}, callback = geolocate_cb, name = "g"})
  phantom.act("teleport", {parameters = {}, callback = missing_cb})
  phantom.act{action = "warp drive", parameters = {}}
  phantom.debug(undefined_thing)
  local t = {key = 1, other = helper}
  counter = (rawget(_ENV, "counter") or 0) + 1
end
function geolocate_cb(kw) phantom.debug(kw.results) end
]], "lint")
    local out, _, code = H.cli("check", "--apps", H.root .. "/scripts/apps", pb)
    assert.equal(1, code)
    assert.same({
      pb .. ":3: malformed datapath 'artifact:cef.sourceAddress' at 'cef.sourceAddress': artifact is a list: the path after it starts with '*' (artifact:*.cef.field)",
      pb .. ":6: phantom.act: no app in the apps folder provides action 'teleport'",
      pb .. ":6: callback 'missing_cb' names no function",
      pb .. ":7: phantom.act: no app in the apps folder provides action 'warp drive'",
      pb .. ":8: undefined global 'undefined_thing' (nothing in the playbook defines it)",
    }, lines(out))
  end)

  it("finds nothing in the shipped playbooks", function()
    local out, _, code = H.cli("check", H.root .. "/scripts/playbooks/geolocate_example.lua",
                               H.root .. "/scripts/playbooks/advanced_tutorial.lua")
    assert.equal("", out)
    assert.equal(0, code)
  end)
end)

describe("luasoar run with prompts", function()
  local PB = H.root .. "/scripts/playbooks/advanced_tutorial.lua"
  it("takes answers from --answers", function()
    local out, err, code = H.cli("run", PB, "--container", CONTAINER, "--answers", H.root .. "/scripts/data/advanced_answers.json")
    assert.equal(0, code, err)
    assert.same({"Addresses outside the allowed countries:", "- 1.1.1.1 (Australia)", "severity raised: Australia: 1.1.1.1",
                 "finished: 2 action runs, severity high", "run 1 on container 101: success"},
                lines(H.cli("run", PB, "--container", CONTAINER, "--quiet", "--answers",
                            H.root .. "/scripts/data/advanced_answers.json")))
    assert.same({
      "[act] geolocate_ip_1 (geolocate ip) on geoip: 4 parameter sets",
      "[act] classify_ip_1 (classify ip) on ipinfo: 4 parameter sets",
      "[act] classify_ip_1: 4 of 4 succeeded",
      "[act] geolocate_ip_1: 3 of 4 succeeded",
      "[act]   geoip, parameter set 2: Private IP",
      "Addresses outside the allowed countries:",
      "- 1.1.1.1 (Australia)",
      '[prompt] prompt_1 asked of admin: "Raise the severity of container 101? Addresses outside the allowed countries:\\n- 1.1.1.1 (Australia)"',
      '[prompt] prompt_1 answered: ["Yes","logins from outside the allowed countries"]',
      "severity raised: Australia: 1.1.1.1",
      "finished: 2 action runs, severity high",
      "[container] 101: severity high, status new, no tags, 1 note, 4 artifacts",
      "run 1 on container 101: success"}, lines(out))
  end)

  it("times a prompt out at once with no answer and no terminal", function()
    local out, _, code = H.cli("run", PB, "--container", CONTAINER)
    assert.equal(0, code)
    assert.truthy(out:find("not raised: no answer", 1, true))
    assert.truthy(out:find("\n[prompt] prompt_1: no answer, it times out\n", 1, true), out)
  end)

  it("rejects an answers file that is not an object", function()
    local _, err, code = H.cli("run", PB, "--container", CONTAINER, "--answers", H.write("answers.json", "[1]"))
    assert.equal(2, code)
    assert.equal("luasoar run: " .. H.tmp() .. "/answers.json: expected a JSON object of prompt names\n", err)
  end)
end)

describe("luasoar run tells the story", function()
  -- a scripts folder of its own: an exec app that misbehaves, a Lua app that
  -- returns a bad status, a child playbook
  local dir = H.tmp() .. "/story"
  local function put(name, text)
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write(text)
    f:close()
  end
  setup(function()
    os.execute(("mkdir -p %s/playbooks %s/apps/checker && cp -r %s/misbehave %s/apps/"):format(dir, dir, FIX_APPS, dir))
    put("apps/checker/app.json", '{"name": "Checker", "app_id": 90, "runner": "lua", "main": "app.lua",'
        .. ' "actions": {"check": {"parameters": {"value": {"required": true}}}}}')
    put("apps/checker/app.lua", [[
return {check = function(param)
  if param.value == "bad" then return {status = "ok", message = "fine, really"} end
  if param.value == "odd" then return {status = "success", message = 42} end
  return {status = "success", message = "checked " .. param.value}
end}
]])
    put("assets.json", '{"misbehave": {"app": "Misbehave", "id": 11, "config": {}},'
        .. ' "checker": {"app": "Checker", "id": 12, "config": {}}}')
    put("playbooks/child.lua", 'function on_start(c) phantom.debug("child here") end\n')
    put("playbooks/story.lua", [[
function on_start(c)
  phantom.set_severity(c, "high")
  phantom.set_status(c, "open")
  phantom.add_tags(c, {"checked", "story"})
  phantom.add_note{container = c, title = "seen", content = "by the story spec"}
  phantom.act("echo", {parameters = {{value = "a"}}, assets = {"misbehave"}, name = "echo_1", callback = after_echo})
end
function after_echo(kw)
  phantom.debug("echo: " .. tostring(kw.success))
  phantom.act("exit nonzero", {parameters = {{}}, assets = {"misbehave"}, name = "exit_1", callback = after_exit})
end
function after_exit(kw)
  phantom.act("garbage", {parameters = {{}}, assets = {"misbehave"}, name = "garbage_1", callback = after_garbage})
end
function after_garbage(kw)
  phantom.act("check", {parameters = {{value = "good"}, {value = "bad"}, {value = "odd"}, {}}, assets = {"checker"},
                        name = "check_1", callback = after_check})
end
function after_check(kw)
  phantom.debug(kw.results[1].action_results[2].message)
  phantom.prompt2{container = kw.container, user = "admin", message = "Go on?", name = "ask_1",
                  response_types = {{prompt = "go", options = {type = "list", choices = {"Yes", "No"}}}},
                  callback = after_prompt}
end
function after_prompt(kw)
  phantom.playbook{playbook = "child", container = kw.container, name = "child_1", callback = after_child}
end
function after_child(kw) phantom.debug("child: " .. tostring(kw.success)) end
]])
    put("answers.json", '{"ask_1": ["Yes"]}')
    put("c.json", '{"id": 7, "label": "events", "severity": "low", "status": "new", "custom_fields": {"owner": "soc"},'
        .. ' "artifacts": [{"id": 1, "cef": {"sourceAddress": "1.1.1.1"}}]}')
  end)

  local function run(...)
    return H.cli("run", dir .. "/playbooks/story.lua", "--container", dir .. "/c.json", "--answers", dir .. "/answers.json", ...)
  end

  it("says when each action starts and ends, what failed and why, prompts, child runs and the container at the end", function()
    local out, err, code = run()
    assert.equal(0, code, err)
    assert.same({
      "[act] echo_1 (echo) on misbehave: 1 parameter set",
      "[act] echo_1: 1 of 1 succeeded",
      "echo: true",
      "[act] exit_1 (exit nonzero) on misbehave: 1 parameter set",
      "[act] exit_1: 0 of 1 succeeded",
      "[act]   misbehave: exited with status 3; stderr: first line database is locked",
      "[act] garbage_1 (garbage) on misbehave: 1 parameter set",
      "[act] garbage_1: 0 of 1 succeeded",
      "[act]   misbehave: app output is not JSON (line 1, column 1: invalid string in json text): "
        .. "'this is not json at all.'",
      "[act] check_1 (check) on checker: 4 parameter sets",
      "[act] check_1: 1 of 4 succeeded",
      '[act]   checker, parameter set 2: the app returned status "ok", expected "success" or "failed"',
      "[act]   checker, parameter set 3: the app returned a number 'message', expected a string",
      "[act]   checker, parameter set 4: missing required parameter 'value'",
      'the app returned status "ok", expected "success" or "failed"',
      '[prompt] ask_1 asked of admin: "Go on?"',
      '[prompt] ask_1 answered: ["Yes"]',
      "[child] run 2: " .. dir .. "/playbooks/child.lua, started by run 1",
      "child here",
      "[child] run 2: success",
      "child: true",
      "[container] 7: severity high, status open, tags [checked, story], 1 note, 1 artifact",
      "run 1 on container 7: success",
    }, lines(out))
  end)

  it("says who is asked to approve an action and what they answered", function()
    local pb = H.playbook([[
function on_start(c)
  phantom.act("block ip", {parameters = {{ip = "1.2.3.4"}}, assets = {"pan"}, name = "block_1", reviewer = "boss", callback = cb})
  phantom.act("block ip", {parameters = {{ip = "1.2.3.5"}}, assets = {"pan"}, name = "block_2", reviewer = "boss", callback = cb})
end
function cb(kw) phantom.debug(kw.action.name .. " " .. tostring(kw.success)) end
]], "approvals")
    local out, err, code = H.cli("run", pb, "--container", H.fixtures .. "/container_101.json", "--apps", FIX_APPS,
                                 "--assets", FIX_ASSETS, "--answers", H.write("approve.json", '{"block_1": "approve"}'))
    assert.equal(0, code, err)
    assert.same({
      "[act] block_1 (block ip) on pan: 1 parameter set, waiting for approval by boss",
      "[approval] block_1 (block ip) asked of boss",
      '[approval] block_1 answered: "approve"',
      "[act] block_2 (block ip) on pan: 1 parameter set, waiting for approval by boss",
      "[approval] block_2 (block ip) asked of boss",
      "[approval] block_2: no answer, it times out",
      "[act] block_1: 1 of 1 succeeded",
      "block_1 true",
      "[act] block_2: 0 of 1 succeeded",
      "[act]   pan: no approval from boss in time",
      "block_2 false",
      "[container] 101: severity medium, status new, no tags, 0 notes, 3 artifacts",
      "run 1 on container 101: success",
    }, lines(out))
  end)

  it("--quiet keeps the playbook's own lines and the last line", function()
    local out, err, code = run("--quiet")
    assert.equal(0, code, err)
    assert.same({
      "echo: true",
      'the app returned status "ok", expected "success" or "failed"',
      "child here",
      "child: true",
      "run 1 on container 7: success",
    }, lines(out))
  end)

  it("--json carries the container as the run left it", function()
    local out, err, code = run("--json")
    assert.equal(0, code, err)
    local c = json.decode(out).container
    assert.equal(7, c.id)
    assert.equal("high", c.severity)
    assert.equal("open", c.status)
    assert.same({"checked", "story"}, c.tags)
    assert.same({{id = 1, title = "seen", content = "by the story spec", note_type = "general", note_format = "markdown"}},
                c.notes)
    assert.same({owner = "soc"}, c.custom_fields)
    assert.equal(1, #c.artifacts)
    assert.equal("1.1.1.1", c.artifacts[1].cef.sourceAddress)
  end)
end)
