#!/bin/sh
# Cross-builds connhist for Windows on Debian 12 and proves it under Wine.
#
#   sh scripts/windows-cross.sh          install what is missing, build, test
#
# Installs mingw-w64 and wine64 when missing; fetches SQLite (the amalgamation
# tarball inside the npm package sqlite3) and cJSON (the Debian source
# package) into build-win/deps; never into the repository. Builds static
# connhist-record.exe and connhist-query.exe into build-win/ (warnings are
# errors), checks that they import only Windows system DLLs, then runs the
# unit tests and the integration test under Wine (prefix in build-win/wine).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="$ROOT/build-win"
DEPS="$OUT/deps"
CROSS=x86_64-w64-mingw32
JOBS=2

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# ---- packages ---------------------------------------------------------------
missing=""
for p in gcc-mingw-w64-x86-64 wine64 cmake make python3 dpkg-dev iproute2; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
command -v npm >/dev/null || missing="$missing npm" # npm may come from elsewhere than Debian
if [ -n "$missing" ]; then
    echo "installing:$missing" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
WINE=$(command -v wine64 || echo /usr/lib/wine/wine64)

mkdir -p "$DEPS"

# ---- SQLite: the amalgamation from the npm package sqlite3 --------------------
if [ ! -f "$DEPS/lib/libsqlite3.a" ]; then
    rm -rf "$DEPS/sqlite" && mkdir -p "$DEPS/sqlite" "$DEPS/include" "$DEPS/lib"
    (cd "$DEPS/sqlite" && npm pack --silent sqlite3 >/dev/null && tar xzf sqlite3-*.tgz package/deps &&
        tar xzf package/deps/sqlite-autoconf-*.tar.gz && cp sqlite-autoconf-*/sqlite3.c sqlite-autoconf-*/sqlite3.h .)
    $CROSS-gcc -O2 -DSQLITE_THREADSAFE=1 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_DQS=0 \
        -c "$DEPS/sqlite/sqlite3.c" -o "$DEPS/sqlite/sqlite3.o"
    $CROSS-ar rcs "$DEPS/lib/libsqlite3.a" "$DEPS/sqlite/sqlite3.o"
    cp "$DEPS/sqlite/sqlite3.h" "$DEPS/include/"
fi

# ---- cJSON: the Debian source package (scripts/cjson-archive.sh) ---------------
sh scripts/cjson-archive.sh $CROSS-gcc $CROSS-ar "$DEPS"

# ---- build ---------------------------------------------------------------------
cmake -S . -B "$OUT/build" -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/mingw-w64.cmake" -DCMAKE_BUILD_TYPE=Release \
    -DCONNHIST_WERROR=ON -DSQLite3_INCLUDE_DIR="$DEPS/include" -DSQLite3_LIBRARY="$DEPS/lib/libsqlite3.a" \
    -DCJSON_INCLUDE_DIR="$DEPS/include" -DCJSON_LIBRARY="$DEPS/lib/libcjson.a" >/dev/null
cmake --build "$OUT/build" -j"$JOBS"
cp "$OUT/build/recorder/connhist-record.exe" "$OUT/build/query/connhist-query.exe" "$OUT/"
cp "$OUT/build/tests/windows/test_iphlp_rows.exe" "$OUT/"

# ---- one file each: only Windows' own DLLs may be imported ----------------------
SYSTEM_DLLS="kernel32.dll advapi32.dll bcrypt.dll iphlpapi.dll ws2_32.dll shell32.dll msvcrt.dll user32.dll ntdll.dll"
for exe in connhist-record.exe connhist-query.exe test_iphlp_rows.exe; do
    for dll in $($CROSS-objdump -p "$OUT/$exe" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr 'A-Z' 'a-z'); do
        case " $SYSTEM_DLLS " in
        *" $dll "*) ;;
        api-ms-win-*) ;;
        *) echo "$exe imports $dll, which is not a Windows system DLL" >&2; exit 1 ;;
        esac
    done
done
echo "built $OUT/connhist-record.exe and $OUT/connhist-query.exe (system DLLs only)"

# ---- tests under Wine ----------------------------------------------------------------
export WINEPREFIX="$OUT/wine" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    "$WINE" wineboot --init >/dev/null 2>&1 || true
fi
echo "=== test_iphlp_rows.exe (Wine) ==="
"$WINE" "$OUT/test_iphlp_rows.exe"
echo "=== tests/windows/test_wine.py ==="
CONNHIST_WINE="$WINE" CONNHIST_WIN_DIR="$OUT" python3 tests/windows/test_wine.py
