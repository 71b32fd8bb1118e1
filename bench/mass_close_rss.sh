#!/bin/sh
# Resident memory of a continuous recorder through a mass close, for an
# A/B of recorders: for each recorder given as an argument, ten
# bench/load.py hold workers of 5,000 connections each (both ends: 100,000
# sockets), the recorder on a fresh database at a 1 s interval, then every
# worker stopped at once (SIGTERM: each closes its connections with RST, so
# no TIME_WAIT entry is left for the next recorder). It prints, in KiB, the
# recorder's VmRSS before the close, its peak from then on (VmHWM, reset
# before the close: Linux 4.0 on) and its VmRSS 10 s later, the
# lifetimes written (all, still open) and how many of them repeat another's
# cookie (a socket recorded twice). Run it in a network namespace of its
# own, as root (clear_refs):
#   unshare -n sh bench/mass_close_rss.sh A B A B
set -e
here=$(cd "$(dirname "$0")" && pwd)
. "$here/hold_load.sh"
ip link set lo up
for exe in "$@"; do
    tmp=$(mktemp -d)
    hold_load "$tmp" 0
    "$exe" --db "$tmp/db" --interval 1s 2>/dev/null &
    rec=$!
    sleep 8
    echo 5 >/proc/$rec/clear_refs
    before=$(awk '/^VmRSS:/ { print $2 }' /proc/$rec/status)
    # shellcheck disable=SC2086 # one word per pid
    kill $hold_pids
    sleep 6
    peak=$(awk '/^VmHWM:/ { print $2 }' /proc/$rec/status)
    sleep 10
    after=$(awk '/^VmRSS:/ { print $2 }' /proc/$rec/status)
    kill $rec
    wait $rec || true
    lifetimes=$(sqlite3 "$tmp/db" "SELECT count(*) || ' ' || total(closed_after IS NULL) FROM lifetimes")
    # A socket recorded twice (two lifetimes with one cookie) is a bug.
    twice=$(sqlite3 "$tmp/db" "SELECT count(*) - count(DISTINCT cookie) FROM lifetimes WHERE cookie IS NOT NULL")
    echo "$exe before_kib=$before peak_kib=$peak after_10s_kib=$after lifetimes(all,open)=$lifetimes recorded_twice=$twice"
    wait 2>/dev/null || true
    rm -rf "$tmp"
    sleep 3
done
