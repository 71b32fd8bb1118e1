/*
 * The processes of lifetimes by proc_id, for writing lifetimes without
 * joining the processes table: a bulk report writes hundreds of thousands
 * of lifetimes a second, and the join's seek into processes for each of
 * them was an eighth of --ndjson's CPU time, while a machine's lifetimes
 * come from a few thousand processes, most often the one of a recent row.
 */
#ifndef CHQ_PROC_CACHE_H
#define CHQ_PROC_CACHE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

/* A row of the processes table; text NULL where the column is NULL. */
typedef struct {
    int64_t proc_id;
    int64_t pid, start, uid;
    bool has_uid;
    char *name, *path, *cmdline, *user;
} chq_process;

/* The process proc_id of db, or NULL when the table has no such row (or on
 * an error). Valid until the next call. */
const chq_process *proc_cache_get(sqlite3 *db, int64_t proc_id);

/* Forgets every process (before the database closes). */
void proc_cache_close(void);

#endif
