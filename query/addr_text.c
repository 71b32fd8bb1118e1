/*
 * Address text by addr_id (see addr_text.h). Direct-mapped: a slot per id
 * modulo the size, the last id read there wins; a miss costs a statement.
 * The table starts small (SLOTS_MIN): a selective report writes a few
 * hundred remotes, and each new page of a large table costs a page fault
 * (20 us on the VMs here, more than the statement). Once the misses have
 * cost about what reading the whole dictionary costs (MISS_COST rows of the
 * scan each), the table is made as large as the dictionary (ids count up
 * from 1: below the size, no two share a slot; at most SLOTS_MAX) and the
 * dictionary read into it in one scan. Text that does not fit a slot (only
 * a hand-edited dictionary holds such) is written uncached.
 */
#include "addr_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

#define SLOTS_MIN 8192    /* a power of two: about 450 KiB */
#define SLOTS_MAX 262144  /* about 14 MiB: 100,000 remotes (a busy server's month) need 131,072 */
#define MISS_COST 16      /* a statement costs about as much as this many rows of the scan */

typedef struct {
    int64_t id; /* 0: empty (addr_ids start at 1) */
    unsigned char len; /* of text */
    char text[CH_ADDR_TEXT];
} slot;

static struct {
    sqlite3 *db;
    sqlite3_stmt *lookup;
    slot *slots;
    size_t mask;    /* slots - 1 */
    int64_t max_id; /* the dictionary's newest id when first used */
    size_t misses;
    bool scanned;   /* the whole dictionary was read */
} cache;

static void keep(int64_t id, const char *text)
{
    size_t n = strlen(text);
    slot *s = &cache.slots[(uint64_t)id & cache.mask];
    if (id != 0 && n < sizeof s->text) {
        s->id = id;
        s->len = (unsigned char)n;
        memcpy(s->text, text, n + 1);
    }
}

/* A table of n slots (a power of two), empty. 0 or -1. */
static int make_table(size_t n)
{
    slot *grown = calloc(n, sizeof *grown);
    if (grown == NULL)
        return -1;
    free(cache.slots);
    cache.slots = grown;
    cache.mask = n - 1;
    return 0;
}

/* On first use with db: its dictionary's size, and the small table. 0 or -1. */
static int start(sqlite3 *db)
{
    if (cache.db == db)
        return cache.slots != NULL ? 0 : -1;
    addr_text_close();
    cache.db = db;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(addr_id), 0) FROM addrs", -1, &st, NULL) != SQLITE_OK)
        return -1;
    cache.max_id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return make_table(SLOTS_MIN);
}

/* The table made as large as the dictionary (at most SLOTS_MAX), and the
 * whole dictionary read into it when it fits without two ids sharing a
 * slot (else every miss stays a statement). */
static void scan(void)
{
    cache.scanned = true;
    size_t n = SLOTS_MIN;
    while (n < SLOTS_MAX && (int64_t)n <= cache.max_id)
        n *= 2;
    sqlite3_stmt *st;
    if (cache.max_id > (int64_t)n - 1 || make_table(n) != 0 ||
        sqlite3_prepare_v2(cache.db, "SELECT addr_id, addr FROM addrs", -1, &st, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 1);
        if (text != NULL)
            keep(sqlite3_column_int64(st, 0), text);
    }
    sqlite3_finalize(st);
}

void put_addr_col(jw *w, const char *key, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL || start(sqlite3_db_handle(st)) != 0) {
        jw_null(w, key);
        return;
    }
    int64_t id = sqlite3_column_int64(st, col);
    slot *s = &cache.slots[(uint64_t)id & cache.mask];
    if (id != 0 && s->id == id) {
        jw_text_n(w, key, s->text, s->len);
        return;
    }
    if (!cache.scanned && ++cache.misses * MISS_COST >= (size_t)cache.max_id && cache.misses >= SLOTS_MIN / 8) {
        scan();
        s = &cache.slots[(uint64_t)id & cache.mask];
        if (id != 0 && s->id == id) {
            jw_text_n(w, key, s->text, s->len);
            return;
        }
    }
    if (cache.lookup == NULL &&
        sqlite3_prepare_v2(cache.db, "SELECT addr FROM addrs WHERE addr_id = ?1", -1, &cache.lookup, NULL) !=
            SQLITE_OK) {
        jw_null(w, key);
        return;
    }
    sqlite3_bind_int64(cache.lookup, 1, id);
    const char *text = sqlite3_step(cache.lookup) == SQLITE_ROW ? (const char *)sqlite3_column_text(cache.lookup, 0)
                                                                 : NULL;
    if (text != NULL)
        keep(id, text);
    jw_text(w, key, text);
    sqlite3_reset(cache.lookup);
}

void addr_text_close(void)
{
    sqlite3_finalize(cache.lookup);
    free(cache.slots);
    memset(&cache, 0, sizeof cache);
}
