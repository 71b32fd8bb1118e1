/*
 * The export cursor file (see export_cursor.h). It is a small JSON object:
 *
 *   {"connhist_export_cursor": 1, "database": "HOST:MS", "next_id": 1234,
 *    "open": [1200, 1231], "next_answer_id": 57, "answers_last_seen": 1764838800123}
 *
 * The last two came with the DNS answers; a cursor without them (written
 * before) loads as one that has exported no answer yet.
 */
#include "export_cursor.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export_file.h"
#include "platform.h"
#include "query.h"

#define CURSOR_MAX_BYTES (64 * 1024 * 1024)

int cursor_add_open(export_cursor *c, int64_t id)
{
    if (c->n_open == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        int64_t *grown = realloc(c->open, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        c->open = grown;
        c->cap = cap;
    }
    c->open[c->n_open++] = id;
    return 0;
}

void cursor_free(export_cursor *c)
{
    free(c->open);
    memset(c, 0, sizeof *c);
    c->answers_seen = -1;
}

/* The whole file in a new NUL-terminated buffer, or NULL (errno-style
 * trouble reported by the caller). *missing tells a file that is not there. */
static char *read_all(const char *path, int *missing)
{
    *missing = 0;
    FILE *f = xf_open(path, "rb");
    if (f == NULL) {
        *missing = ch_path_kind(path) == CH_PATH_MISSING;
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (len + 1 == cap) {
            char *grown = cap < CURSOR_MAX_BYTES ? realloc(buf, cap * 2) : NULL;
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        /* cppcheck-suppress nullPointerArithmeticRedundantCheck ; buf is not NULL inside the loop */
        size_t n = fread(buf + len, 1, cap - 1 - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (buf != NULL && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

static int bad_cursor(const char *path, const char *why)
{
    chq_error("--cursor %s: %s (expected a cursor written by connhist-query export; delete it to start over)",
              path, why);
    return -1;
}

/* A whole number from min to 2^53, or -2 when v is not one. */
static int64_t whole(const cJSON *v, int64_t min)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < (double)min || v->valuedouble > 9007199254740992.0 ||
        (double)(int64_t)v->valuedouble != v->valuedouble)
        return -2;
    return (int64_t)v->valuedouble;
}

/* The answers' part into c: absent in an older cursor (nothing exported
 * yet). 0, or -1 when present but damaged. */
static int load_answers(const cJSON *root, export_cursor *c)
{
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(root, "next_answer_id");
    const cJSON *seen = cJSON_GetObjectItemCaseSensitive(root, "answers_last_seen");
    c->next_answer = 0;
    c->answers_seen = -1;
    if (next == NULL && seen == NULL)
        return 0;
    c->next_answer = whole(next, 0);
    c->answers_seen = whole(seen, -1);
    return c->next_answer < 0 || c->answers_seen < -1 ? -1 : 0;
}

/* The open list of the JSON array a into c. 0 or -1. */
static int load_open(const cJSON *a, export_cursor *c)
{
    const cJSON *id;
    int64_t last = -1;
    cJSON_ArrayForEach(id, a)
    {
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 9007199254740992.0)
            return -1;
        int64_t v = (int64_t)id->valuedouble;
        if ((double)v != id->valuedouble || v <= last || v >= c->next_id || cursor_add_open(c, v) != 0)
            return -1;
        last = v;
    }
    return 0;
}

int cursor_load(const char *path, const char *database_id, export_cursor *c)
{
    memset(c, 0, sizeof *c);
    c->answers_seen = -1;
    int missing;
    char *text = read_all(path, &missing);
    if (text == NULL)
        return missing ? 0 : bad_cursor(path, "cannot be read");
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "connhist_export_cursor");
    const cJSON *db = cJSON_GetObjectItemCaseSensitive(root, "database");
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(root, "next_id");
    const cJSON *open = cJSON_GetObjectItemCaseSensitive(root, "open");
    int rc = 0;
    if (!cJSON_IsNumber(version) || version->valueint != 1 || !cJSON_IsString(db) || !cJSON_IsNumber(next) ||
        next->valuedouble < 0 || next->valuedouble > 9007199254740992.0 || !cJSON_IsArray(open)) {
        rc = bad_cursor(path, "not a cursor file");
    } else if (db->valuestring[0] != '\0' && strcmp(db->valuestring, database_id) != 0) {
        /* (a cursor of "" was written before the database had a run, so
         * before it had any lifetime: it fits any database) */
        chq_error("--cursor %s: belongs to the database '%s', not this one ('%s'); give each database its own cursor",
                  path, db->valuestring, database_id);
        rc = -1;
    } else {
        c->next_id = (int64_t)next->valuedouble;
        if (load_open(open, c) != 0)
            rc = bad_cursor(path, "its list of open lifetimes is damaged");
        else if (load_answers(root, c) != 0)
            rc = bad_cursor(path, "its next_answer_id or answers_last_seen is damaged");
    }
    cJSON_Delete(root);
    if (rc != 0)
        cursor_free(c);
    return rc;
}

int cursor_save(const char *path, const char *database_id, const export_cursor *c)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        chq_error("--cursor %s: path too long", path);
        return -1;
    }
    FILE *f = xf_open(tmp, "wb");
    if (f == NULL) {
        chq_error("--cursor %s: cannot write %s: %s", path, tmp, strerror(errno));
        return -1;
    }
    fputs("{\"connhist_export_cursor\":1,\"database\":", f);
    cJSON *db = cJSON_CreateString(database_id);
    char *db_text = db != NULL ? cJSON_PrintUnformatted(db) : NULL;
    fputs(db_text != NULL ? db_text : "\"\"", f);
    cJSON_free(db_text);
    cJSON_Delete(db);
    fprintf(f, ",\"next_id\":%lld,\"open\":[", (long long)c->next_id);
    for (size_t i = 0; i < c->n_open; i++)
        fprintf(f, i ? ",%lld" : "%lld", (long long)c->open[i]);
    fprintf(f, "],\"next_answer_id\":%lld,\"answers_last_seen\":%lld}\n", (long long)c->next_answer,
            (long long)c->answers_seen);
    int bad = xf_sync(f) != 0 || ferror(f);
    bad |= fclose(f) != 0;
    if (bad || xf_replace(tmp, path) != 0) {
        chq_error("--cursor %s: cannot write it: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}
