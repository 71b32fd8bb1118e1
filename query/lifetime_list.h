/*
 * Lists of lifetimes, the body of most reports: the shared SELECT with the
 * filters, the shared order (oldest first), one row in memory at a time.
 */
#ifndef CHQ_LIFETIME_LIST_H
#define CHQ_LIFETIME_LIST_H

#include "filter.h"
#include "qsql.h"
#include "query.h"

/* Starts "SELECT <lifetime columns> FROM ... WHERE 1" plus the filters. */
void lifetime_select(qsql *q, sqlite3 *db, const query_filters *f, int window);

/*
 * Finishes q with "ORDER BY first_seen, lifetime_id" and --limit, and
 * writes its rows as the list "key". Returns 0, or -1 after a message.
 */
int lifetime_list(query_ctx *c, const char *key, bool main, qsql *q);

/* The whole body of a plain list report: the header, then "lifetimes". */
int lifetime_report(query_ctx *c, cJSON *header, qsql *q);

#endif
