#!/bin/sh
# The Python tests that skipped in a build's last ctest run, and why: one
# line per reason, with how many tests gave it: unittest -v writes
# "skipped 'REASON'" into ctest's log, and a passing test's output does not
# reach ctest's console. Nothing when none skipped.
# Usage: ctest-skips.sh BUILD_DIR
log="$1/Testing/Temporary/LastTest.log"
[ -f "$log" ] || exit 0
grep -o "skipped '.*'$" "$log" | sed "s/^skipped '\(.*\)'$/\1/" | sort | uniq -c |
    sed 's/^ *\([0-9]*\) \(.*\)$/skipped (\1 tests): \2/'
exit 0
