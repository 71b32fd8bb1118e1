/*
 * Running a built query and writing each row as it is stepped: the way all
 * lists reach the output, so that no report holds more than one row.
 */
#ifndef CHQ_STREAM_H
#define CHQ_STREAM_H

#include <cjson/cJSON.h>

#include "qsql.h"
#include "query.h"

/* Turns the current row into a new JSON item. */
typedef cJSON *(*row_json_fn)(sqlite3_stmt *st);

/*
 * Prepares q, steps it and writes fn(row) for every row as an element of
 * the list open in c's writer. `what` names the query in error messages.
 * Returns 0, or -1 after a message.
 */
int stream_rows(query_ctx *c, qsql *q, row_json_fn fn, const char *what);

/* Like stream_rows, inside a new list: "key": [...] (a main list when main). */
int stream_list(query_ctx *c, const char *key, bool main, qsql *q, row_json_fn fn, const char *what);

#endif
