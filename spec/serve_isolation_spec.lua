-- Hostile playbooks under `luasoar serve`: each fails its own run with a
-- reason, a well-behaved playbook on the same containers ends success, and
-- a client on another address is answered within 100 ms throughout.
local H = require "spec.helper"
local S = require "spec.serve_helper"

local HEAD = [[
playbook_info = {labels = {"events"}, active = true,
                 limits = {instructions_per_callback = 3000000, instructions_per_run = 20000000, memory_mb = 16}}
]]

local PLAYBOOKS = {
  ["playbooks/good.lua"] = HEAD .. [[
function on_start(c) phantom.debug("good " .. c.id) end
]],
  ["playbooks/pattern.lua"] = HEAD .. [[
function on_start(c) return ("a"):rep(200000):find(".-.-.-.-.-.-b") end
]],
  ["playbooks/gsub.lua"] = HEAD .. [[
function on_start(c) return ("a"):rep(200000):gsub(".-.-.-.-.-.-b", "") end
]],
  ["playbooks/rep.lua"] = HEAD .. [[
function on_start(c) return string.rep("", math.maxinteger) .. table.move({}, 1, math.maxinteger - 1, 2)[1] end
]],
  ["playbooks/close.lua"] = HEAD .. [[
function on_start(c)
  local mt = {__close = function() end}
  local x <close> = setmetatable({}, mt)
  mt.__close = function() while true do end end
  error("boom")
end
]],
  ["playbooks/logs.lua"] = HEAD .. [[
function on_start(c)
  local line = ("x"):rep(65536)
  for i = 1, 10000 do phantom.debug(line) end
end
]],
  ["playbooks/secret.lua"] = HEAD .. [[
function on_start(c) phantom.custom_function{custom_function = "../../luasoar.db.token\0"} end
]],
}

local WHY = {
  good = "^$",
  pattern = "instruction limit exceeded %(3000000 instructions per callback%)$",
  gsub = "instruction limit exceeded %(3000000 instructions per callback%)$",
  rep = "instruction limit exceeded %(3000000 instructions per callback%)$",
  close = ":7: boom$",
  logs = "^$",
  secret = 'custom function "%.%./%.%./luasoar%.db%.token\\0" refused: a name with a NUL byte$',
}

describe("hostile playbooks under serve", function()
  local srv
  setup(function() srv = S.start(PLAYBOOKS) end)
  teardown(function() S.stop(srv) end)

  it("each fails its own run, the good one succeeds, the REST API answers within 100 ms", function()
    local good = S.beside(srv, 4)
    local ids = {}
    for i = 1, 3 do
      local status, r = S.request(srv, "POST", "/rest/container", {name = "c" .. i, label = "events",
                                                                  artifacts = {{cef = {sourceAddress = "10.0.0." .. i}}}})
      assert.equal(200, status)
      ids[#ids + 1] = r.id
    end
    local runs = assert(S.all_ended(srv, 3 * 7))
    local g = good:wait().good
    print(("good client: %d requests, median %.1f ms, max %.1f ms"):format(g.n, g.median * 1000, g.max * 1000))
    assert.same({"200"}, g.statuses)
    assert.is_true(g.max < 0.1, ("a request took %.0f ms"):format(g.max * 1000))
    assert.equal(3 * 7, #runs)
    for _, run in ipairs(runs) do
      local name = run.playbook:match("([%w_]+)$")
      local why = run.message or ""
      assert.matches(WHY[name], why, nil, false, name .. ": " .. why)
      assert.equal((name == "good" or name == "logs") and "success" or "failed", run.status, name)
    end
    -- the flood's log: what was kept (1 MiB), then one line for the rest
    for _, run in ipairs(runs) do
      if run.playbook:match("logs$") then
        local status, log = S.request(srv, "GET", ("/rest/playbook_run/%d/log?page_size=100"):format(run.id))
        assert.equal(200, status)
        assert.equal(17, log.count)
        assert.matches("^log truncated: 9984 later lines", log.data[17].message)
        break
      end
    end
    -- nothing of the token came back in any log
    local token_head = srv.token:sub(1, 6)
    for _, run in ipairs(runs) do
      local _, log = S.request(srv, "GET", ("/rest/playbook_run/%d/log?page_size=100"):format(run.id))
      for _, line in ipairs(log.data) do assert.is_nil(line.message:find(token_head, 1, true)) end
    end
  end)
end)
