#!/bin/sh
# Builds cJSON from Debian's source package into a static archive:
#
#   sh scripts/cjson-archive.sh CC AR DIR
#
# leaves DIR/lib/libcjson.a and DIR/include/cjson/cJSON.h (kept: a second run
# does nothing). Debian ships cJSON as a shared library only; the programs
# that must be one file to copy (the Linux build, scripts/build.sh, and the
# Windows cross-build) link this archive instead. scripts/install-deps.sh
# adds the deb-src entries (of the machine's own mirrors) when there are none.
set -eu
if [ $# -ne 3 ]; then
    echo "usage: sh scripts/cjson-archive.sh CC AR DIR" >&2
    exit 2
fi
cc=$1
ar=$2
dir=$3
[ -f "$dir/lib/libcjson.a" ] && [ -f "$dir/include/cjson/cJSON.h" ] && exit 0
# dpkg-dev and the deb-src entries (apt-get source).
sh "$(dirname "$0")/install-deps.sh"
rm -rf "$dir/cjson"
mkdir -p "$dir/cjson" "$dir/include/cjson" "$dir/lib"
(cd "$dir/cjson" && apt-get source -qq cjson >/dev/null 2>&1) || {
    echo "cjson-archive.sh: apt-get source cjson failed (are deb-src entries reachable?)" >&2
    exit 1
}
src=$(ls -d "$dir"/cjson/cjson-*/ | head -n 1)
"$cc" -O2 -c "$src/cJSON.c" -o "$dir/cjson/cJSON.o"
rm -f "$dir/lib/libcjson.a"
"$ar" rcs "$dir/lib/libcjson.a" "$dir/cjson/cJSON.o"
cp "$src/cJSON.h" "$dir/include/cjson/"
