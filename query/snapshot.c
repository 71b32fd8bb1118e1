/*
 * connhist-query snapshot OUT: a consistent copy of the database, taken
 * with SQLite's online backup API in one read transaction (so a recorder
 * writing at the same time neither waits nor tears the copy), turned into
 * a single self-contained file (rollback journal mode, no -wal beside it),
 * and a manifest beside it (OUT.manifest.json, also printed): the copy's
 * SHA-256 and size, the host, the time span it covers, its chain head, and
 * the versions of the programs that wrote and copied it. verify works on
 * the copy as on the original.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain_codec.h"
#include "custody.h"
#include "db.h"
#include "platform.h"
#include "query.h"
#include "rowjson.h"
#include "timeutil.h"

/* Copies src into a new database at path. 0, or -1 after a message. */
static int copy_database(sqlite3 *src, const char *path)
{
    sqlite3 *dst = NULL;
    int rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    sqlite3_backup *b = rc == SQLITE_OK ? sqlite3_backup_init(dst, "main", src, "main") : NULL;
    if (b == NULL) {
        chq_error("snapshot: cannot write %s: %s", path, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
        sqlite3_close(dst);
        return -1;
    }
    /* All pages in one step: one read transaction, one consistent state. */
    while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED)
        sqlite3_sleep(50);
    int fin = sqlite3_backup_finish(b);
    if (rc == SQLITE_DONE && fin == SQLITE_OK)
        rc = sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
    else
        rc = rc == SQLITE_DONE ? fin : rc;
    if (rc != SQLITE_OK) {
        chq_error("snapshot: copying into %s failed: %s", path, sqlite3_errmsg(dst));
        sqlite3_close(dst);
        remove(path);
        return -1;
    }
    return sqlite3_close(dst) == SQLITE_OK ? 0 : -1;
}

/* The SHA-256 of the file at path, and its size. 0 or -1. */
static int file_sha256(const char *path, unsigned char out[CH_DIGEST_LEN], int64_t *bytes)
{
    FILE *f = fopen(path, "rb");
    ch_digest *d = ch_digest_new(NULL, 0);
    int rc = f != NULL && d != NULL && ch_digest_start(d) == 0 ? 0 : -1;
    static unsigned char buf[1 << 16];
    size_t n;
    *bytes = 0;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        rc = ch_digest_add(d, buf, n);
        *bytes += (int64_t)n;
    }
    if (rc == 0 && ferror(f))
        rc = -1;
    if (rc == 0)
        rc = ch_digest_finish(d, out);
    if (f != NULL)
        fclose(f);
    ch_digest_free(d);
    return rc;
}

cJSON *custody_head_json(sqlite3 *db, bool closed)
{
    sqlite3_stmt *st;
    cJSON *h = NULL;
    /* The newest link, or the newest one no later transaction can extend:
     * the one before it, but for the first (never extended). */
    const char *sql = closed ? "SELECT seq, at, hash FROM chain_links WHERE seq = (SELECT MAX(MAX(seq) - 1, 1)"
                               " FROM chain_links)"
                             : "SELECT seq, at, hash FROM chain_links ORDER BY seq DESC LIMIT 1";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return cJSON_CreateNull();
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 2) == CH_DIGEST_LEN) {
        char hex[2 * CH_DIGEST_LEN + 1];
        ch_chain_hex(sqlite3_column_blob(st, 2), CH_DIGEST_LEN, hex);
        h = cJSON_CreateObject();
        cJSON_AddNumberToObject(h, "seq", (double)sqlite3_column_int64(st, 0));
        json_add_time(h, "at", true, sqlite3_column_int64(st, 1));
        cJSON_AddStringToObject(h, "hash", hex);
    }
    sqlite3_finalize(st);
    return h != NULL ? h : cJSON_CreateNull();
}

