/*
 * Lifetime and process rows as JSON (see rowjson.h).
 */
#include "rowjson.h"

#include <stdlib.h>
#include <string.h>

#include "addr_text.h"
#include "names.h"
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

/* The members of a process from CHQ_PROCESS_COLUMNS at column col. */
static void put_process_members(jw *w, sqlite3_stmt *st, int col)
{
    put_int_col(w, "pid", st, col);
    put_text_col(w, "name", st, col + 2);
    put_text_col(w, "path", st, col + 3);
    put_text_col(w, "cmdline", st, col + 4);
    put_text_col(w, "user", st, col + 5);
    put_int_col(w, "uid", st, col + 6);
    put_time_col(w, "start_time", st, col + 1);
}

void put_process(jw *w, const char *key, sqlite3_stmt *st, int col)
{
    if (is_null(st, col)) {
        jw_null(w, key);
        return;
    }
    jw_open(w, key, false);
    put_process_members(w, st, col);
    jw_close(w);
}

/*
 * The processes of a lifetime list, each rendered once: a bulk --ndjson
 * writes a million lifetimes of a few thousand processes, and writing the
 * same seven members again for each was a tenth of its CPU. A process row
 * is one (pid, start_time) (UNIQUE in the schema) and one statement reads
 * one snapshot, so what was rendered holds for the rest of the statement;
 * another statement starts again. Compact and ndjson output only: pretty
 * output's bytes depend on the depth.
 */
#define PROC_SLOTS 4096     /* direct-mapped: a slot keeps the last process hashed to it */
#define PROC_JSON_MAX 4096  /* a longer one (a long command line) is rendered every time */

typedef struct {
    int64_t pid, start;
    size_t len; /* 0: empty */
    char *json;
} proc_slot;

static proc_slot proc_cache[PROC_SLOTS];
static sqlite3_stmt *proc_cache_st; /* the statement the cache was filled from */

static void proc_cache_forget(void)
{
    for (size_t i = 0; i < PROC_SLOTS; i++) {
        free(proc_cache[i].json);
        proc_cache[i] = (proc_slot){0, 0, 0, NULL};
    }
    proc_cache_st = NULL;
}

static proc_slot *proc_cache_slot(int64_t pid, int64_t start)
{
    uint64_t h = ((uint64_t)pid * 0x9E3779B97F4A7C15u) ^ ((uint64_t)start * 0xC2B2AE3D27D4EB4Fu);
    return &proc_cache[(h >> 40) & (PROC_SLOTS - 1)];
}

/* Keeps the n bytes of json as the rendering of slot s's process. */
static void proc_cache_keep(proc_slot *s, int64_t pid, int64_t start, const char *json, size_t n)
{
    if (n == 0 || n > PROC_JSON_MAX)
        return;
    char *copy = realloc(s->json, n);
    if (copy == NULL)
        return; /* s->json is still s's: the slot keeps its process */
    memcpy(copy, json, n);
    *s = (proc_slot){pid, start, n, copy};
}

/* put_process, from the cache when this statement wrote the process before. */
static void put_lifetime_process(jw *w, sqlite3_stmt *st, int col)
{
    if (w->mode == JW_PRETTY || is_null(st, col) || is_null(st, col + 1)) {
        put_process(w, "process", st, col);
        return;
    }
    if (st != proc_cache_st) {
        proc_cache_forget();
        proc_cache_st = st;
    }
    int64_t pid = sqlite3_column_int64(st, col), start = sqlite3_column_int64(st, col + 1);
    proc_slot *s = proc_cache_slot(pid, start);
    if (s->len > 0 && s->pid == pid && s->start == start) {
        jw_raw(w, "process", s->json, s->len);
        return;
    }
    jw_open(w, "process", false);
    uint64_t from = jw_position(w) - 1; /* its '{': jw_open wrote it last */
    put_process_members(w, st, col);
    jw_close(w);
    size_t n;
    const char *json = jw_written_since(w, from, &n);
    if (json != NULL)
        proc_cache_keep(s, pid, start, json, n);
}

void rowjson_forget(void)
{
    proc_cache_forget();
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
    proc_cache_forget();
}

void put_lifetime(jw *w, const char *key, sqlite3_stmt *st, int col)
{
    jw_open(w, key, false);
    put_int_col(w, "id", st, col);
    put_code_col(w, "proto", CODE_PROTO, st, col + 1);
    put_int_col(w, "family", st, col + 2);
    put_addr_col(w, "local_addr", st, col + 3);
    put_int_col(w, "local_port", st, col + 4);
    put_text_col(w, "remote_addr", st, col + 26);
    put_int_col(w, "remote_port", st, col + 6);
    put_code_col(w, "state", CODE_STATE, st, col + 7);
    put_states(w, st, col + 8, col, false);
    put_time_col(w, "first_seen", st, col + 9);
    put_time_col(w, "last_seen", st, col + 10);
    put_time_col(w, "closed_at", st, col + 11);
    put_code_col(w, "close_reason", CODE_CLOSE_REASON, st, col + 12);
    put_int_col(w, "holders", st, col + 13);
    put_int_col(w, "bytes_sent", st, col + 21);
    put_int_col(w, "bytes_received", st, col + 22);
    put_code_col(w, "seen_by", CODE_SEEN_BY, st, col + 23);
    put_time_col(w, "opened_after", st, col + 24);
    put_code_col(w, "owner_source", CODE_OWNER_SOURCE, st, col + 25);
    put_lifetime_process(w, st, col + 14);
    if (has_answers(st))
        put_remote_names(w, st, col + 5, col + 9, col + 14, col + 15);
    else
        jw_null(w, "remote_names");
    jw_close(w);
}
