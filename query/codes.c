/*
 * The codes table, read once (see codes.h). Codes are small: a fixed table
 * per field, indexed by the code, is enough (protocols go up to 255, IANA's
 * range; the others stay under 16).
 */
#include "codes.h"

#include <stdlib.h>
#include <string.h>

#define MAX_CODE 256

static const char *const field_names[CODE_FIELDS] = {
    [CODE_PROTO] = "proto",
    [CODE_STATE] = "state",
    [CODE_CLOSE_REASON] = "close_reason",
    [CODE_SEEN_BY] = "seen_by",
    [CODE_OFFLOAD_STATE] = "offload_state",
    [CODE_OWNER_SOURCE] = "owner_source",
};

static char *names[CODE_FIELDS][MAX_CODE];

static int field_of(const char *name)
{
    for (int f = 0; f < CODE_FIELDS; f++)
        if (name != NULL && strcmp(field_names[f], name) == 0)
            return f;
    return -1;
}

int codes_load(sqlite3 *db)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "SELECT field, code, name FROM codes", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int f = field_of((const char *)sqlite3_column_text(st, 0));
        int64_t code = sqlite3_column_int64(st, 1);
        const char *name = (const char *)sqlite3_column_text(st, 2);
        if (f < 0 || code < 0 || code >= MAX_CODE || name == NULL || names[f][code] != NULL)
            continue; /* a field or code this program does not read */
        size_t len = strlen(name) + 1;
        names[f][code] = malloc(len);
        if (names[f][code] != NULL)
            memcpy(names[f][code], name, len);
        if (names[f][code] == NULL) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

const char *code_name(enum code_field field, int64_t code)
{
    return code >= 0 && code < MAX_CODE ? names[field][code] : NULL;
}

int64_t code_of_name(enum code_field field, const char *name)
{
    for (int code = 0; code < MAX_CODE; code++)
        if (names[field][code] != NULL && strcmp(names[field][code], name) == 0)
            return code;
    return -1;
}

int codes_unpack_states(int64_t packed, int out[16])
{
    int n = 0;
    for (int shift = 60; shift >= 0; shift -= 4) {
        int code = (int)((uint64_t)packed >> shift & 15);
        if (code != 0 || n > 0)
            out[n++] = code;
    }
    return n;
}
