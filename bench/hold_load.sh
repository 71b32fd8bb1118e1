# Sourced by first_tick_rss.sh, steady_ab.sh and mass_close_rss.sh:
# hold_load DIR CHURN [WORKERS] starts WORKERS (default ten)
# bench/load.py hold workers of 5,000 connections each (both ends: 10,000
# sockets and descriptors a worker), each replacing CHURN of them a
# second, their output in DIR/load.W, and returns once all of them are
# ready; their pids are in hold_pids. The caller sets here (the bench
# folder).
hold_load() {
    hold_pids=""
    w=0
    while [ "$w" -lt "${3:-10}" ]; do
        python3 "$here/load.py" hold 127.10.$w.1 45001 5000 "$2" >"$1/load.$w" &
        hold_pids="$hold_pids $!"
        w=$((w + 1))
    done
    w=0
    while [ "$w" -lt "${3:-10}" ]; do
        while ! grep -q ready "$1/load.$w"; do sleep 0.5; done
        w=$((w + 1))
    done
}
