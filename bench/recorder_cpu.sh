# Sourced by steady_ab.sh and idle_ab.sh: recorder_cpu EXE WARMUP SECONDS DB
# runs the recorder EXE on a fresh database DB at a 1 s interval and prints
# "cpu_ms_per_s=C rss_kib=R hwm_kib=H": its CPU time over SECONDS from its
# WARMUP-th second, in ms per second of wall time (three decimals), read
# from /proc/PID/task/*/schedstat (time on a CPU in nanoseconds, where the
# clock-tick counters of /proc/PID/stat, 10 ms, are too coarse for an idle
# recorder); then its resident memory at the end (VmRSS) and its peak
# (VmHWM, the first tick's), in KiB.
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
    rc_mem=$(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { printf "rss_kib=%s hwm_kib=%s", r, h }' /proc/$rc_pid/status)
    kill $rc_pid
    wait $rc_pid || true
    awk -v c0="$rc_c0" -v c1="$rc_c1" -v t0="$rc_t0" -v t1="$rc_t1" -v mem="$rc_mem" \
        'BEGIN { printf "cpu_ms_per_s=%.3f %s\n", (c1 - c0) / 1e6 / (t1 - t0), mem }'
}
