-- JSON decoding and encoding (bindings/json.c over yajl): integers stay
-- integers, malformed input is rejected with line and column.
local H = require "spec.helper"
local luasoar = H.luasoar
local cjson = require "cjson"

describe("JSON decoding", function()
  it("keeps integers as integers and floats as floats", function()
    local v = luasoar.json_decode('{"id": 63, "big": 9007199254740993, "f": 63.0, "e": 1e3, "neg": -7}')
    assert.equal("integer", math.type(v.id))
    assert.equal(63, v.id)
    assert.equal(9007199254740993, v.big)
    assert.equal("integer", math.type(v.big))
    assert.equal("float", math.type(v.f))
    assert.equal("float", math.type(v.e))
    assert.equal(-7, v.neg)
    -- a number no double can hold is refused: it could not be written back
    assert.same({nil, "line 1, column 14: a number out of range"}, {luasoar.json_decode('{"huge": 1e400}')})
    -- larger than 64 bits: a float, not an error
    assert.equal("float", math.type(luasoar.json_decode("123456789012345678901234567890")))
  end)

  it("decodes null as luasoar.null and keeps empty arrays apart from empty objects", function()
    local v = luasoar.json_decode('{"n": null, "a": [], "o": {}, "s": "\\u00e9\\n", "t": true}')
    assert.equal(luasoar.null, v.n)
    assert.equal("é\n", v.s)
    assert.is_true(v.t)
    assert.equal('[[],{}]', luasoar.json_encode({v.a, v.o}))
  end)

  it("agrees with lua-cjson on valid documents, integers aside", function()
    local docs = {
      '[1, 2.5, "x", true, false, null, {"k": [[], {}]}]',
      '{"a": {"b": {"c": [1, {"d": "e"}]}}, "u": "\\ud83d\\ude00"}',
      '"just a string"', '3.25', '[]', '{}',
    }
    for _, d in ipairs(docs) do
      local mine, theirs = luasoar.json_decode(d), cjson.decode(d)
      -- compare through cjson's encoding, where null is cjson.null
      local function norm(x)
        if x == luasoar.null or x == cjson.null then return "<null>" end
        if type(x) == "number" then return x + 0.0 end
        if type(x) ~= "table" then return x end
        local t = {}
        for k, v in pairs(x) do t[k] = norm(v) end
        return t
      end
      assert.same(norm(theirs), norm(mine), d)
    end
  end)

  local malformed = {
    {"", "line 1, column 1: empty document"},
    {"   ", "line 1, column 4: premature EOF"},
    {"[1, 2", "line 1, column 6: premature EOF"},
    {"{\"a\" 1}", "line 1, column 6: object key and value must be separated by a colon (':')"},
    {"{\"a\": 1,}", "line 1, column 9: invalid object key (must be a string)"},
    {"[1,]", "line 1, column 4: unallowed token at this point in JSON text"},
    {"{'a': 1}", "line 1, column 2: invalid char in json text"},
    {"[1] [2]", "line 1, column 5: trailing garbage"},
    {"\n\n  [tru]", "line 3, column 6: invalid string in json text"},
    {"[\"a\xffb\"]", "line 1, column 4: invalid bytes in UTF8 string"},
    {"[\"tab\there\"]", "line 1, column 5: invalid character inside string"},
    {"[01]", "line 1, column 3: after array element, I expect ',' or ']'"},
    {"// c\n[1]", "line 1, column 1: probable comment found in input text, comments are not enabled"},
    {"[NaN]", "line 1, column 2: invalid char in json text"},
  }
  for _, case in ipairs(malformed) do
    it("rejects " .. ("%q"):format(case[1]), function()
      local v, err = luasoar.json_decode(case[1])
      assert.is_nil(v)
      assert.equal(case[2], err)
    end)
  end

  it("rejects nesting deeper than 100 levels", function()
    local v, err = luasoar.json_decode(string.rep("[", 101) .. string.rep("]", 101))
    assert.is_nil(v)
    assert.equal("line 1, column 101: nesting deeper than 100 levels", err)
    assert.is_table(luasoar.json_decode(string.rep("[", 100) .. string.rep("]", 100)))
  end)
end)

describe("JSON encoding", function()
  it("writes integers, floats that stay floats, arrays and objects", function()
    assert.equal('[1,2.5,63.0,-0.0,"x",true,null]', luasoar.json_encode({1, 2.5, 63.0, -0.0, "x", true, luasoar.null}))
    assert.equal('{"k":{}}', luasoar.json_encode({k = {}}))
    assert.equal(0.1, luasoar.json_decode(luasoar.json_encode(0.1)))
  end)

  it("refuses what JSON cannot hold", function()
    assert.has_error(function() luasoar.json_encode({f = print}) end, "cannot encode a function value as JSON")
    assert.has_error(function() luasoar.json_encode(0 / 0) end, "cannot encode NaN as JSON")
    assert.has_error(function() luasoar.json_encode("\xff") end, "cannot encode a string that is not valid UTF-8 as JSON")
    local t = {}
    t.self = t
    assert.has_error(function() luasoar.json_encode(t) end,
      "cannot encode as JSON: nesting deeper than 100 levels (a table that contains itself?)")
  end)
end)
