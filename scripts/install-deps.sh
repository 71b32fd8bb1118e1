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
# dpkg-dev (apt-get source) and the deb-src entries: the one-file build
# compiles cJSON from Debian's source package (scripts/cjson-archive.sh), since
# Debian ships it as a shared library only.
PACKAGES="cmake make gcc clang pkg-config binutils libsqlite3-dev libcjson-dev libssl-dev sqlite3 python3 iproute2
          util-linux libbpf-dev bpftool chromium libpcap-dev libldns-dev dnsmasq-base dpkg-dev $*"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! grep -rqs "^Types:.*deb-src\|^deb-src " /etc/apt/sources.list.d/ /etc/apt/sources.list; then
    # The same mirrors as the binary entries, for source packages.
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        echo "adding deb-src entries: /etc/apt/sources.list.d/connhist-deb-src.sources" >&2
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
            $SUDO tee /etc/apt/sources.list.d/connhist-deb-src.sources >/dev/null
    else
        echo "adding deb-src entries: /etc/apt/sources.list.d/connhist-deb-src.list" >&2
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list | $SUDO tee /etc/apt/sources.list.d/connhist-deb-src.list >/dev/null
    fi
    $SUDO apt-get update -qq
fi
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm (and node with it) fetches the ECS field definitions the export tests
# check against (npm pack @elastic/ecs); it may come from elsewhere than Debian.
command -v npm >/dev/null || missing="$missing npm"
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
