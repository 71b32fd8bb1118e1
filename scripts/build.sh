#!/bin/sh
# Builds connhist into build/ (or $1), warnings as errors. CC picks the compiler.
# Each program is one file to copy (README, "One file to copy"): every
# library but the C library is linked from its static archive, cJSON's built
# from Debian's source package into DIR/deps (scripts/cjson-archive.sh).
set -eu
cd "$(dirname "$0")/.."
dir="${1:-build}"
case "$dir" in
/*) deps="$dir/deps" ;;
*) deps="$(pwd)/$dir/deps" ;;
esac
sh scripts/cjson-archive.sh "${CC:-cc}" ar "$deps"
cmake -S . -B "$dir" -DCONNHIST_WERROR=ON -DCONNHIST_STATIC_DEPS=ON \
    -DCJSON_INCLUDE_DIR="$deps/include" -DCJSON_LIBRARY="$deps/lib/libcjson.a" >/dev/null
cmake --build "$dir" -j"$(nproc)"
