/*
 * The names behind the database's small integers (the codes table of
 * schema version 3: protocols, states, close reasons, seen_by, offload
 * states, owner sources), read once from the database itself, so that a
 * report names what the file says a code means.
 */
#ifndef CHQ_CODES_H
#define CHQ_CODES_H

#include <sqlite3.h>
#include <stdint.h>

enum code_field {
    CODE_PROTO,
    CODE_STATE,
    CODE_CLOSE_REASON,
    CODE_SEEN_BY,
    CODE_OFFLOAD_STATE,
    CODE_OWNER_SOURCE,
    CODE_FIELDS
};

/* Reads the codes table of db. Returns an SQLite status. */
int codes_load(sqlite3 *db);

/* The name of code in field; NULL when the table has no such code. */
const char *code_name(enum code_field field, int64_t code);

/* The code of name in field, or -1. */
int64_t code_of_name(enum code_field field, const char *name);

/* The states of a lifetime's states column (4 bits each, the latest in the
 * lowest bits), oldest first, into out (at most 16); returns how many. */
int codes_unpack_states(int64_t packed, int out[16]);

/* The number a states column holds when it is full: later states are only
 * in state_changes. */
#define CODES_STATES_FULL (INT64_C(1) << 56)

#endif
