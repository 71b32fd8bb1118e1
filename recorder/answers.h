/*
 * The answer store: writes the DNS answers of the capture (names.h) as
 * answer lifetimes (dns_answers, dns_names) in the sample's transaction,
 * deduplicated in memory like sockets: an answer seen again while it is
 * still in force only moves its row's last_seen_after, expires_after and
 * times_seen. See schema/schema.sql for what starts a new row.
 *
 * It is a rider of the store (store.h): the store calls ch_answers_write
 * inside its transaction, after the lifetimes (so the asking socket of this
 * very sample can be found), and ch_answers_done after it committed or
 * rolled back. Facts waiting are bounded; what does not fit is counted.
 */
#ifndef CH_ANSWERS_H
#define CH_ANSWERS_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr_ids.h"
#include "names.h"

#define CH_ANSWERS_PENDING_MAX 8192 /* facts kept for a write that keeps failing */

typedef struct ch_answers ch_answers;

/* Prepares the statements on db; interval_ms is the sampling interval (how
 * late a socket may be first seen after its answer). NULL with err. */
ch_answers *ch_answers_new(sqlite3 *db, int64_t interval_ms, char *err, size_t errn);
void ch_answers_free(ch_answers *a);

/* Copies facts for the next write; beyond CH_ANSWERS_PENDING_MAX waiting
 * they are dropped and counted. */
void ch_answers_add(ch_answers *a, const ch_dns_answer *facts, size_t n);

/* Facts dropped by ch_answers_add since it was created. */
int64_t ch_answers_dropped(const ch_answers *a);

/* Answers waiting for the next write. */
size_t ch_answers_pending(const ch_answers *a);

/* Writes what waits, inside the caller's transaction, for run run_id.
 * Returns an SQLite status (the caller rolls back on failure). */
int ch_answers_write(ch_answers *a, ch_addr_ids *ids, int64_t run_id);

/* The transaction ended: committed, the facts are done with; rolled back,
 * they wait for the next write and the rows it made are forgotten. */
void ch_answers_done(ch_answers *a, bool committed);

#endif
