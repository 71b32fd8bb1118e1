/*
 * The SQL builder (see qsql.h), on top of SQLite's own string accumulator.
 */
#include "qsql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qsql_init(qsql *q, sqlite3 *db)
{
    memset(q, 0, sizeof *q);
    q->sql = sqlite3_str_new(db);
}

void qsql_add(qsql *q, const char *fragment)
{
    sqlite3_str_appendall(q->sql, fragment);
}

static void add_bind(qsql *q, qsql_bind b)
{
    if (q->nbinds == QSQL_MAX_BINDS) {
        q->overflow = true; /* reports use far fewer; refuse rather than misbind */
        return;
    }
    q->binds[q->nbinds++] = b;
}

void qsql_int(qsql *q, const char *fragment, int64_t v)
{
    qsql_add(q, fragment);
    add_bind(q, (qsql_bind){false, v, NULL});
}

void qsql_text(qsql *q, const char *fragment, const char *v)
{
    qsql_add(q, fragment);
    add_bind(q, (qsql_bind){true, 0, v});
}

/* Binds q's values to st. Returns an SQLite status. */
static int bind_all(const qsql *q, sqlite3_stmt *st)
{
    int rc = SQLITE_OK;
    for (int i = 0; rc == SQLITE_OK && i < q->nbinds; i++) {
        const qsql_bind *b = &q->binds[i];
        rc = b->is_text ? sqlite3_bind_text(st, i + 1, b->t, -1, SQLITE_STATIC) : sqlite3_bind_int64(st, i + 1, b->i);
    }
    return rc;
}

/*
 * CONNHIST_EXPLAIN set: prints SQLite's plan of a statement to stderr, a
 * line per step ("connhist-query: plan: SEARCH l USING INDEX ..."), for
 * whoever wonders why a report is slow, and for the test that proves each
 * index is used.
 */
static void explain(const qsql *q, sqlite3 *db, const char *sql)
{
    sqlite3_stmt *plan;
    char *text = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
    if (text == NULL || sqlite3_prepare_v2(db, text, -1, &plan, NULL) != SQLITE_OK) {
        sqlite3_free(text);
        return;
    }
    sqlite3_free(text);
    if (bind_all(q, plan) == SQLITE_OK)
        while (sqlite3_step(plan) == SQLITE_ROW)
            fprintf(stderr, "connhist-query: plan: %s\n", (const char *)sqlite3_column_text(plan, 3));
    sqlite3_finalize(plan);
}

int qsql_prepare(qsql *q, sqlite3 *db, sqlite3_stmt **out)
{
    *out = NULL;
    int rc = sqlite3_str_errcode(q->sql);
    char *sql = sqlite3_str_finish(q->sql);
    q->sql = NULL;
    if (rc == SQLITE_OK && (sql == NULL || q->overflow))
        rc = SQLITE_NOMEM;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, sql, -1, out, NULL);
    if (rc == SQLITE_OK)
        rc = bind_all(q, *out);
    if (rc == SQLITE_OK && getenv("CONNHIST_EXPLAIN") != NULL)
        explain(q, db, sql);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(*out);
        *out = NULL;
    }
    return rc;
}
