/*
 * connections: every lifetime overlapping the window that passes the
 * filters, listeners included (use --remote, --port or --state to narrow),
 * oldest first.
 */
#include "lifetime_list.h"
#include "names.h"

int report_connections(query_ctx *c, cJSON *header)
{
    qsql q;
    names_expect_window(c->db, &c->o->f);
    lifetime_select(&q, c->db, &c->o->f, FILTER_WINDOW);
    return lifetime_report(c, header, &q);
}
