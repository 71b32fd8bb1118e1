/*
 * Retention. Deleting millions of rows in one transaction would hold the
 * write lock for seconds and stall sampling, so each call deletes at most
 * BATCH lifetimes closed before the cutoff (oldest first: ids follow
 * first_seen, and a lifetime closed before the cutoff started before it, so
 * the ids to look at end with the last block of lifetime_blocks that starts
 * before the cutoff), their state changes and extras, the blocks left empty, and
 * processes no lifetime refers to any more, then frees some pages.
 * Heartbeats and runs are kept: they are small, and they still say when the
 * recorder was watching.
 *
 * DNS answers go by the same cutoff, BATCH at a time, once they stopped
 * being in force before it (first_seen + expires_after): no response can
 * extend such a row any more, so the recorder's table of rows in force
 * never names a deleted one for long (answers.c starts a new row if it
 * does). Names and addresses stay: the recorder keeps their ids, and they
 * are small.
 *
 * The chain's links go too, as a recorded operation (schema/README.md,
 * "Pruning"): the links 2 to K - 1, K the newest link begun before the
 * cutoff (so each of them ended before it), are deleted, and the run's
 * prunes row, which is chained, says so and keeps the hash of link K - 1
 * that link K follows. The first link stays: it says how the chain began.
 */
#include "retention.h"

#include <stdio.h>
#include <stdlib.h>

#define BATCH 500
#define PASS_EVERY_MS 60000

enum { RS_CHANGES, RS_EXTRAS, RS_LIFETIMES, RS_BLOCKS, RS_PROCESSES, RS_ANSWERS, RS_NOTE, RS_LINKS_NOTE, RS_LINKS, RS_COUNT };

/* The oldest BATCH lifetimes closed before the cutoff ?1 (LIMIT ?2). */
#define PRUNABLE                                                                                        \
    "SELECT lifetime_id FROM lifetimes"                                                                 \
    " WHERE lifetime_id < (SELECT (MAX(block) + 1) << 12 FROM lifetime_blocks WHERE min_first_seen < ?1)" \
    " AND first_seen < ?1 AND first_seen + closed_after < ?1 ORDER BY lifetime_id LIMIT ?2"

/* K: the newest link begun before the cutoff ?1 whose link before is still
 * there and is not the first: NULL when nothing is left to prune. */
#define LINKS_BEFORE                                                                                          \
    "(SELECT l.seq FROM chain_links l WHERE l.seq > 2 AND l.at <= ?1"                                         \
    " AND EXISTS (SELECT 1 FROM chain_links b WHERE b.seq = l.seq - 1) ORDER BY l.seq DESC LIMIT 1)"

static const char *const retention_sql[RS_COUNT] = {
    [RS_CHANGES] = "DELETE FROM state_changes WHERE lifetime_id IN (" PRUNABLE ")",
    [RS_EXTRAS] = "DELETE FROM lifetime_extras WHERE lifetime_id IN (" PRUNABLE ")",
    [RS_LIFETIMES] = "DELETE FROM lifetimes WHERE lifetime_id IN (" PRUNABLE ")",
    [RS_BLOCKS] = "DELETE FROM lifetime_blocks WHERE ?2 > 0 AND block < (SELECT MIN(lifetime_id) >> 12 FROM lifetimes)",
    [RS_PROCESSES] = "DELETE FROM processes WHERE proc_id IN (SELECT p.proc_id FROM processes p"
                     " WHERE p.first_seen < ?1 AND NOT EXISTS (SELECT 1 FROM lifetimes l"
                     " WHERE l.proc_id = p.proc_id) LIMIT ?2)",
    [RS_ANSWERS] = "DELETE FROM dns_answers WHERE answer_id IN (SELECT answer_id FROM dns_answers"
                   " WHERE first_seen < ?1 AND first_seen + expires_after < ?1 ORDER BY first_seen LIMIT ?2)",
    [RS_NOTE] = "INSERT INTO prunes(run_id, first_at, last_at, cutoff, lifetimes) VALUES (?3, ?4, ?4, ?1, ?2)"
                " ON CONFLICT(run_id) DO UPDATE SET last_at = excluded.last_at,"
                " cutoff = MAX(cutoff, excluded.cutoff), lifetimes = lifetimes + excluded.lifetimes",
    [RS_LINKS_NOTE] = "UPDATE prunes SET links_before = " LINKS_BEFORE ","
                      " links_prev = (SELECT hash FROM chain_links WHERE seq = " LINKS_BEFORE " - 1)"
                      " WHERE run_id = ?3 AND " LINKS_BEFORE " IS NOT NULL",
    [RS_LINKS] = "DELETE FROM chain_links WHERE seq > 1 AND seq < (SELECT links_before FROM prunes WHERE run_id = ?3)",
};

