#!/bin/sh
# Installs what connhist needs to build and test on Debian 12 (as root, or
# through sudo), and the packages given as arguments (the CI jobs' extra
# tools). Only packages that are missing are installed.
set -eu
# libbpf-dev, bpftool and clang build the recorder's BPF owner events (Linux);
# libssl-dev gives the chain its SHA-256 and HMAC (OpenSSL's libcrypto).
PACKAGES="cmake make gcc clang pkg-config libsqlite3-dev libcjson-dev sqlite3 python3 iproute2 util-linux
          libbpf-dev bpftool libssl-dev $*"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing:$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
