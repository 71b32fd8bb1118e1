/*
 * --retain: pruning closed lifetimes, and DNS answers no longer in force,
 * older than a duration, a small batch at a time between samples so
 * sampling never stalls, with the space given back by incremental vacuum.
 * Every pass is recorded in the prunes table so reports can tell "pruned"
 * from "nothing happened".
 */
#ifndef CH_RETENTION_H
#define CH_RETENTION_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ch_retention ch_retention;

/* A pruner keeping retain_ms of closed lifetimes, for run run_id. */
ch_retention *ch_retention_new(sqlite3 *db, int64_t retain_ms, int64_t run_id);
void ch_retention_free(ch_retention *r);

/* What one batch deleted. */
typedef struct {
    int lifetimes; /* closed lifetimes (with their state changes and extras) */
    int answers;   /* DNS answers that stopped being in force before the cutoff */
} ch_pruned;

/*
 * Does at most one batch if one is due at time now (a pass starts every
 * minute, and continues on the next calls while batches come back full).
 * Returns 0 with what it deleted in *out (zeros when no batch was due), or
 * -1 with a message in err (the caller logs it and goes on: pruning is
 * retried later).
 */
int ch_retention_step(ch_retention *r, int64_t now, ch_pruned *out, char *err, size_t errn);

#endif
