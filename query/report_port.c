/*
 * port N: which process held local port N, at any past moment. Every
 * lifetime on that local port (TCP and UDP, listeners and connections)
 * overlapping the window, oldest first; the port itself is a filter that
 * the command line set (local_port), so it shows in the header.
 */
#include "lifetime_list.h"

int report_port(query_ctx *c, cJSON *header)
{
    qsql q;
    lifetime_select(&q, c->db, &c->o->f, FILTER_WINDOW);
    return lifetime_report(c, header, &q);
}
