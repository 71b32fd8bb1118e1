# Turns schema/schema.sql into a C source holding it as a byte array, plus
# the schema version read from its "PRAGMA user_version = N" line, so the
# SQL file stays the single source. The upgrade steps beside it,
# schema/upgrade_N.sql (N = the version a step upgrades FROM), are embedded
# the same way, in ch_schema_upgrade_sql[N]. Every step from 1 to version-1
# must be there, and none for version or later: a gap would leave databases
# of that version with no way forward, so it stops the build.
# Run as: cmake -DIN=.../schema.sql -DOUT=... -P this
file(READ "${IN}" sql)
string(REGEX MATCH "PRAGMA user_version = ([0-9]+)" _ "${sql}")
if(NOT CMAKE_MATCH_1)
  message(FATAL_ERROR "${IN}: no 'PRAGMA user_version = N' line")
endif()
set(version "${CMAKE_MATCH_1}")

# The bytes of a file as a C initializer list, NUL-terminated.
function(c_bytes path outvar)
  file(READ "${path}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  set(${outvar} "{${bytes}0x00}" PARENT_SCOPE)
endfunction()

get_filename_component(dir "${IN}" DIRECTORY)
file(GLOB steps "${dir}/upgrade_*.sql")
foreach(step ${steps})
  get_filename_component(name "${step}" NAME)
  if(NOT name MATCHES "^upgrade_([1-9][0-9]*)\\.sql$")
    message(FATAL_ERROR "${step}: an upgrade step must be named upgrade_N.sql, N the version it upgrades from")
  endif()
  if(CMAKE_MATCH_1 GREATER_EQUAL version)
    message(FATAL_ERROR "${step} upgrades from version ${CMAKE_MATCH_1}, but ${IN} is version ${version}: "
                        "raise its PRAGMA user_version or remove the step")
  endif()
endforeach()

c_bytes("${IN}" schema_bytes)
set(defs "")
set(table "  NULL, /* no version 0 to upgrade from: an empty file gets schema.sql */\n")
set(n 1)
while(n LESS version)
  if(NOT EXISTS "${dir}/upgrade_${n}.sql")
    math(EXPR next "${n} + 1")
    message(FATAL_ERROR "${dir}/upgrade_${n}.sql is missing: ${IN} is version ${version}, "
                        "so a database of version ${n} needs a step to version ${next}")
  endif()
  c_bytes("${dir}/upgrade_${n}.sql" step_bytes)
  string(APPEND defs "static const char upgrade_${n}[] = ${step_bytes};\n")
  string(APPEND table "  upgrade_${n},\n")
  math(EXPR n "${n} + 1")
endwhile()

file(WRITE "${OUT}.tmp"
  "/* Generated from schema/schema.sql and schema/upgrade_N.sql by cmake/embed_schema.cmake. */\n"
  "#include <stddef.h>\n"
  "const char ch_schema_sql[] = ${schema_bytes};\n"
  "const int ch_schema_version = ${version};\n"
  "${defs}"
  "const char *const ch_schema_upgrade_sql[${version}] = {\n${table}};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