struct ch_retention {
    sqlite3 *db;
    sqlite3_stmt *st[RS_COUNT];
    int64_t retain_ms;
    int64_t run_id;
    int64_t next_pass;  /* when the next pass may start */
    int in_pass;        /* the last batch was full: more to delete */
};

ch_retention *ch_retention_new(sqlite3 *db, int64_t retain_ms, int64_t run_id)
{
    ch_retention *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->db = db;
    r->retain_ms = retain_ms;
    r->run_id = run_id;
    for (int i = 0; i < RS_COUNT; i++) {
        if (sqlite3_prepare_v3(db, retention_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &r->st[i], NULL) != SQLITE_OK) {
            ch_retention_free(r);
            return NULL;
        }
    }
    return r;
}

void ch_retention_free(ch_retention *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < RS_COUNT; i++)
        sqlite3_finalize(r->st[i]);
    free(r);
}

/* Runs statement i with the cutoff and a count; returns rows changed or -1. */
static int run_batch_stmt(ch_retention *r, int i, int64_t cutoff, int64_t n, int64_t now)
{
    sqlite3_stmt *st = r->st[i];
    sqlite3_bind_int64(st, 1, cutoff);
    sqlite3_bind_int64(st, 2, n);
    if (i >= RS_NOTE) {
        sqlite3_bind_int64(st, 3, r->run_id);
        sqlite3_bind_int64(st, 4, now);
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? sqlite3_changes(r->db) : -1;
}

int ch_retention_step(ch_retention *r, int64_t now, ch_pruned *out, char *err, size_t errn)
{
    *out = (ch_pruned){0, 0};
    if (!r->in_pass && now < r->next_pass)
        return 0;
    int64_t cutoff = now - r->retain_ms;
    int deleted = -1, answers = -1;
    if (sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
        run_batch_stmt(r, RS_CHANGES, cutoff, BATCH, now) >= 0 &&
        run_batch_stmt(r, RS_EXTRAS, cutoff, BATCH, now) >= 0 &&
        (deleted = run_batch_stmt(r, RS_LIFETIMES, cutoff, BATCH, now)) >= 0 &&
        run_batch_stmt(r, RS_BLOCKS, cutoff, deleted, now) >= 0 &&
        run_batch_stmt(r, RS_PROCESSES, cutoff, BATCH, now) >= 0 &&
        (answers = run_batch_stmt(r, RS_ANSWERS, cutoff, BATCH, now)) >= 0 &&
        run_batch_stmt(r, RS_NOTE, cutoff, deleted, now) >= 0 &&
        run_batch_stmt(r, RS_LINKS_NOTE, cutoff, 0, now) >= 0 && run_batch_stmt(r, RS_LINKS, cutoff, 0, now) >= 0 &&
        sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
        r->in_pass = deleted == BATCH || answers == BATCH;
        r->next_pass = now + PASS_EVERY_MS;
        if (deleted > 0 || answers > 0)
            sqlite3_exec(r->db, "PRAGMA incremental_vacuum(200)", NULL, NULL, NULL); /* pages */
        *out = (ch_pruned){deleted, answers};
        return 0;
    }
    snprintf(err, errn, "pruning failed, will retry: %s", sqlite3_errmsg(r->db));
    if (!sqlite3_get_autocommit(r->db))
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    r->in_pass = 0;
    r->next_pass = now + PASS_EVERY_MS / 4;
    return -1;
}
