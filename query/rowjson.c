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

void json_add_int_col(cJSON *obj, const char *key, sqlite3_stmt *st, int col)
{
    if (is_null(st, col))
        cJSON_AddNullToObject(obj, key);
    else
        cJSON_AddNumberToObject(obj, key, (double)sqlite3_column_int64(st, col));
}

void json_add_text_col(cJSON *obj, const char *key, sqlite3_stmt *st, int col)
{
    json_add_text(obj, key, (const char *)sqlite3_column_text(st, col));
}

void json_add_time_col(cJSON *obj, const char *key, sqlite3_stmt *st, int col)
{
    json_add_time(obj, key, !is_null(st, col), sqlite3_column_int64(st, col));
}

/* The states column ("SYN_SENT,ESTABLISHED") as a JSON array of names. */
static cJSON *states_json(const char *states)
{
    cJSON *arr = cJSON_CreateArray();
    if (states == NULL || *states == '\0')
        return arr;
    const char *p = states;
    for (;;) {
        size_t n = strcspn(p, ",");
        char name[64];
        if (n < sizeof name) { /* state names are short; skip garbage */
            memcpy(name, p, n);
            name[n] = '\0';
            char *repaired = utf8_repair(name); /* anyone with the sqlite3 shell may have written it */
            cJSON_AddItemToArray(arr, cJSON_CreateString(repaired != NULL ? repaired : name));
            free(repaired);
        }
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    return arr;
}

cJSON *process_json(sqlite3_stmt *st, int col)
{
    if (is_null(st, col))
        return cJSON_CreateNull();
    cJSON *p = cJSON_CreateObject();
    json_add_int_col(p, "pid", st, col);
    json_add_text_col(p, "name", st, col + 2);
    json_add_text_col(p, "path", st, col + 3);
    json_add_text_col(p, "cmdline", st, col + 4);
    json_add_text_col(p, "user", st, col + 5);
    json_add_int_col(p, "uid", st, col + 6);
    json_add_time_col(p, "start_time", st, col + 1);
    return p;
}

cJSON *lifetime_json(sqlite3_stmt *st, int col)
{
    cJSON *l = cJSON_CreateObject();
    json_add_int_col(l, "id", st, col);
    json_add_text_col(l, "proto", st, col + 1);
    json_add_int_col(l, "family", st, col + 2);
    json_add_text_col(l, "local_addr", st, col + 3);
    json_add_int_col(l, "local_port", st, col + 4);
    json_add_text_col(l, "remote_addr", st, col + 5);
    json_add_int_col(l, "remote_port", st, col + 6);
    json_add_text_col(l, "state", st, col + 7);
    cJSON_AddItemToObject(l, "states", states_json((const char *)sqlite3_column_text(st, col + 8)));
    json_add_time_col(l, "first_seen", st, col + 9);
    json_add_time_col(l, "last_seen", st, col + 10);
    json_add_time_col(l, "closed_at", st, col + 11);
    json_add_text_col(l, "close_reason", st, col + 12);
    json_add_int_col(l, "holders", st, col + 13);
    json_add_int_col(l, "bytes_sent", st, col + 21);
    json_add_int_col(l, "bytes_received", st, col + 22);
    json_add_text_col(l, "seen_by", st, col + 23);
    json_add_time_col(l, "opened_after", st, col + 24);
    cJSON_AddItemToObject(l, "process", process_json(st, col + 14));
    return l;
}
