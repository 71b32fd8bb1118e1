/*
 * The tamper-evident chain, written by the recorder (schema/README.md,
 * "The chain"). Attached to the recorder's connection once, it sees every
 * row any part of the recorder inserts, changes or deletes (the store, the
 * port ranges, retention, the run's notes) through temporary triggers, and
 * keeps the chain's links up to date inside every transaction it commits.
 */
#ifndef CH_CHAIN_H
#define CH_CHAIN_H

#include <sqlite3.h>
#include <stddef.h>

/*
 * Attaches the chain to db: reads the key file named by $CONNHIST_CHAIN_KEY
 * (when set; it must be readable by its owner only), begins the chain with
 * its first link over every row already there when the database has none,
 * and installs the triggers. Anchors (the head's sequence number, hash and
 * time) go to the system log every $CONNHIST_CHAIN_ANCHOR_EVERY (a
 * duration, default 10m) and when the connection closes, and also to the
 * file $CONNHIST_CHAIN_ANCHORS when set. Everything it keeps is released
 * with the connection. Returns 0, or -1 with a one-line message in err.
 */
int ch_chain_attach(sqlite3 *db, char *err, size_t errn);

#endif
