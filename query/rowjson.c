/*
 * Lifetime and process rows as JSON (see rowjson.h).
 */
#include "rowjson.h"

#include <stdlib.h>
#include <string.h>

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

/* The states column ("SYN_SENT,ESTABLISHED") as an array of names. Anyone
 * with the sqlite3 shell may have written it: each name is checked text. */
static void put_states(jw *w, const char *states)
{
    jw_open_flat(w, "states");
    for (const char *p = states; p != NULL && *p != '\0'; p++) {
        size_t n = strcspn(p, ",");
        if (n < 64) /* state names are short; skip garbage */
            jw_text_n(w, NULL, p, n);
        p += n;
        if (*p == '\0')
            break;
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

void put_lifetime(jw *w, const char *key, sqlite3_stmt *st, int col)
{
    jw_open(w, key, false);
    put_int_col(w, "id", st, col);
    put_text_col(w, "proto", st, col + 1);
    put_int_col(w, "family", st, col + 2);
    put_text_col(w, "local_addr", st, col + 3);
    put_int_col(w, "local_port", st, col + 4);
    put_text_col(w, "remote_addr", st, col + 5);
    put_int_col(w, "remote_port", st, col + 6);
    put_text_col(w, "state", st, col + 7);
    put_states(w, (const char *)sqlite3_column_text(st, col + 8));
    put_time_col(w, "first_seen", st, col + 9);
    put_time_col(w, "last_seen", st, col + 10);
    put_time_col(w, "closed_at", st, col + 11);
    put_text_col(w, "close_reason", st, col + 12);
    put_int_col(w, "holders", st, col + 13);
    put_int_col(w, "bytes_sent", st, col + 21);
    put_int_col(w, "bytes_received", st, col + 22);
    put_text_col(w, "seen_by", st, col + 23);
    put_time_col(w, "opened_after", st, col + 24);
    put_process(w, "process", st, col + 14);
    jw_close(w);
}
