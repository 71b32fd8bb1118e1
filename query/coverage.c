/*
 * Coverage of the window (see coverage.h).
 *
 * Spans are merged when the next one starts within two sampling intervals
 * (of the run that resumed) after the previous one ended: that is how
 * --once runs started every interval by a timer join into one covered
 * stretch, while a machine that slept for an hour leaves a gap. Spans are
 * read in order and merged as they come, so memory does not grow with them.
 * With no --since, the window starts at the first sample: there is no gap
 * "before the beginning", and no window length or fraction either.
 */
#include "coverage.h"

#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "rowjson.h"
#include "utf8.h"

typedef struct {
    const query_filters *f;
    bool started;      /* cursor is set */
    int64_t cursor;    /* where the part of the window not yet accounted for starts */
    int64_t covered;
    bool point_covered;
    cJSON *gaps;
} coverage_acc;

static void add_gap(coverage_acc *a, int64_t from, int64_t to)
{
    cJSON *g = cJSON_CreateObject();
    json_add_time(g, "from", true, from);
    json_add_time(g, "to", true, to);
    cJSON_AddNumberToObject(g, "ms", (double)(to - from));
    cJSON_AddItemToArray(a->gaps, g);
}

/* Accounts for one merged, covered piece [from, to]. */
static void add_piece(coverage_acc *a, int64_t from, int64_t to)
{
    const query_filters *f = a->f;
    if (from <= f->until && to >= f->until)
        a->point_covered = true; /* for a window of zero length (the at report) */
    if (!a->started) {
        a->started = true;
        a->cursor = from;
    }
    int64_t lo = (f->given & OPT_SINCE) && f->since > from ? f->since : from;
    int64_t hi = to < f->until ? to : f->until;
    if (lo > hi)
        return; /* entirely outside the window */
    if (lo > a->cursor)
        add_gap(a, a->cursor, lo);
    a->covered += hi - lo;
    if (hi > a->cursor)
        a->cursor = hi;
}

/* Reads the spans in order, merging neighbours, into a. */
static int merge_spans(query_ctx *c, coverage_acc *a)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT h.first_at, h.last_at, r.interval_ms FROM heartbeats h"
                      " JOIN runs r ON r.run_id = h.run_id ORDER BY h.first_at, h.last_at";
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return chq_sql_fail(c, "reading heartbeats");
    bool have = false;
    int64_t from = 0, to = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t first = sqlite3_column_int64(st, 0), last = sqlite3_column_int64(st, 1);
        int64_t interval = sqlite3_column_int64(st, 2);
        if (have && first - to <= 2 * interval) {
            if (last > to)
                to = last;
            continue;
        }
        if (have)
            add_piece(a, from, to);
        have = true;
        from = first;
        to = last;
    }
    if (have)
        add_piece(a, from, to);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : chq_sql_fail(c, "reading heartbeats");
}

/* Counts the runs whose time overlaps the window. */
static int count_runs(query_ctx *c, int64_t *out)
{
    qsql q;
    sqlite3_stmt *st;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT count(*) FROM runs r WHERE 1");
    coverage_runs_where(&q, &c->o->f);
    if (qsql_prepare(&q, c->db, &st) != SQLITE_OK)
        return chq_sql_fail(c, "counting runs");
    int rc = sqlite3_step(st);
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : chq_sql_fail(c, "counting runs");
}

/* Whether the newest heartbeat is recent and its run has not ended. */
static int recording_now(query_ctx *c, bool *out)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT h.last_at, r.interval_ms, r.ended_at IS NULL FROM heartbeats h"
                      " JOIN runs r ON r.run_id = h.run_id ORDER BY h.last_at DESC LIMIT 1";
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return chq_sql_fail(c, "reading heartbeats");
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW && sqlite3_column_int(st, 2) &&
           c->o->now - sqlite3_column_int64(st, 0) <= 2 * sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : chq_sql_fail(c, "reading heartbeats");
}

/*
 * --retain deleted lifetimes closed before prunes.cutoff: a window reaching
 * back before it is over pruned data, and says so ("pruned": true).
 */
static int add_pruned(query_ctx *c, cJSON *cov)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT MAX(cutoff) FROM prunes", -1, &st, NULL) != SQLITE_OK)
        return chq_sql_fail(c, "reading prunes");
    int rc = sqlite3_step(st);
    bool known = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    int64_t cutoff = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return chq_sql_fail(c, "reading prunes");
    const query_filters *f = &c->o->f;
    json_add_time(cov, "pruned_before", known, cutoff);
    cJSON_AddBoolToObject(cov, "pruned", known && (!(f->given & OPT_SINCE) || f->since < cutoff));
    return 0;
}

