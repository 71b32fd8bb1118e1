/*
 * Lifetime lists (see lifetime_list.h).
 */
#include "lifetime_list.h"

#include "rowjson.h"
#include "stream.h"

void lifetime_select(qsql *q, sqlite3 *db, const query_filters *f, int window)
{
    qsql_init(q, db);
    qsql_add(q, "SELECT " CHQ_LIFETIME_COLUMNS);
    filter_from(q, filter_bounded(f, window));
    qsql_add(q, " WHERE 1");
    filter_lifetimes(q, f, window);
}

static void lifetime_row(jw *w, sqlite3_stmt *st)
{
    put_lifetime(w, NULL, st, 0);
}

int lifetime_list(query_ctx *c, const char *key, bool main, qsql *q)
{
    qsql_add(q, " ORDER BY l.lifetime_id"); /* recording order: first_seen order, see filter.c */
    filter_limit(q, &c->o->f);
    return stream_list(c, key, main, q, lifetime_row, "selecting lifetimes");
}

int lifetime_report(query_ctx *c, cJSON *header, qsql *q)
{
    chq_start(c, header);
    return lifetime_list(c, "lifetimes", true, q);
}
