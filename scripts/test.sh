#!/bin/sh
# The whole test suite, on a Debian 12 machine (root, or sudo for packages):
#
#   sh scripts/test.sh          everything (what CI runs: .ci/run)
#   sh scripts/test.sh --quick  the gcc build and all its tests, campaigns short
#
# Everything is, after installing what is missing:
#   gcc      build (warnings are errors), every test, the fault campaigns
#            (tests/test_faults.py) at full length;
#   clang    the clang build (warnings are errors), its unit tests and the
#            recorder's and query tool's integration tests (asan runs
#            every test with clang);
#   windows  the Windows programs cross-built, their tests under Wine;
#   asan     every test under AddressSanitizer + UBSan, campaigns short;
#   valgrind the integration tests with both programs under valgrind memcheck;
#   fuzz     each libFuzzer target, time-boxed (scripts/ci-fuzz.sh);
#   lint     cppcheck over the programs' sources (scripts/lint.sh).
# gcc's tests, asan's, clang's and lint run one after another. The asan
# and clang builds, fuzzing and valgrind, which keep cores busy, run one
# after another beside them; windows runs in whichever of the two lanes is free first: most
# tests wait on a recorder and leave the cores idle, and every test
# tolerates a loaded machine. ctest runs each
# build's tests in parallel (CTEST_JOBS, default 4). Nothing is niced here:
# on a shared machine, run the whole script under nice.
#
# Each phase writes build-ci/PHASE.log; the end of a failed phase's log is
# printed when it fails, and a table of every phase's wall time ends the run.
# One test: (cd build-gcc && ctest -R test_faults.SoakTest --output-on-failure).
set -eu
cd "$(dirname "$0")/.."
quick=0
case "${1:-}" in
--quick) quick=1 ;;
"") ;;
*)
    echo "usage: sh scripts/test.sh [--quick]" >&2
    exit 2
    ;;
esac
logs=build-ci
rm -rf "$logs"
mkdir -p "$logs"
t0=$(date +%s)

# What every phase needs, installed now: phases running side by side would
# wait on each other for apt's lock.
extra=""
if [ "$quick" -eq 0 ]; then
    extra="libclang-rt-14-dev valgrind gcc-mingw-w64-x86-64 wine64 dpkg-dev cppcheck clang-format clang-tidy"
    command -v npm >/dev/null || extra="$extra npm" # npm may come from elsewhere than Debian
fi
# shellcheck disable=SC2086 # one word per package
scripts/install-deps.sh $extra

# The tests run in network namespaces of their own (scripts/isolated.sh),
# where nothing can be fetched: the ECS field definitions that test_export
# checks against are fetched now, into the user's cache.
python3 -c 'import sys; sys.path.insert(0, "tests"); import test_export; test_export.ecs_definitions()'

# The fault campaigns at full length in one build, shorter in the others.
short="CONNHIST_SOAK_SECONDS=20 CONNHIST_FAULT_KILLS=20"
jobs="${CTEST_JOBS:-4}"

# phase NAME COMMAND...: runs COMMAND, output in build-ci/NAME.log, and
# records its status and wall time. Returns COMMAND's success.
phase() {
    name=$1
    shift
    start=$(date +%s)
    echo "[$((start - t0)) s] $name: started"
    if "$@" >"$logs/$name.log" 2>&1; then status=passed; else status=FAILED; fi
    end=$(date +%s)
    echo "$((start - t0)) $name $status $((end - start))" >>"$logs/phases"
    grep -E "tests passed|Total Test time|runs, peak RSS|^valgrind:|^sanitizers:|^fuzzing:|^built |^Ran |^OK|^skipped \(" \
        "$logs/$name.log" | sed "s/^/  $name: /" || true
    echo "[$((end - t0)) s] $name: $status in $((end - start)) s"
    if [ "$status" = FAILED ]; then
        sh scripts/ctest-failures.sh "$logs/$name.log" | sed "s/^/  $name| /"
        return 1
    fi
}

skipped() {
    echo "$(($(date +%s) - t0)) $1 skipped 0" >>"$logs/phases"
    echo "$1: skipped ($2)"
}

