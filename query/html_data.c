/*
 * The data of the HTML timeline (see html_page.h): one compact JSON
 * document, read by query/html/timeline.js.
 *
 *   {"header": {...the report's header...},
 *    "lanes": "process" | "remote",   the page's first choice of lanes
 *    "lifetimes": [[id, proto, family, local_addr, local_port, remote_addr,
 *                   remote_port, state, [states], first_seen, last_seen,
 *                   closed_at, close_reason, holders, proc_id, bytes_sent,
 *                   bytes_received, seen_by, opened_after, owner_source], ...],
 *    "processes": [[proc_id, pid, name, path, cmdline, user, uid,
 *                   start_time], ...]}
 *
 * Rows are arrays, not objects, and each process is written once however
 * many lifetimes it held: 100,000 lifetimes make a page of some 15 MB that
 * the browser parses in a fraction of a second. Times are epoch
 * milliseconds; null is unknown, as in the JSON reports.
 */
#include <stdlib.h>

#include "addr_text.h"
#include "filter.h"
#include "html_page.h"
#include "rowjson.h"

/* The proc_ids of the lifetimes written, for the processes list. */
typedef struct {
    int64_t *ids;
    size_t n, cap;
} id_list;

static int add_id(id_list *l, int64_t id)
{
    if (l->n > 0 && l->ids[l->n - 1] == id)
        return 0; /* a process's sockets often come in a row */
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        int64_t *ids = realloc(l->ids, cap * sizeof *ids);
        if (ids == NULL)
            return -1;
        l->ids = ids;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return 0;
}

static int compare_ids(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts the list and drops repeats. */
static void unique_ids(id_list *l)
{
    if (l->n == 0)
        return;
    qsort(l->ids, l->n, sizeof *l->ids, compare_ids);
    size_t out = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (l->ids[i] != l->ids[out - 1])
            l->ids[out++] = l->ids[i];
    }
    l->n = out;
}

/* One lifetime (CHQ_LIFETIME_COLUMNS, then l.proc_id) as an array. Keys
 * are ignored inside an array: the put_* writers serve as they are. */
static void lifetime_row(jw *w, sqlite3_stmt *st)
{
    jw_open(w, NULL, true);
    put_int_col(w, NULL, st, 0);
    put_code_col(w, NULL, CODE_PROTO, st, 1);
    put_int_col(w, NULL, st, 2);
    put_addr_col(w, NULL, st, 3);
    put_int_col(w, NULL, st, 4);
    put_addr_col(w, NULL, st, 5);
    put_int_col(w, NULL, st, 6);
    put_code_col(w, NULL, CODE_STATE, st, 7);
    put_states(w, st, 8, 0);
    put_int_col(w, NULL, st, 9);
    put_int_col(w, NULL, st, 10);
    put_int_col(w, NULL, st, 11);
    put_code_col(w, NULL, CODE_CLOSE_REASON, st, 12);
    put_int_col(w, NULL, st, 13);
    put_int_col(w, NULL, st, CHQ_LIFETIME_NCOLS);
    put_int_col(w, NULL, st, 21);
    put_int_col(w, NULL, st, 22);
    put_code_col(w, NULL, CODE_SEEN_BY, st, 23);
    put_int_col(w, NULL, st, 24);
    put_code_col(w, NULL, CODE_OWNER_SOURCE, st, 25);
    jw_close(w);
}

/* Writes "lifetimes", collecting their proc_ids into ids. */
static int write_lifetimes(query_ctx *c, id_list *ids)
{
    const query_filters *f = &c->o->f;
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT " CHQ_LIFETIME_COLUMNS ", l.proc_id");
    filter_from(&q, filter_bounded(f, FILTER_WINDOW));
    qsql_add(&q, " WHERE 1");
    filter_lifetimes(&q, f, FILTER_WINDOW);
    qsql_add(&q, " ORDER BY l.lifetime_id");
    filter_limit(&q, f);
    sqlite3_stmt *st;
    if (qsql_prepare(&q, c->db, &st) != SQLITE_OK)
        return chq_sql_fail(c, "selecting lifetimes");
    jw_open(c->w, "lifetimes", true);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        lifetime_row(c->w, st);
        if (sqlite3_column_type(st, CHQ_LIFETIME_NCOLS) != SQLITE_NULL &&
            add_id(ids, sqlite3_column_int64(st, CHQ_LIFETIME_NCOLS)) != 0) {
            sqlite3_finalize(st);
            chq_error("out of memory listing the processes of the page");
            return -1;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return chq_sql_fail(c, "selecting lifetimes");
    jw_close(c->w);
    return 0;
}

/* Writes "processes": each process of the list once. */
static int write_processes(query_ctx *c, id_list *ids)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT " CHQ_PROCESS_COLUMNS " FROM processes p WHERE p.proc_id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return chq_sql_fail(c, "reading processes");
    unique_ids(ids);
    jw_open(c->w, "processes", true);
    for (size_t i = 0; i < ids->n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids->ids[i]);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            continue; /* the foreign key makes this impossible; skip rather than invent */
        if (rc != SQLITE_ROW) {
            sqlite3_finalize(st);
            return chq_sql_fail(c, "reading processes");
        }
        jw_open(c->w, NULL, true);
        jw_int(c->w, NULL, ids->ids[i]);
        put_int_col(c->w, NULL, st, 0);
        for (int col = 2; col <= 5; col++) /* name, path, cmdline, user */
            put_text_col(c->w, NULL, st, col);
        put_int_col(c->w, NULL, st, 6);
        put_int_col(c->w, NULL, st, 1);
        jw_close(c->w);
    }
    sqlite3_finalize(st);
    jw_close(c->w);
    return 0;
}

int html_data_write(query_ctx *c, cJSON *header)
{
    jw_html_safe(c->w);
    chq_start(c, header);
    /* A process's page: its sockets by remote end; else one lane a process. */
    jw_text(c->w, "lanes", c->o->report->run == report_process ? "remote" : "process");
    id_list ids = {NULL, 0, 0};
    int rc = write_lifetimes(c, &ids);
    if (rc == 0)
        rc = write_processes(c, &ids);
    free(ids.ids);
    if (rc == 0)
        jw_end(c->w);
    return rc;
}
