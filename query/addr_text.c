/*
 * Address text by addr_id (see addr_text.h). Direct-mapped: a slot per id
 * modulo the size, the last id read there wins. Text that does not fit a
 * slot (only a hand-edited dictionary holds such) is written uncached.
 */
#include "addr_text.h"

#include <stdint.h>
#include <string.h>

#include "addr.h"

#define SLOTS 8192 /* a power of two: about 450 KiB */

typedef struct {
    int64_t id; /* 0: empty (addr_ids start at 1) */
    char text[CH_ADDR_TEXT];
} slot;

static slot cache[SLOTS];
static sqlite3_stmt *lookup;

void put_addr_col(jw *w, const char *key, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        jw_null(w, key);
        return;
    }
    int64_t id = sqlite3_column_int64(st, col);
    slot *s = &cache[(uint64_t)id & (SLOTS - 1)];
    if (id != 0 && s->id == id) {
        jw_text(w, key, s->text);
        return;
    }
    if (lookup == NULL &&
        sqlite3_prepare_v2(sqlite3_db_handle(st), "SELECT addr FROM addrs WHERE addr_id = ?1", -1, &lookup, NULL) !=
            SQLITE_OK) {
        jw_null(w, key);
        return;
    }
    sqlite3_bind_int64(lookup, 1, id);
    const char *text = sqlite3_step(lookup) == SQLITE_ROW ? (const char *)sqlite3_column_text(lookup, 0) : NULL;
    size_t n = text != NULL ? strlen(text) : 0;
    if (text != NULL && id != 0 && n < sizeof s->text) {
        s->id = id;
        memcpy(s->text, text, n + 1);
    }
    jw_text(w, key, text);
    sqlite3_reset(lookup);
}

void addr_text_close(void)
{
    sqlite3_finalize(lookup);
    lookup = NULL;
    memset(cache, 0, sizeof cache);
}
