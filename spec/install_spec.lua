-- install_spec.lua: `cmake --install` into a temporary prefix, then a user's
-- folder (a playbook and its spec, written here) tested with nothing but that
-- prefix's paths: `luasoar test DIR` and plain `busted`.  And `cpack -G DEB`
-- (when cpack is there): the package's Depends and files, and its luasoar
-- run from the unpacked tree.
local H = require "spec.helper"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A shell command's output (stdout and stderr) and exit code.  Without a
-- sanitizer's preloaded runtime (a CI run's): the commands that need it get
-- it back from sanitizer_env().
local function sh(cmd)
  local p = io.popen("env -u LD_PRELOAD sh -c " .. q(cmd) .. " 2>&1 </dev/null")
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- The build folder of this ctest run: the one holding LUASOAR_BIN.
local build = H.bin:match("^(.*)/[^/]+$")

-- A sanitizer build's module needs its runtime preloaded under lua5.4: pass
-- it on to the clean environment (empty otherwise).
local function sanitizer_env()
  local out = {}
  for _, v in ipairs{"LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS"} do
    if os.getenv(v) then out[#out + 1] = v .. "=" .. q(os.getenv(v)) end
  end
  return table.concat(out, " ")
end

local PLAYBOOK = [[
function on_start(container)
  phantom.debug("container " .. container.id)
  phantom.act("lookup ip", {parameters = {{ip = "192.0.2.1"}}, assets = {"rep"},
                            callback = looked_up, name = "lookup_ip_1"})
end

function looked_up(kw)
  for _, item in ipairs(phantom.collect2{container = kw.container,
                                         datapath = {"lookup_ip_1:action_result.summary.score"}}) do
    phantom.debug("score " .. tostring(item[1]))
  end
end
]]

-- The spec checks that the module it runs is the prefix's.
local function user_spec(cmod)
  return ([[
local lt = require "luasoar.testing"

describe("lookup", function()
  it("runs from the installed module", function()
    assert.equal(%q, package.searchpath("luasoar", package.cpath))
    local eng = lt.engine{assets = {rep = {app = "Reputation"}}}
    local lookup = eng:stub("lookup ip", {summary = {score = 90}})
    local run = eng:run("lookup", {id = 5, artifacts = {}})
    assert.run_succeeded(run)
    assert.logged(run, "container 5")
    assert.logged(run, "score 90")
    assert.equal(1, #lookup.calls)
    eng:close()
  end)
end)
]]):format(cmod)
end

-- A user's folder: playbooks/lookup.lua and spec/lookup_spec.lua.
local function user_folder(dir, cmod)
  assert(os.execute(("mkdir -p %s/playbooks %s/spec"):format(q(dir), q(dir))))
  write(dir .. "/playbooks/lookup.lua", PLAYBOOK)
  write(dir .. "/spec/lookup_spec.lua", user_spec(cmod))
end

describe("cmake --install", function()
  local prefix = H.tmp() .. "/prefix"
  local user = H.tmp() .. "/user folder"
  local env = ("env -i HOME=%s PATH=%s %s"):format(q(user), q(prefix .. "/bin:/usr/bin:/bin"), sanitizer_env())
  local cmod = prefix .. "/lib/lua/5.4/luasoar.so"

  setup(function()
    local out, code = sh(("cmake --install %s --prefix %s"):format(q(build), q(prefix)))
    assert.equal(0, code, out)
    user_folder(user, cmod)
  end)

  it("installs the executable, the module, the LuaLS definitions, the docs and the examples", function()
    for _, f in ipairs{"bin/luasoar", "lib/lua/5.4/luasoar.so", "share/luasoar/lls/phantom.lua",
                       "share/doc/luasoar/README.md", "share/doc/luasoar/api.md",
                       "share/luasoar/examples/playbooks/geolocate_example.lua",
                       "share/luasoar/examples/spec/geolocate_example_spec.lua",
                       "share/luasoar/lls/luasoar_testing.lua"} do
      assert.is_true(exists(prefix .. "/" .. f), f .. " not installed")
    end
    -- the definitions are Lua that compiles
    assert(loadfile(prefix .. "/share/luasoar/lls/phantom.lua"))
    assert(loadfile(prefix .. "/share/luasoar/lls/luasoar_testing.lua"))
  end)

  it("installs examples whose specs pass in a copy of them", function()
    local copy = H.tmp() .. "/my_playbooks"
    local out, code = sh(("cp -r %s %s && cd / && %s luasoar test %s"):format(
      q(prefix .. "/share/luasoar/examples"), q(copy), env, q(copy)))
    assert.equal(0, code, out)
    assert.matches(" 0 failures / 0 errors", out, 1, true)
  end)

  it("lets `luasoar test` run a user's folder with only the prefix on PATH", function()
    local out, code = sh(("cd %s && %s luasoar test ."):format(q(user), env))
    assert.equal(0, code, out)
    assert.matches("1 success / 0 failures / 0 errors", out, 1, true)
    -- and a folder named on the command line, from elsewhere
    out, code = sh(("cd / && %s luasoar test %s"):format(env, q(user)))
    assert.equal(0, code, out)
    assert.matches("1 success / 0 failures / 0 errors", out, 1, true)
  end)

  it("lets plain busted run it with the prefix's module folder on LUA_CPATH", function()
    -- ";;" keeps lua5.4's default folders (busted's own C modules); the
    -- prefix comes first and the spec checks the module is the prefix's
    local cpath = prefix .. "/lib/lua/5.4/?.so;;"
    local out, code = sh(("cd %s && %s LUA_CPATH=%s busted"):format(q(user), env, q(cpath)))
    assert.equal(0, code, out)
    assert.matches("1 success / 0 failures / 0 errors", out, 1, true)
  end)

  it("says where it looked when the module is missing", function()
    local bare = H.tmp() .. "/bare"
    assert(os.execute(("mkdir -p %s/bin && cp %s %s/bin/"):format(q(bare), q(prefix .. "/bin/luasoar"), q(bare))))
    local out, code = sh(("cd %s && env -i PATH=%s %s %s/bin/luasoar test ."):format(
      q(user), q("/usr/bin:/bin"), sanitizer_env(), q(bare)))
    assert.equal(2, code, out)
    assert.matches("the luasoar module (luasoar.so) is neither beside the executable", out, 1, true)
  end)
end)

describe("cpack -G DEB", function()
  local _, has_cpack = sh("command -v cpack && command -v dpkg-deb")
  local it_deb = has_cpack == 0 and it or pending

  it_deb("builds a .deb that depends on the Debian packages luasoar needs and works unpacked", function()
    local dir = H.tmp() .. "/deb"
    local out, code = sh(("cd %s && cpack -G DEB -B %s"):format(q(build), q(dir)))
    assert.equal(0, code, out)
    local deb = out:match("package: (%S+%.deb) generated")
    assert.truthy(deb, out)
    local depends, names = sh("dpkg-deb -f " .. q(deb) .. " Depends"), {}
    for item in depends:gmatch("[^,]+") do names[item:match("^%s*([^%s(]+)")] = true end
    for _, pkg in ipairs{"libc6", "liblua5.4-0", "libuv1", "libyajl2", "libsqlite3-0", "libmicrohttpd12",
                         "lua5.4", "lua-busted"} do
      assert.is_true(names[pkg], pkg .. " missing from Depends: " .. depends)
    end
    local files = sh("dpkg-deb -c " .. q(deb))
    local arch = sh("dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine"):match("%S+")
    local multiarch = "./usr/lib/" .. arch .. "/lua/5.4/luasoar.so"
    assert.matches("./usr/bin/luasoar", files, 1, true)
    assert.matches(multiarch, files, 1, true)
    assert.matches("./usr/share/luasoar/lls/phantom.lua", files, 1, true)
    -- the unpacked tree's luasoar finds its module under its own prefix
    local root = dir .. "/root"
    out, code = sh(("dpkg-deb -x %s %s"):format(q(deb), q(root)))
    assert.equal(0, code, out)
    local other = H.tmp() .. "/deb user"
    user_folder(other, root .. multiarch:sub(2))
    out, code = sh(("cd %s && env -i HOME=%s PATH=%s %s luasoar test ."):format(
      q(other), q(other), q(root .. "/usr/bin:/usr/bin:/bin"), sanitizer_env()))
    assert.equal(0, code, out)
    assert.matches("1 success / 0 failures / 0 errors", out, 1, true)
  end)
end)
