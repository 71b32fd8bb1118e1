#!/bin/sh
# The whole test suite, on a Debian 12 machine (root, or sudo for packages):
# installs what is missing, then
#   1. builds with gcc and with clang (warnings are errors) and runs every
#      test with each;
#   2. cross-builds the Windows programs and runs their tests under Wine;
#   3. runs the suite under AddressSanitizer + UBSan, and the integration
#      tests under valgrind memcheck;
#   4. fuzzes each parser for FUZZ_SECONDS (default 60).
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
for cc in gcc clang; do
    echo "=== Linux, $cc ==="
    CC=$cc scripts/build.sh "build-$cc" >/dev/null
    (cd "build-$cc" && ctest --output-on-failure -j2)
done
echo "=== Windows, mingw-w64 under Wine ==="
sh scripts/windows-cross.sh
echo "=== AddressSanitizer, UBSan, valgrind ==="
VALGRIND_TESTS="${VALGRIND_TESTS:-^test_(query|record|restart|retention)\$}" sh scripts/ci-sanitize.sh
echo "=== fuzzing ==="
sh scripts/ci-fuzz.sh
