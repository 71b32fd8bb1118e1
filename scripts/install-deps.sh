#!/bin/sh
# Installs what connhist needs to build and test on Debian 12 (as root, or
# through sudo), and the packages given as arguments (the CI jobs' extra
# tools). Only packages that are missing are installed.
set -eu
# libbpf-dev, bpftool and clang build the recorder's BPF owner events (Linux).
# chromium opens the HTML timeline in tests/test_html.py (headless, no network).
# libssl-dev: SHA-1 of the Community ID (connhist-query export --format ecs),
# SHA-256 and HMAC of the chain (OpenSSL's libcrypto).
# libpcap-dev and libldns-dev build its DNS capture; dnsmasq-base is the resolver
# the names tests and the benchmark start on loopback (never as a service).
PACKAGES="cmake make gcc clang pkg-config libsqlite3-dev libcjson-dev libssl-dev sqlite3 python3 iproute2 util-linux
          libbpf-dev bpftool chromium libpcap-dev libldns-dev dnsmasq-base $*"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm (and node with it) fetches the ECS field definitions the export tests
# check against (npm pack @elastic/ecs); it may come from elsewhere than Debian.
command -v npm >/dev/null || missing="$missing npm"
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing:$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
