/*
 * A streaming JSON writer. Reports print their output as they step rows, so
 * memory stays constant however many lifetimes match: containers are opened
 * and closed by hand and only single items are built as cJSON trees.
 *
 * One writer serves the three output modes. Compact JSON and --pretty print
 * one document. --ndjson hides the outer object and the report's main list:
 * the header becomes the line {"header":{...}}, each element of the main list
 * becomes a line of its own, and any other top-level member KEY becomes the
 * line {"KEY": value}.
 */
#ifndef CHQ_JSONW_H
#define CHQ_JSONW_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

enum jw_mode { JW_COMPACT, JW_PRETTY, JW_NDJSON };

#define JW_MAX_DEPTH 16

typedef struct {
    bool is_array;
    bool hidden;   /* not printed: the ndjson outer object or main list */
    bool line;     /* a line of its own in ndjson: ends with a newline */
    bool keyed;    /* that line was wrapped as {"key": ...} */
    int count;     /* children printed so far */
} jw_level;

typedef struct {
    FILE *f;
    enum jw_mode mode;
    int depth;
    jw_level stack[JW_MAX_DEPTH];
} jw;

void jw_init(jw *w, FILE *f, enum jw_mode mode);

/* Opens the document's outer object. */
void jw_begin(jw *w);

/* Opens an object or array: a member named key, or (key NULL) an element. */
void jw_open(jw *w, const char *key, bool is_array);

/* Opens the report's main list: its elements are the lines of --ndjson. */
void jw_open_main(jw *w, const char *key);

/* Closes the innermost open object or array. */
void jw_close(jw *w);

/* Prints v as a member named key, or an element (key NULL). Does not free v. */
void jw_put(jw *w, const char *key, const cJSON *v);

/* Like jw_put, then frees v: the usual way to emit one built item. */
void jw_put_free(jw *w, const char *key, cJSON *v);

/* Closes the outer object and ends the document. */
void jw_end(jw *w);

#endif
