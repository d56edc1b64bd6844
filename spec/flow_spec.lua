-- The asynchronous API: custom functions, child playbooks, prompts,
-- approvals, delayed actions and loops (reference §8 TC-21, 42-47, 55).
local H = require "spec.helper"
local lt = require "luasoar.testing"
local json = H.json

local function engine()
  -- the fixture's apps run for real
  return lt.engine{scripts = H.fixtures, apps = H.fixtures .. "/apps", assets = H.fixtures .. "/assets.json",
                   real = true}
end

local function decoded(run)
  local out = {}
  for i, m in ipairs(run:messages("debug")) do
    local v = json.decode(m)
    if v == nil then v = m end
    out[i] = v
  end
  return out
end

describe("custom functions", function()
  it("TC-42 run once per parameter set, one callback after all, results by datapath", function()
    local eng = engine()
    local run = eng:run(H.playbook([[
      function on_start(c)
        local id = phantom.custom_function{custom_function = "community/url_parse", name = "parse_url", callback = cb,
          parameters = {{input_url = "http://a.example/x"}, {input_url = "https://b.example/y"}}}
        phantom.debug(math.type(id))
      end
      function cb(kw)
        phantom.debug({kw.success, #kw.results, kw.custom_function.name})
        phantom.debug(phantom.collect2{container = kw.container, datapath = {"parse_url:custom_function_result.data.hostname"}})
        phantom.debug(phantom.collect2{container = kw.container, datapath = {"parse_url:custom_function_result.data"}})
      end
    ]]), H.container())
    assert.run_succeeded(run)
    assert.same({"integer", {true, 2, "parse_url"}, {{"a.example"}, {"b.example"}},
                 {{{hostname = "a.example"}}, {{hostname = "b.example"}}}}, decoded(run))
    eng:close()
  end)

  it("a failing invocation fails alone, logged; an unknown one is an error at the call", function()
    local eng = engine()
    local run = eng:run(H.playbook([[
      function on_start(c)
        phantom.custom_function{custom_function = "community/url_parse", name = "p", callback = cb,
          parameters = {{input_url = "nope"}, {input_url = "http://ok.example"}}}
      end
      function cb(kw) phantom.debug({kw.success, kw.results[1].status, kw.results[2].data.hostname}) end
    ]]), H.container())
    assert.same({{true, "failed", "ok.example"}}, decoded(run))
    assert.matches("custom function 'p' %(community/url_parse%) failed: .*not a URL: nope", run:messages("error")[1])
    run = eng:run(H.playbook("function on_start(c) phantom.custom_function{custom_function = 'community/nothing'} end\n"),
                  H.container())
    assert.matches(":1: phantom.custom_function: unknown custom function 'community/nothing' %(no file .*custom_functions/community/nothing.lua%)$", run.error)
    eng:close()
  end)

  it("can be stubbed from a spec", function()
    local eng = engine()
    eng:stub_custom_function("community/url_parse", function(p) return {hostname = "stub-" .. p.input_url} end)
    local run = eng:run(H.playbook([[
      function on_start(c)
        phantom.custom_function{custom_function = "community/url_parse", name = "p", callback = cb, parameters = {{input_url = "x"}}}
      end
      function cb(kw) phantom.debug(kw.results[1].data.hostname) end
    ]]), H.container())
    assert.same({"stub-x"}, run:messages())
    eng:close()
  end)
end)

describe("child playbooks", function()
  it("TC-43 inputs, outputs, the callback after the child's on_finish, the parent's on_finish last", function()
    local eng = engine()
    local run = eng:run(H.playbook([[
      function on_start(c)
        local rid = phantom.playbook{playbook = "local/child", container = c, name = "child_1", callback = pcb,
                                     inputs = {url = {"http://a", "http://b"}}}
        phantom.debug(math.type(rid))
      end
      function pcb(kw)
        phantom.debug({kw.success, phantom.completed{playbook_names = {"child_1"}}})
        phantom.debug(phantom.collect2{container = kw.container, datapath = {"child_1:playbook_output:verdict"}})
        phantom.debug(phantom.collect2{container = kw.container, datapath = {"child_1:playbook_output:count"}})
      end
      function on_finish(c, s) phantom.debug("parent finish") end
    ]]), H.container())
    assert.run_succeeded(run)
    assert.same({"integer", {true, true}, {{"bad"}, {"good"}}, {{2}}, "parent finish"}, decoded(run))
    eng:close()
  end)

  it("the child sees its inputs", function()
    local eng = engine()
    eng:start(H.playbook([[
      function on_start(c)
        phantom.playbook{playbook = "local/child", container = c, name = "child_1", inputs = {url = {"http://a", "http://b"}}}
      end
    ]]), H.container())
    local child
    for _, r in ipairs(eng:wait()) do
      if r.playbook:match("child") then child = r end
    end
    assert.same({'[["http://a"],["http://b"]]'}, child:messages())
    eng:close()
  end)

  it("TC-21 completed() for playbooks and custom functions", function()
    local eng = engine()
    local run = eng:run(H.playbook([[
      function on_start(c)
        phantom.playbook{playbook = "local/child", container = c, name = "child_1", callback = cb}
        phantom.custom_function{custom_function = "community/noop", parameters = {{}}, name = "cf_1", callback = cb}
      end
      function cb(kw)
        phantom.debug(phantom.completed{playbook_names = {"child_1"}, custom_function_names = {"cf_1"}})
      end
    ]]), H.container())
    assert.same({false, true}, decoded(run))
    eng:close()
  end)

  it("can be stubbed; an unknown one is an error at the call", function()
    local eng = engine()
    eng:stub_playbook("local/elsewhere", function(inputs) return {seen = inputs.x} end)
    local run = eng:run(H.playbook([[
      function on_start(c) phantom.playbook{playbook = "local/elsewhere", container = c, name = "e", inputs = {x = {1}}, callback = cb} end
      function cb(kw) phantom.debug(phantom.collect2{container = kw.container, datapath = {"e:playbook_output:seen"}}) end
    ]]), H.container())
    assert.same({{{1}}}, decoded(run))
    run = eng:run(H.playbook("function on_start(c) phantom.playbook{playbook = 'local/nothing', container = c} end\n"), H.container())
    assert.matches(":1: phantom.playbook: unknown playbook 'local/nothing'", run.error)
    eng:close()
  end)
end)

describe("prompts", function()
  local PROMPT = [[
    local start = os.time()
    function on_start(c)
      phantom.prompt2{container = c, user = "admin", message = "Block {0}?", respond_in_mins = %d, name = "prompt_1",
        parameters = {"artifact:*.cef.destinationAddress"},
        response_types = {{prompt = "", options = {type = "list", choices = {"Yes", "No"}}},
                          {prompt = "Type confirm", options = {type = "message"}}},
        callback = dcb}
    end
    function dcb(kw)
      phantom.debug({at = os.time() - start, success = kw.success,
        r0 = phantom.collect2{container = kw.container, action_results = kw.results, datapath = {"prompt_1:action_result.summary.responses.0"}},
        r1 = phantom.collect2{container = kw.container, action_results = kw.results, datapath = {"prompt_1:action_result.summary.responses.1"}},
        yes = phantom.decision{container = kw.container, action_results = kw.results,
                               conditions = {{"prompt_1:action_result.summary.responses.0", "==", "Yes"}}}})
    end
  ]]

  it("TC-44 answers, rendered message, decision on the answer", function()
    local eng = engine()
    eng:answer("prompt_1", {"Yes", "confirm"}, {after = 3})
    local run = eng:run(H.playbook(PROMPT:format(30)), H.container())
    assert.run_succeeded(run)
    assert.equal("Block 8.8.8.8, 1.2.3.4?", eng.prompts[1].message)
    assert.same({{at = 3, success = true, r0 = {{"Yes"}}, r1 = {{"confirm"}}, yes = true}}, decoded(run))
    eng:close()
  end)

  it("TC-45 times out with success = false", function()
    local eng = engine()
    local run = eng:run(H.playbook(PROMPT:format(1)), H.container())
    assert.same({{at = 60, success = false, r0 = {{H.luasoar.null}}, r1 = {{H.luasoar.null}}, yes = false}}, decoded(run))
    eng:close()
  end)
end)

describe("act extras", function()
  it("TC-46 start_time delays the app run; callbacks in time order", function()
    local eng = engine()
    local pan = eng:stub("block ip", function() return {message = "blocked"} end)
    local run = eng:run(H.playbook([[
      local start = os.time()
      function on_start(c)
        phantom.act("block ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"pan"}, name = "later", start_time = os.time() + 60, callback = cb})
        phantom.act("geolocate ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"maxmind"}, name = "now", callback = cb})
      end
      function cb(kw) phantom.debug(kw.action.name .. " at +" .. (os.time() - start)) end
      function on_finish(c, s) phantom.debug("finish at +" .. (os.time() - start)) end
    ]]), H.container())
    assert.same({"now at +0", "later at +60", "finish at +60"}, run:messages())
    assert.equal(1, #pan.calls)
    eng:close()
  end)

  it("TC-47 an approval: approved runs the app, denied never does", function()
    for _, case in ipairs({{"approve", true, 1, ""}, {"deny", false, 0, "denied by admin"}}) do
      local eng = engine()
      local pan = eng:stub("block ip", {message = ""})
      eng[case[1]](eng, "rb", {after = 5})
      local run = eng:run(H.playbook([[
        function on_start(c)
          phantom.act("block ip", {parameters = {{ip = "8.8.8.8"}}, assets = {"pan"}, reviewer = "admin", name = "rb", callback = cb})
        end
        function cb(kw) phantom.debug({kw.success, kw.results[1].action_results[1].message}) end
      ]]), H.container())
      assert.same({{case[2], case[4]}}, decoded(run))
      assert.equal(case[3], #pan.calls)
      assert.equal("approval", eng.prompts[1].type)
      eng:close()
    end
  end)

  it("TC-55 LoopState retries until max_iterations, or until the exit condition", function()
    for _, case in ipairs({{{"running", "running", "running"}, 3, 240}, {{"running", "done"}, 2, 120}}) do
      local eng = engine{}
      local states = {}
      for i, st in ipairs(case[1]) do states[i] = {data = {{State = st}}} end
      local job = eng:stub("file reputation", lt.sequence(states))
      local run = eng:run(H.playbook([[
        function on_start(c)
          job_1{container = c, loop_state_json = json.encode({current_iteration = 1, max_iterations = 3,
            conditions = {{"job_1:action_result.data.*.State", "==", "done"}}, max_ttl = 1800, delay_time = 120})}
        end
        function job_1(kw)
          phantom.act("file reputation", {parameters = {{hash = "h"}}, assets = {"vt"}, name = "job_1",
                                          callback = loop_job_1, loop_state = kw.loop_state_json})
        end
        function loop_job_1(kw)
          local ls = phantom.LoopState{state = kw.loop_state_json}
          if ls:should_continue{container = kw.container, results = kw.results} then
            ls:increment()
            job_1{container = kw.container, loop_state_json = ls:to_json()}
          else
            phantom.debug("exit after " .. ls.current_iteration .. " at +" .. (os.time() - 1704067200))
          end
        end
      ]]), H.container())
      assert.run_succeeded(run)
      assert.equal(case[2], #job.calls)
      assert.same({"exit after " .. case[2] .. " at +" .. case[3]}, run:messages())
      eng:close()
    end
  end)
end)
