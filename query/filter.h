/*
 * The lifetime filters of the command line as SQL conditions. Every report
 * that selects lifetimes goes through here, so --remote, --state and the
 * window mean the same thing everywhere.
 */
#ifndef CHQ_FILTER_H
#define CHQ_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include "qsql.h"
#include "query.h"

/* Listening TCP sockets and bound, unconnected UDP sockets. */
#define CHQ_IS_LISTENER "(l.remote_addr_id IS NULL AND (l.proto = 17 OR l.state = 10))" /* udp, LISTEN */

/* Whether filter_lifetimes also keeps only lifetimes overlapping the window. */
enum {
    FILTER_NO_WINDOW = 0,
    FILTER_WINDOW = 1,
    FILTER_AT = 2 /* one instant; the caller adds the conditions and filter_overlap */
};

/*
 * Appends " AND condition" for each filter given on the command line, on
 * lifetimes l joined with processes p. With FILTER_WINDOW, also the window:
 * first_seen <= until AND (closed_at IS NULL OR closed_at >= since).
 */
void filter_lifetimes(qsql *q, const query_filters *f, int window);

/*
 * Appends " AND l.lifetime_id IN (...)": a superset of the lifetimes passing
 * the filters that overlap [since, until], found through index ranges. The
 * caller keeps the exact overlap condition in its own query.
 */
void filter_overlap(qsql *q, const query_filters *f, int64_t since, int64_t until);

/*
 * For a report that runs many windowed queries: works out once which
 * lifetimes pass the filters in the window, into a temporary table of this
 * connection (the database file is not written), which filter_lifetimes and
 * filter_owner then use. Returns an SQLite status.
 */
int filter_keep_window(sqlite3 *db, query_filters *f);

/*
 * Appends the conditions keeping the lifetimes of one process (its proc_id).
 * With the window kept, they also select its lifetimes in the window
 * straight from temp.chq_window: the caller then filters with
 * FILTER_NO_WINDOW and filter_from(q, true).
 */
void filter_owner(qsql *q, const query_filters *f, int64_t proc_id);

/*
 * About how many lifetimes the window of f holds, from the ids of the
 * lifetime_blocks that meet it (an upper bound but for the few longer than
 * an hour, which start before those blocks), without reading a lifetime.
 * Returns an SQLite status.
 */
int filter_window_rows(sqlite3 *db, const query_filters *f, int64_t *out);

/* Whether a query with this window is driven by filter_overlap's id list. */
bool filter_bounded(const query_filters *f, int window);

/* Appends the FROM clause of lifetimes l and processes p for such a query. */
void filter_from(qsql *q, bool bounded);

/* Appends " LIMIT ?" with --limit, or no limit. */
void filter_limit(qsql *q, const query_filters *f);

/*
 * Registers chq_in_prefix(addr), true when the address text lies inside the
 * --remote prefix, on db. Returns an SQLite status.
 */
int filter_register_prefix(sqlite3 *db, const query_filters *f);

/*
 * Registers chq_has_state(states, code) and chq_first_state(states), which
 * read a states column (codes.h), on db. Returns an SQLite status.
 */
int filter_register_states(sqlite3 *db);

/* Whether --remote is a prefix shorter than a whole address. */
int filter_remote_is_prefix(const query_filters *f);

#endif
