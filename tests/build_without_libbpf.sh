#!/bin/sh
# Builds connhist-record where CMake finds no libbpf (pkg-config pointed at an
# empty directory, as on a machine without libbpf-dev; nor libpcap and ldns,
# so the DNS names are left out too), warnings as errors,
# and checks the result: CMake said it leaves the owner events out, the
# program links no libbpf, --version says so, and a recording run works and
# notes why its short-lived sockets have no owner.
#   sh tests/build_without_libbpf.sh SOURCE_DIR BUILD_DIR C_COMPILER
set -eu
src=$1 out=$2 cc=$3
rm -rf "$out"
mkdir -p "$out"
PKG_CONFIG_LIBDIR="$out/no-pkgconfig" cmake -S "$src" -B "$out/build" -DCMAKE_C_COMPILER="$cc" \
    -DCONNHIST_WERROR=ON -DBUILD_TESTING=OFF >"$out/configure.log"
grep "WITHOUT the BPF owner events (missing: libbpf" "$out/configure.log"
# Nor libpcap and ldns there: the DNS names are left out too.
grep "WITHOUT the DNS names (missing: libpcap (libpcap-dev), ldns (libldns-dev))" "$out/configure.log"
nice cmake --build "$out/build" --target connhist-record -j2 >"$out/build.log"
record="$out/build/recorder/connhist-record"
if ldd "$record" | grep libbpf; then
    echo "connhist-record links libbpf although CMake left it out" >&2
    exit 1
fi
"$record" --version | tee "$out/version.txt"
grep -x "socket owner events: not built in (no libbpf (libbpf-dev) at build time)" "$out/version.txt"
grep -x "DNS names: not built in (no libpcap (libpcap-dev), ldns (libldns-dev) at build time)" "$out/version.txt"
"$record" --db "$out/connhist.db" --interval 200ms --duration 1s
notes=$(sqlite3 "$out/connhist.db" "SELECT notes FROM runs")
echo "notes: $notes"
case "$notes" in
*"socket owner events off: this connhist-record was built without them"*) ;;
*) echo "the run does not say why the owner events are off" >&2; exit 1 ;;
esac
case "$notes" in
*"DNS names off: this connhist-record was built without the DNS capture"*) ;;
*) echo "the run does not say why the DNS names are off" >&2; exit 1 ;;
esac
# --events bpf cannot be had: one line, exit 1, no run begun.
if "$record" --db "$out/bpf.db" --once --events bpf 2>"$out/bpf.err"; then
    echo "--events bpf started without the owner events" >&2
    exit 1
fi
cat "$out/bpf.err"
test "$(wc -l <"$out/bpf.err")" -eq 1
test "$(sqlite3 "$out/bpf.db" "SELECT COUNT(*) FROM runs")" -eq 0
echo "built and ran without libbpf"
