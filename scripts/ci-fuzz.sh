#!/bin/sh
# Builds the libFuzzer targets in fuzz/ with clang (address and undefined
# behaviour sanitizers, every report fatal) into build-fuzz/ (or $1), and
# runs each from its committed seed corpus in fuzz/corpus/<target>/ (every
# folder there is a target: fuzz_iphlp_rows, the Windows table converter,
# runs here too, built against fuzz/win_shim/). Fails on any crash, leak,
# timeout or sanitizer report; the reproducer is left in build-fuzz/artifacts/.
#
# Time-boxed: FUZZ_JOBS targets run at once (default 2, one per core), each
# lane of targets one after another within FUZZ_BUDGET / FUZZ_JOBS seconds
# (FUZZ_BUDGET default 180: 90 s of wall time), split evenly between the
# lane's targets. FUZZ_SECONDS, when set, is the time of each target instead.
set -eu
cd "$(dirname "$0")/.."
dir="${1:-build-fuzz}"
jobs="${FUZZ_JOBS:-2}"
budget="${FUZZ_BUDGET:-180}"

# Debian 12: clang-14 ships libFuzzer's runtime in libclang-rt-14-dev
# (libclang_rt.fuzzer-x86_64.a); libfuzzer-14-dev is only the standalone
# libFuzzer.a, which -fsanitize=fuzzer does not use.
sh scripts/install-deps.sh libclang-rt-14-dev

flags="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
CC=clang cmake -S . -B "$dir" -DCONNHIST_FUZZ=ON -DBUILD_TESTING=OFF -DCONNHIST_WERROR=ON \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="$flags" >/dev/null
targets=$(cd fuzz/corpus && ls)
# shellcheck disable=SC2086 # one word per target
cmake --build "$dir" -j2 --target $targets >/dev/null

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
mkdir -p "$dir/artifacts"
rm -f "$dir"/*.failed

# Runs one target for $2 seconds; a failure leaves $dir/TARGET.failed.
fuzz_one() {
    target=$1
    seeds="fuzz/corpus/$target"
    work="$dir/corpus/$target" # grows while fuzzing; the committed seeds stay as they are
    mkdir -p "$work"
    if "$dir/fuzz/$target" "$work" "$seeds" -max_total_time="$2" -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/$target-" >"$dir/$target.log" 2>&1; then
        if grep -qE "ERROR: (Address|Undefined|Leak)Sanitizer|runtime error:" "$dir/$target.log"; then
            touch "$dir/$target.failed"
        fi
    else
        touch "$dir/$target.failed"
    fi
}

# Lane i (0-based) takes targets i, i + jobs, i + 2 * jobs, ...
lane() {
    mine="" n=0 i=0
    for target in $targets; do
        [ $((i % jobs)) -eq "$1" ] && mine="$mine $target" && n=$((n + 1))
        i=$((i + 1))
    done
    [ "$n" -eq 0 ] && return 0
    seconds="${FUZZ_SECONDS:-$((budget / jobs / n))}"
    for target in $mine; do
        fuzz_one "$target" "$seconds"
        echo "$target: ${seconds}s, $(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/$target.log") runs," \
            "peak RSS $(sed -n 's/^stat::peak_rss_mb: *//p' "$dir/$target.log") MB"
    done
}

pids=""
l=0
while [ "$l" -lt "$jobs" ]; do
    lane "$l" &
    pids="$pids $!"
    l=$((l + 1))
done
for pid in $pids; do
    wait "$pid"
done
failed=""
for target in $targets; do
    if [ -e "$dir/$target.failed" ]; then
        echo "=== $target ==="
        tail -60 "$dir/$target.log"
        failed="$failed $target"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzzing failed:$failed (reproducers in $dir/artifacts/)" >&2
    exit 1
fi
echo "fuzzing: no crashes, no sanitizer reports"
