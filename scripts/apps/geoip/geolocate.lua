-- geolocate.lua: the "geolocate ip" action of the GeoIP app (runner exec).
-- Reads the luasoar exec request on stdin, looks every IP up in Debian's
-- GeoIP country database with geoiplookup (no network), and prints
-- {"action_results": [...]}, one result per parameter set, in order.
local cjson = require "cjson"

local function private_v4(a, b)
  return a == 10 or a == 127 or (a == 172 and b >= 16 and b <= 31)
      or (a == 192 and b == 168) or (a == 169 and b == 254) or a == 0 or a >= 224
end

-- "v4" / "v6" for a well-formed address, or nil; a checked address is the
-- only thing that ever reaches the command line.
local function ip_version(ip)
  local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a then
    for _, o in ipairs({a, b, c, d}) do
      if tonumber(o) > 255 or (#o > 1 and o:sub(1, 1) == "0") then return nil end
    end
    return "v4", tonumber(a), tonumber(b)
  end
  if ip:find(":") and ip:match("^[%x:%.]+$") and #ip <= 45 then return "v6" end
  return nil
end

local function lookup(ip, version)
  local cmd = (version == "v6" and "geoiplookup6 " or "geoiplookup ") .. ip .. " 2>&1"
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  local code, name = out:match("Edition: (%u%u), ([^\n]+)")
  return code, name, out
end

local function geolocate(param)
  local ip = param.ip
  if type(ip) ~= "string" then
    return {status = "failed", message = "parameter 'ip' must be a string"}
  end
  local version, a, b = ip_version(ip)
  if not version then
    return {status = "failed", message = "not an IP address: " .. ip}
  end
  if version == "v4" and private_v4(a, b) then
    return {status = "failed", message = "Private IP"}
  end
  local code, name, raw = lookup(ip, version)
  if not code then
    if raw:find("not found") then
      return {status = "failed", message = "IP address not found in the GeoIP database"}
    end
    return {status = "failed", message = "geoiplookup: " .. raw:gsub("%s+$", "")}
  end
  return {
    status = "success",
    message = "Country: " .. name,
    data = {{country_iso_code = code, country_name = name}},
    summary = {country = name},
  }
end

local ok, request = pcall(cjson.decode, io.read("a"))
if not ok or type(request) ~= "table" or type(request.parameters) ~= "table" then
  io.stderr:write("geolocate: the request on stdin is not a luasoar exec request\n")
  os.exit(3)
end
local results = {}
for i, param in ipairs(request.parameters) do results[i] = geolocate(param) end
-- lua-cjson writes an empty table as {}: results without data simply omit it
io.write(cjson.encode({action_results = results}), "\n")
