/*
 * process PID|NAME: everything one process did. A pid can belong to several
 * processes over time (pids are reused; a process is its pid plus its start
 * time), so each one is reported separately: the process, when it was
 * active in the window, its listeners, its connections and a tally of the
 * remote ends it talked to. Only processes with a lifetime in the window
 * (and passing the filters) are listed.
 */
#include "lifetime_list.h"
#include "rowjson.h"
#include "stream.h"

/* The processes matching the argument that did something in the window. */
static void select_processes(qsql *q, query_ctx *c)
{
    const query_filters *f = &c->o->f;
    qsql_init(q, c->db);
    qsql_add(q, "SELECT " CHQ_PROCESS_COLUMNS ", p.proc_id FROM processes p WHERE 1");
    if (f->given & OPT_PID)
        qsql_int(q, " AND p.pid = ?", f->pid);
    if (f->given & OPT_PROCESS)
        qsql_text(q, " AND p.name GLOB ?", f->process);
    qsql_add(q, " AND p.proc_id IN (SELECT l.proc_id");
    filter_from(q, filter_bounded(f, FILTER_WINDOW));
    qsql_add(q, " WHERE l.proc_id IS NOT NULL");
    filter_lifetimes(q, f, FILTER_WINDOW);
    qsql_add(q, ") ORDER BY p.start_time, p.pid");
}

/* Appends FROM, " WHERE where", the filters and the window, for the
 * lifetimes of one process. */
static void own(qsql *q, const query_filters *f, const char *where, int64_t proc_id)
{
    filter_from(q, f->window_kept || filter_bounded(f, FILTER_WINDOW));
    qsql_add(q, " WHERE ");
    qsql_add(q, where);
    filter_lifetimes(q, f, f->window_kept ? FILTER_NO_WINDOW : FILTER_WINDOW);
    filter_owner(q, f, proc_id);
}

/* Writes first_activity and last_activity into the open entry. */
static int put_activity(query_ctx *c, int64_t proc_id)
{
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT MIN(l.first_seen), MAX(COALESCE(l.first_seen + l.last_seen_after, " CHQ_LAST_SAMPLE_SQL "))");
    own(&q, &c->o->f, "1", proc_id);
    sqlite3_stmt *st;
    if (qsql_prepare(&q, c->db, &st) != SQLITE_OK)
        return chq_sql_fail(c, "process activity");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        put_time_col(c->w, "first_activity", st, 0);
        put_time_col(c->w, "last_activity", st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : chq_sql_fail(c, "process activity");
}

static int lifetimes_of(query_ctx *c, const char *key, const char *condition, int64_t proc_id)
{
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT " CHQ_LIFETIME_COLUMNS);
    own(&q, &c->o->f, condition, proc_id);
    return lifetime_list(c, key, false, &q);
}

static void remote_row(jw *w, sqlite3_stmt *st)
{
    jw_open(w, NULL, false);
    put_text_col(w, "addr", st, 0);
    put_int_col(w, "port", st, 1);
    put_code_col(w, "proto", CODE_PROTO, st, 2);
    put_int_col(w, "count", st, 3);
    put_time_col(w, "first_seen", st, 4);
    put_time_col(w, "last_seen", st, 5);
    jw_close(w);
}

/* The remote ends it talked to, most lifetimes first. */
static int remotes_of(query_ctx *c, int64_t proc_id)
{
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT ra.addr, l.remote_port, l.proto, count(*), MIN(l.first_seen),"
                 " MAX(COALESCE(l.first_seen + l.last_seen_after, " CHQ_LAST_SAMPLE_SQL "))");
    own(&q, &c->o->f, "l.remote_addr_id IS NOT NULL", proc_id);
    qsql_add(&q, " GROUP BY l.remote_addr_id, l.remote_port, l.proto"
                 " ORDER BY count(*) DESC, MIN(l.first_seen), ra.addr, l.remote_port, l.proto");
    return stream_list(c, "remotes", false, &q, remote_row, "process remotes");
}

/* One process: an element of the main list (a line of its own in ndjson). */
static int process_entry(query_ctx *c, sqlite3_stmt *p)
{
    int64_t proc_id = sqlite3_column_int64(p, CHQ_PROCESS_NCOLS);
    jw_open(c->w, NULL, false);
    put_process(c->w, "process", p, 0);
    if (put_activity(c, proc_id) != 0 ||
        lifetimes_of(c, "listeners", CHQ_IS_LISTENER, proc_id) != 0 ||
        lifetimes_of(c, "connections", "l.remote_addr_id IS NOT NULL", proc_id) != 0 ||
        remotes_of(c, proc_id) != 0)
        return -1;
    jw_close(c->w);
    return 0;
}

int report_process(query_ctx *c, cJSON *header)
{
    chq_start(c, header);
    jw_open_main(c->w, "processes");
    qsql q;
    select_processes(&q, c);
    sqlite3_stmt *st;
    if (qsql_prepare(&q, c->db, &st) != SQLITE_OK)
        return chq_sql_fail(c, "selecting processes");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (process_entry(c, st) != 0) {
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return chq_sql_fail(c, "selecting processes");
    jw_close(c->w);
    return 0;
}
