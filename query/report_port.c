/*
 * port N: which process held local port N, at any past moment. Every
 * lifetime on that local port (TCP and UDP, listeners and connections)
 * overlapping the window, oldest first; the port itself is a filter that
 * the command line set (local_port), so it shows in the header. Then the
 * port ranges N lay in over the window (the ephemeral range, reserved
 * blocks), so a reader can tell an ephemeral client port from a reserved
 * or fixed one at the time it was used.
 */
#include "lifetime_list.h"
#include "rowjson.h"
#include "stream.h"

static void range_row(jw *w, sqlite3_stmt *st)
{
    jw_open(w, NULL, false);
    put_text_col(w, "proto", st, 0);
    put_text_col(w, "kind", st, 1);
    put_int_col(w, "first_port", st, 2);
    put_int_col(w, "last_port", st, 3);
    put_int_col(w, "token", st, 4);
    put_time_col(w, "first_seen", st, 5);
    put_time_col(w, "last_seen", st, 6);
    put_time_col(w, "closed_at", st, 7);
    jw_close(w);
}

static int port_ranges(query_ctx *c)
{
    const query_filters *f = &c->o->f;
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT proto, kind, first_port, last_port, token, first_seen, last_seen, closed_at"
                 " FROM port_ranges WHERE 1");
    qsql_int(&q, " AND first_port <= ?", f->local_port);
    qsql_int(&q, " AND last_port >= ?", f->local_port);
    qsql_int(&q, " AND first_seen <= ?", f->until);
    if (f->given & OPT_SINCE)
        qsql_int(&q, " AND (closed_at IS NULL OR closed_at >= ?)", f->since);
    if (f->given & OPT_PROTO)
        qsql_text(&q, " AND proto = ?", f->proto);
    qsql_add(&q, " ORDER BY first_seen, range_id");
    return stream_list(c, "ranges", false, &q, range_row, "selecting port ranges");
}

int report_port(query_ctx *c, cJSON *header)
{
    qsql q;
    lifetime_select(&q, c->db, &c->o->f, FILTER_WINDOW);
    if (lifetime_report(c, header, &q) != 0)
        return -1;
    return port_ranges(c);
}
