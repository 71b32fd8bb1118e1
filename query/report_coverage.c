/*
 * coverage: when the recorder was watching. The header already carries the
 * covered time and the gaps; this report adds the runs overlapping the
 * window, each with its settings and how much it sampled.
 */
#include "coverage.h"
#include "rowjson.h"
#include "stream.h"

static cJSON *run_row(sqlite3_stmt *st)
{
    cJSON *r = cJSON_CreateObject();
    json_add_int_col(r, "run_id", st, 0);
    json_add_time_col(r, "started_at", st, 1);
    json_add_time_col(r, "ended_at", st, 2);
    json_add_text_col(r, "end_reason", st, 3);
    json_add_text_col(r, "mode", st, 4);
    json_add_int_col(r, "interval_ms", st, 5);
    json_add_text_col(r, "host", st, 6);
    json_add_text_col(r, "os", st, 7);
    json_add_text_col(r, "sampler", st, 8);
    json_add_text_col(r, "version", st, 9);
    json_add_int_col(r, "pid", st, 10);
    json_add_int_col(r, "samples", st, 11);
    json_add_time_col(r, "last_sample", st, 12);
    json_add_text_col(r, "notes", st, 13);
    return r;
}

int report_coverage(query_ctx *c, cJSON *header)
{
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT r.run_id, r.started_at, r.ended_at, r.end_reason, r.mode, r.interval_ms,"
                 " r.host, r.os, r.sampler, r.version, r.pid,"
                 " (SELECT SUM(h.samples) FROM heartbeats h WHERE h.run_id = r.run_id),"
                 " (SELECT MAX(h.last_at) FROM heartbeats h WHERE h.run_id = r.run_id),"
                 " r.notes FROM runs r WHERE 1");
    coverage_runs_where(&q, &c->o->f);
    qsql_add(&q, " ORDER BY r.started_at, r.run_id");
    chq_start(c, header);
    return stream_list(c, "runs", true, &q, run_row, "runs");
}
