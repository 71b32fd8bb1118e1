/*
 * Processes by proc_id (see proc_cache.h). Direct-mapped: a slot per id
 * modulo the size, the last process read there wins; a miss is one
 * statement. The cache belongs to one database at a time: asked with
 * another, it starts again.
 */
#include "proc_cache.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 4096 /* a power of two */

static chq_process slots[SLOTS];
static sqlite3 *cached_db;
static sqlite3_stmt *lookup;

static void forget(chq_process *p)
{
    free(p->name);
    free(p->path);
    free(p->cmdline);
    free(p->user);
    memset(p, 0, sizeof *p);
}

/* A copy of text column col, NULL for NULL. False when out of memory. */
static bool copy_col(sqlite3_stmt *st, int col, char **out)
{
    const unsigned char *text = sqlite3_column_text(st, col);
    *out = NULL;
    if (text == NULL)
        return true;
    size_t n = strlen((const char *)text) + 1;
    *out = malloc(n);
    if (*out != NULL)
        memcpy(*out, text, n);
    return *out != NULL;
}

/* Reads process proc_id into slot p; false when there is none. */
static bool read_process(sqlite3 *db, int64_t proc_id, chq_process *p)
{
    if (lookup == NULL && sqlite3_prepare_v2(db,
                                             "SELECT pid, start_time, name, path, cmdline, user, uid FROM processes"
                                             " WHERE proc_id = ?1",
                                             -1, &lookup, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_int64(lookup, 1, proc_id);
    bool found = sqlite3_step(lookup) == SQLITE_ROW;
    if (found) {
        p->pid = sqlite3_column_int64(lookup, 0);
        p->start = sqlite3_column_int64(lookup, 1);
        p->has_uid = sqlite3_column_type(lookup, 6) != SQLITE_NULL;
        p->uid = sqlite3_column_int64(lookup, 6);
        found = copy_col(lookup, 2, &p->name) && copy_col(lookup, 3, &p->path) && copy_col(lookup, 4, &p->cmdline) &&
                copy_col(lookup, 5, &p->user);
    }
    sqlite3_reset(lookup);
    if (!found) {
        forget(p);
        return false;
    }
    p->proc_id = proc_id;
    return true;
}

const chq_process *proc_cache_get(sqlite3 *db, int64_t proc_id)
{
    if (db != cached_db)
        proc_cache_close();
    cached_db = db;
    chq_process *p = &slots[(uint64_t)proc_id & (SLOTS - 1)];
    if (proc_id != 0 && p->proc_id == proc_id)
        return p;
    forget(p);
    return read_process(db, proc_id, p) ? p : NULL;
}

void proc_cache_close(void)
{
    for (size_t i = 0; i < SLOTS; i++)
        forget(&slots[i]);
    sqlite3_finalize(lookup);
    lookup = NULL;
    cached_db = NULL;
}
