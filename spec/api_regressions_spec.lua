-- Cases found in review, each a regression test.
local H = require "spec.helper"
local lt = require "luasoar.testing"
local json = H.json

local function run(src, setup, container)
  -- the fixture's apps run for real
  local eng = lt.engine{scripts = H.fixtures, apps = H.fixtures .. "/apps", assets = H.fixtures .. "/assets.json",
                        real = true}
  if setup then setup(eng) end
  local r = eng:run(H.playbook(src), container or H.container())
  eng:close()
  local out = {}
  for i, m in ipairs(r:messages("debug")) do
    local v = json.decode(m)
    if v == nil then v = m end
    out[i] = v
  end
  return r, out
end

describe("regressions", function()
  it("API calls with no arguments at all", function()
    local r, out = run([[
      function on_start(c)
        phantom.debug(phantom.completed())
        phantom.debug(phantom.get_container().id)
      end
    ]])
    assert.equal(H.luasoar.null, r.error)
    assert.same({true, 101}, out)
  end)

  it("false is a value in conditions, not a missing one", function()
    local c = H.container()
    c.artifacts[1].cef.flag = false
    c.artifacts[2].cef.flag = true
    local _, out = run([[
      function on_start(c)
        local arts = phantom.condition{container = c, conditions = {{"artifact:*.cef.flag", "==", false}}}
        phantom.debug(arts and arts[1].id)
      end
    ]], nil, c)
    assert.same({11}, out)
  end)

  it("another source's values compare on either side", function()
    local _, out = run([[
      function on_start(c)
        phantom.save_run_data{key = "blk:out", value = json.encode({1, 2, 3})}
        phantom.debug({
          phantom.decision{container = c, conditions = {{"blk:custom_function:out", "==", 2}}},
          phantom.decision{container = c, conditions = {{2, "==", "blk:custom_function:out"}}},
          phantom.decision{container = c, conditions = {{"artifact:*.id", "==", "blk:custom_function:out"}}},
        })
      end
    ]])
    assert.same({{true, true, false}}, out)
  end)

  it("format keeps a missing value in its row", function()
    local _, out = run([[
      function on_start(c)
        phantom.debug(phantom.format{container = c, template = "%%{0}-{1}%%",
                                     parameters = {"artifact:*.cef.sourceAddress", "artifact:*.id"}})
        phantom.debug(phantom.format{container = c, template = "{0}", parameters = {"artifact:*.cef.sourceAddress"}})
        phantom.debug(phantom.format{container = c, template = "%%{0}-{1}%%", drop_none = true,
                                     parameters = {"artifact:*.cef.sourceAddress", "artifact:*.id"}})
      end
    ]])
    assert.same({"10.1.1.1-11\n192.168.1.5-12\nNone-13", "10.1.1.1, 192.168.1.5, None", "10.1.1.1-11\n192.168.1.5-12"}, out)
  end)

  it("collect2 does not depend on the order of its datapaths", function()
    local _, out = run([[
      function on_start(c)
        phantom.debug({#phantom.collect2{container = c, datapath = {"container:id", "artifact:*.id"}},
                       #phantom.collect2{container = c, datapath = {"artifact:*.id", "container:id"}}})
      end
    ]], nil, {id = 7, artifacts = {}})
    assert.same({{0, 0}}, out)
  end)

  it("a filtered source is not aligned with the unfiltered one", function()
    local r = run([[
      function on_start(c)
        phantom.condition{container = c, conditions = {{"artifact:*.id", ">", 11}}, name = "f:c"}
        phantom.collect2{container = c, datapath = {"filtered-data:f:c:artifact:*.id", "artifact:*.id"}}
      end
    ]])
    assert.matches("phantom.collect2: datapaths of different sources %('filtered%-data:f:c:artifact:%*.id' and 'artifact:%*.id'%) cannot be aligned row by row$", r.error)
  end)

  it("a bare word in a condition is a literal unless action_results are given", function()
    local c = H.container()
    c.artifacts[1].cef.x = "status"
    local _, out = run([[
      function on_start(c)
        local arts = phantom.condition{container = c, conditions = {{"artifact:*.cef.x", "==", "status"}}}
        phantom.debug(#arts)
      end
    ]], nil, c)
    assert.same({1}, out)
  end)

  it("phantom.playbook returns the child's run id", function()
    local _, out = run([[
      function on_start(c)
        local id = phantom.playbook{playbook = "local/child", container = c, name = "child_1", callback = cb}
        phantom.save_run_data{key = "id", value = id}
      end
      function cb(kw) phantom.debug(kw.action.action_run_id == phantom.get_run_data{key = "id"}) end
    ]])
    assert.same({true}, out)
  end)

  it("discontinue refuses custom functions, child playbooks and prompts too", function()
    local r, out = run([[
      function on_start(c)
        phantom.discontinue()
        phantom.debug(tostring(phantom.custom_function{custom_function = "community/noop", name = "cf", callback = cb}))
        phantom.debug(tostring(phantom.playbook{playbook = "local/child", container = c, name = "pb", callback = cb}))
        phantom.debug(tostring(phantom.prompt2{container = c, user = "a", message = "m", name = "p", callback = cb}))
      end
      function cb(kw) phantom.debug("callback") end
    ]])
    assert.equal("success", r.status)
    assert.same({"nil", "nil", "nil"}, out)
    assert.equal(3, #r:messages("error"))
  end)

  it("save_run_data takes Python's positional order: value, key", function()
    local _, out = run([[
      function on_start(c)
        phantom.save_run_data("v", "k")
        phantom.debug(phantom.get_run_data("k"))
      end
    ]])
    assert.same({"v"}, out)
  end)
end)

describe("the smaller calls of real playbooks", function()
  it("pins, promote, notes, assets by action, network helpers, REST URLs, global data", function()
    local r, out = run([[
      function on_start(c)
        local ok, msg, pid = phantom.pin{container = c, message = "hi", data = "d", name = "p1"}
        phantom.debug({ok, pid, phantom.update_pin{pin_id = pid, message = "ho"}, phantom.get_container().pins[1].message})
        phantom.debug({phantom.delete_pin(pid), #phantom.get_container().pins})
        phantom.debug({phantom.promote(c), phantom.get_container().container_type})
        phantom.debug(phantom.get_assets{action = "file reputation"})
        phantom.debug(tostring(phantom.get_assets{action = "nothing"}))
        phantom.debug({phantom.valid_ip("8.8.8.8"), phantom.valid_ip("::1"), phantom.valid_ip("x"), phantom.valid_ip("300.1.1.1"),
                       phantom.valid_net("10.0.0.0/8"), phantom.address_in_network("10.1.2.3", "10.0.0.0/8"),
                       phantom.address_in_network("11.1.2.3", "10.0.0.0/8")})
        phantom.debug(phantom.build_phantom_rest_url("container", 7, "a b"))
        local k = phantom.save_data({x = 1}, "k1")
        phantom.debug({k, phantom.get_data("k1", true), tostring(phantom.get_data("k1"))})
        phantom.add_note{container = c, title = "t", content = "c"}
        phantom.debug({#phantom.get_notes{container = c}, phantom.get_current_container_id_(), phantom.get_effective_user()})
      end
    ]])
    assert.equal(H.luasoar.null, r.error)
    assert.same({{true, 1, true, "ho"}, {true, 0}, {true, "case"}, {"vt"}, "nil",
                 {true, true, false, false, true, true, false}, "http://127.0.0.1:8420/rest/container/7/a%20b",
                 {"k1", {x = 1}, "nil"}, {1, 101, "automation"}}, out)
  end)
end)
