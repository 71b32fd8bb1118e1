/*
 * The tamper-evident chain's arithmetic, shared by the recorder that writes
 * it (recorder/chain.c) and the verifier that recomputes it (query/verify.c):
 * which tables are chained and how, the canonical encoding of a row and its
 * digest, the multiset sum, and the hash of a link. schema/README.md
 * ("The chain") is the contract; this file is its only implementation.
 */
#ifndef CH_CHAIN_CODEC_H
#define CH_CHAIN_CODEC_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "digest.h"

#define CH_CHAIN_MAX_TABLES 32
#define CH_CHAIN_MAX_COLS 40
#define CH_CHAIN_DIGEST_COL "chain_digest"

/* Link kinds (chain_links.kind). */
enum { CH_LINK_COMMIT = 0, CH_LINK_GENESIS = 1, CH_LINK_GENESIS_KEYED = 2 };

/* One chained table: every table of the main schema but chain_links and
 * SQLite's own. Its rows' digests are summed into the multiset; a table
 * with a chain_digest column keeps each row's short digest beside it, and a
 * child table (state_changes, lifetime_extras) adds its rows' short digests
 * to their parent's (lifetimes) instead. */
typedef struct {
    char name[64];
    int ncols;                        /* content columns: all but chain_digest */
    char cols[CH_CHAIN_MAX_COLS][64]; /* in the table's column order */
    int cids[CH_CHAIN_MAX_COLS];      /* their positions in that order (the encoding's tags) */
    bool has_digest;                  /* a chain_digest column */
    bool has_rowid;                   /* not WITHOUT ROWID */
    int parent;                       /* index of the parent table, or -1 */
    int parent_key;                   /* index in cols of the column naming the parent row */
} ch_chain_table;

typedef struct {
    int n;
    ch_chain_table t[CH_CHAIN_MAX_TABLES];
} ch_chain_tables;

/* The multiset of every chained row's digest: their sum modulo 2^256
 * (big-endian bytes), and how many rows. */
typedef struct {
    unsigned char sum[CH_DIGEST_LEN];
    int64_t rows;
} ch_chain_mset;

/* Reads the chained tables of db's main schema in name order. Returns 0,
 * or -1 with a message. */
int ch_chain_tables_read(sqlite3 *db, ch_chain_tables *out, char *err, size_t errn);

/* The digest of one row of table t: values[i] is the value of t->cols[i].
 * NULL columns are left out of the encoding, so a column added later (NULL
 * in older rows) leaves their digests as they were. Returns 0 or -1. */
int ch_chain_row_digest(ch_digest *d, const ch_chain_table *t, sqlite3_value **values,
                        unsigned char out[CH_DIGEST_LEN]);

/* The short digest kept beside a row: the first 8 bytes, as a signed
 * 64-bit integer (SQLite's). */
int64_t ch_chain_short(const unsigned char digest[CH_DIGEST_LEN]);

/* a + b modulo 2^64, as SQLite integers. */
int64_t ch_chain_fold(int64_t a, int64_t b);

void ch_chain_mset_add(ch_chain_mset *m, const unsigned char digest[CH_DIGEST_LEN]);
void ch_chain_mset_sub(ch_chain_mset *m, const unsigned char digest[CH_DIGEST_LEN]);

/* The hash of link seq: over the previous link's hash (zeros before the
 * first), seq, at, kind, the row count and the multiset sum. */
int ch_chain_link_hash(ch_digest *d, const unsigned char prev[CH_DIGEST_LEN], int64_t seq, int64_t at, int kind,
                       const ch_chain_mset *m, unsigned char out[CH_DIGEST_LEN]);

/* A short fingerprint of the key a keyed chain was made with (so that a
 * wrong key is told apart from a changed chain): the first 8 bytes of the
 * keyed hash of a fixed text. */
int64_t ch_chain_key_id(ch_digest *d);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void ch_chain_hex(const unsigned char *b, size_t n, char *out);
/* Parses 2 * n hex digits; 0 or -1. */
int ch_chain_unhex(const char *s, unsigned char *out, size_t n);

#endif
