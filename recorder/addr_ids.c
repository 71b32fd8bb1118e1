/*
 * The addrs dictionary (see addr_ids.h). The cache is direct-mapped: a
 * slot per hash of the address, the newest address of that hash wins. A
 * machine talks to few addresses at a time, so most lookups stay in it; a
 * miss costs one index lookup, and a new address one insert.
 */
#include "addr_ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 2048 /* a power of two; 64 KiB */

typedef struct {
    ch_addr addr;   /* family 0: empty */
    int64_t id;
} slot;

struct ch_addr_ids {
    sqlite3 *db;
    sqlite3_stmt *find, *add;
    slot cache[CACHE_SLOTS];
};

ch_addr_ids *ch_addr_ids_open(sqlite3 *db, char *err, size_t errn)
{
    ch_addr_ids *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errn, "out of memory");
        return NULL;
    }
    d->db = db;
    if (sqlite3_prepare_v3(db, "SELECT addr_id FROM addrs WHERE addr = ?1", -1, SQLITE_PREPARE_PERSISTENT,
                           &d->find, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, "INSERT INTO addrs(addr) VALUES (?1)", -1, SQLITE_PREPARE_PERSISTENT, &d->add,
                           NULL) != SQLITE_OK) {
        snprintf(err, errn, "cannot prepare the address statements: %s", sqlite3_errmsg(db));
        ch_addr_ids_close(d);
        return NULL;
    }
    return d;
}

void ch_addr_ids_close(ch_addr_ids *d)
{
    if (d == NULL)
        return;
    sqlite3_finalize(d->find);
    sqlite3_finalize(d->add);
    free(d);
}

static size_t slot_of(const ch_addr *a)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ a->family; /* FNV-1a over the used bytes */
    for (int i = 0; i < (a->family == 6 ? 16 : 4); i++)
        h = (h ^ a->bytes[i]) * 0x100000001b3ULL;
    return (size_t)(h >> 20) & (CACHE_SLOTS - 1);
}

static bool same_addr(const ch_addr *x, const ch_addr *y)
{
    return x->family == y->family && memcmp(x->bytes, y->bytes, x->family == 6 ? 16 : 4) == 0;
}

/* Steps st once: SQLITE_ROW, SQLITE_DONE or an error; the caller resets. */
static int lookup(ch_addr_ids *d, const char *text, int64_t *id)
{
    sqlite3_bind_text(d->find, 1, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(d->find);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(d->find, 0);
    sqlite3_reset(d->find);
    return rc;
}

int ch_addr_ids_get(ch_addr_ids *d, const ch_addr *a, int64_t *id)
{
    slot *s = &d->cache[slot_of(a)];
    if (s->addr.family != 0 && same_addr(&s->addr, a)) {
        *id = s->id;
        return SQLITE_OK;
    }
    char text[CH_ADDR_TEXT];
    ch_addr_format(a, text);
    int rc = lookup(d, text, id);
    if (rc == SQLITE_DONE) {
        sqlite3_bind_text(d->add, 1, text, -1, SQLITE_STATIC);
        rc = sqlite3_step(d->add);
        sqlite3_reset(d->add);
        if (rc != SQLITE_DONE)
            return rc;
        *id = sqlite3_last_insert_rowid(d->db);
    } else if (rc != SQLITE_ROW) {
        return rc;
    }
    s->addr = *a;
    s->id = *id;
    return SQLITE_OK;
}

void ch_addr_ids_forget(ch_addr_ids *d)
{
    memset(d->cache, 0, sizeof d->cache);
}
