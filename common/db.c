/*
 * Database opening shared by connhist-record and connhist-query.
 */
#define _POSIX_C_SOURCE 200809L
#include "db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <pwd.h>

#define BUSY_TIMEOUT_MS 10000

int ch_default_db_path(char *out, size_t n, char *err)
{
    const char *env = getenv("CONNHIST_DB");
    int len;
    if (env != NULL && *env != '\0') {
        len = snprintf(out, n, "%s", env);
    } else if (geteuid() == 0) {
        len = snprintf(out, n, "/var/lib/connhist/connhist.db");
    } else {
        const char *xdg = getenv("XDG_STATE_HOME");
        if (xdg != NULL && xdg[0] == '/') {
            len = snprintf(out, n, "%s/connhist/connhist.db", xdg);
        } else {
            const char *home = getenv("HOME");
            if (home == NULL || home[0] != '/') {
                struct passwd *pw = getpwuid(geteuid());
                home = pw != NULL ? pw->pw_dir : NULL;
            }
            if (home == NULL) {
                snprintf(err, CH_ERR_MAX, "no home directory for the default database: pass --db PATH or set CONNHIST_DB");
                return -1;
            }
            len = snprintf(out, n, "%s/.local/state/connhist/connhist.db", home);
        }
    }
    if (len < 0 || (size_t)len >= n) {
        snprintf(err, CH_ERR_MAX, "default database path is too long: pass --db PATH");
        return -1;
    }
    return 0;
}

/* mkdir -p for the directory part of path, new directories mode 0700. */
static int make_parent_dirs(const char *path, char *err)
{
    char dir[CH_PATH_MAX];
    if (strlen(path) >= sizeof dir) {
        snprintf(err, CH_ERR_MAX, "database path is too long: %.100s...", path);
        return -1;
    }
    strcpy(dir, path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                snprintf(err, CH_ERR_MAX, "cannot create directory %s for the database: %s", dir, strerror(errno));
                return -1;
            }
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    return 0;
}

static int int_query(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/*
 * Checks that db holds a connhist schema we can use. Sets *version (0 for an
 * empty database). Returns 0 or -1 with a message.
 */
static int check_schema(sqlite3 *db, const char *path, int *version, char *err)
{
    int rc = int_query(db, "PRAGMA user_version", version);
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) {
        snprintf(err, CH_ERR_MAX, "%s is not a SQLite database (or is corrupt): expected a connhist database", path);
        return -1;
    }
    if (rc != SQLITE_OK) {
        snprintf(err, CH_ERR_MAX, "cannot read %s: %s", path, sqlite3_errmsg(db));
        return -1;
    }
    int tables = 0, ours = 0;
    rc = int_query(db, "SELECT count(*) FROM sqlite_master", &tables);
    if (rc == SQLITE_OK)
        rc = int_query(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ('runs','lifetimes','processes','heartbeats','state_changes')", &ours);
    if (rc != SQLITE_OK) {
        snprintf(err, CH_ERR_MAX, "%s is not a usable SQLite database: %s", path, sqlite3_errmsg(db));
        return -1;
    }
    if (*version > ch_schema_version) {
        snprintf(err, CH_ERR_MAX, "%s has connhist schema version %d, newer than this program's %d: use a newer connhist", path, *version, ch_schema_version);
        return -1;
    }
    if ((*version == 0 && tables > 0) || (*version > 0 && ours != 5)) {
        snprintf(err, CH_ERR_MAX, "%s is a SQLite database but not a connhist database", path);
        return -1;
    }
    return 0;
}

/* Opens path with flags and checks its schema. 0, or -1 with a message. */
static int open_checked(const char *path, int flags, sqlite3 **out, int *version, char *err)
{
    sqlite3 *db;
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, CH_ERR_MAX, "cannot open database %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (check_schema(db, path, version, err) != 0) {
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

int ch_db_open_write(const char *path, sqlite3 **out, char *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, CH_ERR_MAX, "database path %s is a directory: expected a file", path);
        return -1;
    }
    if (make_parent_dirs(path, err) != 0)
        return -1;
    sqlite3 *db;
    int version;
    if (open_checked(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db, &version, err) != 0)
        return -1;
    char *msg = NULL;
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, CH_ERR_MAX, "cannot set up database %s: %s", path, msg ? msg : "?");
        goto fail;
    }
    if (version == 0) {
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, ch_schema_sql, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, CH_ERR_MAX, "cannot create the schema in %s: %s", path, msg ? msg : "?");
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
    }
    *out = db;
    return 0;
fail:
    sqlite3_free(msg);
    sqlite3_close(db);
    return -1;
}

int ch_db_open_read(const char *path, sqlite3 **out, char *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            snprintf(err, CH_ERR_MAX, "no database at %s: run connhist-record first, or pass --db PATH", path);
            return 1;
        }
        snprintf(err, CH_ERR_MAX, "cannot access database %s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, CH_ERR_MAX, "database path %s is a directory: expected a connhist database file", path);
        return -1;
    }
    if (access(path, R_OK) != 0) {
        snprintf(err, CH_ERR_MAX, "cannot read database %s: %s", path, strerror(errno));
        return -1;
    }
    sqlite3 *db;
    int version;
    if (open_checked(path, SQLITE_OPEN_READONLY, &db, &version, err) != 0)
        return -1;
    if (version == 0) {
        snprintf(err, CH_ERR_MAX, "%s is an empty database, not a connhist database", path);
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}
