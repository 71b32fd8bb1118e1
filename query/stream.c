/*
 * Streaming query results (see stream.h).
 */
#include "stream.h"

int stream_rows(query_ctx *c, qsql *q, row_put_fn put, const char *what)
{
    sqlite3_stmt *st;
    if (qsql_prepare(q, c->db, &st) != SQLITE_OK)
        return chq_sql_fail(c, what);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        put(c->w, st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : chq_sql_fail(c, what);
}

int stream_list(query_ctx *c, const char *key, bool main, qsql *q, row_put_fn put, const char *what)
{
    if (main)
        jw_open_main(c->w, key);
    else
        jw_open(c->w, key, true);
    if (stream_rows(c, q, put, what) != 0)
        return -1;
    jw_close(c->w);
    return 0;
}
