/*
 * The data of the HTML timeline (see html_page.h): one compact JSON
 * document, read by query/html/timeline.js.
 *
 *   {"header": {...the report's header...},
 *    "lanes": "process" | "remote",   the page's first choice of lanes
 *    "lifetimes": {"state_lists": [[codes], ...], "count": N,
 *                  "columns": ["base64", ..., null, ...]},
 *    "addrs": [[addr_id, text], ...],
 *    "codes": [[field, code, name], ...],
 *    "processes": [[proc_id, pid, name, path, cmdline, user, uid,
 *                   start_time], ...]}
 *
 * The lifetimes come column by column, in the order of the page's rows:
 * id, proto, family, local_addr, local_port, remote_addr, remote_port,
 * state, (states), first_seen, last_seen, closed_at, close_reason, proc_id,
 * owner_source, holders, bytes_sent, bytes_received, seen_by, opened_after.
 * "columns" holds one string for each (null for a column with no value
 * at all): the base64 of the column's values packed
 * as below. closed_at counts from first_seen, and last_seen back from
 * closed_at (or on from first_seen when the lifetime is open), so both are
 * short, and the first draw needs first_seen and closed_at only.
 * The states column holds a number a row: 0 when its states are just its
 * state column (the usual list of one), else k for the k-th list of
 * "state_lists", where each distinct list is written once.
 *
 * A packed column (pack_column) is a sequence of LEB128 varints. The
 * first says how values are written: 0 as they are, 1 as the difference
 * from the previous value that was not null (the first from 0); the
 * writer takes whichever is shorter. Then each varint u is either a value
 * (u even: u/2 is 0 for null, else the zigzag of the value or difference,
 * plus 1) or a run (u odd: the previous value or difference occurs
 * (u-1)/2 + 1 more times). Runs make a column of one protocol, or of ids
 * counting up by one, a few bytes long. The page decodes a column into a
 * Float64Array (NaN for null) in one loop, without a JavaScript value a
 * row: at 100,000 lifetimes that is some 1.2 MB and a few milliseconds,
 * where the same numbers as JSON were 4.7 MB and the largest part of the
 * page's time to its first draw (the HTML parser's pass, then
 * JSON.parse). Numbers beyond 2^53 (what a page's numbers hold exactly)
 * are written as null.
 *
 * The database's own compactness carries over: addresses are addr_ids and
 * protocols, states, close reasons, seen_by and owner sources are codes,
 * each spelled out once in "addrs" and "codes"; a process is written once
 * however many lifetimes it held. null is unknown, as in the JSON reports.
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
 * ROW_STATES holds the number of the row's list (state_number). */
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
        int64_t *p = realloc(c->col[k], cap * sizeof *p);
        if (p == NULL)
            return -1;
        c->col[k] = p;
    }
    c->cap = cap;
    return 0;
}

#define EXACT_MAX ((int64_t)1 << 53) /* the largest integer a page's number holds exactly */

/* A value of the row, NO_VALUE for null and for what the page could not
 * hold exactly (beyond 2^53: 9 PB of bytes, or 285,000 years of ms). */
static int64_t value_or_none(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NO_VALUE;
    int64_t v = sqlite3_column_int64(st, col);
    return v > EXACT_MAX || v < -EXACT_MAX ? NO_VALUE : v;
}

/* Appends one row, with closed_at counted from first_seen (the bar's
 * length) and last_seen back from closed_at (else from first_seen): short
 * numbers, and the first draw reads neither first_seen nor closed_at
 * through last_seen. */
static int add_row(lifetime_columns *c, sqlite3_stmt *st, int64_t states)
{
    if (c->n == c->cap && grow_columns(c) != 0)
        return -1;
    size_t i = c->n++;
    for (int k = 0; k < ROW_WIDTH; k++) {
        if (k == ROW_STATES)
            continue; /* the caller's */
        int64_t v = value_or_none(st, row_source[k]);
        c->any[k] = c->any[k] || v != NO_VALUE;
        c->col[k][i] = v;
    }
    c->col[ROW_STATES][i] = states;
    c->any[ROW_STATES] = c->any[ROW_STATES] || states != 0;
    int64_t first = c->col[ROW_FIRST][i];
    int64_t closed = c->col[ROW_CLOSED][i];
    int64_t *last = &c->col[ROW_LAST][i];
    if (first == NO_VALUE)
        return 0; /* the schema makes this impossible; the others stay absolute */
    if (*last != NO_VALUE)
        *last = closed != NO_VALUE ? closed - *last : *last - first;
    if (closed != NO_VALUE)
        c->col[ROW_CLOSED][i] = closed - first;
    return 0;
}

