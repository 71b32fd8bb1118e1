/*
 * summary: the window at a glance. Counts, the most frequent remote
 * addresses, remote ports and processes (--top N each), the listeners that
 * appeared inside the window, and the remote addresses contacted for the
 * first time ever inside it (first in the whole database, not just in the
 * window: "new" means never seen before).
 */
#include "lifetime_list.h"
#include "names.h"
#include "rowjson.h"
#include "stream.h"

/* Starts a query over the lifetimes in the window that pass the filters. */
static void over_window(qsql *q, query_ctx *c, const char *select)
{
    qsql_init(q, c->db);
    qsql_add(q, select);
    filter_from(q, filter_bounded(&c->o->f, FILTER_WINDOW));
    qsql_add(q, " WHERE 1");
    filter_lifetimes(q, &c->o->f, FILTER_WINDOW);
}

static int put_counts(query_ctx *c)
{
    qsql q;
    over_window(&q, c,
                "SELECT count(*), total(l.proto = 6), total(l.proto = 17),"
                " total(" CHQ_IS_LISTENER "), total(l.remote_addr_id IS NOT NULL),"
                " total(l.closed_after IS NULL), count(DISTINCT l.proc_id),"
                " total(l.proc_id IS NULL)");
    sqlite3_stmt *st;
    if (qsql_prepare(&q, c->db, &st) != SQLITE_OK)
        return chq_sql_fail(c, "counting lifetimes");
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return chq_sql_fail(c, "counting lifetimes");
    }
    static const char *const keys[] = {"lifetimes", "tcp", "udp", "listeners", "connections",
                                       "open", "processes", "unattributed"};
    cJSON *counts = cJSON_CreateObject();
    for (int i = 0; i < 8; i++)
        cJSON_AddNumberToObject(counts, keys[i], (double)sqlite3_column_int64(st, i));
    sqlite3_finalize(st);
    jw_put_free(c->w, "counts", counts);
    return 0;
}

static void addr_row(jw *w, sqlite3_stmt *st)
{
    jw_open(w, NULL, false);
    put_text_col(w, "addr", st, 0);
    put_int_col(w, "count", st, 1);
    put_group_names(w, st, 2);
    jw_close(w);
}

static void port_row(jw *w, sqlite3_stmt *st)
{
    jw_open(w, NULL, false);
    put_int_col(w, "port", st, 0);
    put_int_col(w, "count", st, 1);
    jw_close(w);
}

static void process_row(jw *w, sqlite3_stmt *st)
{
    jw_open(w, NULL, false);
    put_process(w, "process", st, 0);
    put_int_col(w, "count", st, CHQ_PROCESS_NCOLS);
    jw_close(w);
}

/* One "top" list: a GROUP BY over the window, most lifetimes first. */
static int put_top(query_ctx *c, const char *key, const char *select, const char *group, row_put_fn fn)
{
    qsql q;
    over_window(&q, c, select);
    qsql_add(&q, group);
    qsql_int(&q, " LIMIT ?", c->o->f.top);
    return stream_list(c, key, false, &q, fn, key);
}

static int put_new_listeners(query_ctx *c)
{
    const query_filters *f = &c->o->f;
    qsql q;
    lifetime_select(&q, c->db, f, FILTER_WINDOW);
    qsql_add(&q, " AND " CHQ_IS_LISTENER);
    if (f->given & OPT_SINCE)
        qsql_int(&q, " AND l.first_seen >= ?", f->since);
    return lifetime_list(c, "new_listeners", false, &q);
}

static void first_contact_row(jw *w, sqlite3_stmt *st)
{
    jw_open(w, NULL, false);
    put_text_col(w, "addr", st, 0);
    put_time_col(w, "first_seen", st, 1);
    jw_close(w);
}

/*
 * Remote addresses whose earliest lifetime in the whole database is in the
 * window: those first seen in the window (index ranges), less those with an
 * earlier lifetime passing the same filters (one index probe each).
 */
static int put_first_contacts(query_ctx *c)
{
    const query_filters *f = &c->o->f;
    qsql q;
    over_window(&q, c, "WITH firsts AS (SELECT l.remote_addr_id AS id, ra.addr AS addr, MIN(l.first_seen) AS first");
    qsql_add(&q, " AND l.remote_addr_id IS NOT NULL");
    if (f->given & OPT_SINCE)
        qsql_int(&q, " AND l.first_seen >= ?", f->since);
    qsql_add(&q, " GROUP BY l.remote_addr_id) SELECT addr, first FROM firsts WHERE NOT EXISTS"
                 " (SELECT 1" CHQ_LIFETIME_FROM " WHERE l.remote_addr_id = firsts.id"
                 " AND l.first_seen < firsts.first");
    filter_lifetimes(&q, f, FILTER_NO_WINDOW);
    qsql_add(&q, ") ORDER BY first, addr");
    return stream_list(c, "first_contacted_remotes", false, &q, first_contact_row,
                       "first contacted remotes");
}

int report_summary(query_ctx *c, cJSON *header)
{
    chq_start(c, header);
    if (put_counts(c) != 0 ||
        put_top(c, "top_remote_addrs", "SELECT ra.addr, count(*), " CHQ_GROUP_NAMES_COLUMNS,
                " AND l.remote_addr_id IS NOT NULL GROUP BY l.remote_addr_id"
                " ORDER BY count(*) DESC, ra.addr",
                addr_row) != 0 ||
        put_top(c, "top_remote_ports", "SELECT l.remote_port, count(*)",
                " AND l.remote_port IS NOT NULL GROUP BY l.remote_port"
                " ORDER BY count(*) DESC, l.remote_port",
                port_row) != 0 ||
        put_top(c, "top_processes",
                "SELECT " CHQ_PROCESS_COLUMNS ", count(*)",
                " AND l.proc_id IS NOT NULL GROUP BY l.proc_id"
                " ORDER BY count(*) DESC, p.pid, p.start_time",
                process_row) != 0 ||
        put_new_listeners(c) != 0 || put_first_contacts(c) != 0)
        return -1;
    return 0;
}
