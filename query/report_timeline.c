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

/*
 * Appends one source of events: a SELECT of (at, kind, state, lifetime
 * columns) over the lifetimes passing the filters, joined with "join" if
 * given, whose event time at_col lies in the window. Every event of a
 * lifetime lies inside its lifetime, so the lifetimes overlapping the window
 * (index ranges, see filter_overlap) are the only ones to look at.
 */
static void events_from(qsql *q, const query_filters *f, const char *select, const char *join, const char *at_col)
{
    qsql_add(q, select);
    qsql_add(q, ", " CHQ_LIFETIME_COLUMNS);
    filter_from(q, filter_bounded(f, FILTER_WINDOW));
    qsql_add(q, join);
    qsql_add(q, " WHERE 1");
    filter_lifetimes(q, f, FILTER_WINDOW);
    qsql_add(q, " AND ");
    qsql_add(q, at_col);
    qsql_int(q, " <= ?", f->until);
    if (f->given & OPT_SINCE) {
        qsql_add(q, " AND ");
        qsql_add(q, at_col);
        qsql_int(q, " >= ?", f->since);
    }
}

static void event_row(jw *w, sqlite3_stmt *st)
{
    static const char *const kinds[] = {"open", "state", "close"};
    int kind = sqlite3_column_int(st, 1);
    jw_open(w, NULL, false);
    put_time_col(w, "at", st, 0);
    jw_text(w, "event", kinds[kind >= 0 && kind <= 2 ? kind : 0]);
    put_code_col(w, "state", CODE_STATE, st, 2);
    put_lifetime(w, "lifetime", st, 3);
    jw_close(w);
}

int report_timeline(query_ctx *c, cJSON *header)
{
    const query_filters *f = &c->o->f;
    qsql q;
    qsql_init(&q, c->db);
    events_from(&q, f, "SELECT l.first_seen, 0, chq_first_state(l.states)", "", "l.first_seen");
    events_from(&q, f, " UNION ALL SELECT l.first_seen + s.at, 1, s.state",
                " JOIN state_changes s ON s.lifetime_id = l.lifetime_id", "l.first_seen + s.at");
    events_from(&q, f, " UNION ALL SELECT l.first_seen + l.closed_after, 2, NULL", "",
                "l.first_seen + l.closed_after");
    qsql_add(&q, " ORDER BY 1, 2, 4");
    filter_limit(&q, f);
    chq_start(c, header);
    return stream_list(c, "events", true, &q, event_row, "timeline");
}
