/*
 * The report header (see header.h). Filters appear only when given, with
 * their parsed values (a canonical address, a number, an upper-case state),
 * so a reader sees what the tool understood, not just what was typed.
 */
#include "header.h"

#include <stdio.h>

#include "coverage.h"
#include "filter.h"
#include "rowjson.h"

/* runs.host of the newest run, or null when nothing was ever recorded. */
static int add_host(query_ctx *c, cJSON *h)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT host FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1";
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return chq_sql_fail(c, "reading runs");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        json_add_text_col(h, "host", st, 0);
    else
        cJSON_AddNullToObject(h, "host");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : chq_sql_fail(c, "reading runs");
}

static void add_remote(cJSON *filters, const query_filters *f)
{
    if (!filter_remote_is_prefix(f)) {
        cJSON_AddStringToObject(filters, "remote", f->remote_text);
        return;
    }
    char text[CH_ADDR_TEXT + 8];
    snprintf(text, sizeof text, "%s/%d", f->remote_text, f->remote_len);
    cJSON_AddStringToObject(filters, "remote", text);
}

static void add_number_if(cJSON *filters, const query_filters *f, unsigned bit, const char *key, int64_t v)
{
    if (f->given & bit)
        cJSON_AddNumberToObject(filters, key, (double)v);
}

static void add_string_if(cJSON *filters, const query_filters *f, unsigned bit, const char *key, const char *v)
{
    if (f->given & bit)
        json_add_text(filters, key, v);
}

static cJSON *filters_json(const query_opts *o)
{
    const query_filters *f = &o->f;
    cJSON *filters = cJSON_CreateObject();
    if (o->report->run == report_at)
        json_add_time(filters, "at", true, o->at);
    if (f->given & OPT_REMOTE)
        add_remote(filters, f);
    add_number_if(filters, f, OPT_REMOTE_PORT, "remote_port", f->remote_port);
    add_number_if(filters, f, OPT_LOCAL_PORT, "local_port", f->local_port);
    add_number_if(filters, f, OPT_PORT, "port", f->port);
    add_string_if(filters, f, OPT_PROTO, "proto", f->proto);
    add_number_if(filters, f, OPT_FAMILY, "family", f->family);
    add_number_if(filters, f, OPT_PID, "pid", f->pid);
    add_string_if(filters, f, OPT_PROCESS, "process", f->process);
    add_string_if(filters, f, OPT_STATE, "state", f->state);
    add_string_if(filters, f, OPT_REMOTE_NAME, "remote_name", f->remote_name);
    if (f->given & OPT_OPEN)
        cJSON_AddTrueToObject(filters, "open");
    add_number_if(filters, f, OPT_LIMIT, "limit", f->limit);
    add_number_if(filters, f, OPT_TOP, "top", f->top);
    return filters;
}

int header_json(query_ctx *c, cJSON **out)
{
    const query_opts *o = c->o;
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "report", o->report->name);
    if (add_host(c, h) != 0) {
        cJSON_Delete(h);
        return -1;
    }
    json_add_text(h, "database", c->db_path);
    json_add_time(h, "generated_at", true, o->now);
    cJSON *window = cJSON_AddObjectToObject(h, "window");
    json_add_time(window, "since", (o->f.given & OPT_SINCE) != 0, o->f.since);
    json_add_time(window, "until", true, o->f.until);
    cJSON_AddItemToObject(h, "filters", filters_json(o));
    cJSON *cov;
    if (coverage_json(c, &cov) != 0) {
        cJSON_Delete(h);
        return -1;
    }
    cJSON_AddItemToObject(h, "coverage", cov);
    *out = h;
    return 0;
}
