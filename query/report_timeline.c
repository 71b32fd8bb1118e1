/*
 * timeline: what happened, in time order. Three sources of events meet in
 * one ordered query: a lifetime's first sample (an "open", in its first
 * state), the state_changes table (a "state"), and its closed_at (a
 * "close"). Events at the same instant come open, state, close, then by
 * lifetime. Every event carries its lifetime, filtered like everywhere else.
 */
#include "lifetime_list.h"
#include "rowjson.h"
#include "stream.h"

/* Appends one event source: its rows whose time column lies in the window. */
static void events_from(qsql *q, const query_filters *f, const char *select, const char *time_col)
{
    qsql_add(q, select);
    qsql_add(q, " WHERE ");
    qsql_add(q, time_col);
    qsql_int(q, " <= ?", f->until);
    if (f->given & OPT_SINCE) {
        qsql_add(q, " AND ");
        qsql_add(q, time_col);
        qsql_int(q, " >= ?", f->since);
    }
}

static cJSON *event_row(sqlite3_stmt *st)
{
    static const char *const kinds[] = {"open", "state", "close"};
    int kind = sqlite3_column_int(st, 1);
    cJSON *e = cJSON_CreateObject();
    json_add_time_col(e, "at", st, 0);
    cJSON_AddStringToObject(e, "event", kinds[kind >= 0 && kind <= 2 ? kind : 0]);
    json_add_text_col(e, "state", st, 2);
    cJSON_AddItemToObject(e, "lifetime", lifetime_json(st, 3));
    return e;
}

int report_timeline(query_ctx *c, cJSON *header)
{
    const query_filters *f = &c->o->f;
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT e.at, e.kind, e.state, " CHQ_LIFETIME_COLUMNS " FROM (");
    events_from(&q, f,
                "SELECT lifetime_id AS id, first_seen AS at, 0 AS kind,"
                " substr(states, 1, instr(states || ',', ',') - 1) AS state FROM lifetimes",
                "first_seen");
    events_from(&q, f, " UNION ALL SELECT lifetime_id, at, 1, state FROM state_changes", "at");
    events_from(&q, f, " UNION ALL SELECT lifetime_id, closed_at, 2, NULL FROM lifetimes", "closed_at");
    qsql_add(&q, ") e JOIN lifetimes l ON l.lifetime_id = e.id"
                 " LEFT JOIN processes p ON p.pid = l.pid AND p.start_time = l.proc_start WHERE 1");
    filter_lifetimes(&q, f, FILTER_NO_WINDOW);
    qsql_add(&q, " ORDER BY e.at, e.kind, e.id");
    filter_limit(&q, f);
    chq_start(c, header);
    return stream_list(c, "events", true, &q, event_row, "timeline");
}
