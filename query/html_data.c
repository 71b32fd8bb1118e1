/*
 * The data of the HTML timeline (see html_page.h): one compact JSON
 * document, read by query/html/timeline.js.
 *
 *   {"header": {...the report's header...},
 *    "lanes": "process" | "remote",   the page's first choice of lanes
 *    "lifetimes": {"states": [...], "count": N, "columns": [...]},
 *    "base": first_seen of the first lifetime (epoch ms; null: none),
 *    "addrs": [[addr_id, text], ...],
 *    "codes": [[field, code, name], ...],
 *    "processes": [[proc_id, pid, name, path, cmdline, user, uid,
 *                   start_time], ...]}
 *
 * The lifetimes come column by column, in the order of the page's rows:
 * id, proto, family, local_addr, local_port, remote_addr, remote_port,
 * state, (states), first_seen, last_seen, closed_at, close_reason, proc_id,
 * owner_source, holders, bytes_sent, bytes_received, seen_by, opened_after.
 * "columns" holds one array of N values for each (null for the states,
 * which are in "states", and for a column with no value at all). Numbers
 * in flat arrays are what the page's JSON.parse reads fastest, and the
 * page is a quarter smaller than with a row an array: the id and
 * first_seen are differences from the row before (first_seen's first from
 * "base"), last_seen counts from first_seen, closed_at from last_seen (or
 * first_seen when that is unknown), opened_after from "base"; a row's
 * states are 0 when they are the one state of its state column.
 *
 * The database's own compactness carries over: addresses are addr_ids and
 * protocols, states, close reasons, seen_by and owner sources are codes,
 * each spelled out once in "addrs" and "codes"; a process is written once
 * however many lifetimes it held. 100,000 lifetimes make a page of some
 * 4.7 MB. null is unknown, as in the JSON reports.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codes.h"
#include "filter.h"
#include "html_page.h"
#include "rowjson.h"
#include "stream.h"

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

/* The positions of a lifetime in the page's rows (timeline.js), and for
 * each the column of CHQ_LIFETIME_COLUMNS it comes from;
 * ROW_STATES is written apart. */
enum {
    ROW_ID = 0, ROW_STATE = 7, ROW_STATES = 8, ROW_FIRST = 9, ROW_LAST = 10, ROW_CLOSED = 11,
    ROW_OPENED_AFTER = 19, ROW_WIDTH = 20
};
static const int row_source[ROW_WIDTH] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,
                                          10, 11, 12, LCOL_PROC_ID, LCOL_OWNER_SOURCE, 13, LCOL_BYTES_SENT,
                                          LCOL_BYTES_RECEIVED, LCOL_SEEN_BY, LCOL_OPENED_AFTER};
#define NO_VALUE INT64_MIN /* null: no column holds it (times are ms, codes and ids small) */

/* The lifetimes of the page column by column, as written (see
 * html_data_write's comment). */
typedef struct {
    int64_t *col[ROW_WIDTH];
    bool any[ROW_WIDTH]; /* a column without a value is written as one null */
    size_t n, cap;
} lifetime_columns;

static int grow_columns(lifetime_columns *c)
{
    size_t cap = c->cap ? 2 * c->cap : 4096;
    for (int k = 0; k < ROW_WIDTH; k++) {
        if (k == ROW_STATES)
            continue;
        int64_t *p = realloc(c->col[k], cap * sizeof *p);
        if (p == NULL)
            return -1;
        c->col[k] = p;
    }
    c->cap = cap;
    return 0;
}

static int64_t value_or_none(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NO_VALUE : sqlite3_column_int64(st, col);
}

/* Appends one row. Times and ids are differences, the small numbers a page
 * is mostly made of: the id and first_seen from the previous row's (rows
 * come in lifetime_id order, which is nearly first_seen order),
 * last_seen from first_seen, closed_at from last_seen (else first_seen),
 * opened_after from base. */
static int add_row(lifetime_columns *c, sqlite3_stmt *st, int64_t base)
{
    if (c->n == c->cap && grow_columns(c) != 0)
        return -1;
    size_t i = c->n++;
    for (int k = 0; k < ROW_WIDTH; k++) {
        if (k == ROW_STATES)
            continue;
        int64_t v = value_or_none(st, row_source[k]);
        c->any[k] = c->any[k] || v != NO_VALUE;
        c->col[k][i] = v;
    }
    int64_t first = c->col[ROW_FIRST][i];
    int64_t last = c->col[ROW_LAST][i];
    c->col[ROW_FIRST][i] = first - base;
    if (last != NO_VALUE)
        c->col[ROW_LAST][i] = last - first;
    if (c->col[ROW_CLOSED][i] != NO_VALUE)
        c->col[ROW_CLOSED][i] -= last != NO_VALUE ? last : first;
    if (c->col[ROW_OPENED_AFTER][i] != NO_VALUE)
        c->col[ROW_OPENED_AFTER][i] -= base;
    return 0;
}

/* Replaces the id and first_seen columns by their differences from the
 * row before (the first from 0). */
static void difference(int64_t *v, size_t n)
{
    for (size_t i = n; i-- > 1;)
        v[i] -= v[i - 1];
}

static void free_columns(lifetime_columns *c)
{
    for (int k = 0; k < ROW_WIDTH; k++)
        free(c->col[k]);
}

