#!/bin/sh
# Two memory-safety jobs over the whole project (issue 5):
#  1. clang with AddressSanitizer and UndefinedBehaviorSanitizer, every
#     report fatal, into build-asan/: the whole ctest suite, leaks included
#     where LeakSanitizer can run.
#  2. the integration tests with both programs under valgrind memcheck
#     (through CONNHIST_WRAPPER, see tests/helpers.py), from a plain build in
#     build-valgrind/: no errors, no definite leaks.
# SANITIZE_JOBS picks "asan", "valgrind" or both (default), or "asan_build"
# alone (scripts/test.sh builds it beside other phases); VALGRIND_TESTS is
# the ctest regex of the tests run under valgrind, VALGRIND_SKIP (optional)
# that of the tests among them left out. The tests run in parallel
# (ASAN_CTEST_JOBS, default 4: most of them wait on a recorder;
# VALGRIND_CTEST_JOBS, default 3: valgrind keeps a core busy per program).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
jobs="${SANITIZE_JOBS:-asan valgrind}"

sh scripts/install-deps.sh libclang-rt-14-dev valgrind

status=0

asan_build_job() {
    flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
    # Instrumented programs start and run slower: each Python test may take
    # four times its usual time (test_bad_input's classes, a program run
    # after another, passed in 140 s here and took over 600 s at load 25).
    CC=clang cmake -S . -B build-asan -DCONNHIST_WERROR=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="$flags" \
        -DCONNHIST_PY_TEST_TIMEOUT=1200 >/dev/null
    cmake --build build-asan -j2 >/dev/null
    echo "built build-asan"
}

asan_job() {
    dir=build-asan
    asan_build_job
    # The tests' LD_PRELOAD shims load before the ASan runtime: allowed, as
    # they only wrap libc calls. exitcode=86 tells a sanitizer report from
    # the programs' own exit codes (1, 2), which the tests check.
    opts="verify_asan_link_order=0:abort_on_error=0:exitcode=86:detect_stack_use_after_return=1"
    leaks=1
    if ASAN_OPTIONS="$opts:detect_leaks=1" "$dir/query/connhist-query" --version 2>&1 |
        grep -q "LeakSanitizer has encountered a fatal error"; then
        echo "LeakSanitizer cannot run here (ptrace refused): leak checks left to valgrind" >&2
        leaks=0
    fi
    # The symbolizer inherits LD_PRELOAD; an instrumented test shim cannot
    # load into it, so it gets an environment without.
    symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
    if [ -n "$symbolizer" ]; then
        printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$@"\n' "$symbolizer" >"$dir/llvm-symbolizer"
        chmod +x "$dir/llvm-symbolizer"
        opts="$opts:external_symbolizer_path=$root/$dir/llvm-symbolizer"
    fi
    export ASAN_OPTIONS="$opts:detect_leaks=$leaks"
    # Tests may relax what sanitizers change: speed, and resident memory
    # (ASan keeps freed blocks in quarantine).
    export CONNHIST_SANITIZER=asan
    export LSAN_OPTIONS="exitcode=86"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=86"
    log="$root/$dir/ctest.log"
    # In parallel: every test keeps to its own sockets and tolerates others'.
    # Not build_without_libbpf: it builds a program of its own, without the
    # sanitizers (a plain clang build, 3 minutes of a loaded CI's critical
    # path); gcc's tests run it.
    if (cd "$dir" && sh "$root/scripts/isolated.sh" ctest --output-on-failure -j"${ASAN_CTEST_JOBS:-4}" \
        -E '^build_without_libbpf$') >"$log" 2>&1; then
        tail -3 "$log"
        sh "$root/scripts/ctest-skips.sh" "$dir"
    else
        sh "$root/scripts/ctest-failures.sh" "$log"
        echo "ASan/UBSan: tests failed (full log: $log)" >&2
        status=1
    fi
    if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$log"; then
        grep -E -A20 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$log" | head -80
        echo "ASan/UBSan: sanitizer reports (full log: $log)" >&2
        status=1
    fi
    unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS CONNHIST_SANITIZER
}

valgrind_job() {
    dir=build-valgrind
    CC=gcc cmake -S . -B "$dir" -DCONNHIST_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCONNHIST_PY_TEST_TIMEOUT=3600 >/dev/null
    cmake --build "$dir" -j2 >/dev/null
    logs="$root/$dir/valgrind"
    rm -rf "$logs"
    mkdir -p "$logs"
    chmod 1777 "$logs" # tests that drop to nobody write their logs here too
    # Errors and definite leaks make the program exit 99, which no test
    # accepts; the logs (one per process, empty when clean) say what it was.
    export CONNHIST_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
--errors-for-leak-kinds=definite --track-fds=no --log-file=$logs/vg.%p.log"
    export CONNHIST_SANITIZER=valgrind
    # valgrind does not model bpf(2) as libbpf calls it (attribute sizes,
    # newer commands): it would report libbpf's syscalls, not our code.
    export CONNHIST_EVENTS=off
    # Nor the BPF iterator that reads the holders of sockets (the switch
    # kept for tests, recorder/linux/procs_iter.h): /proc/PID/fd instead.
    export CONNHIST_PROCS_SOURCE=proc
    # Nor the BPF iterators over the socket tables (recorder/linux/socks_iter.h):
    # sock_diag dumps instead. AddressSanitizer's phase reads them.
    export CONNHIST_SOCKS_SOURCE=netlink
    tests="${VALGRIND_TESTS:-^test_(query|bad_input|record|restart|retention)(\$|\.)}"
    log="$root/$dir/ctest.log"
    skip="${VALGRIND_SKIP:-}"
    if (cd "$dir" && sh "$root/scripts/isolated.sh" ctest --output-on-failure -j"${VALGRIND_CTEST_JOBS:-3}" -R "$tests" \
        ${skip:+-E "$skip"}) >"$log" 2>&1; then
        tail -3 "$log"
        sh "$root/scripts/ctest-skips.sh" "$dir"
    else
        sh "$root/scripts/ctest-failures.sh" "$log"
        echo "valgrind: tests failed (full log: $log)" >&2
        status=1
    fi
    runs=$(find "$logs" -name 'vg.*.log' | wc -l)
    dirty=$(find "$logs" -name 'vg.*.log' -size +0 | wc -l)
    echo "valgrind: $runs program runs, $dirty with errors or definite leaks"
    if [ "$dirty" -ne 0 ]; then
        find "$logs" -name 'vg.*.log' -size +0 | head -5 | xargs cat | head -120
        status=1
    fi
    unset CONNHIST_WRAPPER CONNHIST_SANITIZER CONNHIST_EVENTS CONNHIST_PROCS_SOURCE
}

for job in $jobs; do
    echo "=== $job ==="
    "${job}_job"
done
[ "$status" -eq 0 ] && echo "sanitizers: clean"
exit "$status"
