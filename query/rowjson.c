/*
 * Lifetime and process rows as JSON (see rowjson.h).
 */
#include "rowjson.h"

#include <stdlib.h>
#include <string.h>

#include "addr_text.h"
#include "names.h"
#include "proc_cache.h"
#include "timeutil.h"
#include "utf8.h"

void json_add_time(cJSON *obj, const char *key, bool known, int64_t ms)
{
    if (!known) {
        cJSON_AddNullToObject(obj, key);
        return;
    }
    char text[CH_TIME_TEXT];
    ch_format_time(ms, text);
    cJSON_AddStringToObject(obj, key, text);
}

void json_add_text(cJSON *obj, const char *key, const char *text)
{
    if (text == NULL) {
        cJSON_AddNullToObject(obj, key);
        return;
    }
    char *repaired = utf8_repair(text);
    cJSON_AddStringToObject(obj, key, repaired != NULL ? repaired : text);
    free(repaired);
}

static bool is_null(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL;
}

void json_add_text_col(cJSON *obj, const char *key, sqlite3_stmt *st, int col)
{
    json_add_text(obj, key, (const char *)sqlite3_column_text(st, col));
}

void put_int_col(jw *w, const char *key, sqlite3_stmt *st, int col)
{
    if (is_null(st, col))
        jw_null(w, key);
    else
        jw_int(w, key, sqlite3_column_int64(st, col));
}

void put_text_col(jw *w, const char *key, sqlite3_stmt *st, int col)
{
    jw_text(w, key, (const char *)sqlite3_column_text(st, col));
}

void put_time_col(jw *w, const char *key, sqlite3_stmt *st, int col)
{
    jw_time(w, key, !is_null(st, col), sqlite3_column_int64(st, col));
}

void put_code_col(jw *w, const char *key, enum code_field field, sqlite3_stmt *st, int col)
{
    jw_text(w, key, is_null(st, col) ? NULL : code_name(field, sqlite3_column_int64(st, col)));
}

/* One state, as its name or (as_codes) its code. */
static void put_state(jw *w, int64_t code, bool as_codes)
{
    if (as_codes)
        jw_int(w, NULL, code);
    else
        jw_text(w, NULL, code_name(CODE_STATE, code));
}

/* The states after the first of a lifetime whose states column is full,
 * from state_changes, into the array being written. */
static void put_later_states(jw *w, sqlite3 *db, int64_t id, bool as_codes)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT state FROM state_changes WHERE lifetime_id = ?1 ORDER BY at", -1, &st,
                           NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, id);
    while (sqlite3_step(st) == SQLITE_ROW)
        put_state(w, sqlite3_column_int64(st, 0), as_codes);
    sqlite3_finalize(st);
}

/* The states column (4 bits a state, the latest lowest) as an array,
 * oldest first. A full column holds the first 15: the whole list is then
 * the first state and every change. */
void put_states(jw *w, sqlite3_stmt *st, int col, int id_col, bool as_codes)
{
    int64_t packed = sqlite3_column_int64(st, col);
    int codes[16];
    int n = codes_unpack_states(packed, codes);
    jw_open_flat(w, "states");
    if (packed >= CODES_STATES_FULL && n > 0) {
        put_state(w, codes[0], as_codes);
        put_later_states(w, sqlite3_db_handle(st), sqlite3_column_int64(st, id_col), as_codes);
    } else {
        for (int i = 0; i < n; i++)
            put_state(w, codes[i], as_codes);
    }
    jw_close(w);
}

void put_process(jw *w, const char *key, sqlite3_stmt *st, int col)
{
    if (is_null(st, col)) {
        jw_null(w, key);
        return;
    }
    jw_open(w, key, false);
    put_int_col(w, "pid", st, col);
    put_text_col(w, "name", st, col + 2);
    put_text_col(w, "path", st, col + 3);
    put_text_col(w, "cmdline", st, col + 4);
    put_text_col(w, "user", st, col + 5);
    put_int_col(w, "uid", st, col + 6);
    put_time_col(w, "start_time", st, col + 1);
    jw_close(w);
}

