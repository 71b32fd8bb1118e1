/*
 * Database opening shared by connhist-record and connhist-query.
 */
#include "db.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

#define BUSY_TIMEOUT_MS 10000

int ch_default_db_path(char *out, size_t n, char *err)
{
    const char *env = getenv("CONNHIST_DB");
    if (env == NULL || *env == '\0')
        return ch_platform_default_db(out, n, err);
    int len = snprintf(out, n, "%s", env);
    if (len < 0 || (size_t)len >= n) {
        snprintf(err, CH_ERR_MAX, "CONNHIST_DB is too long: pass --db PATH");
        return -1;
    }
    return 0;
}

/* mkdir -p for the directory part of path; new directories are private. */
static int make_parent_dirs(const char *path, char *err)
{
    char dir[CH_PATH_MAX];
    if (strlen(path) >= sizeof dir) {
        snprintf(err, CH_ERR_MAX, "database path is too long: %.100s...", path);
        return -1;
    }
    strcpy(dir, path);
    size_t root = ch_path_root_len(dir), end = strlen(dir);
    while (end > root && !ch_is_path_sep(dir[end - 1]))
        end--;
    if (end <= root)
        return 0; /* no directory part, or only the root */
    dir[end - 1] = '\0';
    for (char *p = dir + root;; p++) {
        if (*p != '\0' && !ch_is_path_sep(*p))
            continue;
        char saved = *p;
        *p = '\0';
        if (p > dir + root && ch_make_private_dir(dir) != 0) {
            snprintf(err, CH_ERR_MAX, "cannot create directory %s for the database: %s", dir, ch_platform_error());
            return -1;
        }
        *p = saved;
        if (saved == '\0')
            break;
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
    if (sqlite3_extended_errcode(db) == SQLITE_READONLY_ROLLBACK) {
        /* A hot journal: undoing it is a write, and reading around it would
         * show half a transaction. */
        snprintf(err, CH_ERR_MAX,
                 "%s was left half-written: %s-journal holds a transaction that never finished (its writer was "
                 "stopped, or is writing now); 'connhist-record --upgrade --db %s' finishes it (on a copy of both "
                 "files if this one is evidence)",
                 path, path, path);
        return -1;
    }
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

/* ROLLBACK, then the message of an upgrade that failed: the file keeps its version. */
static int upgrade_failed(sqlite3 *db, char *err)
{
    if (sqlite3_get_autocommit(db) == 0 && sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK) {
        size_t n = strlen(err);
        snprintf(err + n, CH_ERR_MAX - n, " (and the rollback failed: %s)", sqlite3_errmsg(db));
    }
    return -1;
}

/*
 * Brings a database of schema version from up to ch_schema_version: under
 * the write lock, runs schema/upgrade_N.sql for each N from its version on,
 * then schema.sql for whatever the steps left to create, sets user_version
 * and commits, all in one transaction, so a failed step,
 * a crash or a power cut leaves the file at its old version. Returns 0, or
 * -1 with a message naming the file, the step, both versions and SQLite's
 * error.
 */
static int upgrade_schema(sqlite3 *db, const char *path, int from, char *err)
{
    char *msg = NULL;
    int now = from;
    /* Another recorder may have upgraded it since we looked: read again under the lock. */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
        int_query(db, "PRAGMA user_version", &now) != SQLITE_OK) {
        snprintf(err, CH_ERR_MAX, "cannot upgrade %s from schema version %d to %d: %s (it was left at version %d)",
                 path, from, ch_schema_version, msg ? msg : sqlite3_errmsg(db), from);
        sqlite3_free(msg);
        return upgrade_failed(db, err);
    }
    if (now >= ch_schema_version) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        if (now == ch_schema_version)
            return 0;
        snprintf(err, CH_ERR_MAX, "%s has connhist schema version %d, newer than this program's %d: use a newer connhist", path, now, ch_schema_version);
        return -1;
    }
    for (int n = now; n < ch_schema_version; n++) {
        const char *step = ch_schema_upgrade_sql[n];
        if (step == NULL) {
            snprintf(err, CH_ERR_MAX, "cannot upgrade %s from schema version %d: this program has no schema/upgrade_%d.sql (it was left at version %d)",
                     path, n, n, now);
            return upgrade_failed(db, err);
        }
        if (sqlite3_exec(db, step, NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, CH_ERR_MAX, "cannot upgrade %s from schema version %d to %d: schema/upgrade_%d.sql failed: %s (it was left at version %d)",
                     path, n, n + 1, n, msg ? msg : sqlite3_errmsg(db), now);
            sqlite3_free(msg);
            return upgrade_failed(db, err);
        }
    }
    /* What the steps left to create (new tables, indexes, the views):
     * schema.sql only creates what is missing. */
    if (sqlite3_exec(db, ch_schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, CH_ERR_MAX, "cannot upgrade %s to schema version %d: schema/schema.sql failed after the steps: %s (it was left at version %d)",
                 path, ch_schema_version, msg ? msg : sqlite3_errmsg(db), now);
        sqlite3_free(msg);
        return upgrade_failed(db, err);
    }
    char set_version[64];
    snprintf(set_version, sizeof set_version, "PRAGMA user_version = %d", ch_schema_version);
    if (sqlite3_exec(db, set_version, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, CH_ERR_MAX, "cannot upgrade %s from schema version %d to %d: %s (it was left at version %d)", path,
                 now, ch_schema_version, msg ? msg : sqlite3_errmsg(db), now);
        sqlite3_free(msg);
        return upgrade_failed(db, err);
    }
    return 0;
}

