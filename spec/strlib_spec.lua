-- The string and table functions a playbook can keep busy in C (string.rep,
-- table.move, the pattern functions ...): each attack fails its own run on
-- the instruction budget, quickly, while a well-behaved run in the same
-- engine ends success; and the bounded versions give what stock Lua gives,
-- results and error messages, on a corpus run both in a playbook and here
-- (busted runs on stock Lua 5.4).
local H = require "spec.helper"

local LIMITS = H.LIMITS

local GOOD = LIMITS .. [[
function on_start(c)
  phantom.act("block ip", {parameters = {{ip = "1.1.1.1"}}, assets = {"pan"}, callback = cb})
end
function cb(kw)
  local words = {}
  for w in ("the quick brown fox"):gmatch("%a+") do words[#words + 1] = w:rep(2) end
  phantom.debug(table.concat(words, " "):gsub("(%w+)", "<%1>"))
end
]]

local now = H.now

-- Run a hostile playbook beside a good one; the hostile run's report and how
-- long the two took.
local function hostile(body)
  local eng = H.engine()
  local bad = H.playbook(LIMITS .. body)
  local good = H.playbook(GOOD)
  local t0 = now()
  local bad_id = eng:start(bad, H.container())
  local good_id = eng:start(good, H.container())
  local by_id = {}
  for _, r in ipairs(eng:wait()) do by_id[r.run_id] = r end
  local took = now() - t0
  assert.equal("success", by_id[good_id].status)
  assert.same({"<thethe> <quickquick> <brownbrown> <foxfox>"}, H.messages(by_id[good_id], "debug"))
  local stats = eng:stats()
  assert.equal(0, stats.live_refs)
  assert.equal(0, stats.live_runs)
  eng:close()
  return by_id[bad_id], took
end

local PER_CALLBACK = "instruction limit exceeded %(5000000 instructions per callback%)$"

describe("C functions under the instruction budget", function()
  local attacks = {
    {"string.rep of a long count (within the memory cap)", 'local s = string.rep("x", 1e7)'},
    {"table.move of a huge range", "table.move({}, 1, math.maxinteger - 1, 2)"},
    {"string.find, backtracking", 'string.rep("a", 200000):find(".-.-.-.-.-.-b")'},
    {"s:match, backtracking", 'local s = string.rep("a", 200000); s:match(".-.-.-.-.-.-b")'},
    {"string.gmatch, backtracking", 'for x in string.rep("a", 200000):gmatch(".-.-.-.-.-.-b") do end'},
    {"string.gsub, backtracking", 'string.rep("a", 200000):gsub(".-.-.-.-.-.-b", "")'},
    {"a plain find, quadratic", 'local s = string.rep("a", 3000000); s:find(string.rep("a", 1000000) .. "b", 1, true)'},
    {"a back reference, quadratic", 'local s = string.rep("a", 1000000); s:find("(" .. string.rep("a", 5000) .. ")%1b")'},
    {"the same inside pcall, in a loop", [[
  for i = 1, 1e9 do pcall(string.find, string.rep("a", 100000), ".-.-.-.-b") end]]},
    {"gsub, an empty capture repeated in the replacement",
     'local r = string.rep("%1", 4000000); string.rep("a", 10000):gsub("(x*)", r)'},
    {"table.concat on a table that claims any length",
     "table.concat(setmetatable({}, {__index = rawlen, __len = function() return math.maxinteger end}))"},
    {"table.insert shifting a claimed length",
     "table.insert(setmetatable({}, {__index = rawlen, __newindex = rawequal, __len = function() return math.maxinteger - 1 end}), 1, 0)"},
    {"table.remove shifting a claimed length",
     "table.remove(setmetatable({}, {__index = rawlen, __newindex = rawequal, __len = function() return math.maxinteger - 1 end}), 1)"},
    {"s:upper() of a big string in a loop (one instruction each, were it not charged)",
     'local s = ("x"):rep(4e6) for i = 1, 1e9 do local u = s:upper() end'},
    {"s:sub() copying a big string in a loop",
     'local s = ("x"):rep(4e6) for i = 1, 1e9 do local u = s:sub(2) end'},
    {"table.concat of one big string in a loop",
     'local t = {("x"):rep(4e6)} for i = 1, 1e9 do local u = table.concat(t) end'},
    {"json.decode of a big text in a loop",
     [[local s = '"' .. ("x"):rep(4e6) .. '"' for i = 1, 1e9 do json.decode(s) end]]},
    {"load of a big text in a loop",
     [[local s = 'return "' .. ("x"):rep(4e6) .. '"' for i = 1, 1e9 do load(s) end]]},
    {"json.encode of a table met many times",
     "local t = {} for i = 1, 40 do t = {t, t} end json.encode(t)"},
    {"table.sort of a claimed length",
     "table.sort(setmetatable({}, {__index = rawlen, __newindex = rawequal, __len = function() return 2^31 - 2 end}))"},
  }
  for _, a in ipairs(attacks) do
    it(a[1] .. ": its run fails on the budget, the other succeeds", function()
      local r, took = hostile("function on_start(c)\n  " .. a[2] .. "\n  phantom.debug('survived')\nend\n")
      assert.equal("failed", r.status)
      assert.matches(PER_CALLBACK, r.error)
      assert.matches(":3: ", r.error, 1, true)
      assert.same({}, H.messages(r, "debug"))
      assert.is_true(took < 10, "took " .. took .. " s")
    end)
  end

  it('string.rep("", math.maxinteger) is "" at once, and so are its cousins', function()
    local r, took = hostile([[
function on_start(c)
  assert(string.rep("", math.maxinteger) == "")
  assert(("").rep("", math.maxinteger, "") == "")
  assert(select(2, pcall(string.rep, "x", math.maxinteger)):match("resulting string too large$"))
  assert(select(2, pcall(string.rep, "", math.maxinteger, "-")):match("resulting string too large$"))
  phantom.debug("ok")
end
]])
    assert.equal("success", r.status)
    assert.same({"ok"}, H.messages(r, "debug"))
    assert.is_true(took < 5, "took " .. took .. " s")
  end)

  it("the string metatable leads to the bounded functions too", function()
    local r = hostile([[
function on_start(c)
  local s = ("a"):rep(200000)
  phantom.debug(tostring(s.find == string.find and ("").gsub == string.gsub))
  s:find(".-.-.-.-.-.-b")
end
]])
    assert.matches(PER_CALLBACK, r.error)
    assert.same({"true"}, H.messages(r, "debug"))
  end)

  it("the work is charged: a search within budget adds to the run's count", function()
    -- 60 searches of about 200,000 steps each: over 5,000,000 only if charged
    local r = hostile([[
function on_start(c)
  local s = string.rep("a", 1000)
  for i = 1, 60 do s:find(".-.-b") end
  phantom.debug("not charged")
end
]])
    assert.matches(PER_CALLBACK, r.error)
  end)
end)

-- ---------------------------------------------------------------------------
-- The differential corpus: the same source runs in a playbook (our functions)
-- and here (stock Lua); each case is serialized, results or error message.
local DRIVER = [==[
local FN = {
  upper = function(s) return s:upper() end,
  pick = function(a, b) if b then return b .. a end return nil end,
  falsy = function() return false end,
  bad = function() return {} end,
  num = function(a) return #a end,
  first = function(...) return select("#", ...) .. ":" .. table.concat({...}, ",") end,
  lt = function(a, b) return a > b end,
  always = function() return true end,
}
local TBL = {a = "A", b = false, ["1"] = 1, hello = "HELLO", x = {}, [1] = "one", [2] = 2.5}

local CASES = {
  -- find: plain and pattern, init
  {"find", "hello world", "o w"}, {"find", "hello world", "o", 6}, {"find", "hello world", "o", -3},
  {"find", "hello world", "l+"}, {"find", "hello", ""}, {"find", "hello", "", 10}, {"find", "hello", "", 6},
  {"find", "hello", "", -10}, {"find", "a.b", ".", 1, true}, {"find", "a+b", "+", 1, true}, {"find", "a+b", "a+"},
  {"find", "a\0b", "\0"}, {"find", "a\0b", "%z"}, {"find", "a\0b\0c", "b\0c"}, {"find", "abc", "c", 0},
  {"find", "abc", "[a"}, {"find", "abc", "x["}, {"find", "abc", "^b"}, {"find", "abc", "^a()"},
  {"find", "abc", "(b)(c)"}, {"find", "", ""}, {"find", "", "^$"}, {"find", "abc", "b", 1.0}, {"find", "abc", "b", "2"},
  {"find", "abc", "b", 1.5}, {"find", "abc"}, {"find", nil, "a"}, {"find", 123, 2}, {"find", "abc", {}},
  -- every class, upper and lower
  {"gsub", "Hi! 09 az\tAZ\0\1~", "%a", "."}, {"gsub", "Hi! 09 az\tAZ\0\1~", "%A", "."},
  {"gsub", "Hi! 09 az\tAZ\0\1~", "%c", "."}, {"gsub", "Hi! 09 az\tAZ\0\1~", "%C", "."},
  {"gsub", "Hi! 09 az\tAZ\0\1~", "%d", "."}, {"gsub", "Hi! 09 az\tAZ\0\1~", "%D", "."},
  {"gsub", "Hi! 09 az\tAZ\0\1~", "%g", "."}, {"gsub", "Hi! 09 az\tAZ\0\1~", "%G", "."},
  {"gsub", "Hi! 09 az\tAZ\0\1~", "%l", "."}, {"gsub", "Hi! 09 az\tAZ\0\1~", "%L", "."},
  {"gsub", "Hi! 09 az\tAZ\0\1~", "%p", "."}, {"gsub", "Hi! 09 az\tAZ\0\1~", "%P", "."},
  {"gsub", "Hi! 09 az\tAZ\0\1~", "%s", "."}, {"gsub", "Hi! 09 az\tAZ\0\1~", "%S", "."},
  {"gsub", "Hi! 09 az\tAZ\0\1~", "%u", "."}, {"gsub", "Hi! 09 az\tAZ\0\1~", "%U", "."},
  {"gsub", "Hi! 09 az\tAZ\0\1~", "%w", "."}, {"gsub", "Hi! 09 az\tAZ\0\1~", "%W", "."},
  {"gsub", "Hi! 09 az\tAZ\0\1~ fF", "%x", "."}, {"gsub", "Hi! 09 az\tAZ\0\1~ fF", "%X", "."},
  {"gsub", "Hi! 09 az\tAZ\0\1~", "%z", "."}, {"gsub", "Hi! 09 az\tAZ\0\1~", "%Z", "."},
  {"gsub", "a.b%c(d)", "%.", "!"}, {"gsub", "a.b%c(d)", "%%", "!"}, {"gsub", "a.b%c(d)", "%(", "!"},
  {"gsub", "\128\200\255abc", "[\128-\255]", "#"}, {"gsub", "\128\200\255abc", "%w", "#"},
  -- sets and ranges
  {"match", "a]b", "[]]"}, {"match", "ab]c", "[^]]+"}, {"match", "a]b", "[%]]"}, {"match", "x-y", "[a-]"},
  {"match", "-a-b", "[-a]+"}, {"match", "ab-z", "[%a-z]+"}, {"match", "%", "[a-%%]"}, {"match", "]", "[]"},
  {"match", "12 ab3", "[^%d%s]+"}, {"match", "b-", "[a-c-]+"}, {"match", "^^a", "[%^a]+"}, {"match", "z", "[z-a]"},
  {"match", "a^", "[a^]+"}, {"match", "abc", "[^"}, {"match", "abc", "[^a"}, {"match", "abc", "[%"},
  {"match", "abc", "[a-"}, {"match", "x", "[%w_]"}, {"match", "_", "[%w_]"}, {"match", "5", "[%D]"},
  -- repetitions, anchors
  {"match", "aaab", "a-b"}, {"match", "aaab", "a*"}, {"match", "aaab", "a+"}, {"match", "aaab", "a?"},
  {"match", "b", "a+"}, {"match", "b", "a-"}, {"match", "abc", "a?b?c?d?"}, {"match", "aaa?", "a+?"},
  {"match", "  trim  ", "^%s*(.-)%s*$"}, {"match", "a$b", "a$b"}, {"match", "abc", "$"}, {"match", "", "^$"},
  {"match", "abc", "^abc$"}, {"match", "abcd", "^abc$"}, {"match", "^abc", "^^a"}, {"match", "abc", ".-$"},
  {"match", "abc", "^(.-)b"}, {"match", "abc", "c", -1}, {"match", "abc", "a", -1}, {"match", "abc", "a", 10},
  -- captures
  {"match", "hello", "(h)(e)(l)(l)(o)"}, {"match", "hello", "()ll()"}, {"match", "hello", "(.)%1"},
  {"match", "hello", "(.)%2"}, {"match", "hello", "%0"}, {"match", "hello", "(()%1)"}, {"match", "hello", "(a"},
  {"match", "hello", "a)"}, {"match", "hello", "h)"}, {"match", "hello", "(h"}, {"match", "hello", "%1"},
  {"match", "hello", "((l)(l))"}, {"match", "hello", "()"}, {"match", "hello", "(h)()%2"},
  {"match", "abab", "(ab)%1"}, {"match", "key = value", "(%w+)%s*=%s*(%w+)"}, {"match", "x", ("()"):rep(32)},
  {"match", "x", ("()"):rep(33)}, {"match", "x", ("("):rep(33)}, {"match", "x", ("(x)"):rep(1) .. ("()"):rep(31)},
  -- %b and %f
  {"find", "f(a(b)c) d", "%b()"}, {"find", "axbxcx", "%bxx"}, {"find", "(a", "%b()"}, {"find", "(a)", "%b("},
  {"find", "(a)", "%b"}, {"gsub", "[a][b] [[c]]", "%b[]", "<%0>"}, {"match", "if (a and (b or c)) then", "%b()"},
  {"find", "  hello THERE", "%f[%w]%w+"}, {"gsub", "THE (quick) fox", "%f[%a]%a+", "[%0]"}, {"find", "", "%f[%a]"},
  {"find", "abc", "%fx"}, {"find", "abc", "%f[a"}, {"find", "abc", "%f"}, {"gsub", "hello", "%f[%z]", "|"},
  {"gsub", "hello world", "%f[%Z]", "|"}, {"gsub", "THE (quick) fox", "%f[%l]", "|"}, {"gsub", "a b", "%f[^%s]", "|"},
  -- malformed
  {"find", "abc", "%"}, {"find", "abc", "a%"}, {"gsub", "abc", "(", "x"}, {"gsub", "abc", ")", "x"},
  {"gmatch", "abc", "["}, {"gmatch", "abc", "%b"},
  -- recursion depth: "pattern too complex" exactly where stock says it
  {"match", ("a"):rep(10), ("a?"):rep(198)}, {"match", ("a"):rep(10), ("a?"):rep(199)},
  {"match", ("a"):rep(10), ("a?"):rep(200)}, {"match", ("a"):rep(10), ("a?"):rep(201)},
  {"match", "x", ("("):rep(198) .. "x" .. (")"):rep(198)}, {"match", "x", ("("):rep(199) .. "x" .. (")"):rep(199)},
  {"match", "x", ("("):rep(200) .. "x" .. (")"):rep(200)}, {"match", ("a"):rep(300), ("a*"):rep(150)},
  {"find", ("a"):rep(30), ".-.-.-b"}, {"match", ("ab"):rep(200), ("(ab)-"):rep(20) .. "$"},
  -- gmatch: 5.4 semantics (^ is a plain character; init; empty matches)
  {"gmatch", "one two  three", "%a+"}, {"gmatch", "^a^a ab", "^a"}, {"gmatch", "12 34 56 78", "%d+", 4},
  {"gmatch", "abc", ""}, {"gmatch", "baaac", "a*"}, {"gmatch", "abc", ".", 100}, {"gmatch", "abc", ".", -2},
  {"gmatch", "k1=v1, k2=v2", "(%w+)=(%w+)"}, {"gmatch", "abc", "()"}, {"gmatch", "a,b,,c", "([^,]*)"},
  {"gmatch", "", ""}, {"gmatch", "abc", "%f[%w]"}, {"gmatch", "abc", "(", }, {"gmatch", "abc", "%1"},
  -- gsub: replacement strings
  {"gsub", "hello world", "(%w+)", "%1 %1"}, {"gsub", "a b c", "%s", "%%"}, {"gsub", "abc", "", "-"},
  {"gsub", "abab", "(a)(b)", "%2%1%0"}, {"gsub", "aaa", "a", "%2"}, {"gsub", "aaa", "(a)", "%2"},
  {"gsub", "aaa", "a", "%x"}, {"gsub", "aaa", "a", "%"}, {"gsub", "abc", "()", "%1"}, {"gsub", "abc", "b", "%0%0"},
  {"gsub", "abc", "b", 42}, {"gsub", "abc", "b", 4.5}, {"gsub", "abc", "b", "%9"}, {"gsub", "abc", "(b)", "%10"},
  {"gsub", "abc", "b", "\0"}, {"gsub", "abc", "b", "%\0"},
  -- gsub: tables and functions
  {"gsub", "a hello x y", "%w+", TBL}, {"gsub", "a b", "%w", TBL}, {"gsub", "ab", "()", TBL}, {"gsub", "x", "x", TBL},
  {"gsub", "hello world", "%w+", FN.upper}, {"gsub", "k=v, a=b", "(%w+)=(%w+)", FN.pick},
  {"gsub", "abc", "%w", FN.falsy}, {"gsub", "abc", "%w", FN.bad}, {"gsub", "abc", "%w+", FN.num},
  {"gsub", "abc", "()(%w)()", FN.first}, {"gsub", "abc", "", FN.first},
  -- gsub: counts, anchors, bad arguments
  {"gsub", "aaaa", "a", "b", 2}, {"gsub", "aaaa", "a", "b", 0}, {"gsub", "aaaa", "a", "b", -1},
  {"gsub", "aaaa", "^a", "b"}, {"gsub", "abc", "^", "x"}, {"gsub", "abc", "$", "x"}, {"gsub", "abc", "x*", "-"},
  {"gsub", "abc", "b"}, {"gsub", "abc", "b", true}, {"gsub", "abc", "b", "x", "y"}, {"gsub", "abc", "b", "x", 1.5},
  {"gsub", "", "", "x"}, {"gsub", "", "^", "x"},
  -- sub, upper, lower, reverse
  {"sub", "hello", 2}, {"sub", "hello", 2, 4}, {"sub", "hello", -3}, {"sub", "hello", -3, -2}, {"sub", "hello", 0},
  {"sub", "hello", 10}, {"sub", "hello", 3, 2}, {"sub", "hello", -100, 100}, {"sub", "hello", math.mininteger, math.maxinteger},
  {"sub", "hello", 1, 0}, {"sub", "hello", 2.0, 3.0}, {"sub", "hello", 1.5}, {"sub", "hello"}, {"sub", "hello", "2"},
  {"sub", "", 1}, {"sub", "a\0b", 2, 2}, {"sub", 12345, 2, -2},
  {"upper", "Hello, World! \200\255 z"}, {"lower", "Hello, World! \200\255 Z"}, {"reverse", "abc\0d\255"},
  {"upper", ""}, {"lower", 12}, {"reverse", {}}, {"upper"},
  -- rep
  {"rep", "ab", 3}, {"rep", "ab", 3, ", "}, {"rep", "ab", 0}, {"rep", "ab", -1}, {"rep", "", 5}, {"rep", "", 5, "-"},
  {"rep", "x", 1, "-"}, {"rep", "ab", 2.0}, {"rep", "ab", 2.5}, {"rep", "ab"}, {"rep", "x", math.maxinteger},
  {"rep", 12, 2, 3},
  -- table functions
  {"t.concat", {1, 2, "3"}}, {"t.concat", {1, 2, 3}, ", "}, {"t.concat", {1, 2, 3}, ", ", 2}, {"t.concat", {1, 2, 3}, "", 2, 3},
  {"t.concat", {1, 2, 3}, "", 3, 2}, {"t.concat", {1, {}, 3}}, {"t.concat", {1, 2}, "", 1, 3}, {"t.concat", {}},
  {"t.concat", "x"}, {"t.concat", {1.5, 2}},
  {"t.move", {1, 2, 3}, 1, 3, 2}, {"t.move", {1, 2, 3}, 2, 3, 1}, {"t.move", {1, 2, 3}, 1, 3, 1, {}},
  {"t.move", {1, 2, 3}, 1, 0, 5}, {"t.move", {1, 2, 3}, -1, math.maxinteger, 1}, {"t.move", {1, 2, 3}, 1, 2, math.maxinteger},
  {"t.move", {1, 2, 3}, 1, 3}, {"t.move", 1, 1, 3, 1}, {"t.move", {1, 2, 3}, 1, 3, 2, 5},
  {"t.insert", {1, 2, 3}, 9}, {"t.insert", {1, 2, 3}, 1, 9}, {"t.insert", {1, 2, 3}, 4, 9}, {"t.insert", {1, 2, 3}, 5, 9},
  {"t.insert", {1, 2, 3}, 0, 9}, {"t.insert", {1, 2, 3}}, {"t.insert", {1, 2, 3}, 1, 2, 3}, {"t.insert", {1, 2, 3}, "x", 1},
  {"t.remove", {1, 2, 3}}, {"t.remove", {1, 2, 3}, 1}, {"t.remove", {1, 2, 3}, 4}, {"t.remove", {1, 2, 3}, 5},
  {"t.remove", {}}, {"t.remove", {}, 0}, {"t.remove", {}, 1}, {"t.remove", {}, 2},
  {"t.sort", {5, 2, 8, 1, 9, 3}}, {"t.sort", {5, 2, 8, 1, 9, 3}, FN.lt}, {"t.sort", {"b", "a", "c"}},
  {"t.sort", {1, "a"}}, {"t.sort", {3, 1, 2}, 1}, {"t.sort", {5, 4, 3, 2, 1, 0, -1}, FN.always},
  {"t.sort", {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 3, 3, 3}},
}

-- a case's outcome as text: "ok" or "error", then each value with its type
local function ser(...)
  local out = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    local t = math.type(v) or type(v)
    if t == "string" then
      local chars = {} -- printable ASCII as it is, other bytes as \ddd
      for k = 1, #v do
        local b = string.byte(v, k)
        chars[k] = (b >= 32 and b < 127 and b ~= 92) and string.char(b) or "\\" .. b .. ";"
      end
      out[#out + 1] = '"' .. table.concat(chars) .. '"'
    elseif t == "table" then
      local items = {}
      for k = 1, rawlen(v) do items[k] = ser(v[k]) end
      out[#out + 1] = "t{" .. table.concat(items, ",") .. "}"
    elseif t == "function" then
      out[#out + 1] = "function"
    else
      out[#out + 1] = t .. ":" .. tostring(v)
    end
  end
  return table.concat(out, " ")
end

local function call(name, ...)
  if name:sub(1, 2) == "t." then
    local f = table[name:sub(3)]
    local t = ...
    local args = table.pack(...)
    local ok, r = pcall(f, table.unpack(args, 1, args.n))
    return ser(ok, r) .. " -> " .. ser(t)
  end
  local f = string[name]
  if name ~= "gmatch" then return ser(pcall(f, ...)) end
  local ok, it = pcall(f, ...)
  if not ok then return ser(ok, it) end
  local out = {}
  for _ = 1, 100 do
    local r = table.pack(pcall(it))
    if not r[1] or r.n == 1 then out[#out + 1] = ser(table.unpack(r, 1, r.n)) break end
    out[#out + 1] = ser(table.unpack(r, 1, r.n))
  end
  return table.concat(out, " | ")
end

function run_corpus(emit)
  for i, c in ipairs(CASES) do emit(i .. ": " .. call(table.unpack(c, 1, 6))) end
end
]==]

describe("the bounded functions against stock Lua 5.4", function()
  it("give the same results and the same errors on the corpus", function()
    -- stock: here
    local env = setmetatable({}, {__index = _G})
    assert(load(DRIVER, "=driver", "t", env))()
    local want = {}
    env.run_corpus(function(s) want[#want + 1] = s end)
    assert.is_true(#want > 250)
    -- ours: in a run
    local report = H.run(DRIVER .. "\nfunction on_start(c) run_corpus(function(s) phantom.debug(s) end) end\n")
    assert.equal("success", report.status, report.error)
    local got = H.messages(report, "debug")
    assert.equal(#want, #got)
    for i = 1, #want do assert.equal(want[i], got[i]) end
  end)

  it("serializes values with their types (a failing comparison would show them)", function()
    local env = setmetatable({}, {__index = _G})
    assert(load(DRIVER, "=driver", "t", env))()
    local first
    env.run_corpus(function(s) first = first or s end)
    assert.equal("1: boolean:true integer:5 integer:7", first)
  end)
end)
