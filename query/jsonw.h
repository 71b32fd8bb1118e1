/*
 * A streaming JSON writer. Reports print their output as they step rows, so
 * memory stays constant however many lifetimes match: containers are opened
 * and closed by hand, and values are written straight into an output buffer
 * (jw_int, jw_text, ...). Small items (the header) may still be built as
 * cJSON trees and printed with jw_put. Both give the same bytes: numbers and
 * strings are printed the way cJSON prints them.
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
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum jw_mode { JW_COMPACT, JW_PRETTY, JW_NDJSON };

#define JW_MAX_DEPTH 16

/* Output is collected here and handed to the FILE in blocks of this size. */
#define JW_BUF_SIZE 65536

typedef struct {
    bool is_array;
    bool hidden;   /* not printed: the ndjson outer object or main list */
    bool line;     /* a line of its own in ndjson: ends with a newline */
    bool keyed;    /* that line was wrapped as {"key": ...} */
    bool flat;     /* an array printed on one line, as cJSON does: [a, b] */
    bool tagged;   /* its element objects (and ndjson lines) start with the section's tag */
    int count;     /* children printed so far */
} jw_level;

typedef struct {
    FILE *f;
    enum jw_mode mode;
    int depth;
    jw_level stack[JW_MAX_DEPTH];
    bool in_section;       /* inside jw_open_section */
    const char *tag_key;   /* the section's tag, e.g. "host" */
    const char *tag_value; /* its value; NULL is null */
    bool tag_rows;         /* main-list elements and ndjson lines carry it too */
    bool html_safe; /* '<' written as \u003c (jw_html_safe) */
    size_t len;    /* bytes waiting in buf */
    char buf[JW_BUF_SIZE];
} jw;

void jw_init(jw *w, FILE *f, enum jw_mode mode);

/*
 * A member's key length, or 0 for an element (key NULL). The functions that
 * take a key are inline wrappers that count it here, so that the compiler
 * counts a literal key once instead of every row counting it again (a
 * tenth of a bulk report's time was strlen). Keys are the report's own
 * constant ASCII names: nothing in them is escaped.
 */
static inline size_t jw_keylen(const char *key)
{
    return key != NULL ? strlen(key) : 0;
}

/*
 * Writes every '<' as \u003c, so that the document can sit inside an HTML
 * <script> element: "</script>" or "<!--" in a process name cannot end or
 * change it. JSON has '<' only inside strings, where \u003c reads back the
 * same, so the document's value is unchanged.
 */
void jw_html_safe(jw *w);

/* Opens the document's outer object. */
void jw_begin(jw *w);

/* Opens an object or array: a member named key, or (key NULL) an element. */
void jw_open_k(jw *w, const char *key, size_t keylen, bool is_array);
static inline void jw_open(jw *w, const char *key, bool is_array)
{
    jw_open_k(w, key, jw_keylen(key), is_array);
}

/* Opens the report's main list: its elements are the lines of --ndjson. */
void jw_open_main(jw *w, const char *key);

/* Opens an array of scalars, printed on one line also with --pretty. */
void jw_open_flat_k(jw *w, const char *key, size_t keylen);
static inline void jw_open_flat(jw *w, const char *key)
{
    jw_open_flat_k(w, key, jw_keylen(key));
}

/* Closes the innermost open object or array. */
void jw_close(jw *w);

/* Prints v as a member named key, or an element (key NULL). Does not free v. */
void jw_put(jw *w, const char *key, const cJSON *v);

/* Like jw_put, then frees v: the usual way to emit one built item. */
void jw_put_free(jw *w, const char *key, cJSON *v);

/*
 * Scalars, as a member named key or an element (key NULL). jw_text takes
 * text that may not be valid UTF-8 (process names, command lines): each bad
 * byte becomes U+FFFD, and NULL becomes null; jw_text_n takes len bytes.
 * jw_time prints RFC 3339 UTC with milliseconds, or null when !known.
 */
void jw_null_k(jw *w, const char *key, size_t keylen);
void jw_int_k(jw *w, const char *key, size_t keylen, int64_t v);
void jw_text_k(jw *w, const char *key, size_t keylen, const char *text);
void jw_text_n_k(jw *w, const char *key, size_t keylen, const char *text, size_t len);
void jw_time_k(jw *w, const char *key, size_t keylen, bool known, int64_t ms);

static inline void jw_null(jw *w, const char *key)
{
    jw_null_k(w, key, jw_keylen(key));
}

static inline void jw_int(jw *w, const char *key, int64_t v)
{
    jw_int_k(w, key, jw_keylen(key), v);
}

static inline void jw_text(jw *w, const char *key, const char *text)
{
    jw_text_k(w, key, jw_keylen(key), text);
}

static inline void jw_text_n(jw *w, const char *key, const char *text, size_t len)
{
    jw_text_n_k(w, key, jw_keylen(key), text, len);
}

static inline void jw_time(jw *w, const char *key, bool known, int64_t ms)
{
    jw_time_k(w, key, jw_keylen(key), known, ms);
}

/*
 * Several reports in one document (query/multidb.c: one per database).
 * Opens an object as an element of the open list, starting with the member
 * tag_key: tag_value (the strings must outlive the section). With tag_rows,
 * every element object of a main list (jw_open_main) inside it also starts
 * with that member. Under --ndjson the section object is hidden and, with
 * tag_rows, every line written inside it starts with the member:
 * {"host":"a","id":1,...}, {"host":"a","ranges":[...]}. Elements of a main
 * list must be opened with jw_open (not written with jw_put) to carry it.
 */
void jw_open_section(jw *w, const char *tag_key, const char *tag_value, bool tag_rows);
void jw_close_section(jw *w);

/* Whether a section is open: a report then writes no jw_begin and no header. */
bool jw_in_section(const jw *w);

/* Prints json, a value already in compact JSON text (as cJSON_PrintUnformatted
 * makes it), as a member named key or an element: for a value written again
 * and again, built once. Not for --pretty output. */
void jw_raw_k(jw *w, const char *key, size_t keylen, const char *json, size_t len);
static inline void jw_raw(jw *w, const char *key, const char *json, size_t len)
{
    jw_raw_k(w, key, jw_keylen(key), json, len);
}

/* Closes the outer object, ends the document and flushes it. */
void jw_end(jw *w);

/* Hands what is buffered to the FILE (whose errors the caller checks). */
void jw_flush(jw *w);

#endif