/* Opens target (path, or a URI naming it) with flags and checks the schema.
 * 0, or -1 with a message naming path (and SQLite's code in *code, when
 * code is not NULL). */
static int open_checked(const char *path, const char *target, int flags, sqlite3 **out, int *version, char *err,
                        int *code)
{
    sqlite3 *db;
    int rc = sqlite3_open_v2(target, &db, flags, NULL);
    if (code != NULL)
        *code = rc;
    if (rc != SQLITE_OK) {
        /* SQLite says only "unable to open database file": add the system's reason. */
        int sys = db != NULL ? sqlite3_system_errno(db) : 0;
        if ((flags & SQLITE_OPEN_CREATE) && ch_path_kind(path) == CH_PATH_MISSING)
            snprintf(err, CH_ERR_MAX, "cannot create database %s: %s (can this user write its directory?)", path,
                     sys ? strerror(sys) : sqlite3_errstr(rc));
        else
            snprintf(err, CH_ERR_MAX, "cannot open database %s: %s%s%s%s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                     sys ? " (" : "", sys ? strerror(sys) : "", sys ? ")" : "");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (check_schema(db, path, version, err) != 0) {
        if (code != NULL)
            *code = sqlite3_errcode(db);
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

/* Attempts of open_write_once a recorder makes, 20 ms apart (see below). */
#define WAL_OPEN_ATTEMPTS 100

static bool may_pass(int code)
{
    return (code & 0xff) == SQLITE_CANTOPEN || (code & 0xff) == SQLITE_READONLY;
}

/*
 * One attempt of ch_db_open_write. Returns 0, -1, or 1 when the first
 * write in WAL mode failed in a way the next attempt may not: a reader as
 * root (connhist-query, the sqlite3 shell) that begins at the moment the
 * database switches to WAL creates its -wal and -shm files as root and
 * only then gives them to the database's owner; a recorder that is not
 * root and opens them in between cannot write them (SQLITE_CANTOPEN, or
 * SQLITE_READONLY: the -shm opened read-only) for as long as its
 * connection lasts. The same at an existing database's first read, which
 * opens them when no other connection has. *from as ch_db_open_write's,
 * once the version was read.
 */
static int open_write_once(const char *path, sqlite3 **out, int *from, char *err)
{
    *out = NULL;
    if (ch_path_kind(path) == CH_PATH_DIR) {
        snprintf(err, CH_ERR_MAX, "database path %s is a directory: expected a file", path);
        return -1;
    }
    if (ch_path_is_foreign_link(path)) {
        snprintf(err, CH_ERR_MAX, "database path %s is a symbolic link owned by another user: refusing to write through it", path);
        return -1;
    }
    if (make_parent_dirs(path, err) != 0)
        return -1;
    sqlite3 *db;
    int version;
    int code;
    if (open_checked(path, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db, &version, err, &code) != 0)
        /* An existing database's first read opens its -wal and -shm. */
        return may_pass(code) && ch_path_kind(path) == CH_PATH_FILE ? 1 : -1;
    char *msg = NULL;
    /* SQLite quietly opens a write-protected file read-only: say so now,
     * not at the first write. */
    if (sqlite3_db_readonly(db, "main") == 1) {
        snprintf(err, CH_ERR_MAX, "database %s is read-only for this user: the recorder must write it (check its owner and mode)", path);
        goto fail;
    }
    /* The schema first: switching to WAL writes the file header, after
     * which its PRAGMA auto_vacuum would no longer take effect. */
    if (version == 0) {
        /* A deferred BEGIN: under BEGIN IMMEDIATE SQLite ignores auto_vacuum. */
        if (sqlite3_exec(db, "BEGIN", NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, ch_schema_sql, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, CH_ERR_MAX, "cannot create the schema in %s: %s", path, msg ? msg : "?");
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
    } else if (version < ch_schema_version && upgrade_schema(db, path, version, err) != 0) {
        goto fail;
    }
    if (from != NULL)
        *from = version;
    int rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &msg);
    if (rc == SQLITE_OK) /* the first write in WAL mode: the -wal and -shm files open */
        rc = sqlite3_exec(db, "BEGIN IMMEDIATE; COMMIT;", NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, CH_ERR_MAX, "cannot set up database %s: %s", path, msg ? msg : sqlite3_errmsg(db));
        rc = may_pass(rc) ? 1 : -1;
        sqlite3_free(msg);
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return 0;
fail:
    sqlite3_free(msg);
    sqlite3_close(db);
    return -1;
}

int ch_db_open_write(const char *path, sqlite3 **out, int *from, char *err)
{
    int first = -1; /* the version the file had, as the first attempt that read it found it */
    int rc = 1;
    for (int attempt = 0; rc > 0 && attempt < WAL_OPEN_ATTEMPTS; attempt++) {
        if (attempt > 0)
            sqlite3_sleep(20);
        int version = -1;
        rc = open_write_once(path, out, &version, err);
        if (first < 0)
            first = version;
    }
    if (from != NULL)
        *from = first < 0 ? 0 : first;
    return rc == 0 ? 0 : -1;
}

/* "file:PATH?immutable=1", with the characters a URI gives meaning to escaped. */
static int immutable_uri(const char *path, char *out, size_t n)
{
    size_t o = (size_t)snprintf(out, n, "file:");
    for (const char *p = path; *p; p++) {
        if (o + 4 >= n)
            return -1;
        if (*p == '%' || *p == '?' || *p == '#')
            o += (size_t)snprintf(out + o, n - o, "%%%02X", (unsigned char)*p);
        else
            out[o++] = *p;
    }
    return snprintf(out + o, n - o, "?immutable=1") < (int)(n - o) ? 0 : -1;
}

/* Address space, not memory: SQLite takes at most SQLITE_MAX_MMAP_SIZE of
 * it (2 GiB less 64 KiB in Debian's build and by default), and reads the
 * pages past that with read() copies: a 1 GiB map left a bulk report of a
 * 1.46 GB database a third slower. */
#define READ_MMAP_BYTES "2147418112"

int ch_db_open_read(const char *path, sqlite3 **out, char *err)
{
    *out = NULL;
    enum ch_path_kind kind = ch_path_kind(path);
    if (kind == CH_PATH_MISSING) {
        snprintf(err, CH_ERR_MAX, "no database at %s: run connhist-record first, or pass --db PATH", path);
        return 1;
    }
    if (kind == CH_PATH_ERROR) {
        snprintf(err, CH_ERR_MAX, "cannot access database %s: %s", path, ch_platform_error());
        return -1;
    }
    if (kind == CH_PATH_DIR) {
        snprintf(err, CH_ERR_MAX, "database path %s is a directory: expected a connhist database file", path);
        return -1;
    }
    if (kind == CH_PATH_OTHER) { /* a FIFO would block the open until somebody writes to it */
        snprintf(err, CH_ERR_MAX, "database path %s is not a regular file (a FIFO, socket or device): expected a connhist database file", path);
        return -1;
    }
    if (!ch_path_readable(path)) {
        snprintf(err, CH_ERR_MAX, "cannot read database %s: %s", path, ch_platform_error());
        return -1;
    }
    /* With no -wal file beside it nobody is writing: read the file as
     * immutable, so SQLite takes no lock and creates no -wal or -shm next to
     * the evidence. A live (or crashed) recorder's WAL is read as it is. A
     * -journal means a transaction in rollback mode (a recorder creating
     * the schema, before it switches to WAL) was under way: SQLite must see
     * it, to wait for its writer or to refuse what it left unfinished. */
    char wal[CH_PATH_MAX + 8], journal[CH_PATH_MAX + 12], uri[3 * CH_PATH_MAX + 32];
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(journal, sizeof journal, "%s-journal", path);
    int quiet = ch_path_kind(wal) == CH_PATH_MISSING && ch_path_kind(journal) == CH_PATH_MISSING &&
                immutable_uri(path, uri, sizeof uri) == 0;
    sqlite3 *db;
    int version;
    if (open_checked(path, quiet ? uri : path, SQLITE_OPEN_READONLY | (quiet ? SQLITE_OPEN_URI : 0), &db, &version, err,
                     NULL) != 0)
        return -1;
    if (version == 0) {
        snprintf(err, CH_ERR_MAX,
                 "%s is an empty database, not a connhist database (yet): connhist-record creates its tables when "
                 "it starts, 'connhist-record --upgrade --db %s' does only that",
                 path, path);
        sqlite3_close(db);
        return -1;
    }
    /* Reading never writes: the upgrade is the recorder's, on a copy if this one is evidence. */
    if (version < ch_schema_version) {
        snprintf(err, CH_ERR_MAX,
                 "%s has connhist schema version %d, older than the version %d this program reads: upgrade a copy "
                 "with 'connhist-record --upgrade --db COPY' and read that (see schema/README.md)",
                 path, version, ch_schema_version);
        sqlite3_close(db);
        return -1;
    }
    /* Pages read through a memory map, not copied by a read() each: a bulk
     * report or export walks the whole file (a third of its CPU time was
     * the copies). Where the platform has no mmap, SQLite ignores it. */
    sqlite3_exec(db, "PRAGMA mmap_size = " READ_MMAP_BYTES, NULL, NULL, NULL);
    *out = db;
    return 0;
}
