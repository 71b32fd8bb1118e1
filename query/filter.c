/*
 * Filters as SQL (see filter.h). An address is looked up in the addrs
 * dictionary, and its id drives the remote index; an IPv4 peer of a
 * dual-stack socket is stored as '::ffff:a.b.c.d', so an exact address
 * matches both spellings. A prefix cannot be an index range on text, so it
 * selects the dictionary's addresses through a SQL function that compares
 * the bytes.
 *
 * A window is the hard part on millions of rows: "first_seen <= until and
 * not closed before since" is no index range. But a lifetime either started
 * at most CH_LONG_LIFETIME_MS before since, or it is in the small partial
 * index lifetimes_long (open, or longer than that). Ids follow first_seen,
 * and lifetime_blocks bounds the first_seen of each block of ids, so the
 * first_seen range is an id range: the window selects ids from it on
 * whichever index the other filters pick (every index ends in the id), plus
 * that short list, and the outer query keeps the exact condition.
 */
#include "filter.h"

#include "codes.h"
#include "db.h"
#include "names.h"
#include "rowjson.h"

#include <stdbool.h>
#include <stdint.h>

int filter_remote_is_prefix(const query_filters *f)
{
    return f->remote_len < (f->remote_net.family == 6 ? 128 : 32);
}

static void filter_remote(qsql *q, const query_filters *f)
{
    qsql_add(q, " AND l.remote_addr_id IN (SELECT addr_id FROM addrs WHERE");
    if (filter_remote_is_prefix(f)) {
        qsql_add(q, " chq_in_prefix(addr))");
    } else if (f->remote_alt[0] != '\0') {
        qsql_text(q, " addr IN (?", f->remote_text);
        qsql_text(q, ", ?))", f->remote_alt);
    } else {
        qsql_text(q, " addr = ?)", f->remote_text);
    }
}

/* Appends " AND l.lifetime_id BETWEEN first AND last": the ids of the
 * blocks whose first_seen bounds meet [lo, until] (none: an empty range). */
static void id_range(qsql *q, int64_t lo, int64_t until)
{
    qsql_int(q, " AND l.lifetime_id BETWEEN (SELECT MIN(block) << 12 FROM lifetime_blocks WHERE max_first_seen >= ?", lo);
    qsql_int(q, " AND min_first_seen <= ?)", until);
    qsql_int(q, " AND (SELECT ((MAX(block) + 1) << 12) - 1 FROM lifetime_blocks WHERE max_first_seen >= ?", lo);
    qsql_int(q, " AND min_first_seen <= ?)", until);
}

/* The first_seen range [lo, until] of the driver of filter_overlap. */
typedef struct {
    int64_t lo, until;
} id_window;

/*
 * The conditions of the command line's filters other than the window. In
 * the driver of filter_overlap (w not NULL), the process name is matched
 * through the processes table, so that one process's lifetimes are an index
 * range, and each side of --port carries the id range itself: SQLite
 * searches each side's index in that range only.
 */
static void filter_terms(qsql *q, const query_filters *f, const id_window *w)
{
    bool driver = w != NULL;
    if (f->given & OPT_REMOTE)
        filter_remote(q, f);
    names_filter(q, f);
    if (f->given & OPT_REMOTE_PORT)
        qsql_int(q, " AND l.remote_port = ?", f->remote_port);
    if (f->given & OPT_LOCAL_PORT)
        qsql_int(q, " AND l.local_port = ?", f->local_port);
    if ((f->given & OPT_PORT) && driver) {
        qsql_int(q, " AND ((l.local_port = ?", f->port);
        id_range(q, w->lo, w->until);
        qsql_int(q, ") OR (l.remote_port = ?", f->port);
        id_range(q, w->lo, w->until);
        qsql_add(q, "))");
    } else if (f->given & OPT_PORT) {
        qsql_int(q, " AND (l.local_port = ?", f->port);
        qsql_int(q, " OR l.remote_port = ?)", f->port);
    }
    if (f->given & OPT_PROTO)
        qsql_int(q, " AND l.proto = ?", code_of_name(CODE_PROTO, f->proto));
    if (f->given & OPT_FAMILY)
        qsql_int(q, " AND l.family = ?", f->family);
    if (f->given & OPT_PID)
        qsql_int(q, " AND l.proc_id IN (SELECT proc_id FROM processes WHERE pid = ?)", f->pid);
    if ((f->given & OPT_PROCESS) && driver)
        qsql_text(q, " AND l.proc_id IN (SELECT proc_id FROM processes WHERE name GLOB ?)", f->process);
    if (f->given & OPT_PROCESS)
        qsql_text(q, " AND p.name GLOB ?", f->process);
    if (f->given & OPT_STATE) { /* in the states column, or past its 15 in state_changes */
        int64_t code = code_of_name(CODE_STATE, f->state);
        qsql_int(q, " AND (chq_has_state(l.states, ?)", code);
        qsql_int(q, " OR (l.states >= ?", CODES_STATES_FULL);
        qsql_int(q, " AND EXISTS (SELECT 1 FROM state_changes s WHERE s.lifetime_id = l.lifetime_id AND s.state = ?)))",
                 code);
    }
    if (f->given & OPT_OPEN)
        qsql_add(q, " AND l.closed_after IS NULL");
}