/* Adds one value of a query on db to obj: text, time or a list of text. */
static void add_query(cJSON *obj, const char *key, sqlite3 *db, const char *sql, char kind)
{
    sqlite3_stmt *st;
    cJSON *list = kind == 'l' ? cJSON_CreateArray() : NULL;
    bool added = false;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            bool known = sqlite3_column_type(st, 0) != SQLITE_NULL;
            if (kind == 'l' && known) {
                cJSON_AddItemToArray(list, cJSON_CreateString((const char *)sqlite3_column_text(st, 0)));
                continue;
            }
            if (kind == 't')
                json_add_time(obj, key, known, sqlite3_column_int64(st, 0));
            else if (kind == 's')
                json_add_text_col(obj, key, st, 0);
            added = true;
            break;
        }
        sqlite3_finalize(st);
    }
    if (list != NULL)
        cJSON_AddItemToObject(obj, key, list);
    else if (!added)
        cJSON_AddNullToObject(obj, key);
}

/* The manifest of the copy at o->out, read from the copy itself. */
static cJSON *manifest_json(const custody_opts *o, const unsigned char sha[CH_DIGEST_LEN], int64_t bytes,
                            int64_t taken_at)
{
    char hex[2 * CH_DIGEST_LEN + 1], err[CH_ERR_MAX];
    ch_chain_hex(sha, CH_DIGEST_LEN, hex);
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "snapshot", o->out);
    cJSON_AddStringToObject(m, "sha256", hex);
    cJSON_AddNumberToObject(m, "bytes", (double)bytes);
    cJSON_AddStringToObject(m, "source", o->db_path);
    json_add_time(m, "taken_at", true, taken_at);
    sqlite3 *copy = NULL;
    if (ch_db_open_read(o->out, &copy, err) != 0) {
        cJSON_Delete(m);
        chq_error("snapshot: the copy cannot be read back: %s", err);
        return NULL;
    }
    add_query(m, "host", copy, "SELECT host FROM runs ORDER BY run_id DESC LIMIT 1", 's');
    cJSON *span = cJSON_AddObjectToObject(m, "span");
    add_query(span, "from", copy, "SELECT MIN(started_at) FROM runs", 't');
    add_query(span, "to", copy, "SELECT at FROM v_last_sample", 't');
    cJSON_AddItemToObject(m, "chain_head", custody_head_json(copy, false));
    cJSON_AddItemToObject(m, "chain_closed", custody_head_json(copy, true));
    cJSON *versions = cJSON_AddObjectToObject(m, "versions");
    cJSON_AddStringToObject(versions, "connhist-query", CONNHIST_VERSION);
    add_query(versions, "connhist-record", copy, "SELECT DISTINCT version FROM runs ORDER BY run_id", 'l');
    cJSON_AddStringToObject(versions, "digest_library", ch_digest_library());
    cJSON_AddNumberToObject(versions, "schema", ch_schema_version);
    sqlite3_close(copy);
    return m;
}

static int write_manifest(const char *path, const cJSON *m)
{
    char *text = cJSON_Print(m);
    FILE *f = text != NULL ? fopen(path, "wx") : NULL;
    int rc = f != NULL && fputs(text, f) >= 0 && fputc('\n', f) != EOF ? 0 : -1;
    if (f != NULL && fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        chq_error("snapshot: cannot write the manifest %s", path);
    free(text);
    return rc;
}

int snapshot_run(sqlite3 *db, const custody_opts *o)
{
    char manifest_path[CH_PATH_MAX + 32];
    snprintf(manifest_path, sizeof manifest_path, "%s", o->manifest != NULL ? o->manifest : "");
    if (o->manifest == NULL)
        snprintf(manifest_path, sizeof manifest_path, "%s.manifest.json", o->out);
    if (ch_path_kind(o->out) != CH_PATH_MISSING || ch_path_kind(manifest_path) != CH_PATH_MISSING) {
        chq_error("snapshot: %s already exists (expected a new file for the copy and its manifest)",
                  ch_path_kind(o->out) != CH_PATH_MISSING ? o->out : manifest_path);
        return 2;
    }
    int64_t taken_at = ch_now_ms();
    if (copy_database(db, o->out) != 0)
        return 1;
    unsigned char sha[CH_DIGEST_LEN];
    int64_t bytes;
    if (file_sha256(o->out, sha, &bytes) != 0) {
        chq_error("snapshot: cannot read back %s to hash it", o->out);
        return 1;
    }
    cJSON *m = manifest_json(o, sha, bytes, taken_at);
    if (m == NULL)
        return 1;
    int rc = write_manifest(manifest_path, m) == 0 && custody_print(m, o->pretty) == 0 ? 0 : 1;
    cJSON_Delete(m);
    return rc;
}