static void free_columns(lifetime_columns *c)
{
    for (int k = 0; k < ROW_WIDTH; k++)
        free(c->col[k]);
}

/* A growing buffer of bytes: a packed column, then its base64. */
typedef struct {
    unsigned char *p;
    size_t n, cap;
} byte_buf;

static int reserve(byte_buf *b, size_t more)
{
    if (b->n + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more)
        cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int put_varint(byte_buf *b, uint64_t u)
{
    if (reserve(b, 10) != 0)
        return -1;
    while (u >= 0x80) {
        b->p[b->n++] = (unsigned char)(u | 0x80);
        u >>= 7;
    }
    b->p[b->n++] = (unsigned char)u;
    return 0;
}

/* A value's varint (see the file's comment): 2 * (zigzag + 1). Values and
 * differences are within 2^54 (value_or_none), so nothing overflows. */
static uint64_t value_code(int64_t v)
{
    uint64_t zigzag = v < 0 ? (((uint64_t)-(v + 1)) << 1) | 1 : (uint64_t)v << 1;
    return (zigzag + 1) << 1;
}

/* Packs column v of n values into b (emptied first), as they are or as
 * differences (the file's comment). */
static int pack_column(byte_buf *b, const int64_t *v, size_t n, bool differences)
{
    b->n = 0;
    if (put_varint(b, differences ? 1 : 0) != 0)
        return -1;
    int64_t prev = 0;
    uint64_t last = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t code = 0; /* null */
        if (v[i] != NO_VALUE) {
            code = value_code(differences ? v[i] - prev : v[i]);
            prev = v[i];
        }
        if (i > 0 && code == last) {
            run++;
            continue;
        }
        if (run > 0 && put_varint(b, ((run - 1) << 1) | 1) != 0)
            return -1;
        run = 0;
        if (put_varint(b, code) != 0)
            return -1;
        last = code;
    }
    return run > 0 ? put_varint(b, ((run - 1) << 1) | 1) : 0;
}

/* Writes the bytes of b as one JSON string of their base64 (RFC 4648,
 * with padding: what the page's atob reads). */
static int put_base64(jw *w, const byte_buf *b, byte_buf *text)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    text->n = 0;
    if (reserve(text, (b->n + 2) / 3 * 4 + 2) != 0)
        return -1;
    unsigned char *o = text->p;
    *o++ = '"';
    for (size_t i = 0; i < b->n; i += 3) {
        size_t left = b->n - i;
        uint32_t x = (uint32_t)b->p[i] << 16 | (left > 1 ? (uint32_t)b->p[i + 1] << 8 : 0) |
                     (left > 2 ? b->p[i + 2] : 0);
        *o++ = (unsigned char)digits[x >> 18];
        *o++ = (unsigned char)digits[x >> 12 & 63];
        *o++ = left > 1 ? (unsigned char)digits[x >> 6 & 63] : '=';
        *o++ = left > 2 ? (unsigned char)digits[x & 63] : '=';
    }
    *o++ = '"';
    jw_raw(w, NULL, (const char *)text->p, (size_t)(o - text->p));
    return 0;
}

/* Writes the columns other than the states: each packed the shorter way,
 * in base64, or null. */
static int write_columns(jw *w, lifetime_columns *c)
{
    byte_buf plain = {NULL, 0, 0}, diff = {NULL, 0, 0}, text = {NULL, 0, 0};
    int rc = 0;
    jw_open(w, "columns", true);
    for (int k = 0; k < ROW_WIDTH && rc == 0; k++) {
        if (!c->any[k]) {
            jw_null(w, NULL);
            continue;
        }
        rc = pack_column(&plain, c->col[k], c->n, false);
        if (rc == 0)
            rc = pack_column(&diff, c->col[k], c->n, true);
        if (rc == 0)
            rc = put_base64(w, diff.n < plain.n ? &diff : &plain, &text);
    }
    jw_close(w);
    free(plain.p);
    free(diff.p);
    free(text.p);
    return rc;
}

