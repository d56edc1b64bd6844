-- docs_examples_spec.lua: every ```lua block of docs/api.md and README.md,
-- run through the real engine, so no example of the docs goes stale.
--
--  * A block that defines on_start is a whole playbook: it runs on container
--    101 and must end `success`.
--  * Any other block is a snippet: it runs as the body of a callback of an
--    action run (so `kw`, `kw.results`, `kw.loop_state_json` and `container` are the
--    callback's),
--    with the few names the examples take as given defined below (EXAMPLE).
--  * A block after `<!-- fragment -->` cannot run on its own: it is only
--    compiled (as a chunk, or as a function body).
--  * A busted spec (README "Testing your playbooks") is compiled here and run
--    by spec/testing_spec.lua.
local H = require "spec.helper"

-- the names the snippets use without defining them
local EXAMPLE = [[
ip, u, text, id, c = "8.8.8.8", "http://example.com/a", "a note", nil, nil
ips_a, ips_b = {"1.1.1.1", "2.2.2.2"}, {"2.2.2.2", "3.3.3.3"}
function geo_cb(kw) end
function parse_cb(kw) end
function child_cb(kw) end
function decide_cb(kw) end
function join_x(kw) end
function again(kw) end
]]

local function playbook_of(block)
  if block.code:find("function on_start", 1, true) then return block.code end
  return EXAMPLE .. [[
function on_start(container)
  c = container
  phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"geoip"},
                               callback = example, name = "geolocate_ip_1", handle = "{}",
                               loop_state = phantom.LoopState{state = {max_iterations = 2}}:to_json()})
end
function example(kw)
  local container = kw.container
]] .. block.code .. "\nend\n"
end

local function compiles(code, name)
  local f, err = load(code, name, "t", {})
  if f then return true end
  local f2 = load("return function(...)\n" .. code .. "\nend", name, "t", {})
  return f2 ~= nil, err
end

-- an engine over the shipped apps and assets, with the custom function, child
-- playbook and custom list the examples name
local scripts = H.tmp() .. "/docs-scripts"
os.execute(("mkdir -p %s/playbooks/local %s/custom_functions/local"):format(scripts, scripts))
os.execute(("cp %s/playbooks/local/child.lua %s/playbooks/local/child.lua"):format(H.fixtures, scripts))
os.execute(("cp %s/custom_functions/community/url_parse.lua %s/custom_functions/local/url_parse.lua")
  :format(H.fixtures, scripts))

local function engine()
  return H.luasoar.engine{scripts = scripts, apps = H.root .. "/scripts/apps",
                          assets = H.root .. "/scripts/assets.json",
                          custom_lists = H.fixtures .. "/custom_lists", seed = 0,
                          virtual_clock = true}
end

for _, doc in ipairs({"docs/api.md", "README.md"}) do
  describe(doc .. " examples", function()
    for _, block in ipairs(H.lua_blocks(H.root .. "/" .. doc)) do
      local where = ("%s:%d"):format(doc, block.line)
      if block.mark == "fragment" or block.code:find("describe(", 1, true) then
        it("compile: " .. where, function()
          local ok, err = compiles(block.code, "=" .. where)
          assert(ok, err)
        end)
      else
        it("run: " .. where, function()
          local eng = engine()
          local report = eng:run(H.playbook(playbook_of(block)), H.container())
          eng:close()
          local errors = table.concat(H.messages(report, "error"), "\n")
          assert.equal("success", report.status, where .. ":\n" .. block.code .. "\n" .. errors)
        end)
      end
    end
  end)
end

describe("the --limit names docs/api.md gives", function()
  it("are each accepted by luasoar run", function()
    local f = assert(io.open(H.root .. "/docs/api.md"))
    local text = f:read("a")
    f:close()
    local names = {}
    for n in text:gmatch("%-%-limit ([%w_]+)=") do names[n] = true end
    local list = text:match("the names of\n?%s*the table: (.-)%)")
    assert(list, "docs/api.md no longer lists the --limit names")
    for n in list:gmatch("`([%w_]+)`") do names[n] = true end
    local pb = H.playbook("function on_start(c) phantom.debug('ok') end\n")
    local n = 0
    for name in pairs(names) do
      n = n + 1
      local out, err, code = H.cli("run", pb, "--container", H.fixtures .. "/container_101.json", "--limit", name .. "=5000")
      assert.equal(0, code, name .. ": " .. out .. err)
    end
    assert.is_true(n >= 9)
  end)
end)
