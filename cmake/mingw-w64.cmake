# Cross-compiling for 64-bit Windows with Debian's mingw-w64 (gcc-mingw-w64-x86-64).
# Used by scripts/windows-cross.sh; SQLite and cJSON are passed in as static
# libraries built from source (SQLite3_INCLUDE_DIR/SQLite3_LIBRARY,
# CJSON_INCLUDE_DIR/CJSON_LIBRARY), so the programs need no DLL beside them.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CONNHIST_MINGW_PREFIX x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${CONNHIST_MINGW_PREFIX}-gcc)
set(CMAKE_RC_COMPILER ${CONNHIST_MINGW_PREFIX}-windres)
set(CMAKE_AR ${CONNHIST_MINGW_PREFIX}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${CONNHIST_MINGW_PREFIX}-ranlib CACHE FILEPATH "")
set(CMAKE_FIND_ROOT_PATH /usr/${CONNHIST_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# One self-contained .exe: libgcc and winpthread linked in, not as DLLs.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -static-libgcc")
