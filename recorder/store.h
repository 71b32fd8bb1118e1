/*
 * The store writes the tracker's events into the database: one transaction
 * per sample, prepared statements reused across samples, and the run's
 * heartbeat. It also reads back, at start, what a previous run left open.
 */
#ifndef CH_STORE_H
#define CH_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr_ids.h"
#include "tracker.h"

typedef struct {
    const char *mode;        /* "continuous" or "once" */
    int64_t interval_ms;
    const char *host;
    const char *os;
    const char *boot_id;     /* may be NULL */
    int64_t boot_time;       /* -1 when unknown */
    const char *sampler;
    int ident_is_cookie;     /* the sampler's idents are sock_diag cookies */
    const char *version;
    int64_t pid;
    int64_t uid;
    int64_t started_at;
} ch_run_info;

/* What the database says about the runs before this one. */
typedef struct {
    int64_t last_sample;     /* newest heartbeat of any run; -1 when none */
    char boot_id[64];        /* boot id of the run that took it; "" when unknown */
    int64_t next_lifetime_id;
    int64_t live_pid;        /* a recorder that still seems to run, or 0 */
} ch_history;

typedef struct ch_store ch_store;

/* Prepares the statements. Returns NULL with a message in err. */
ch_store *ch_store_open(sqlite3 *db, char *err, size_t errn);
void ch_store_close(ch_store *s);

/* Reads the history; host and boot_id identify this machine and boot (a
 * recorder is only "live" if it runs on this machine in this boot). */
int ch_store_history(ch_store *s, const char *host, const char *boot_id, ch_history *h, char *err, size_t errn);

/* Feeds every lifetime still open in the database to the tracker. ident_is_cookie:
 * the current sampler identifies sockets by cookie (else by inode). */
int ch_store_load_open(ch_store *s, ch_tracker *t, int ident_is_cookie, char *err, size_t errn);

/* Inserts the run row. Returns 0 or -1. */
int ch_store_begin_run(ch_store *s, const ch_run_info *info, char *err, size_t errn);

/*
 * Writes the queued events and the heartbeat of the sample taken at
 * sample_at, in one transaction (items, then the deferred opens). On success
 * the queue is emptied; on failure nothing is written, the queue is kept for
 * the next try (the tracker copies deferred opens out of the sample before it
 * is taken again), and err says why.
 * Returns 0 or the SQLite error code.
 */
int ch_store_flush(ch_store *s, ch_events *q, int64_t sample_at, char *err, size_t errn);

/* Marks the run as ended at ended_at for reason ("signal", "duration", "once"). */
int ch_store_end_run(ch_store *s, int64_t ended_at, const char *reason, char *err, size_t errn);

/* The run_id of this run (after ch_store_begin_run). */
int64_t ch_store_run_id(const ch_store *s);

/* Sets runs.event_overruns: how often the announcements of closed sockets
 * overran since the run began (0: none lost; never called: not watched).
 * Returns 0 or -1; a failure is retried by the next call. */
int ch_store_event_overruns(ch_store *s, int64_t overruns);

/*
 * Something else written in every sample's transaction (the DNS answers,
 * answers.h): write runs after the lifetimes, before COMMIT, with the
 * store's address dictionary and the run; its failure rolls the whole
 * transaction back. done says afterwards whether it committed.
 */
typedef struct {
    int (*write)(void *ctx, ch_addr_ids *ids, int64_t run_id);
    void (*done)(void *ctx, bool committed);
    void *ctx;
} ch_store_rider;
void ch_store_set_rider(ch_store *s, const ch_store_rider *rider);

/* Records a note on the run (what the recorder could not do). */
int ch_store_note(ch_store *s, const char *note);

#endif