# ctest_in DIR [VAR=VALUE...]: the tests of the build in DIR, in parallel,
# then why any skipped.
ctest_in() {
    dir=$1
    shift
    rc=0
    (cd "$dir" && env "$@" sh ../scripts/isolated.sh ctest --output-on-failure -j"$jobs") || rc=$?
    sh scripts/ctest-skips.sh "$dir"
    return "$rc"
}

# build_and_test CC [VAR=VALUE...]: builds into build-CC, then runs its tests.
build_and_test() {
    cc=$1
    shift
    if phase "$cc-build" env CC="$cc" scripts/build.sh "build-$cc"; then
        phase "$cc-tests" ctest_in "build-$cc" "$@" || true
    else
        skipped "$cc-tests" "the build failed"
    fi
}

# The clang build's own tests: the unit tests and the recorder's basic
# integration tests. Every test runs with clang in the asan phase already
# (an instrumented clang build); this phase proves the optimised clang
# build warning-free and working, in a fraction of the time.
clang_smoke() {
    # shellcheck disable=SC2086 # one word per variable
    (cd build-clang && env $short sh ../scripts/isolated.sh ctest --output-on-failure -j"$jobs" -L unit &&
        env $short sh ../scripts/isolated.sh ctest --output-on-failure -j"$jobs" -R '^test_(record|query)\.') || return 1
    sh scripts/ctest-skips.sh build-clang
}

# The windows phase, in the lane that comes to it first (the two take
# about as long; which one is the longer varies from run to run).
windows_once() {
    if mkdir "$logs/windows.claimed" 2>/dev/null; then
        phase windows sh scripts/windows-cross.sh || true
    fi
}

# Phases that mostly wait, one after another: gcc's tests, then asan's
# and clang's (both built in the other lane meanwhile).
waiting_lane() {
    if [ "$quick" -eq 1 ]; then
        # shellcheck disable=SC2086 # one word per variable
        build_and_test gcc $short
        return
    fi
    build_and_test gcc
    while [ ! -e "$logs/asan-build.done" ]; do sleep 2; done
    # shellcheck disable=SC2086
    phase asan env SANITIZE_JOBS=asan $short sh scripts/ci-sanitize.sh || true
    while [ ! -e "$logs/clang-build.done" ]; do sleep 2; done
    if grep -q " clang-build passed " "$logs/phases"; then
        phase clang-tests clang_smoke || true
    else
        skipped clang-tests "the build failed"
    fi
    phase lint sh scripts/lint.sh || true
    windows_once
}

# Phases that keep the cores busy, beside them, at the same priority (a
# lower one would starve them whenever something else loads the machine).
# The asan and clang builds come first, while gcc's tests mostly wait;
# asan's tests build again what is missing if it failed.
busy_lane() {
    phase asan-build env SANITIZE_JOBS=asan_build sh scripts/ci-sanitize.sh || true
    touch "$logs/asan-build.done"
    phase clang-build env CC=clang scripts/build.sh build-clang || true
    touch "$logs/clang-build.done"
    phase fuzz sh scripts/ci-fuzz.sh || true
    phase valgrind env SANITIZE_JOBS=valgrind VALGRIND_TESTS='^test_(query|record|restart|retention)($|\.)' \
        VALGRIND_SKIP='^test_query\.Test(LongHistory|ReadOnly)$' sh scripts/ci-sanitize.sh || true
    windows_once
}

if [ "$quick" -eq 1 ]; then
    waiting_lane
else
    busy_lane &
    busy=$!
    waiting_lane
    wait "$busy"
fi

echo
echo "phase         status   wall (s)  started at (s)"
sort -n "$logs/phases" | while read -r at name status wall; do
    printf '%-13s %-8s %8s  %14s\n' "$name" "$status" "$wall" "$at"
done
echo "total: $(($(date +%s) - t0)) s"
if grep -q " FAILED " "$logs/phases"; then
    echo "failed: $(grep " FAILED " "$logs/phases" | cut -d' ' -f2 | tr '\n' ' ')(logs in $logs/)" >&2
    exit 1
fi
