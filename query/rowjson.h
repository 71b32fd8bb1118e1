/*
 * Rows of the database as JSON objects. Every report selects lifetimes with
 * the same column list and writes them with the same function, so a
 * lifetime looks the same in every report. NULL columns become JSON null,
 * never 0 or "". Lifetimes and processes are written straight to the
 * output (put_*): a report may hold millions of them.
 */
#ifndef CHQ_ROWJSON_H
#define CHQ_ROWJSON_H

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "codes.h"
#include "jsonw.h"

/* The newest sample of any run (v_last_sample): the last_seen of open rows. */
#define CHQ_LAST_SAMPLE_SQL "(SELECT MAX(last_at) FROM heartbeats)"

/* The process columns, in the order put_process reads them. */
#define CHQ_PROCESS_COLUMNS "p.pid, p.start_time, p.name, p.path, p.cmdline, p.user, p.uid"
#define CHQ_PROCESS_NCOLS 7

/* The lifetime columns, in the order put_lifetime reads them (LCOL_* below).
 * Only the lifetimes table's own: the process comes from proc_cache.h by
 * l.proc_id and the addresses' text from addr_text.h by id, each read once
 * for the many lifetimes that share it, where joining processes and addrs
 * cost two seeks a row (a quarter of a bulk --ndjson's CPU time). */
#define CHQ_LIFETIME_COLUMNS                                                                        \
    "l.lifetime_id, l.proto, l.family, l.local_addr_id, l.local_port, l.remote_addr_id,"             \
    " l.remote_port, l.state, l.states, l.first_seen,"                                              \
    " COALESCE(l.first_seen + l.last_seen_after, " CHQ_LAST_SAMPLE_SQL "), l.first_seen + l.closed_after," \
    " l.close_reason, l.holders, l.proc_id, l.bytes_sent, l.bytes_received, l.seen_by, l.opened_after,"  \
    " l.owner_source"
enum {
    LCOL_ID, LCOL_PROTO, LCOL_FAMILY, LCOL_LOCAL_ADDR, LCOL_LOCAL_PORT, LCOL_REMOTE_ADDR, LCOL_REMOTE_PORT, LCOL_STATE, LCOL_STATES,
    LCOL_FIRST_SEEN, LCOL_LAST_SEEN, LCOL_CLOSED_AT, LCOL_CLOSE_REASON, LCOL_HOLDERS, LCOL_PROC_ID, LCOL_BYTES_SENT,
    LCOL_BYTES_RECEIVED, LCOL_SEEN_BY, LCOL_OPENED_AFTER, LCOL_OWNER_SOURCE,
    CHQ_LIFETIME_NCOLS
};

/* Lifetimes l with the remote address's text (ra: for the queries that
 * group or sort by it) and process p (for --process). SQLite leaves a join
 * out where neither is used: CHQ_LIFETIME_COLUMNS uses neither. */
#define CHQ_LIFETIME_JOINS                                                 \
    " LEFT JOIN addrs ra ON ra.addr_id = l.remote_addr_id"                 \
    " LEFT JOIN processes p ON p.proc_id = l.proc_id"
#define CHQ_LIFETIME_FROM " FROM lifetimes l" CHQ_LIFETIME_JOINS

/* Writes a lifetime from CHQ_LIFETIME_COLUMNS starting at column col, as a
 * member named key or (key NULL) an element. */
void put_lifetime(jw *w, const char *key, sqlite3_stmt *st, int col);

/* Forgets what put_lifetime learnt of the database it wrote from; called
 * before that database is closed. */
void rowjson_close(void);

/* Writes the states column col of the lifetime whose id is in column id_col
 * as the flat array "states", oldest first: state names, or their codes
 * (codes.h) when as_codes. */
void put_states(jw *w, sqlite3_stmt *st, int col, int id_col, bool as_codes);

/* Writes a process from CHQ_PROCESS_COLUMNS at col; null when its pid is NULL. */
void put_process(jw *w, const char *key, sqlite3_stmt *st, int col);

/* Writes column col under key: a number, text or time, or null when NULL. */
void put_int_col(jw *w, const char *key, sqlite3_stmt *st, int col);
void put_text_col(jw *w, const char *key, sqlite3_stmt *st, int col);
void put_time_col(jw *w, const char *key, sqlite3_stmt *st, int col);
/* The name of the code in column col (codes.h), or null. */
void put_code_col(jw *w, const char *key, enum code_field field, sqlite3_stmt *st, int col);

/* Adds column col under key as text, or null when NULL (the header). */
void json_add_text_col(cJSON *obj, const char *key, sqlite3_stmt *st, int col);

/* Adds a time (RFC 3339 UTC with milliseconds), or null when !known. */
void json_add_time(cJSON *obj, const char *key, bool known, int64_t ms);

/* Adds text that may not be valid UTF-8 (command lines, paths): bad bytes
 * become U+FFFD so the output stays valid JSON. NULL becomes null. */
void json_add_text(cJSON *obj, const char *key, const char *text);

#endif
