-- The README's "Getting started" block, run as written in an empty folder
-- (the server's port changed to a free one), with the luasoar just built
-- first on PATH.
local H = require "spec.helper"
local S = require "spec.serve_helper"

local function block()
  local f = assert(io.open(H.root .. "/README.md"))
  local text = f:read("a")
  f:close()
  return assert(text:match("<!%-%- getting%-started %-%->\n```sh\n(.-)```"), "no getting-started block")
end

describe("the README's getting started", function()
  it("writes, checks, tests, runs and serves a playbook in an empty folder", function()
    local dir = H.tmp() .. "/start" .. math.random(1, 1e9)
    S.sh("mkdir -p " .. S.q(dir))
    local port = S.free_port()
    local script = block():gsub("127%.0%.0%.1:8420", "127.0.0.1:" .. port)
    local f = assert(io.open(dir .. "/walk.sh", "w"))
    -- the trap only cleans up after a failure; the server the block stopped may
    -- already be gone, and kill's failure must not become the script's status
    f:write("set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n", script)
    f:close()
    local bin = H.bin:match("(.*)/")
    local out = S.sh(("cd %s && env -u LD_PRELOAD PATH=%s:$PATH bash walk.sh 2>&1; echo \"<rc $?>\""):format(
      S.q(dir), S.q(bin)))
    assert.matches("<rc 0>%s*$", out)
    assert.matches("\n1 success / 0 failures / 0 errors / 0 pending", out)
    assert.matches("\nsaw 10%.0%.0%.1\n%[container%] 1: severity high, status %-, no tags, 0 notes, 1 artifact\n"
                   .. "run 1 on container 1: success\n", out)
    assert.matches('{"id": 1, "success": true, "runs_started": 1}', out, 1, true)
    assert.matches("\n1%s+1%s+success%s+hello%s", out)
  end)
end)
