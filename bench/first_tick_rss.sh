#!/bin/sh
# Peak memory and CPU of the recorder's first tick (connhist-record --once)
# at 100,000 sockets: ten bench/load.py hold workers of 5,000 connections
# each (both ends: 10,000 descriptors a worker, under a 20,000 limit), then
# each recorder given as an argument, one after the other on a fresh
# database, under /usr/bin/time (maximum RSS, user and system CPU). The
# argument `ss` measures `ss -tanp` instead (the reference of the first
# tick's target), on the same sockets. Run it in a network namespace of its
# own, so no other recorder sees the sockets:
#   unshare -n sh bench/first_tick_rss.sh build/recorder/connhist-record OTHER... ss
# Give two recorders twice each (A B ss A B ss) for an A/B in the same load.
# Each recorder's lifetimes are summed up as a digest of everything but ids
# and times: recorders that record the same print the same digest.
# WORKERS=N holds N x 10,000 sockets instead of 10 x 10,000.
set -e
here=$(dirname "$0")
workers=${WORKERS:-10}
ip link set lo up
tmp=/tmp/first_tick_rss.$$
mkdir -p "$tmp"
. "$here/hold_load.sh"
hold_load "$tmp" 0 "$workers"
db=$tmp/db
for exe in "$@"; do
    if [ "$exe" = ss ]; then
        /usr/bin/time -f "ss -tanp maxrss_kb=%M user_s=%U sys_s=%S wall_s=%e" ss -tanp 2>&1 >/dev/null | tail -1
        continue
    fi
    rm -f "$db" "$db-wal" "$db-shm"
    /usr/bin/time -f "$exe maxrss_kb=%M user_s=%U sys_s=%S wall_s=%e" "$exe" --db "$db" --once 2>&1 | tail -1
    # What was recorded, but for ids and times: the same digest for two
    # recorders means they recorded the same lifetimes with the same owners.
    digest=$(sqlite3 "$db" "SELECT proto, family, local_addr, local_port, remote_addr, remote_port, state,
        pid, proc_start, holders, owner_source, socket_uid, inode, cookie FROM v_lifetimes
        ORDER BY cookie, local_addr, local_port" | md5sum | cut -c1-12)
    echo "lifetimes: $(sqlite3 "$db" 'SELECT count(*) FROM lifetimes') (digest $digest)"
done
# shellcheck disable=SC2086 # one word per pid
kill $hold_pids
wait
rm -rf "$tmp"
