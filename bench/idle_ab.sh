#!/bin/sh
# The idle cost (issue 17: at most 0.3% of a core at 1,000 sockets and a
# 1 s interval), for an A/B of recorders in the same minutes: one
# bench/load.py hold worker of 500 connections (1,000 sockets, no churn),
# then each recorder given as an argument, one after the other on a fresh
# database at a 1 s interval, its CPU time over SECONDS_IDLE (default 60)
# from its 5th second (recorder_cpu.sh: nanoseconds from schedstat);
# after each round of recorders, the raw sock_diag dumps (bench/rawdump.c)
# paced a second apart, as many. Run it as root in a
# network namespace of its own, so no other process's sockets move:
#   unshare -n sh bench/idle_ab.sh A B A B
# ROUNDS=N repeats the whole list N times (default 1).
set -e
here=$(cd "$(dirname "$0")" && pwd)
seconds=${SECONDS_IDLE:-60}
rounds=${ROUNDS:-1}
tmp=/tmp/idle_ab.$$
mkdir -p "$tmp"
${CC:-cc} -O2 -Wall -Wextra -o "$tmp/rawdump" "$here/rawdump.c"
ip link set lo up
python3 "$here/load.py" hold 127.10.0.1 45001 500 0 >"$tmp/load" &
load=$!
while ! grep -q ready "$tmp/load"; do sleep 0.5; done
. "$here/recorder_cpu.sh"
r=0
while [ "$r" -lt "$rounds" ]; do
    for exe in "$@"; do
        out=$(recorder_cpu "$exe" 5 "$seconds" "$tmp/db")
        ms=${out#cpu_ms_per_s=}
        ms=${ms%% *}
        echo "$exe idle_share=$(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 10 }')% ${out#* } load=$(cut -d' ' -f1 /proc/loadavg)"
    done
    "$tmp/rawdump" "$seconds" 1000 | awk '{ printf "rawdump paced idle_share=%.3f%% sockets=%s\n", $6 / 10, $2 }'
    r=$((r + 1))
done
kill $load
wait 2>/dev/null || true
rm -rf "$tmp"
