#!/bin/sh
# What a failed ctest run's log says: the output of each failed test (up to
# 150 lines each), then the log's last lines. ctest -j prints a test's
# output when it ends, among the other tests' progress lines, so a tail of
# the log alone may not show it. Usage: ctest-failures.sh LOG [TAIL_LINES]
awk '/\*\*\*(Failed|Timeout|Exception)|\(Failed\)$/ { n = 150 }
     /^ *Start +[0-9]+:|^ *[0-9]+\/[0-9]+ Test +#/ && !/\*\*\*/ { n = 0 }
     n > 0 { print; n-- }' "$1"
echo "..."
tail -"${2:-40}" "$1"
