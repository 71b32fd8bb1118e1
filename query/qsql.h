/*
 * Building a SELECT from constant fragments and bound values. User input
 * never becomes SQL text: a fragment carries one '?' and the value goes to
 * sqlite3_bind_*, in the order the fragments were added.
 */
#ifndef CHQ_QSQL_H
#define CHQ_QSQL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define QSQL_MAX_BINDS 256

typedef struct {
    bool is_text;
    int64_t i;
    const char *t;   /* must outlive the statement */
} qsql_bind;

typedef struct {
    sqlite3_str *sql;
    int nbinds;
    bool overflow;
    qsql_bind binds[QSQL_MAX_BINDS];
} qsql;

void qsql_init(qsql *q, sqlite3 *db);

/* Appends constant SQL text. */
void qsql_add(qsql *q, const char *fragment);

/* Appends a fragment holding one '?' and the value bound to it. */
void qsql_int(qsql *q, const char *fragment, int64_t v);
void qsql_text(qsql *q, const char *fragment, const char *v);

/*
 * Prepares the statement and binds the values; frees the builder either way.
 * Returns SQLITE_OK or an SQLite error code (message in sqlite3_errmsg).
 */
int qsql_prepare(qsql *q, sqlite3 *db, sqlite3_stmt **out);

#endif
