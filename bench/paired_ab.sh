#!/bin/sh
# The steady tick of two recorders measured at the same time on the same
# load, with the raw dump beside them: an A/B that the drift of the load
# and of the machine between one recorder's run and the next (steady_ab.sh
# runs them one after the other) does not blur. For each round, A and B
# each on a fresh database at a 1 s interval, with ten bench/load.py hold
# workers of 5,000 connections (100,000 sockets, and the churn's TIME_WAIT
# entries), each replacing 50 of them a second; from their 8th second, 20 s
# of their CPU (schedstat) while rawdump dumps every second beside them. It
# prints A's and B's CPU in ms a second, the raw dump's CPU per dump, and
# each recorder's ratio to it (issue 17, item 3). Run it in a network
# namespace of its own, as root:
#   unshare -n sh bench/paired_ab.sh A B [ROUNDS]
set -e
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
${CC:-cc} -O2 -Wall -Wextra -o "$tmp/rawdump" "$here/rawdump.c"
ip link set lo up
. "$here/hold_load.sh"
hold_load "$tmp" 50
. "$here/recorder_cpu.sh"
r=0
while [ "$r" -lt "${3:-3}" ]; do
    rm -f "$tmp"/a.db* "$tmp"/b.db*
    "$1" --db "$tmp/a.db" --interval 1s 2>/dev/null &
    a=$!
    "$2" --db "$tmp/b.db" --interval 1s 2>/dev/null &
    b=$!
    sleep 8
    a0=$(recorder_cpu_ns $a)
    b0=$(recorder_cpu_ns $b)
    t0=$(date +%s.%N)
    "$tmp/rawdump" 20 1000 >"$tmp/raw" &
    raw=$!
    sleep 20
    a1=$(recorder_cpu_ns $a)
    b1=$(recorder_cpu_ns $b)
    t1=$(date +%s.%N)
    wait $raw
    kill $a $b
    wait $a $b || true
    awk -v a0="$a0" -v a1="$a1" -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" \
        -v load="$(cut -d' ' -f1 /proc/loadavg)" '{
            a = (a1 - a0) / 1e6 / (t1 - t0); b = (b1 - b0) / 1e6 / (t1 - t0)
            printf "round %d: A %.1f ms/s, B %.1f ms/s, raw dump %.1f ms (%d sockets): A/raw %.2fx, B/raw %.2fx, load %s\n",
                   r, a, b, $6, $2, a / $6, b / $6, load
        }' r="$r" "$tmp/raw"
    r=$((r + 1))
done
# shellcheck disable=SC2086 # one word per pid
kill $hold_pids
wait 2>/dev/null || true
rm -rf "$tmp"
