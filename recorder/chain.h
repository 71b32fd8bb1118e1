/*
 * The tamper-evident chain, written by the recorder (schema/README.md,
 * "The chain"). Attached to the recorder's connection once, it sees every
 * row any part of the recorder inserts, changes or deletes (the store, the
 * port ranges, retention, the run's notes) through temporary triggers, or
 * through the store's own statements (ch_chain_prepare, below), and keeps
 * the chain's links up to date inside every transaction it commits.
 */
#ifndef CH_CHAIN_H
#define CH_CHAIN_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct ch_chain ch_chain;

/*
 * Attaches the chain to db: reads the key file named by $CONNHIST_CHAIN_KEY
 * (when set; it must be readable by its owner only), begins the chain with
 * its first link over every row already there when the database has none,
 * and installs the triggers. Anchors (the head's sequence number, hash and
 * time) go to the system log every $CONNHIST_CHAIN_ANCHOR_EVERY (a
 * duration, default 10m) and when the connection closes, and also to the
 * file $CONNHIST_CHAIN_ANCHORS when set. Everything it keeps is released
 * with the connection (the handle returned is valid as long as it is).
 * Returns NULL with a one-line message in err.
 */
ch_chain *ch_chain_attach(sqlite3 *db, char *err, size_t errn);

/* True when $CONNHIST_CHAIN_OFF=1 attached no chain (benchmarks only: the
 * store's statements as they are, without the digests; a database that
 * has a chain is refused). */
bool ch_chain_is_off(const ch_chain *c);

/*
 * The hot writers (the store's lifetimes, state changes and processes)
 * skip the triggers: their statements, built by ch_chain_prepare, compute
 * each row's digest in the same INSERT or UPDATE that writes it (a trigger
 * program and a second write of the row cost 25-30 us a row), and the
 * writer writes the transaction's link once, with ch_chain_write_link,
 * before its COMMIT. A COMMIT that owes a link, or whose child row (a
 * state change) was not folded into its parent's digest, is refused.
 *
 * A statement is an INSERT ... SELECT of the given values (FROM and WHERE
 * optional: a row the WHERE leaves out is neither written nor digested;
 * columns not given must have no default but NULL), or an UPDATE setting
 * them. Preparing one drops the trigger of that table and kind: from then
 * on this connection must write such rows only through statements made
 * here. A child table (no chain_digest, a parent: state_changes) is
 * inserted before its parent's UPDATE in the same transaction, which adds
 * the child's short digest to the parent's.
 */
typedef struct {
    const char *col, *expr;
} ch_chain_value;

typedef struct {
    const char *table;
    bool update;
    const ch_chain_value *values; /* ends with {NULL, NULL} */
    const char *from;             /* INSERT only: "lifetimes", or NULL */
    const char *where;            /* or NULL */
} ch_chain_write;

/* Returns 0, or -1 with a message in err. */
int ch_chain_prepare(ch_chain *c, const ch_chain_write *w, sqlite3_stmt **st, char *err, size_t errn);

/* Writes or brings up to date the transaction's link, when rows were
 * chained since it last was. An SQLite code. */
int ch_chain_write_link(ch_chain *c);

/*
 * Puts the chain's temporary triggers back as ch_chain_attach and
 * ch_chain_prepare left them, after something dropped the connection's
 * temporary schema (changing PRAGMA temp_store does). Until it returns 0,
 * writes through other statements than ch_chain_prepare's are not chained:
 * the caller writes nothing then. Returns 0, or -1 with a message in err.
 */
int ch_chain_rearm(ch_chain *c, char *err, size_t errn);

#endif
