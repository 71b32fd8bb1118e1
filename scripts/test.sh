#!/bin/sh
# The whole test suite, on a Debian 12 machine (root, or sudo for packages):
# installs what is missing, builds and runs every test with gcc and with
# clang (warnings are errors), then cross-builds the Windows programs and
# runs their tests under Wine.
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
