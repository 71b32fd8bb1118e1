#!/bin/sh
# Builds the libFuzzer targets in fuzz/ with clang (address and undefined
# behaviour sanitizers, every report fatal) into build-fuzz/ (or $1), and
# runs each for FUZZ_SECONDS (default 60) from its committed seed corpus in
# fuzz/corpus/<target>/ (every folder there is a target: fuzz_iphlp_rows,
# the Windows table converter, runs here too, built against fuzz/win_shim/).
# Fails on any crash, leak, timeout or sanitizer
# report; the reproducer is left in build-fuzz/artifacts/.
set -eu
cd "$(dirname "$0")/.."
dir="${1:-build-fuzz}"
seconds="${FUZZ_SECONDS:-60}"

# Debian 12: clang-14 ships libFuzzer's runtime in libclang-rt-14-dev
# (libclang_rt.fuzzer-x86_64.a); libfuzzer-14-dev is only the standalone
# libFuzzer.a, which -fsanitize=fuzzer does not use.
sh scripts/install-deps.sh libclang-rt-14-dev

flags="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
CC=clang cmake -S . -B "$dir" -DCONNHIST_FUZZ=ON -DBUILD_TESTING=OFF -DCONNHIST_WERROR=ON \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="$flags" >/dev/null
targets=$(cd fuzz/corpus && ls)
# shellcheck disable=SC2086 # one word per target
nice cmake --build "$dir" -j2 --target $targets >/dev/null

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
mkdir -p "$dir/artifacts"
failed=""
for target in $targets; do
    seeds="fuzz/corpus/$target"
    work="$dir/corpus/$target" # grows while fuzzing; the committed seeds stay as they are
    mkdir -p "$work"
    echo "=== $target: ${seconds}s ==="
    if nice "$dir/fuzz/$target" "$work" "$seeds" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/$target-" >"$dir/$target.log" 2>&1; then
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$dir/$target.log" || true
        if grep -qE "ERROR: (Address|Undefined|Leak)Sanitizer|runtime error:" "$dir/$target.log"; then
            tail -40 "$dir/$target.log"
            failed="$failed $target"
        fi
    else
        tail -60 "$dir/$target.log"
        failed="$failed $target"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzzing failed:$failed (reproducers in $dir/artifacts/)" >&2
    exit 1
fi
echo "fuzzing: no crashes, no sanitizer reports"
