#!/bin/sh
# Static checks of connhist's C sources.
#
#   sh scripts/lint.sh [BASE]
#
# cppcheck reads the programs' sources (recorder/, common/, query/, fuzz/):
# any finding fails. A finding judged wrong is suppressed where it is, with a
# comment saying why (cppcheck-suppress ID ; reason).
#
# Given BASE (a revision: main, HEAD~3), clang-format also checks the lines
# changed since BASE against the committed .clang-format. Only changed lines:
# the code is older than that file, and reformatting all of it at once would
# bury every line's history. `clang-format -i FILE` formats a new file whole.
#
# clang-tidy is installed beside them for reading a file's warnings by hand:
#   clang-tidy -p build-gcc FILE.c
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh cppcheck clang-format clang-tidy

# The BPF program's section macro comes from libbpf's headers, which
# cppcheck does not read: SEC() is defined away.
cppcheck --quiet --std=c11 --enable=warning,portability,performance --inline-suppr --error-exitcode=1 \
    --suppress=missingIncludeSystem -j2 -D'SEC(x)=' -I common -I recorder -I query recorder common query fuzz
echo "cppcheck: no findings"

[ $# -eq 0 ] && exit 0
changed=$(git diff -U0 --no-color "$1" -- '*.c' '*.h' | clang-format-diff-14 -p1)
if [ -n "$changed" ]; then
    printf '%s\n' "$changed"
    echo "clang-format: the lines changed since $1 are not formatted as .clang-format says (diff above)" >&2
    exit 1
fi
echo "clang-format: the lines changed since $1 are formatted"
