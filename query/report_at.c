/*
 * at TIME: what was open at one instant. A lifetime was open at T when it
 * was first seen at or before T and not yet found gone (closed_at > T). A
 * lifetime still open in the database was last seen at the newest sample;
 * past that instant nobody knows whether it lived on, so it counts only up
 * to the newest sample, and the header says so for a later T.
 */
#include "lifetime_list.h"
#include "rowjson.h"

static void add_note(query_ctx *c, cJSON *header, bool known)
{
    if (known) {
        cJSON_AddNullToObject(header, "note");
        return;
    }
    cJSON_AddStringToObject(header, "note",
                            c->has_last_sample
                                ? "the time is after the newest sample: sockets still open then are not "
                                  "listed, since nothing is known about them after it"
                                : "nothing was ever sampled: nothing is known");
}

static bool is_known(const query_ctx *c)
{
    return c->has_last_sample && c->o->at <= c->last_sample;
}

void report_at_note(query_ctx *c, cJSON *header)
{
    add_note(c, header, is_known(c));
}

int report_at(query_ctx *c, cJSON *header)
{
    int64_t t = c->o->at;
    bool known = is_known(c);
    add_note(c, header, known);
    qsql q;
    lifetime_select(&q, c->db, &c->o->f, FILTER_AT);
    qsql_int(&q, " AND l.first_seen <= ?", t);
    qsql_int(&q, known ? " AND (l.closed_after IS NULL OR l.first_seen + l.closed_after > ?)"
                       : " AND l.first_seen + l.closed_after > ?", t);
    filter_overlap(&q, &c->o->f, t, t);
    return lifetime_report(c, header, &q);
}
