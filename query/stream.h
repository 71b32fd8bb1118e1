/*
 * Running a built query and writing each row as it is stepped: the way all
 * lists reach the output, so that no report holds more than one row.
 */
#ifndef CHQ_STREAM_H
#define CHQ_STREAM_H

#include <cjson/cJSON.h>

#include "qsql.h"
#include "query.h"

/* Writes the current row as one element (key NULL) straight to w, with
 * jw_open/jw_close and the put_* column writers of rowjson.h. */
typedef void (*row_put_fn)(jw *w, sqlite3_stmt *st);

/*
 * Prepares q, steps it and writes put(row) for every row as an element of
 * the list open in c's writer. `what` names the query in error messages.
 * Returns 0, or -1 after a message.
 */
int stream_rows(query_ctx *c, qsql *q, row_put_fn put, const char *what);

/* Like stream_rows, inside a new list: "key": [...] (a main list when main). */
int stream_list(query_ctx *c, const char *key, bool main, qsql *q, row_put_fn put, const char *what);

#endif
