#!/bin/sh
# Installs what is missing, then builds and runs the whole test suite twice:
# with gcc (-Werror) and with clang (-Werror).
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
for cc in gcc clang; do
    echo "=== $cc ==="
    CC=$cc scripts/build.sh "build-$cc" >/dev/null
    (cd "build-$cc" && ctest --output-on-failure -j2)
done
