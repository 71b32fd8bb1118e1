# Turns schema/schema.sql into a C source holding it as a byte array, plus
# the schema version read from its "PRAGMA user_version = N" line, so the
# SQL file stays the single source. Run as: cmake -DIN=... -DOUT=... -P this
file(READ "${IN}" sql)
string(REGEX MATCH "PRAGMA user_version = ([0-9]+)" _ "${sql}")
if(NOT CMAKE_MATCH_1)
  message(FATAL_ERROR "${IN}: no 'PRAGMA user_version = N' line")
endif()
set(version "${CMAKE_MATCH_1}")
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}.tmp"
  "/* Generated from schema/schema.sql by cmake/embed_schema.cmake. */\n"
  "const char ch_schema_sql[] = {${bytes}0x00};\n"
  "const int ch_schema_version = ${version};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
