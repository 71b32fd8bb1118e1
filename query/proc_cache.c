/*
 * Processes by proc_id (see proc_cache.h). Direct-mapped: a slot per id
 * modulo the size, the last process read there wins; a miss is one
 * statement. A slot is a pointer to the process and its text in one
 * allocation: the table is 32 KiB, so a report of a few lifetimes does not
 * pay a page fault for each process it writes. The cache belongs to one
 * database at a time: asked with another, it starts again.
 */
#include "proc_cache.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 4096 /* a power of two */

static chq_process *slots[SLOTS];
static sqlite3 *cached_db;
static sqlite3_stmt *lookup;

/* The length of text column col with its NUL, 0 for NULL. */
static size_t col_size(sqlite3_stmt *st, int col)
{
    const unsigned char *text = sqlite3_column_text(st, col);
    return text != NULL ? strlen((const char *)text) + 1 : 0;
}

/* Copies text column col (size bytes, col_size's) to *at, moving *at on;
 * NULL for NULL. */
static char *copy_col(sqlite3_stmt *st, int col, size_t size, char **at)
{
    if (size == 0)
        return NULL;
    char *text = *at;
    memcpy(text, sqlite3_column_text(st, col), size);
    *at += size;
    return text;
}

/* Process proc_id read from the database, or NULL when there is none. */
static chq_process *read_process(sqlite3 *db, int64_t proc_id)
{
    if (lookup == NULL && sqlite3_prepare_v2(db,
                                             "SELECT pid, start_time, name, path, cmdline, user, uid FROM processes"
                                             " WHERE proc_id = ?1",
                                             -1, &lookup, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_int64(lookup, 1, proc_id);
    chq_process *p = NULL;
    if (sqlite3_step(lookup) == SQLITE_ROW) {
        size_t sizes[4], total = 0;
        for (int i = 0; i < 4; i++)
            total += sizes[i] = col_size(lookup, 2 + i);
        p = malloc(sizeof *p + total);
        if (p != NULL) {
            char *at = (char *)(p + 1);
            *p = (chq_process){proc_id, sqlite3_column_int64(lookup, 0), sqlite3_column_int64(lookup, 1),
                               sqlite3_column_int64(lookup, 6), sqlite3_column_type(lookup, 6) != SQLITE_NULL,
                               NULL, NULL, NULL, NULL};
            p->name = copy_col(lookup, 2, sizes[0], &at);
            p->path = copy_col(lookup, 3, sizes[1], &at);
            p->cmdline = copy_col(lookup, 4, sizes[2], &at);
            p->user = copy_col(lookup, 5, sizes[3], &at);
        }
    }
    sqlite3_reset(lookup);
    return p;
}

const chq_process *proc_cache_get(sqlite3 *db, int64_t proc_id)
{
    if (db != cached_db)
        proc_cache_close();
    cached_db = db;
    chq_process **slot = &slots[(uint64_t)proc_id & (SLOTS - 1)];
    if (*slot != NULL && (*slot)->proc_id == proc_id)
        return *slot;
    chq_process *p = read_process(db, proc_id);
    if (p != NULL) {
        free(*slot);
        *slot = p;
    }
    return p;
}

void proc_cache_close(void)
{
    for (size_t i = 0; i < SLOTS; i++) {
        free(slots[i]);
        slots[i] = NULL;
    }
    sqlite3_finalize(lookup);
    lookup = NULL;
    cached_db = NULL;
}
