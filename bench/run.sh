#!/bin/sh
# Runs the connhist benchmark: sh bench/run.sh [--quick] [bench.py options]
# or the owners benchmark (issue 13): sh bench/run.sh --owners [owners.py options]
# Builds connhist-record, connhist-query, connhist-genstore (into build-bench/) and bench/rawdump,
# installs ss/lsof when missing, then runs bench/bench.py (see bench/README.md).
# Results go to stdout and to $BENCH_OUT/results.md (default /tmp/connhist-bench).
set -eu
cd "$(dirname "$0")/.."
dir="${BENCH_BUILD:-build-bench}"
out="${BENCH_OUT:-/tmp/connhist-bench}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=""
command -v ss >/dev/null 2>&1 || missing="$missing iproute2"
command -v lsof >/dev/null 2>&1 || missing="$missing lsof"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
command -v bpftrace >/dev/null 2>&1 || missing="$missing bpftrace"
if [ -n "$missing" ]; then
    $sudo apt-get update -qq && $sudo apt-get install -y -qq $missing
fi
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j"$(nproc)" --target connhist-record connhist-query connhist-genstore connhist-churn >/dev/null
mkdir -p "$out"
if [ "${1:-}" = "--owners" ]; then
    shift
    exec python3 bench/owners.py --record "$dir/recorder/connhist-record" --churn "$dir/bench/connhist-churn" \
        --out "$out/owners" "$@"
fi
${CC:-cc} -O2 -Wall -Wextra -o "$out/rawdump" bench/rawdump.c
exec python3 bench/bench.py --record "$dir/recorder/connhist-record" --query "$dir/query/connhist-query" \
    --genstore "$dir/bench/connhist-genstore" --rawdump "$out/rawdump" --out "$out" "$@"