/* The distinct lists of states written to "state_lists", by their packed
 * value (query/codes.h): an open-addressing table, as a page may have many
 * lists (every order of states a connection went through). */
typedef struct {
    int64_t *key;    /* packed value + 1; 0: an empty slot */
    int64_t *number; /* the list's number in "state_lists", from 1 */
    size_t cap, used;
    int64_t lists;   /* lists written */
} state_table;

static size_t slot_of(const state_table *t, int64_t key)
{
    size_t h = (size_t)((uint64_t)key * UINT64_C(0x9E3779B97F4A7C15) >> 20) & (t->cap - 1);
    while (t->key[h] != 0 && t->key[h] != key)
        h = (h + 1) & (t->cap - 1);
    return h;
}

static int grow_table(state_table *t)
{
    state_table bigger = {NULL, NULL, t->cap ? 2 * t->cap : 64, t->used, t->lists};
    bigger.key = calloc(bigger.cap, sizeof *bigger.key);
    bigger.number = calloc(bigger.cap, sizeof *bigger.number);
    if (bigger.key == NULL || bigger.number == NULL) {
        free(bigger.key);
        free(bigger.number);
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (t->key[i] == 0)
            continue;
        size_t h = slot_of(&bigger, t->key[i]);
        bigger.key[h] = t->key[i];
        bigger.number[h] = t->number[i];
    }
    free(t->key);
    free(t->number);
    *t = bigger;
    return 0;
}

/* The number of the row's list of states (0: just its state column, the
 * usual list of one), writing the list to "state_lists" when it is new. A
 * list too long to pack (CODES_STATES_FULL) is written for its row alone;
 * -1: out of memory. */
static int64_t state_number(jw *w, state_table *t, sqlite3_stmt *st)
{
    int64_t packed = sqlite3_column_int64(st, 8);
    int codes[16];
    bool full = packed >= CODES_STATES_FULL;
    if (!full && codes_unpack_states(packed, codes) == 1 && sqlite3_column_type(st, 7) != SQLITE_NULL &&
        codes[0] == sqlite3_column_int64(st, 7))
        return 0;
    size_t h = 0;
    if (!full) {
        if (2 * (t->used + 1) > t->cap && grow_table(t) != 0)
            return -1;
        h = slot_of(t, packed + 1);
        if (t->key[h] != 0)
            return t->number[h];
        t->key[h] = packed + 1;
        t->number[h] = t->lists + 1;
        t->used++;
    }
    put_states(w, st, 8, 0, true);
    return ++t->lists;
}

/* Adds the non-NULL column col of st to l. */
static int collect(id_list *l, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return 0;
    return add_id(l, sqlite3_column_int64(st, col));
}

/* Writes "lifetimes" (the lists of states, then the columns), collecting
 * the proc_ids and addr_ids. A list of states is written when a row first
 * has it (a long list may need a query of its own); the columns are kept
 * until the end, 160 bytes a lifetime. */
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
    jw_open(c->w, "state_lists", true);
    lifetime_columns cols;
    memset(&cols, 0, sizeof cols);
    state_table lists = {NULL, NULL, 0, 0, 0};
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t states = state_number(c->w, &lists, st);
        if (states < 0 || add_row(&cols, st, states) != 0 || collect(procs, st, LCOL_PROC_ID) != 0 ||
            collect(addrs, st, 3) != 0 || collect(addrs, st, 5) != 0) {
            sqlite3_finalize(st);
            free_columns(&cols);
            free(lists.key);
            free(lists.number);
            chq_error("out of memory holding the lifetimes of the page");
            return -1;
        }
    }
    sqlite3_finalize(st);
    free(lists.key);
    free(lists.number);
    jw_close(c->w);
    if (rc != SQLITE_DONE) {
        free_columns(&cols);
        return chq_sql_fail(c, "selecting lifetimes");
    }
    jw_int(c->w, "count", (int64_t)cols.n);
    int packed = write_columns(c->w, &cols);
    free_columns(&cols);
    jw_close(c->w);
    if (packed != 0) {
        chq_error("out of memory packing the lifetimes of the page");
        return -1;
    }
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
