/*
 * Opening the connhist database: where it lives by default, creating it with
 * the embedded schema (schema/schema.sql), and refusing files that are not
 * ours or come from a newer schema. Both programs go through here so they
 * agree on the default path and on what a valid database is.
 */
#ifndef CH_DB_H
#define CH_DB_H

#include <sqlite3.h>
#include <stddef.h>

/* schema/schema.sql, embedded at build time, and the user_version it sets. */
extern const char ch_schema_sql[];
extern const int ch_schema_version;

/*
 * The upgrade steps, schema/upgrade_N.sql, embedded at build time:
 * ch_schema_upgrade_sql[N] turns a version-N database into version N+1,
 * for N from 1 to ch_schema_version - 1 (entry 0 is NULL).
 */
extern const char *const ch_schema_upgrade_sql[];

#define CH_PATH_MAX 4096
#define CH_ERR_MAX 8192

/*
 * A lifetime is "long" when it is still open or lasted more than this; the
 * partial index lifetimes_long (schema/schema.sql) holds exactly the rows
 * matching CH_LONG_LIFETIME_SQL, and a query must spell the condition the
 * same way for SQLite to use it. Both numbers must match the schema's.
 */
#define CH_LONG_LIFETIME_MS 3600000
#define CH_LONG_LIFETIME_SQL "(closed_after IS NULL OR closed_after > 3600000)"

/*
 * The default database path: $CONNHIST_DB, else /var/lib/connhist/connhist.db
 * for root, else $XDG_STATE_HOME/connhist/connhist.db (default
 * ~/.local/state). Returns 0, or -1 with a message in err.
 */
int ch_default_db_path(char *out, size_t n, char *err);

/*
 * Opens (creating when missing, with its directory, mode 0700) the database
 * for writing, in WAL mode with a busy timeout, and creates the schema on a
 * new file. A database of an older schema version is upgraded in place, all
 * steps in one transaction: when a step fails, the file is left as it was.
 * *from (when not NULL) gets the version the file had: 0 for a new one, less
 * than ch_schema_version when it was upgraded. Returns 0, or -1 with a
 * one-line message in err.
 */
int ch_db_open_write(const char *path, sqlite3 **out, int *from, char *err);

/*
 * Opens an existing database read-only. Never creates a file and never
 * upgrades one. Returns 0; 1 with a message when the file does not exist;
 * -1 with a message when it cannot be used (not SQLite, not connhist, an
 * older or newer schema, unreadable).
 */
int ch_db_open_read(const char *path, sqlite3 **out, char *err);

#endif
