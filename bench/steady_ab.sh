#!/bin/sh
# The steady tick's CPU at 100,000 sockets with 1% churn, for an A/B of
# recorders in the same load: ten bench/load.py hold workers of 5,000
# connections each (10,000 descriptors a worker), each replacing 50 a
# second; then each recorder given as an argument, one after the other on
# a fresh database at a 1 s interval, its CPU time over SECONDS (default
# 20) of steady ticks from its 8th second, in ms per second
# (recorder_cpu.sh), and its resident memory at the end and at its peak;
# after each round of recorders, the raw sock_diag dump
# (bench/rawdump.c) paced a second apart, the floor the steady tick is
# measured against (issue 17: at most 1.5x). Run it in a network namespace
# of its own, so no other process's sockets count:
#   unshare -n sh bench/steady_ab.sh A B A B
# ROUNDS=N repeats the whole list N times (default 1).
set -e
here=$(cd "$(dirname "$0")" && pwd)
seconds=${SECONDS_STEADY:-20}
rounds=${ROUNDS:-1}
tmp=/tmp/steady_ab.$$
mkdir -p "$tmp"
${CC:-cc} -O2 -Wall -Wextra -o "$tmp/rawdump" "$here/rawdump.c"
ip link set lo up
. "$here/hold_load.sh"
hold_load "$tmp" 50
. "$here/recorder_cpu.sh"
r=0
while [ "$r" -lt "$rounds" ]; do
    for exe in "$@"; do
        echo "$exe $(recorder_cpu "$exe" 8 "$seconds" "$tmp/db") load=$(cut -d' ' -f1 /proc/loadavg)"
    done
    "$tmp/rawdump" 20 1000 | awk '{ printf "rawdump paced_cpu_ms=%s sockets=%s\n", $6, $2 }'
    r=$((r + 1))
done
kill $hold_pids
wait 2>/dev/null || true
rm -rf "$tmp"