/* Writes the columns other than the states: an array each, or null. */
static void write_columns(jw *w, lifetime_columns *c)
{
    difference(c->col[ROW_ID], c->n);
    difference(c->col[ROW_FIRST], c->n);
    jw_open(w, "columns", true);
    for (int k = 0; k < ROW_WIDTH; k++) {
        if (k == ROW_STATES || !c->any[k]) {
            jw_null(w, NULL);
            continue;
        }
        jw_open(w, NULL, true);
        for (size_t i = 0; i < c->n; i++) {
            if (c->col[k][i] == NO_VALUE)
                jw_null(w, NULL);
            else
                jw_int(w, NULL, c->col[k][i]);
        }
        jw_close(w);
    }
    jw_close(w);
}

/* A row's states: 0 for the common list of one state, the row's state
 * (a page of 100,000 lifetimes is 200 kB shorter), else the codes. */
static void put_row_states(jw *w, sqlite3_stmt *st)
{
    int64_t packed = sqlite3_column_int64(st, 8);
    int codes[16];
    if (packed < CODES_STATES_FULL && codes_unpack_states(packed, codes) == 1 &&
        sqlite3_column_type(st, 7) != SQLITE_NULL && codes[0] == sqlite3_column_int64(st, 7))
        jw_int(w, NULL, 0);
    else
        put_states(w, st, 8, 0, true);
}

/* Adds the non-NULL column col of st to l. */
static int collect(id_list *l, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return 0;
    return add_id(l, sqlite3_column_int64(st, col));
}

/* Writes "lifetimes" (the states of each row, then its other columns) and
 * "base", collecting their proc_ids and addr_ids. The states are written
 * as the rows are read (a long list may need a query of its own); the
 * other columns are kept until the end, 160 bytes a lifetime. */
static int write_lifetimes(query_ctx *c, id_list *procs, id_list *addrs)
{
    const query_filters *f = &c->o->f;
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT " CHQ_LIFETIME_COLUMNS);
    filter_from(&q, filter_bounded(f, FILTER_WINDOW));
    qsql_add(&q, " WHERE 1");
    filter_lifetimes(&q, f, FILTER_WINDOW);
    qsql_add(&q, " ORDER BY l.lifetime_id");
    filter_limit(&q, f);
    sqlite3_stmt *st;
    if (qsql_prepare(&q, c->db, &st) != SQLITE_OK)
        return chq_sql_fail(c, "selecting lifetimes");
    jw_open(c->w, "lifetimes", false);
    jw_open(c->w, "states", true);
    lifetime_columns cols;
    memset(&cols, 0, sizeof cols);
    int64_t base = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cols.n == 0)
            base = sqlite3_column_int64(st, 9);
        put_row_states(c->w, st);
        if (add_row(&cols, st, base) != 0 || collect(procs, st, LCOL_PROC_ID) != 0 ||
            collect(addrs, st, 3) != 0 || collect(addrs, st, 5) != 0) {
            sqlite3_finalize(st);
            free_columns(&cols);
            chq_error("out of memory holding the lifetimes of the page");
            return -1;
        }
    }
    sqlite3_finalize(st);
    jw_close(c->w);
    if (rc != SQLITE_DONE) {
        free_columns(&cols);
        return chq_sql_fail(c, "selecting lifetimes");
    }
    jw_int(c->w, "count", (int64_t)cols.n);
    write_columns(c->w, &cols);
    free_columns(&cols);
    jw_close(c->w);
    if (cols.n > 0)
        jw_int(c->w, "base", base);
    else
        jw_null(c->w, "base");
    return 0;
}

/* Writes "addrs": the text of each address of the list. */
static int write_addrs(query_ctx *c, id_list *ids)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT addr FROM addrs WHERE addr_id = ?", -1, &st, NULL) != SQLITE_OK)
        return chq_sql_fail(c, "reading addresses");
    unique_ids(ids);
    jw_open(c->w, "addrs", true);
    int rc = SQLITE_DONE;
    for (size_t i = 0; i < ids->n && rc != SQLITE_ERROR; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids->ids[i]);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            continue; /* an id the dictionary lacks: the page shows it unknown, as the reports do */
        jw_open(c->w, NULL, true);
        jw_int(c->w, NULL, ids->ids[i]);
        put_text_col(c->w, NULL, st, 0);
        jw_close(c->w);
    }
    sqlite3_finalize(st);
    jw_close(c->w);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : chq_sql_fail(c, "reading addresses");
}

static void code_row(jw *w, sqlite3_stmt *st)
{
    jw_open(w, NULL, true);
    put_text_col(w, NULL, st, 0);
    put_int_col(w, NULL, st, 1);
    put_text_col(w, NULL, st, 2);
    jw_close(w);
}

/* Writes "codes": the names of the codes table. */
static int write_codes(query_ctx *c)
{
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT field, code, name FROM codes ORDER BY field, code");
    return stream_list(c, "codes", false, &q, code_row, "reading codes");
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
    id_list procs = {NULL, 0, 0}, addrs = {NULL, 0, 0};
    int rc = write_lifetimes(c, &procs, &addrs);
    if (rc == 0)
        rc = write_addrs(c, &addrs);
    if (rc == 0)
        rc = write_codes(c);
    if (rc == 0)
        rc = write_processes(c, &procs);
    free(procs.ids);
    free(addrs.ids);
    if (rc == 0)
        jw_end(c->w);
    return rc;
}