/* The SELECT of the candidate ids of filter_overlap. */
static void overlap_ids(qsql *q, const query_filters *f, int64_t since, int64_t until)
{
    int64_t lo = since - CH_LONG_LIFETIME_MS;
    qsql_add(q, "SELECT l.lifetime_id" CHQ_LIFETIME_FROM " WHERE 1");
    id_range(q, lo, until);
    qsql_int(q, " AND l.first_seen >= ?", lo);
    qsql_int(q, " AND l.first_seen <= ?", until);
    filter_terms(q, f, &(id_window){lo, until});
    qsql_add(q, " UNION ALL SELECT lifetime_id FROM lifetimes INDEXED BY lifetimes_long"
                " WHERE " CH_LONG_LIFETIME_SQL);
    qsql_int(q, " AND first_seen < ?", lo);
    qsql_int(q, " AND first_seen <= ?", until);
    qsql_int(q, " AND (closed_after IS NULL OR first_seen + closed_after >= ?)", since);
}

void filter_overlap(qsql *q, const query_filters *f, int64_t since, int64_t until)
{
    qsql_add(q, " AND l.lifetime_id IN (");
    overlap_ids(q, f, since, until);
    qsql_add(q, ")");
}

void filter_owner(qsql *q, const query_filters *f, int64_t proc_id)
{
    if (f->window_kept)
        qsql_int(q, " AND l.lifetime_id IN (SELECT id FROM temp.chq_window WHERE proc_id = ?)", proc_id);
    qsql_int(q, " AND l.proc_id = ?", proc_id);
}

