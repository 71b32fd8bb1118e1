#!/bin/sh
# Builds connhist into build/ (or $1), warnings as errors. CC picks the compiler.
set -eu
cd "$(dirname "$0")/.."
dir="${1:-build}"
cmake -S . -B "$dir" -DCONNHIST_WERROR=ON >/dev/null
cmake --build "$dir" -j"$(nproc)"
