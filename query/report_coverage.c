/*
 * coverage: when the recorder was watching. The header already carries the
 * covered time and the gaps; this report adds the runs overlapping the
 * window, each with its settings and how much it sampled.
 */
#include "coverage.h"
#include "rowjson.h"
#include "stream.h"

static void run_row(jw *w, sqlite3_stmt *st)
{
    jw_open(w, NULL, false);
    put_int_col(w, "run_id", st, 0);
    put_time_col(w, "started_at", st, 1);
    put_time_col(w, "ended_at", st, 2);
    put_text_col(w, "end_reason", st, 3);
    put_text_col(w, "mode", st, 4);
    put_int_col(w, "interval_ms", st, 5);
    put_text_col(w, "host", st, 6);
    put_text_col(w, "os", st, 7);
    put_text_col(w, "sampler", st, 8);
    put_text_col(w, "version", st, 9);
    put_int_col(w, "pid", st, 10);
    put_int_col(w, "samples", st, 11);
    put_time_col(w, "last_sample", st, 12);
    put_text_col(w, "notes", st, 13);
    jw_close(w);
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
