-- app.lua: the IP Info app (runner lua).  "classify ip" tells what kind of
-- address an IPv4 address is (RFC 1918 private, loopback, link-local,
-- multicast, public) without any network access.
local ranges = {
  {0x0A000000, 8, "private"}, {0xAC100000, 12, "private"}, {0xC0A80000, 16, "private"},
  {0x7F000000, 8, "loopback"}, {0xA9FE0000, 16, "link-local"}, {0xE0000000, 4, "multicast"},
  {0x00000000, 8, "unspecified"}, {0x64400000, 10, "shared"},
}

local function parse(ip)
  local o = {tostring(ip):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")}
  if #o ~= 4 then return nil end
  local n = 0
  for _, part in ipairs(o) do
    local v = tonumber(part)
    if v > 255 then return nil end
    n = n * 256 + v
  end
  return n
end

local function classify(param, asset)
  local n = parse(param.ip)
  if not n then
    return {status = "failed", message = "not an IPv4 address: " .. tostring(param.ip)}
  end
  local scope = "public"
  for _, r in ipairs(ranges) do
    local base, bits, name = r[1], r[2], r[3]
    if n >> (32 - bits) == base >> (32 - bits) then scope = name break end
  end
  return {
    status = "success",
    message = param.ip .. " is " .. scope,
    data = {{ip = param.ip, scope = scope, integer = n}},
    summary = {scope = scope, public = scope == "public"},
  }
end

return {["classify ip"] = classify}
