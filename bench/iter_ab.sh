#!/bin/sh
# The dump's floor two ways on the same load (issue 17, item 3): the raw
# sock_diag dump (bench/rawdump.c, what connhist-record reads today) and
# the BPF iterators' compact records (bench/iterdump.c, root only), each
# paced a second apart as a recorder's ticks are, alternating ROUNDS times
# (default 3) on ten bench/load.py hold workers of 5,000 connections (100,000
# sockets, and the churn's TIME_WAIT entries), each replacing 50 a second.
# Builds iterdump against the running kernel (bpftool, clang, libbpf-dev).
# Run it in a network namespace of its own, as root:
#   unshare -n sh bench/iter_ab.sh
set -e
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
${CC:-cc} -O2 -Wall -Wextra -o "$tmp/rawdump" "$here/rawdump.c"
bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$tmp/vmlinux.h"
clang -g -O2 -target bpf -Wall -Wextra -I"$tmp" -I"$here" -idirafter "/usr/include/$(gcc -print-multiarch)" \
    -c "$here/iterdump.bpf.c" -o "$tmp/iterdump.bpf.o"
bpftool gen skeleton "$tmp/iterdump.bpf.o" name iterdump_bpf >"$tmp/iterdump.skel.h"
${CC:-cc} -O2 -Wall -Wextra -I"$tmp" -I"$here" -o "$tmp/iterdump" "$here/iterdump.c" -lbpf
ip link set lo up
. "$here/hold_load.sh"
hold_load "$tmp" 50
sleep 5 # the churn's TIME_WAIT entries build up
r=0
while [ "$r" -lt "${ROUNDS:-3}" ]; do
    echo "round $r rawdump  $("$tmp/rawdump" 10 1000)"
    echo "round $r iterdump $("$tmp/iterdump" 10 1000)"
    r=$((r + 1))
done
# shellcheck disable=SC2086 # one word per pid
kill $hold_pids
wait 2>/dev/null || true
rm -rf "$tmp"
