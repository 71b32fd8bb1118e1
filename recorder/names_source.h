/*
 * The recorder's use of the DNS capture (--names): starts it or says why
 * not, hands what it captured to the answer store at each sample (written
 * in the sample's transaction, answers.h), keeps the run's columns names,
 * names_off and names_dropped up to date, and turns names off, with a
 * note, when the capture fails. Recording sockets never waits on it.
 */
#ifndef CH_NAMES_SOURCE_H
#define CH_NAMES_SOURCE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "answers.h"
#include "names.h"
#include "store.h"

/* --names */
enum ch_names_mode {
    CH_NAMES_AUTO, /* where the capture starts; else noted in the run and recorded without */
    CH_NAMES_ON,   /* required: the recorder does not start without it */
    CH_NAMES_OFF,
};

#define CH_NAMES_WHY_MAX 600

typedef struct {
    ch_names *capture;        /* NULL: names off */
    ch_answers *answers;
    sqlite3 *db;
    int64_t run_id;
    char off[CH_NAMES_WHY_MAX]; /* why names are off; "" while on */
    int64_t dropped_stored;   /* runs.names_dropped as last written */
    bool noted_drop;
} ch_names_source;

/* Parses a --names value; 0, or -1 when it is none of auto, on, off. */
int ch_names_parse_mode(const char *v, int *mode);

/*
 * Starts the capture for a recorder in mode, sampling every interval_ms
 * (once: a --once run, which captures nothing by default), writing db
 * through store. Returns 0 (on, or off with the reason in ns->off), or -1
 * when mode is CH_NAMES_ON and it cannot run (the reason in ns->off).
 */
int ch_names_source_start(ch_names_source *ns, int mode, bool once, sqlite3 *db, int64_t interval_ms,
                          ch_store *store);

/* The run has begun: records in it whether names are captured, and why
 * not. Returns the note to add to the run (NULL: none). */
const char *ch_names_source_begin_run(ch_names_source *ns, int64_t run_id);

/*
 * At each sample, before the store's flush: takes what was captured for
 * the flush to write, and notices a capture that failed or dropped
 * answers. Returns a note to log and add to the run, or NULL.
 */
const char *ch_names_source_tick(ch_names_source *ns);

/* At the stop, before the last flush: takes what the capture read since
 * the last sample, up to now. Returns whether answers wait to be written. */
bool ch_names_source_drain(ch_names_source *ns);

/* Stops the capture (the answers still waiting are written by the last flush first). */
void ch_names_source_stop(ch_names_source *ns);

#endif
