/*
 * The data of the HTML timeline (see html_page.h): one compact JSON
 * document, read by query/html/timeline.js.
 *
 *   {"header": {...the report's header...},
 *    "lanes": "process" | "remote",   the page's first choice of lanes
 *    "lifetimes": [[id, proto, family, local_addr, local_port, remote_addr,
 *                   remote_port, state, [states], first_seen, last_seen,
 *                   closed_at, close_reason, proc_id, owner_source, holders,
 *                   bytes_sent, bytes_received, seen_by, opened_after], ...],
 *    "base": first_seen of the first lifetime (epoch ms; null: none),
 *    "addrs": [[addr_id, text], ...],
 *    "codes": [[field, code, name], ...],
 *    "processes": [[proc_id, pid, name, path, cmdline, user, uid,
 *                   start_time], ...]}
 *
 * The database's own compactness carries over: rows are arrays, addresses
 * are addr_ids and protocols, states, close reasons, seen_by and owner
 * sources are codes, each spelled out once in "addrs" and "codes"; a
 * process is written once however many lifetimes it held. first_seen and
 * opened_after count from "base", last_seen and closed_at from first_seen,
 * as in the lifetimes table; the null columns at the end of a row are left
 * out. 100,000 lifetimes make a page of some 6 MB.
 * null is unknown, as in the JSON reports.
 */
#include <stdlib.h>

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

/* Column col as milliseconds after `from`, or null. */
static void put_after(jw *w, sqlite3_stmt *st, int col, int64_t from)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        jw_null(w, NULL);
    else
        jw_int(w, NULL, sqlite3_column_int64(st, col) - from);
}

/* The last columns of a row, in the order written: often all null, and then
 * left out (see lifetime_row). opened_after is written from base. */
static const int tail_cols[] = {13, 21, 22, 23, 24}; /* holders, bytes_sent, bytes_received, seen_by, opened_after */
#define TAIL_COLS (int)(sizeof tail_cols / sizeof tail_cols[0])

/* One lifetime (CHQ_LIFETIME_COLUMNS, then l.proc_id) as an array. Keys
 * are ignored inside an array: the put_* writers serve as they are. The
 * columns that are null at the end of the row are left out (the page reads
 * a missing one as null): a quarter of the page, where no close was
 * announced. */
static void lifetime_row(jw *w, sqlite3_stmt *st, int64_t base)
{
    int64_t first = sqlite3_column_int64(st, 9);
    jw_open(w, NULL, true);
    for (int col = 0; col <= 7; col++) /* id, codes, addr_ids, ports, family */
        put_int_col(w, NULL, st, col);
    put_states(w, st, 8, 0, true);
    jw_int(w, NULL, first - base);
    put_after(w, st, 10, first);
    put_after(w, st, 11, first);
    put_int_col(w, NULL, st, 12);
    put_int_col(w, NULL, st, CHQ_LIFETIME_NCOLS);
    put_int_col(w, NULL, st, 25);
    int tail = TAIL_COLS;
    while (tail > 0 && sqlite3_column_type(st, tail_cols[tail - 1]) == SQLITE_NULL)
        tail--;
    for (int i = 0; i < tail; i++) {
        if (tail_cols[i] == 24)
            put_after(w, st, 24, base);
        else
            put_int_col(w, NULL, st, tail_cols[i]);
    }
    jw_close(w);
}

/* Adds the non-NULL column col of st to l. */
static int collect(id_list *l, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return 0;
    return add_id(l, sqlite3_column_int64(st, col));
}

/* Writes "lifetimes" and "base", collecting their proc_ids and addr_ids. */
static int write_lifetimes(query_ctx *c, id_list *procs, id_list *addrs)
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
    bool any = false;
    int64_t base = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!any)
            base = sqlite3_column_int64(st, 9);
        any = true;
        lifetime_row(c->w, st, base);
        if (collect(procs, st, CHQ_LIFETIME_NCOLS) != 0 || collect(addrs, st, 3) != 0 || collect(addrs, st, 5) != 0) {
            sqlite3_finalize(st);
            chq_error("out of memory listing the processes and addresses of the page");
            return -1;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return chq_sql_fail(c, "selecting lifetimes");
    jw_close(c->w);
    if (any)
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
