/*
 * Chain of custody: `connhist-query verify` recomputes the recorder's
 * tamper-evident chain (verify.c) and `connhist-query snapshot OUT` takes a
 * consistent copy with a manifest (snapshot.c). Neither is a report over
 * lifetimes, so they have their own command line (custody_cli.c) and print
 * one JSON object each.
 */
#ifndef CHQ_CUSTODY_H
#define CHQ_CUSTODY_H

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "digest.h"

#define CHQ_MAX_ANCHORS 4096

typedef struct {
    int64_t seq;
    unsigned char hash[CH_DIGEST_LEN];
} chq_anchor;

typedef struct {
    const char *command;       /* "verify" or "snapshot" */
    const char *db_path;       /* NULL: the default */
    const char *out;           /* snapshot: the copy to write */
    const char *manifest;      /* snapshot: where the manifest goes (default OUT.manifest.json) */
    const char *key_path;      /* verify: the key of a keyed chain */
    bool pretty;
    chq_anchor *anchors;
    int nanchors;
} custody_opts;

/* The command custody_main runs when argv names one ("verify" or
 * "snapshot" as the first word that is not an option or its value), else
 * NULL: the other reports. */
const char *custody_command(int argc, char **argv);

/* The whole of connhist-query verify or snapshot: the exit code. */
int custody_main(int argc, char **argv);

/* Recomputes the chain of db (opened read-only) into a JSON object. key:
 * the keyed chain's key (NULL when none). Returns 0 intact, 1 not, 2 when
 * it cannot be checked as asked (a keyed chain and no key, or the other
 * way round), after a message. */
int verify_run(sqlite3 *db, const char *path, const unsigned char *key, size_t keylen, const chq_anchor *anchors,
               int nanchors, cJSON **out);

/* Copies db into opts->out with SQLite's online backup and writes the
 * manifest. Returns the exit code. */
int snapshot_run(sqlite3 *db, const custody_opts *o);

/* The newest link of db's chain as JSON {seq, at, hash}, or JSON null;
 * closed: the newest link a later transaction cannot extend any more (an
 * anchor for the live database the copy came from). */
cJSON *custody_head_json(sqlite3 *db, bool closed);

/* Prints v (compact or pretty, its text made valid UTF-8 first) and a
 * newline; 0, or 1 when stdout fails. */
int custody_print(cJSON *v, bool pretty);

#endif
