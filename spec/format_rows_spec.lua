-- format_rows_spec.lua: how phantom.format fills the rows of a %% section
-- (docs/api.md, "Formats"): row i takes the i-th value of each parameter; a
-- parameter with one value gives it on every row; one with fewer values (but
-- more than one) gives None past its last; one with no value None on every
-- row; the pairing is by position only.
local H = require "spec.helper"

-- three artifacts (ids 1, 2, 3), two tags: parameters of 3, 2 and 1 values
local function container()
  return {id = 7001, label = "events", tags = {"a", "b"}, artifacts = {
    {id = 1, cef = {sourceAddress = "1.1.1.1"}},
    {id = 2, cef = {sourceAddress = "2.2.2.2"}},
    {id = 3, cef = {sourceAddress = "3.3.3.3"}},
  }}
end

local function formats(body)
  local report = H.run("function on_start(container)\n" .. body .. "\nend\n", container())
  assert.equal("success", report.status, table.concat(H.messages(report, "error"), "\n"))
  return H.messages(report, "debug")
end

describe("phantom.format %% rows", function()
  it("row i takes the i-th value of each parameter; one value is repeated on every row", function()
    local out = formats([[
      phantom.debug(phantom.format{template = "%%\n{0} {1} {2} {3}\n%%",
        parameters = {"artifact:*.cef.sourceAddress", "artifact:*.id", "container:id", "seen"}})
    ]])
    assert.same({"1.1.1.1 1 7001 seen\n2.2.2.2 2 7001 seen\n3.3.3.3 3 7001 seen"}, out)
  end)

  it("a parameter with fewer values (more than one) gives None past its last", function()
    local out = formats([[
      phantom.debug(phantom.format{template = "%%\n{0}: {1}\n%%", parameters = {"artifact:*.id", "container:tags.*"}})
      phantom.debug(phantom.format{template = "%%\n{0}: {1}\n%%", parameters = {"artifact:*.id", "container:tags.*"},
                                   drop_none = true})
    ]])
    assert.same({"1: a\n2: b\n3: None", "1: a\n2: b"}, out)
  end)

  it("the rows are as many as the longest parameter's values, whatever its place", function()
    local out = formats([[
      phantom.debug(phantom.format{template = "%%\n{1}-{0}\n%%", parameters = {"artifact:*.id", "container:tags.*"}})
    ]])
    assert.same({"a-1\nb-2\nNone-3"}, out)
  end)

  it("a parameter with no value is None on every row; a section with no values at all renders nothing", function()
    local out = formats([[
      phantom.debug(phantom.format{template = "%%\n{0} {1}\n%%", parameters = {"artifact:*.id", "container:nosuch"}})
      phantom.debug(phantom.format{template = "[%%\n{0}\n%%]", parameters = {"filtered-data:never:ran:artifact:*.id"}})
    ]])
    assert.same({"1 None\n2 None\n3 None", "[]"}, out)
  end)

  it("outside %%, {i} is every value of the parameter, joined by the separator", function()
    local out = formats([[
      phantom.debug(phantom.format{template = "{0} / {1}", parameters = {"artifact:*.id", "container:tags.*"}, separator = "+"})
    ]])
    assert.same({"1+2+3 / a+b"}, out)
  end)

  it("renders docs/api.md's example as the docs say", function()
    local out = formats([[
      phantom.debug(phantom.format{container = container, template = "%%\n{0} {1} {2} {3}\n%%",
        parameters = {"artifact:*.cef.sourceAddress", "artifact:*.id", "container:tags.*", "seen"}})
    ]])
    assert.same({"1.1.1.1 1 a seen\n2.2.2.2 2 b seen\n3.3.3.3 3 None seen"}, out)
  end)

  it("pairs different sources by position only", function()
    -- the artifacts in id order, the tags in list order: row 2 is artifact 2 with tag "b",
    -- whether or not they have anything to do with each other
    local out = formats([[
      phantom.debug(phantom.format{template = "%%\n{0}={1}\n%%", parameters = {"artifact:*.cef.sourceAddress", "container:tags.*"},
                                   name = "pairs"})
      phantom.debug(phantom.get_format_data("pairs__as_list"))
    ]])
    assert.same({"1.1.1.1=a\n2.2.2.2=b\n3.3.3.3=None", '["1.1.1.1=a","2.2.2.2=b","3.3.3.3=None"]'}, out)
  end)
end)
