/*
 * listeners: listening TCP sockets and bound, unconnected UDP sockets that
 * existed during the window, with the processes that owned them.
 */
#include "lifetime_list.h"

int report_listeners(query_ctx *c, cJSON *header)
{
    qsql q;
    lifetime_select(&q, c->db, &c->o->f, FILTER_WINDOW);
    qsql_add(&q, " AND " CHQ_IS_LISTENER);
    return lifetime_report(c, header, &q);
}