/* The same members as put_process, from the process cache. */
static void put_cached_process(jw *w, const char *key, const chq_process *p)
{
    if (p == NULL) {
        jw_null(w, key);
        return;
    }
    jw_open(w, key, false);
    jw_int(w, "pid", p->pid);
    jw_text(w, "name", p->name);
    jw_text(w, "path", p->path);
    jw_text(w, "cmdline", p->cmdline);
    jw_text(w, "user", p->user);
    if (p->has_uid)
        jw_int(w, "uid", p->uid);
    else
        jw_null(w, "uid");
    jw_time(w, "start_time", true, p->start);
    jw_close(w);
}

/*
 * Whether the database of st holds any DNS answer, asked once per database
 * at its first lifetime (inside the report's read transaction, so the
 * answer holds for every row of it). A database recorded without --names
 * (most of them) then writes "remote_names": null without a lookup a row:
 * that lookup was half of a bulk --ndjson's CPU time.
 */
static sqlite3 *answers_db;
static bool answers_any;

static bool has_answers(sqlite3_stmt *st)
{
    sqlite3 *db = sqlite3_db_handle(st);
    if (db == answers_db)
        return answers_any;
    sqlite3_stmt *q;
    answers_any = true; /* cannot tell: look up every row, as before */
    if (sqlite3_prepare_v2(db, "SELECT EXISTS (SELECT 1 FROM dns_answers)", -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            answers_any = sqlite3_column_int(q, 0) != 0;
        sqlite3_finalize(q);
    }
    answers_db = db;
    return answers_any;
}

void rowjson_close(void)
{
    answers_db = NULL;
    proc_cache_close();
}

void put_lifetime(jw *w, const char *key, sqlite3_stmt *st, int col)
{
    const chq_process *p =
        is_null(st, col + LCOL_PROC_ID) ? NULL : proc_cache_get(sqlite3_db_handle(st), sqlite3_column_int64(st, col + LCOL_PROC_ID));
    jw_open(w, key, false);
    put_int_col(w, "id", st, col + LCOL_ID);
    put_code_col(w, "proto", CODE_PROTO, st, col + LCOL_PROTO);
    put_int_col(w, "family", st, col + LCOL_FAMILY);
    put_addr_col(w, "local_addr", st, col + LCOL_LOCAL_ADDR);
    put_int_col(w, "local_port", st, col + LCOL_LOCAL_PORT);
    put_addr_col(w, "remote_addr", st, col + LCOL_REMOTE_ADDR);
    put_int_col(w, "remote_port", st, col + LCOL_REMOTE_PORT);
    put_code_col(w, "state", CODE_STATE, st, col + LCOL_STATE);
    put_states(w, st, col + LCOL_STATES, col + LCOL_ID, false);
    put_time_col(w, "first_seen", st, col + LCOL_FIRST_SEEN);
    put_time_col(w, "last_seen", st, col + LCOL_LAST_SEEN);
    put_time_col(w, "closed_at", st, col + LCOL_CLOSED_AT);
    put_code_col(w, "close_reason", CODE_CLOSE_REASON, st, col + LCOL_CLOSE_REASON);
    put_int_col(w, "holders", st, col + LCOL_HOLDERS);
    put_int_col(w, "bytes_sent", st, col + LCOL_BYTES_SENT);
    put_int_col(w, "bytes_received", st, col + LCOL_BYTES_RECEIVED);
    put_code_col(w, "seen_by", CODE_SEEN_BY, st, col + LCOL_SEEN_BY);
    put_time_col(w, "opened_after", st, col + LCOL_OPENED_AFTER);
    put_code_col(w, "owner_source", CODE_OWNER_SOURCE, st, col + LCOL_OWNER_SOURCE);
    put_cached_process(w, "process", p);
    if (has_answers(st))
        put_remote_names(w, st, col + LCOL_REMOTE_ADDR, col + LCOL_FIRST_SEEN, p != NULL ? &p->pid : NULL,
                         p != NULL ? &p->start : NULL);
    else
        jw_null(w, "remote_names");
    jw_close(w);
}
