/*
 * export --format ecs: lifetimes as ECS documents (ecs.h), one per line, for
 * shippers (Filebeat, Vector, Fluent Bit) to send to Elasticsearch or
 * OpenSearch. No header line: every line is a document.
 *
 * Three ways to run it:
 * - plain: every lifetime of the window that passes the filters, once, in
 *   its state now (an open one as open);
 * - --cursor FILE: what is new since the cursor (first run: everything),
 *   then the cursor is moved on; for a scheduled job;
 * - --follow [--cursor FILE]: the same, then again every POLL_MS for as
 *   long as it runs, as the recorder records.
 *
 * With a cursor, a lifetime is written when it is first exported (open or
 * already closed) and once more when an open one closes; both documents
 * carry the same event.id, so an index that takes event.id as the document
 * id keeps the latest. The documents of a poll are synced to the output
 * before the cursor is replaced, so a kill at any moment loses nothing; it
 * may repeat the documents of the poll it interrupted (at-least-once: the
 * same event.id again, the later copy as new as the earlier or newer).
 *
 * DNS answers (dns_answers) follow the lifetimes, one document each, when
 * no filter other than the window is given (the others are about
 * connections). A plain export writes the answers seen in the window; a
 * cursor writes the answers recorded since, and again, with the same
 * event.id, an answer whose last_seen moved past the latest last_seen the
 * cursor had written (a response repeated it). An update committed with a
 * last_seen older than that (the clock went back) is not written again: it
 * changes only last_seen, expiry and times_seen of an answer already
 * exported.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecs.h"
#include "export_cursor.h"
#include "export_file.h"
#include "filter.h"
#include "name_cache.h"
#include "names.h"
#include "qsql.h"
#include "rowjson.h"

/* How often --follow looks for new rows. The look itself is one PRAGMA
 * when nothing was committed since (data_version). */
#define POLL_MS 1000

typedef struct {
    query_ctx *c;
    ecs_writer *ecs;
    FILE *out;                 /* the output: stdout or --output */
    export_cursor cur;
    export_cursor closed;      /* its open list: ids whose close this pass wrote */
    bool staged;               /* temp.chq_export_open holds the open list */
    sqlite3_stmt *add_open, *drop_open;
    int64_t written;           /* documents written by this poll */
} export_run;

static volatile sig_atomic_t stop_requested;

static void request_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---- the output ------------------------------------------------------------ */

/*
 * Cuts a torn last line (a kill in the middle of a write) off the --output
 * file, so the next document starts a line of its own. The torn document's
 * poll never reached the cursor, so it is written again whole.
 */
static int cut_torn_line(const char *path)
{
    FILE *f = xf_open(path, "rb+");
    if (f == NULL)
        return 0; /* not there yet */
    int rc = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f), keep = size;
        char buf[4096];
        while (keep > 0) {
            long from = keep > (long)sizeof buf ? keep - (long)sizeof buf : 0;
            if (fseek(f, from, SEEK_SET) != 0 || fread(buf, 1, (size_t)(keep - from), f) != (size_t)(keep - from)) {
                rc = -1;
                break;
            }
            long i = keep - from;
            while (i > 0 && buf[i - 1] != '\n')
                i--;
            if (i > 0) {
                keep = from + i;
                break;
            }
            keep = from;
        }
        if (rc == 0 && keep < size)
            rc = xf_truncate(f, keep);
    }
    fclose(f);
    return rc;
}

