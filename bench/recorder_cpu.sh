# Sourced by steady_ab.sh and idle_ab.sh: recorder_cpu EXE WARMUP SECONDS DB
# runs the recorder EXE on a fresh database DB at a 1 s interval and prints
# its CPU time over SECONDS from its WARMUP-th second, in ms per second of
# wall time (three decimals), read from /proc/PID/task/*/schedstat: time on
# a CPU in nanoseconds, where the clock-tick counters of /proc/PID/stat
# (10 ms) are too coarse for an idle recorder.
recorder_cpu_ns() {
    cat /proc/"$1"/task/*/schedstat | awk '{ ns += $1 } END { printf "%.0f\n", ns }'
}

recorder_cpu() {
    rm -f "$4" "$4-wal" "$4-shm"
    "$1" --db "$4" --interval 1s 2>/dev/null &
    rc_pid=$!
    sleep "$2"
    rc_c0=$(recorder_cpu_ns $rc_pid)
    rc_t0=$(date +%s.%N)
    sleep "$3"
    rc_c1=$(recorder_cpu_ns $rc_pid)
    rc_t1=$(date +%s.%N)
    kill $rc_pid
    wait $rc_pid || true
    awk -v c0="$rc_c0" -v c1="$rc_c1" -v t0="$rc_t0" -v t1="$rc_t1" 'BEGIN { printf "%.3f\n", (c1 - c0) / 1e6 / (t1 - t0) }'
}
