/*
 * One run of connhist-query: read the command line, open the database
 * read-only, print the header and the report, and turn what went wrong into
 * the exit code (2 bad input, 1 database or output trouble, 0 ok).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "addr_text.h"
#include "codes.h"
#include "filter.h"
#include "header.h"
#include "html_page.h"
#include "message.h"
#include "multidb.h"
#include "names.h"
#include "rowjson.h"
#include "platform.h"
#include "query.h"

void chq_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ch_vmessage(stderr, "connhist-query: ", fmt, ap); /* one line, whatever the user typed */
    va_end(ap);
}

int chq_sql_fail(query_ctx *c, const char *what)
{
    chq_error("%s: query failed (%s): %s", c->db_path, what, sqlite3_errmsg(c->db));
    return -1;
}

void chq_start(query_ctx *c, cJSON *header)
{
    if (jw_in_section(c->w)) {
        cJSON_Delete(header); /* one database of several: multidb.c wrote the document's start */
        return;
    }
    jw_begin(c->w);
    jw_put_free(c->w, "header", header);
}

/* The newest sample of any run (v_last_sample), if there is one. */
int chq_read_last_sample(query_ctx *c)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT at FROM v_last_sample", -1, &st, NULL) != SQLITE_OK)
        return chq_sql_fail(c, "reading v_last_sample");
    int rc = sqlite3_step(st);
    c->has_last_sample = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    c->last_sample = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : chq_sql_fail(c, "reading v_last_sample");
}

/* The oldest first_seen in the database (at most: blocks outlive pruning),
 * for the choice of plan (filter.c). */
static int read_oldest(sqlite3 *db, int64_t *oldest)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT MIN(min_first_seen) FROM lifetime_blocks", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    *oldest = sqlite3_column_type(st, 0) == SQLITE_NULL ? INT64_MAX : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int chq_ready(query_ctx *c, query_opts *o)
{
    sqlite3 *db = c->db;
    if (codes_load(db) != SQLITE_OK || filter_register_states(db) != SQLITE_OK ||
        (o->f.given & OPT_REMOTE && filter_remote_is_prefix(&o->f) &&
         filter_register_prefix(db, &o->f) != SQLITE_OK) ||
        read_oldest(db, &o->f.oldest) != 0 ||
        (o->report->keep_window && filter_keep_window(db, &o->f) != SQLITE_OK))
        return chq_sql_fail(c, "selecting the window");
    return chq_read_last_sample(c);
}

/* Everything after the database is ready; 0 or 1. */
static int run_report(query_ctx *c)
{
    cJSON *header;
    if (header_json(c, &header) != 0)
        return 1;
    if (c->o->html) {
        if (html_page_write(c, header) != 0)
            return 1;
    } else {
        if (c->o->report->run(c, header) != 0)
            return 1;
        jw_end(c->w);
    }
    FILE *out = c->w->f;
    if (fflush(out) != 0 || ferror(out)) {
        chq_error("cannot write the report to %s", c->o->output != NULL ? c->o->output : "standard output");
        return 1;
    }
    return 0;
}

/* Where the report goes: standard output, or the --output file (created,
 * or emptied, once the database is open). NULL after a message. */
static FILE *open_output(const query_opts *o)
{
    if (o->output == NULL || o->report->run == report_export)
        return stdout; /* export appends to its --output itself (report_export.c) */
    FILE *f = ch_fopen(o->output, "wb");
    if (f == NULL)
        chq_error("--output %s: cannot create the file: %s", o->output, strerror(errno));
    return f;
}

/* Closes the --output file; a failed run removes it rather than leave half
 * a report. Returns rc, or 1 when closing failed. */
static int close_output(const query_opts *o, FILE *f, int rc)
{
    if (f == stdout)
        return rc;
    if (fclose(f) != 0 && rc == 0) {
        chq_error("--output %s: cannot write the file: %s", o->output, strerror(errno));
        rc = 1;
    }
    if (rc != 0)
        ch_remove(o->output);
    return rc;
}

int chq_main(int argc, char **argv)
{
    query_opts o;
    int rc = chq_parse_args(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    /* One thread: no need for SQLite to lock the connection around each of
     * the millions of column reads of a long report. Refused (harmlessly)
     * when SQLite was already initialized. */
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); /* no global lock around each allocation */
    char path[CH_PATH_MAX], err[CH_ERR_MAX];
    if (o.ndb > 1 || (o.ndb == 1 && ch_path_kind(o.db_path) == CH_PATH_DIR)) {
        if (o.html || o.output != NULL || o.report->run == report_export) {
            chq_error("%s: one database at a time (the page, --output and export are written per database)",
                      o.html ? "--html" : o.output != NULL ? "--output" : "export");
            return 2;
        }
        return multidb_main(&o);
    }
    if (o.partial) {
        chq_error("--partial: only with several databases (--db A --db B ..., or --db DIR)");
        return 2;
    }
    if (o.db_path == NULL) {
        if (ch_default_db_path(path, sizeof path, err) != 0) {
            chq_error("%s", err);
            return 1;
        }
        o.db_path = path;
    }
    sqlite3 *db;
    if (ch_db_open_read(o.db_path, &db, err) != 0) {
        chq_error("%s", err);
        return 1;
    }
    FILE *out = open_output(&o);
    if (out == NULL) {
        sqlite3_close(db);
        return 1;
    }
    jw w;
    jw_init(&w, out, o.mode);
    query_ctx c = {db, &o, o.db_path, &w, false, 0};
    if (chq_ready(&c, &o) != 0) {
        sqlite3_close(db);
        return close_output(&o, out, 1);
    }
    rc = run_report(&c);
    jw_flush(&w); /* after a failure too: what was printed before it, as stdio would */
    rc = close_output(&o, out, rc);
    addr_text_close();
    names_close();
    rowjson_close();
    sqlite3_close(db);
    return rc;
}