static int open_output(export_run *r)
{
    const char *path = r->c->o->output;
    if (path == NULL) {
        r->out = stdout;
        return 0;
    }
    if (cut_torn_line(path) != 0 || (r->out = xf_open(path, "ab")) == NULL) {
        chq_error("--output %s: cannot append to it: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Hands what was written to the output (to the disk for --output). */
static int sync_output(export_run *r)
{
    jw_flush(r->c->w);
    int rc = r->c->o->output != NULL ? xf_sync(r->out) : fflush(r->out);
    if (rc != 0 || ferror(r->out)) {
        chq_error("%s: cannot write the export: %s", r->c->o->output ? r->c->o->output : "standard output",
                  strerror(errno));
        return -1;
    }
    return 0;
}

/* After log rotation moved --output away: a new file at the path. */
static int reopen_if_rotated(export_run *r)
{
    const char *path = r->c->o->output;
    if (path == NULL || xf_still_at(r->out, path))
        return 0;
    fclose(r->out);
    r->out = r->c->w->f = xf_open(path, "ab");
    if (r->out == NULL) {
        chq_error("--output %s: cannot create it again after it was moved: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- one pass -------------------------------------------------------------- */

/* The filters that are about connections: with any, no answer is written. */
#define NOT_ABOUT_ANSWERS                                                                                      \
    (OPT_REMOTE | OPT_REMOTE_PORT | OPT_LOCAL_PORT | OPT_PORT | OPT_PROTO | OPT_FAMILY | OPT_PID | OPT_PROCESS | \
     OPT_STATE | OPT_OPEN | OPT_LIMIT | OPT_REMOTE_NAME)

static bool answers_wanted(const export_run *r)
{
    return !(r->c->o->f.given & NOT_ABOUT_ANSWERS);
}

/* Steps q's rows into documents (lifetimes, or answers with answers set),
 * calling on_row (when given) after each. */
static int write_docs(export_run *r, qsql *q, const char *what, bool answers,
                      int (*on_row)(export_run *, sqlite3_stmt *))
{
    sqlite3_stmt *st;
    if (qsql_prepare(q, r->c->db, &st) != SQLITE_OK)
        return chq_sql_fail(r->c, what);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (answers)
            ecs_put_answer(r->ecs, r->c->w, st);
        else
            ecs_put(r->ecs, r->c->w, st);
        r->written++;
        if (on_row != NULL && on_row(r, st) != 0) {
            sqlite3_finalize(st);
            chq_error("out of memory");
            return -1;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : chq_sql_fail(r->c, what);
}

static int write_rows(export_run *r, qsql *q, const char *what, int (*on_row)(export_run *, sqlite3_stmt *))
{
    return write_docs(r, q, what, false, on_row);
}

/* Runs sql on the open list's table with id bound; 0 or -1. */
static int open_table_step(export_run *r, sqlite3_stmt **st, const char *sql, int64_t id)
{
    if (*st == NULL && sqlite3_prepare_v2(r->c->db, sql, -1, st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(*st, 1, id);
    int rc = sqlite3_step(*st);
    sqlite3_reset(*st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * The open list is mirrored in temp.chq_export_open (this connection's
 * own, the database file is not written) for the query of closes to start
 * from: filled once from the cursor, then kept in step row by row.
 */
static int stage_open(export_run *r)
{
    if (sqlite3_exec(r->c->db, "CREATE TEMP TABLE chq_export_open(id INTEGER PRIMARY KEY); BEGIN", NULL, NULL,
                     NULL) != SQLITE_OK)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < r->cur.n_open; i++)
        rc = open_table_step(r, &r->add_open, "INSERT INTO temp.chq_export_open(id) VALUES (?1)", r->cur.open[i]);
    if (sqlite3_exec(r->c->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        rc = -1;
    return rc;
}

/* A new row written open: its close is still to come. */
static int note_if_open(export_run *r, sqlite3_stmt *st)
{
    if (sqlite3_column_type(st, 11) != SQLITE_NULL) /* ECS_COLUMNS: closed_at */
        return 0;
    int64_t id = sqlite3_column_int64(st, 0);
    if (cursor_add_open(&r->cur, id) != 0)
        return -1;
    return open_table_step(r, &r->add_open, "INSERT INTO temp.chq_export_open(id) VALUES (?1)", id);
}

/* A row of the closes query was written: its id leaves the open list. */
static int note_closed(export_run *r, sqlite3_stmt *st)
{
    return cursor_add_open(&r->closed, sqlite3_column_int64(st, 0));
}

/* Drops the ids of r->closed (ascending, as the open list) from the open
 * list and its table. 0 or -1. */
static int forget_closed(export_run *r)
{
    size_t kept = 0, j = 0;
    for (size_t i = 0; i < r->cur.n_open; i++) {
        while (j < r->closed.n_open && r->closed.open[j] < r->cur.open[i])
            j++;
        if (j == r->closed.n_open || r->closed.open[j] != r->cur.open[i])
            r->cur.open[kept++] = r->cur.open[i];
    }
    r->cur.n_open = kept;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < r->closed.n_open; i++)
        rc = open_table_step(r, &r->drop_open, "DELETE FROM temp.chq_export_open WHERE id = ?1", r->closed.open[i]);
    r->closed.n_open = 0;
    return rc;
}

/* The largest id of sql's table now (lifetimes, dns_answers), or 0. */
static int newest_id(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* An answer was written: the cursor's latest last_seen follows it. */
static int note_answer(export_run *r, sqlite3_stmt *st)
{
    int64_t last_seen = sqlite3_column_int64(st, 8); /* ECS_ANSWER_COLUMNS: last_seen */
    if (last_seen > r->cur.answers_seen)
        r->cur.answers_seen = last_seen;
    return 0;
}

/* The answers of a cursor pass: those recorded since (answer_id from
 * next_answer to newest) and those repeated since (last_seen after the
 * latest written), in answer_id order. */
static int export_answers(export_run *r, int64_t newest)
{
    const query_filters *f = &r->c->o->f;
    qsql q;
    qsql_init(&q, r->c->db);
    qsql_add(&q, "SELECT " ECS_ANSWER_COLUMNS ECS_ANSWER_FROM);
    qsql_int(&q, " WHERE a.answer_id <= ?", newest);
    qsql_int(&q, " AND (a.answer_id >= ?", r->cur.next_answer);
    qsql_int(&q, " OR a.first_seen + a.last_seen_after > ?)", r->cur.answers_seen);
    if (f->given & OPT_SINCE)
        qsql_int(&q, " AND a.first_seen + a.last_seen_after >= ?", f->since);
    qsql_add(&q, " ORDER BY a.answer_id");
    if (write_docs(r, &q, "selecting DNS answers", true, note_answer) != 0)
        return -1;
    if (newest + 1 > r->cur.next_answer)
        r->cur.next_answer = newest + 1;
    return 0;
}

/*
 * One pass of the cursor: the closes of the lifetimes written open, then
 * the lifetimes recorded since. Both read committed rows only, so a pass
 * that meets the recorder mid-transaction sees it whole or not at all. The
 * cursor is written when the pass moved it, or (the first pass) always, so
 * that its file says export has started.
 */
static int export_pass(export_run *r, bool save_anyway)
{
    query_ctx *c = r->c;
    const query_filters *f = &c->o->f;
    int64_t newest, newest_answer;
    if (newest_id(c->db, "SELECT COALESCE(MAX(lifetime_id), 0) FROM lifetimes", &newest) != 0 ||
        newest_id(c->db, "SELECT COALESCE(MAX(answer_id), 0) FROM dns_answers", &newest_answer) != 0 ||
        ecs_learn_listeners(r->ecs, r->cur.next_id) != 0)
        return chq_sql_fail(c, "reading the newest lifetimes");
    r->written = 0;
    names_forget(); /* the answers recorded since the last pass name its lifetimes */
    if (answers_wanted(r) && newest >= r->cur.next_id) /* no filter: most remote addresses will be asked */
        name_cache_expect(c->db, newest - r->cur.next_id + 1 + (int64_t)r->cur.n_open);
    if (!r->staged) {
        if (stage_open(r) != 0)
            return chq_sql_fail(c, "listing the open lifetimes");
        r->staged = true;
    }
    if (r->cur.n_open > 0) {
        /* No filter here: a lifetime written open passed them, and closing
         * does not change what they look at. CROSS JOIN: from the open list
         * to the lifetimes, never a scan of the lifetimes. */
        qsql q;
        qsql_init(&q, c->db);
        qsql_add(&q, "SELECT " ECS_COLUMNS " FROM temp.chq_export_open o CROSS JOIN lifetimes l"
                     " ON l.lifetime_id = o.id WHERE l.closed_after IS NOT NULL ORDER BY o.id");
        if (write_rows(r, &q, "selecting closed lifetimes", note_closed) != 0)
            return -1;
        if (forget_closed(r) != 0)
            return chq_sql_fail(c, "listing the open lifetimes");
    }
    if (newest >= r->cur.next_id) {
        qsql q;
        qsql_init(&q, c->db);
        qsql_add(&q, "SELECT " ECS_COLUMNS CHQ_LIFETIME_FROM);
        qsql_int(&q, " WHERE l.lifetime_id >= ?", r->cur.next_id);
        qsql_int(&q, " AND l.lifetime_id <= ?", newest);
        if (f->given & OPT_SINCE) /* lifetimes closed before --since are not wanted */
            qsql_int(&q, " AND (l.closed_after IS NULL OR l.first_seen + l.closed_after >= ?)", f->since);
        filter_lifetimes(&q, f, FILTER_NO_WINDOW);
        qsql_add(&q, " ORDER BY l.lifetime_id");
        if (write_rows(r, &q, "selecting new lifetimes", note_if_open) != 0)
            return -1;
    }
    int64_t next_answer = r->cur.next_answer;
    if (answers_wanted(r) && export_answers(r, newest_answer) != 0)
        return -1;
    bool moved = r->written > 0 || newest + 1 > r->cur.next_id || r->cur.next_answer != next_answer;
    if (newest + 1 > r->cur.next_id)
        r->cur.next_id = newest + 1;
    if (!moved && !save_anyway)
        return 0;
    if (sync_output(r) != 0)
        return -1;
    return c->o->cursor != NULL ? cursor_save(c->o->cursor, ecs_database_id(r->ecs), &r->cur) : 0;
}

/* The database's data_version: it changes when another connection commits. */
static int64_t data_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* --follow: a pass whenever the recorder committed, until a signal. */
static int follow(export_run *r)
{
    int64_t seen = data_version(r->c->db);
    while (!stop_requested) {
        xf_sleep_ms(POLL_MS);
        int64_t now = data_version(r->c->db);
        if (now == seen)
            continue;
        seen = now;
        if (reopen_if_rotated(r) != 0 || export_pass(r, false) != 0)
            return -1;
    }
    return 0;
}

/* ---- the report ------------------------------------------------------------ */

/* Plain export: the window's lifetimes, in recording order. */
static int export_window(export_run *r)
{
    names_expect_window(r->c->db, &r->c->o->f);
    qsql q;
    qsql_init(&q, r->c->db);
    qsql_add(&q, "SELECT " ECS_COLUMNS);
    filter_from(&q, filter_bounded(&r->c->o->f, FILTER_WINDOW));
    qsql_add(&q, " WHERE 1");
    filter_lifetimes(&q, &r->c->o->f, FILTER_WINDOW);
    qsql_add(&q, " ORDER BY l.lifetime_id");
    filter_limit(&q, &r->c->o->f);
    if (write_rows(r, &q, "selecting lifetimes", NULL) != 0)
        return -1;
    if (answers_wanted(r)) { /* the answers seen in the window */
        qsql_init(&q, r->c->db);
        qsql_add(&q, "SELECT " ECS_ANSWER_COLUMNS ECS_ANSWER_FROM);
        qsql_int(&q, " WHERE a.first_seen <= ?", r->c->o->f.until);
        if (r->c->o->f.given & OPT_SINCE)
            qsql_int(&q, " AND a.first_seen + a.last_seen_after >= ?", r->c->o->f.since);
        qsql_add(&q, " ORDER BY a.answer_id");
        if (write_docs(r, &q, "selecting DNS answers", true, NULL) != 0)
            return -1;
    }
    return sync_output(r);
}

int export_check_args(const query_opts *o)
{
    static const struct {
        unsigned bit;
        const char *name, *why;
    } not_with_cursor[] = {
        {OPT_UNTIL, "--until", "it exports what is recorded from now on"},
        {OPT_OPEN, "--open", "it exports every lifetime, open or closed"},
        {OPT_LIMIT, "--limit", "a cursor moves over whole passes"},
        {OPT_STATE, "--state", "a lifetime's states change after it is exported"},
    };
    if (!(o->f.given & (OPT_FOLLOW | OPT_CURSOR)))
        return 0;
    for (size_t i = 0; i < sizeof not_with_cursor / sizeof not_with_cursor[0]; i++) {
        if (o->f.given & not_with_cursor[i].bit) {
            chq_error("%s: not with --%s (%s)", not_with_cursor[i].name,
                      o->f.given & OPT_FOLLOW ? "follow" : "cursor", not_with_cursor[i].why);
            return -1;
        }
    }
    return 0;
}

int report_export(query_ctx *c, cJSON *header)
{
    cJSON_Delete(header); /* documents only: no header line */
    export_run r = {c, NULL, NULL, {0, NULL, 0, 0, 0, -1}, {0, NULL, 0, 0, 0, -1}, false, NULL, NULL, 0};
    if (ecs_open(c->db, &r.ecs) != 0) {
        ecs_close(r.ecs);
        return chq_sql_fail(c, "reading the runs and listeners");
    }
    const query_opts *o = c->o;
    int rc = open_output(&r);
    if (rc == 0 && o->cursor != NULL)
        rc = cursor_load(o->cursor, ecs_database_id(r.ecs), &r.cur);
    if (rc == 0) {
        c->w->mode = JW_NDJSON; /* whatever --pretty said: one document a line */
        c->w->f = r.out;
        jw_begin(c->w);
        jw_open_main(c->w, "documents");
        if (o->f.given & OPT_FOLLOW) { /* from the first pass on, a signal ends a pass, not the run */
            signal(SIGINT, request_stop);
            signal(SIGTERM, request_stop);
        }
        if (o->f.given & (OPT_FOLLOW | OPT_CURSOR))
            rc = export_pass(&r, true);
        else
            rc = export_window(&r);
        if (rc == 0 && (o->f.given & OPT_FOLLOW))
            rc = follow(&r);
        jw_close(c->w);
        jw_flush(c->w);
        c->w->f = stdout;
    }
    if (r.out != NULL && r.out != stdout && fclose(r.out) != 0 && rc == 0) {
        chq_error("--output %s: cannot write the export: %s", o->output, strerror(errno));
        rc = -1;
    }
    cursor_free(&r.cur);
    cursor_free(&r.closed);
    sqlite3_finalize(r.add_open);
    sqlite3_finalize(r.drop_open);
    ecs_close(r.ecs);
    return rc;
}
