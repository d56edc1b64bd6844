#!/bin/sh
# Makes the screenshots of the web view that the README shows (docs/web/*.png):
# a server over a temporary folder (the specs' slow app; a triage playbook
# that waits for an approval), a few containers, then headless Chromium
# through spec/web_view.py.  Run from the repository's root after a build.
set -eu
dir=$(mktemp -d)
port=${PORT:-28420}
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
mkdir -p "$dir/scripts/playbooks"
cp -r spec/fixtures/serve/apps "$dir/scripts/"
cp spec/fixtures/serve/assets.json "$dir/scripts/"
cat > "$dir/scripts/playbooks/triage.lua" <<'LUA'
playbook_info = {labels = {"events"}, active = true}
function on_start(c)
  phantom.debug("triage of " .. c.name)
  phantom.act("wait", {parameters = {{seconds = 1.5}}, assets = {"slow"}, callback = enrich, name = "enrich sender"})
end
function enrich(kw)
  phantom.debug("sender enriched: " .. kw.results[1].message)
  phantom.act("wait", {parameters = {{seconds = 0.5}}, assets = {"slow"}, reviewer = "admin", callback = block,
                       name = "block sender"})
end
function block(kw) phantom.debug("sender blocked: " .. kw.results[1].status) end
LUA
./build/luasoar serve --scripts "$dir/scripts" --db "$dir/luasoar.db" --listen "127.0.0.1:$port" 2>"$dir/serve.log" &
pid=$!
sleep 1
token=$(cat "$dir/luasoar.db.token")
for name in "Phishing report from j.doe" "Impossible travel: a.smith" "Malware beacon on host WS-0142"; do
  curl -s -H "ph-auth-token: $token" -d "{\"name\": \"$name\", \"label\": \"events\"}" \
    "http://127.0.0.1:$port/rest/container" >/dev/null
done
sleep 2.5
/usr/bin/python3 spec/web_view.py "http://127.0.0.1:$port" "$token" --shots docs/web \
  --name "Suspicious login from 203.0.113.7" >/dev/null
echo "docs/web: $(ls docs/web/*.png | tr '\n' ' ')"