int filter_keep_window(sqlite3 *db, query_filters *f)
{
    if (!filter_bounded(f, FILTER_WINDOW) || f->window_kept)
        return SQLITE_OK;
    int rc = sqlite3_exec(db,
                          "CREATE TEMP TABLE chq_window(id INTEGER PRIMARY KEY, proc_id INTEGER);"
                          "CREATE INDEX temp.chq_window_owner ON chq_window(proc_id)",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc;
    qsql q;
    qsql_init(&q, db);
    qsql_add(&q, "INSERT INTO temp.chq_window SELECT l.lifetime_id, l.proc_id");
    filter_from(&q, true);
    qsql_add(&q, " WHERE 1");
    filter_lifetimes(&q, f, FILTER_WINDOW);
    sqlite3_stmt *st;
    rc = qsql_prepare(&q, db, &st);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return rc == SQLITE_OK ? SQLITE_ERROR : rc;
    f->window_kept = true;
    return SQLITE_OK;
}

void filter_lifetimes(qsql *q, const query_filters *f, int window)
{
    if (window == FILTER_WINDOW) {
        qsql_int(q, " AND l.first_seen <= ?", f->until);
        if (f->given & OPT_SINCE)
            qsql_int(q, " AND (l.closed_after IS NULL OR l.first_seen + l.closed_after >= ?)", f->since);
        if (filter_bounded(f, window) && f->window_kept)
            qsql_add(q, " AND l.lifetime_id IN (SELECT id FROM temp.chq_window)");
        else if (filter_bounded(f, window))
            filter_overlap(q, f, f->since, f->until);
        else if (f->given & OPT_UNTIL) /* the scan from the oldest stops at the last block that began by until */
            qsql_int(q,
                     " AND l.lifetime_id <= (SELECT ((MAX(block) + 1) << 12) - 1 FROM lifetime_blocks"
                     " WHERE min_first_seen <= ?)",
                     f->until);
    }
    filter_terms(q, f, NULL);
}

int filter_window_rows(sqlite3 *db, const query_filters *f, int64_t *out)
{
    int64_t lo = (f->given & OPT_SINCE) ? f->since - CH_LONG_LIFETIME_MS : INT64_MIN;
    qsql q; /* MIN and MAX each a subquery of its own: each walks the blocks from one end (id_range's) */
    qsql_init(&q, db);
    qsql_int(&q, "SELECT COALESCE(((SELECT MAX(block) FROM lifetime_blocks WHERE max_first_seen >= ?", lo);
    qsql_int(&q, " AND min_first_seen <= ?)", f->until);
    qsql_int(&q, " - (SELECT MIN(block) FROM lifetime_blocks WHERE max_first_seen >= ?", lo);
    qsql_int(&q, " AND min_first_seen <= ?) + 1) << 12, 0)", f->until);
    sqlite3_stmt *st;
    int rc = qsql_prepare(&q, db, &st);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/*
 * A window reaching back to the oldest lifetime (less an hour) selects
 * nothing the plain scan of first_seen <= until would not: that scan then
 * costs no more and yields the rows in order, with no sort of a result
 * that may be the whole database (--ndjson of everything).
 */
bool filter_bounded(const query_filters *f, int window)
{
    if (window == FILTER_AT)
        return true;
    return window == FILTER_WINDOW && (f->given & OPT_SINCE) && f->since - CH_LONG_LIFETIME_MS > f->oldest;
}

void filter_from(qsql *q, bool bounded)
{
    /* Bounded: the rows come from filter_overlap's id list, never from an
     * index scan over all of history that the planner might prefer. */
    qsql_add(q, bounded ? " FROM lifetimes l NOT INDEXED" CHQ_LIFETIME_JOINS : CHQ_LIFETIME_FROM);
}

void filter_limit(qsql *q, const query_filters *f)
{
    qsql_int(q, " LIMIT ?", (f->given & OPT_LIMIT) ? f->limit : -1);
}

/* chq_in_prefix(addr): 1 inside the prefix, 0 outside or for NULL/garbage. */
static void in_prefix(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const query_filters *f = sqlite3_user_data(ctx);
    const char *text = (const char *)sqlite3_value_text(argv[0]);
    ch_addr a;
    if (text == NULL || ch_addr_parse(text, &a) != 0) {
        sqlite3_result_int(ctx, 0);
        return;
    }
    sqlite3_result_int(ctx, ch_addr_in_prefix(&a, &f->remote_net, f->remote_len));
}

int filter_register_prefix(sqlite3 *db, const query_filters *f)
{
    return sqlite3_create_function_v2(db, "chq_in_prefix", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                      (void *)f, in_prefix, NULL, NULL, NULL);
}

/* chq_has_state(states, code): 1 when the states column holds the code. */
static void has_state(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    int codes[16];
    int n = codes_unpack_states(sqlite3_value_int64(argv[0]), codes);
    int64_t code = sqlite3_value_int64(argv[1]);
    int found = 0;
    for (int i = 0; i < n && !found; i++)
        found = codes[i] == code;
    sqlite3_result_int(ctx, found);
}

/* chq_first_state(states): the code of the first state in the states column. */
static void first_state(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    int codes[16];
    int n = codes_unpack_states(sqlite3_value_int64(argv[0]), codes);
    if (n > 0)
        sqlite3_result_int(ctx, codes[0]);
    else
        sqlite3_result_null(ctx);
}

int filter_register_states(sqlite3 *db)
{
    int rc = sqlite3_create_function_v2(db, "chq_has_state", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                        has_state, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function_v2(db, "chq_first_state", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                        first_state, NULL, NULL, NULL);
    return rc;
}
