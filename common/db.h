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

#define CH_PATH_MAX 4096
#define CH_ERR_MAX 8192

/*
 * The default database path: $CONNHIST_DB, else /var/lib/connhist/connhist.db
 * for root, else $XDG_STATE_HOME/connhist/connhist.db (default
 * ~/.local/state). Returns 0, or -1 with a message in err.
 */
int ch_default_db_path(char *out, size_t n, char *err);

/*
 * Opens (creating when missing, with its directory, mode 0700) the database
 * for writing, in WAL mode with a busy timeout, and creates the schema on a
 * new file. Returns 0, or -1 with a one-line message in err.
 */
int ch_db_open_write(const char *path, sqlite3 **out, char *err);

/*
 * Opens an existing database read-only. Never creates a file. Returns 0;
 * 1 with a message when the file does not exist; -1 with a message when it
 * cannot be used (not SQLite, not connhist, newer schema, unreadable).
 */
int ch_db_open_read(const char *path, sqlite3 **out, char *err);

#endif