static void add_totals(cJSON *cov, const coverage_acc *a)
{
    const query_filters *f = a->f;
    cJSON_AddNumberToObject(cov, "covered_ms", (double)a->covered);
    if (!(f->given & OPT_SINCE)) {
        cJSON_AddNullToObject(cov, "window_ms");
        cJSON_AddNullToObject(cov, "fraction");
        return;
    }
    int64_t window = f->until - f->since;
    cJSON_AddNumberToObject(cov, "window_ms", (double)window);
    double fraction = window > 0 ? (double)a->covered / (double)window : a->point_covered;
    cJSON_AddNumberToObject(cov, "fraction", fraction);
}

/* True when the array of strings already holds text. */
static bool has_string(const cJSON *array, const char *text)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, array)
        if (cJSON_IsString(item) && strcmp(item->valuestring, text) == 0)
            return true;
    return false;
}

/* Adds each note of notes (joined with "; ", as the recorder writes a
 * run's notes) to the array, once; bytes that are not UTF-8 (a damaged or
 * hostile database) become U+FFFD. */
static int add_notes_of(cJSON *array, const char *raw)
{
    char *repaired = utf8_repair(raw); /* NULL: raw is valid UTF-8 */
    const char *notes = repaired != NULL ? repaired : raw;
    int rc = 0;
    for (const char *p = notes; rc == 0 && *p != '\0';) {
        const char *end = strstr(p, "; ");
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        char *one = malloc(n + 1);
        if (one == NULL) {
            rc = -1;
            break;
        }
        memcpy(one, p, n);
        one[n] = '\0';
        rc = has_string(array, one) || cJSON_AddItemToArray(array, cJSON_CreateString(one)) ? 0 : -1;
        free(one);
        p = end != NULL ? end + 2 : p + n;
    }
    free(repaired);
    return rc;
}

/*
 * What the window's runs could not record, and why: the distinct notes of
 * their runs ("socket owner events off: not running as root ...", "DNS
 * names off: ...", events lost), one entry each, so that every report
 * says what its rows lack.
 */
static int add_run_notes(query_ctx *c, cJSON *cov)
{
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT DISTINCT r.notes FROM runs r WHERE r.notes IS NOT NULL");
    coverage_runs_where(&q, &c->o->f);
    qsql_add(&q, " ORDER BY r.started_at, r.run_id");
    sqlite3_stmt *st;
    if (qsql_prepare(&q, c->db, &st) != SQLITE_OK)
        return chq_sql_fail(c, "reading runs");
    cJSON *notes = cJSON_AddArrayToObject(cov, "notes");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (add_notes_of(notes, (const char *)sqlite3_column_text(st, 0)) != 0) {
            sqlite3_finalize(st);
            chq_error("out of memory reading the runs' notes");
            return -1;
        }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : chq_sql_fail(c, "reading runs");
}

int coverage_json(query_ctx *c, cJSON **out)
{
    const query_filters *f = &c->o->f;
    coverage_acc a = {f, (f->given & OPT_SINCE) != 0, f->since, 0, false, cJSON_CreateArray()};
    int64_t runs = 0;
    bool recording = false;
    if (merge_spans(c, &a) != 0 || count_runs(c, &runs) != 0 || recording_now(c, &recording) != 0) {
        cJSON_Delete(a.gaps);
        return -1;
    }
    if (a.started && a.cursor < f->until)
        add_gap(&a, a.cursor, f->until);
    cJSON *cov = cJSON_CreateObject();
    add_totals(cov, &a);
    cJSON_AddNumberToObject(cov, "runs", (double)runs);
    cJSON_AddItemToObject(cov, "gaps", a.gaps);
    cJSON_AddBoolToObject(cov, "recording_now", recording);
    json_add_time(cov, "last_sample", c->has_last_sample, c->last_sample);
    if (add_pruned(c, cov) != 0 || names_coverage(c, cov) != 0 || add_run_notes(c, cov) != 0) {
        cJSON_Delete(cov);
        return -1;
    }
    *out = cov;
    return 0;
}

void coverage_runs_where(qsql *q, const query_filters *f)
{
    qsql_int(q, " AND r.started_at <= ?", f->until);
    if (f->given & OPT_SINCE)
        qsql_int(q,
                 " AND COALESCE(r.ended_at, (SELECT MAX(h.last_at) FROM heartbeats h"
                 " WHERE h.run_id = r.run_id), r.started_at) >= ?",
                 f->since);
}
