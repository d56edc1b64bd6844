"""The MaxMind fixture app of spec/fixtures/apps/maxmind/app.lua, in Python,
for the peer engine: the same checks and the same result, line for line."""
import re

known = {
    "8.8.8.8": ("United States", "US"),
    "1.2.3.4": ("Australia", "AU"),
}
_172 = re.compile(r"^172\.(\d+)\.")


def private(ip):
    if ip.startswith("10.") or ip.startswith("192.168."):
        return True
    m = _172.match(ip)
    return bool(m) and 16 <= int(m.group(1)) <= 31


def geolocate_ip(param, asset):
    if asset["config"].get("fail"):
        return {"status": "failed", "message": "asset unavailable", "data": [], "summary": {}}
    if asset["config"].get("raise"):
        raise RuntimeError("boom from the app")
    ip = param["ip"]
    if private(ip):
        return {"status": "failed", "message": "Private IP", "data": [], "summary": {}}
    k = known.get(ip) or ("Unknown", "ZZ")
    return {"status": "success", "message": "Country: " + k[0],
            "data": [{"country_name": k[0], "country_iso_code": k[1]}],
            "summary": {"country": k[0]}}


actions = {"geolocate ip": geolocate_ip}
