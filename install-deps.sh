#!/bin/sh
# Installs the Debian packages luasoar needs to build, run and test.
# Safe to run again: it only calls apt-get when something is missing.
set -eu
PKGS="build-essential cmake pkg-config liblua5.4-dev lua5.4 lua-cjson lua-busted \
libuv1-dev libsqlite3-dev libyajl-dev libmicrohttpd-dev geoip-bin geoip-database curl \
sqlite3 clang libclang-rt-14-dev valgrind perl python3 \
python3-requests python3-bs4 python3-magic python3-validators python3-xmltodict python3-dnspython \
dnsmasq-base libpq-dev postgresql chromium chromium-driver python3-selenium"
# python3-*: what SOAR connectors commonly import (the http and dns connectors
# of the tests); dnsmasq-base: the DNS server the dns connector's spec asks;
# libpq-dev: the PostgreSQL backend of the store; postgresql: the server its specs start;
# chromium, chromium-driver, python3-selenium: the browser the web view's spec drives
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "install-deps: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
