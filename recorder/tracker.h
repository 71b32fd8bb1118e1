/*
 * The tracker turns successive samples into lifetimes: it remembers every
 * socket seen in the previous sample and reports only what changed — a
 * socket opened, changed state, or was found gone. Writes per tick are
 * therefore proportional to churn, not to the number of open sockets.
 *
 * Events go into a queue that the store flushes in one transaction; when a
 * flush fails (disk full, database locked) the queue is kept and flushed
 * with the next tick's events, so nothing seen is lost.
 */
#ifndef CH_TRACKER_H
#define CH_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "owner_map.h"
#include "procs.h"
#include "sample.h"

/* ANNOUNCED: an open lifetime's connection was announced destroyed after a
 * sample had already found the TIME_WAIT entry it left (seen_by,
 * opened_after and the final counters for its row; seen_by NULL: only the
 * counters, for a row that already was the connection's). OWNER: the owner of a
 * lifetime opened without one (or with one only inferred) became known
 * later: a kernel event named it, or a later sample found the socket held
 * by a process (an accepted connection first seen in the backlog). */
enum ch_event_type { CH_EV_OPEN, CH_EV_STATE, CH_EV_CLOSE, CH_EV_ANNOUNCED, CH_EV_OWNER };

/* The socket an OPEN opens and its owner (an OWNER's owner, its socket
 * unused). Kept beside the events, since no other event needs one: a mass
 * close queues small events. */
typedef struct {
    ch_sock sock;
    ch_owner owner;          /* its process, or none */
} ch_opened;

/* Why a lifetime closed: the codes 'close_reason' of schema/schema.sql. */
enum ch_close_reason { CH_CLOSE_GONE = 1, CH_CLOSE_GONE_WHILE_STOPPED, CH_CLOSE_REBOOT, CH_CLOSE_READDRESSED };

/* What saw an event besides the samples: the codes 'seen_by' of
 * schema/schema.sql; CH_SEEN_BY_SAMPLES (NULL in the row): samples only. */
enum ch_seen_by {
    CH_SEEN_BY_SAMPLES = 0,
    CH_SEEN_BY_DESTROY_EVENT,
    CH_SEEN_BY_DESTROY_EVENT_ONLY,
    CH_SEEN_BY_DESTROY_EVENT_TIME_WAIT
};

/* Their names as the codes table has them ("gone", "destroy_event"); NULL
 * for CH_SEEN_BY_SAMPLES or a value out of range. */
const char *ch_close_reason_name(int reason);
const char *ch_seen_by_name(int seen_by);

/* 48 bytes: a mass close queues one per socket (100,000 at once). */
typedef struct {
    uint8_t type;            /* enum ch_event_type */
    uint8_t state;           /* OPEN: first state; STATE: the new state */
    uint8_t reason;          /* CLOSE: enum ch_close_reason */
    uint8_t seen_by;         /* OPEN, CLOSE: CH_SEEN_BY_DESTROY_EVENT(_ONLY); OPEN, ANNOUNCED:
                              * CH_SEEN_BY_DESTROY_EVENT_TIME_WAIT; CH_SEEN_BY_SAMPLES: samples */
    uint32_t opened;         /* OPEN, OWNER: its socket and owner (ch_events_opened) */
    int64_t lifetime_id;
    int64_t at;              /* the sample that saw it (CLOSE: found gone) */
    union {                  /* no event has both */
        int64_t last_seen;   /* CLOSE: last sample that still saw it */
        int64_t opened_after; /* OPEN from a destroy event, ANNOUNCED: the sample before; -1 unknown */
    };
    int64_t bytes_sent;      /* STATE, CLOSE, ANNOUNCED: TCP byte counters then; -1 unknown */
    int64_t bytes_received;
} ch_event;

_Static_assert(sizeof(ch_event) <= 48, "a queued event stays small");

/*
 * The OPENs of one sample's new sockets, left where they already are: row
 * index[i] of the sample opened lifetime first_id + i at time at, owned by
 * owners[i]. The rows, index and owners belong to the sample and the
 * tracker and stay valid until the tracker is next called.
 */
typedef struct {
    const ch_sample *sample;
    const uint32_t *index;
    const ch_owner *owners;
    int64_t first_id;
    int64_t at;
    size_t count;
} ch_open_batch;

typedef struct ch_tracker ch_tracker;

/* Sockets tracked at once, at most (2^24 - 2): a sample that would track
 * more fails as out of memory would. Each costs the tracker about 55 bytes. */
#define CH_TRACKER_MAX_SOCKETS 16777214

/*
 * The CLOSEs of the sockets one sample found gone, left in the tracker
 * (ch_events_close_at): a mass close queues no event per socket. They come
 * after items[0, at_item) and before the items queued after them. They
 * stay valid until the tracker is next called.
 */
typedef struct {
    const ch_tracker *tracker;
    size_t first; /* where they are in the tracker */
    size_t count;
    size_t at_item;
    int64_t last_seen; /* the last sample that still saw them */
} ch_close_batch;

typedef struct {
    ch_event *items;
    size_t count;
    size_t cap;
    ch_opened *opened;       /* the sockets of the OPENs in items */
    size_t nopened, opened_cap;
    /* Set by the owner of the queue: the tracker may leave a sample's new
     * sockets in opens instead of copying each into items (a first sample
     * opens every socket of the machine). Written after items. */
    bool defer_opens;
    ch_open_batch opens;
    /* Likewise, set by the owner of the queue: the tracker may leave the
     * CLOSEs of the sockets a sample found gone in closes, where the owner
     * must read them before calling the tracker again (ch_tracker_settle). */
    bool defer_closes;
    ch_close_batch closes;
} ch_events;

/* Appends an event other than an OPEN (after any deferred opens, which it
 * copies into items first). Returns 0, or -1 when out of memory. */
int ch_events_push(ch_events *q, const ch_event *ev);

/* Appends an OPEN of that socket and owner, likewise. */
int ch_events_push_open(ch_events *q, const ch_event *ev, const ch_sock *sock, ch_owner owner);

/* Appends an OWNER: that lifetime's owner became known at time at. */
int ch_events_push_owner(ch_events *q, int64_t lifetime_id, int64_t at, ch_owner owner);

/* The socket and owner of an OPEN (the owner of an OWNER) in items. */
ch_opened *ch_events_opened(const ch_events *q, const ch_event *ev);

/* Frees the queue's memory and empties it; defer_opens stays as set. */
void ch_events_free(ch_events *q);

/* Events waiting to be written: items, deferred closes and deferred opens. */
size_t ch_events_pending(const ch_events *q);

/* The i-th deferred close (i < q->closes.count) as a CLOSE event. */
ch_event ch_events_close_at(const ch_events *q, size_t i);

/* The i-th deferred open as an OPEN event (i < q->opens.count), its
 * socket and owner in *out. */
ch_event ch_events_open_at(const ch_events *q, size_t i, ch_opened *out);

/* Copies the deferred closes and opens into items, where they would have
 * been, so they outlive the sample and the tracker's next call (a flush
 * failed: they are written with the next one). The tracker does it by
 * itself when called again. Returns 0, or -1 when out of memory (the
 * deferred events are then kept as they are). */
int ch_events_keep(ch_events *q);

/* Empties the queue (written), giving back the room of a burst. */
void ch_events_clear(ch_events *q);

/* A tracker that numbers new lifetimes from next_id on. */
ch_tracker *ch_tracker_new(int64_t next_id);
void ch_tracker_free(ch_tracker *t);

/* Number of sockets tracked (open lifetimes). */
size_t ch_tracker_count(const ch_tracker *t);

/* Bytes of the room the tracker has for sockets (its entries and their
 * index): what it keeps, used or not. */
size_t ch_tracker_room(const ch_tracker *t);

/*
 * Seeds the tracker with a lifetime still open in the database when the
 * recorder starts. If the first sample still has the socket, the lifetime
 * continues; if not, it is closed as "gone_while_stopped" with last_seen =
 * prev_last_sample, the previous run's last sample.
 */
int ch_tracker_load(ch_tracker *t, const ch_sock *s, int64_t lifetime_id);

/*
 * Diffs a sample taken at time at against the tracked sockets and appends
 * the events. procs (may be NULL) attributes new sockets to processes.
 * prev_last_sample is the last sample before this one (of this run or, for
 * the first sample, of the previous run); sockets found gone were last seen
 * then. at should be when the sample was complete: a socket the dump found
 * may have opened while it ran, so only then is it certain to exist, and a
 * socket it missed may have closed while it ran. Returns 0, or -1 when out
 * of memory.
 */
int ch_tracker_apply(ch_tracker *t, const ch_sample *s, int64_t at, int64_t prev_last_sample,
                     ch_procs *procs, ch_events *q);

/*
 * With q->defer_opens, the tracker takes in the sample's new sockets only
 * after their OPENs were written (or copied out of the sample: a flush
 * failed): call this after ch_store_flush, with the sample applied and the
 * queue. It gives back the sample's rows as it goes, so that at a first
 * sample the rows and the tracker's entries of every socket of the machine
 * are never held at once; the sample is then empty. Any other call of the
 * tracker does the same without giving anything back, so the sample must
 * stay untouched until one of them. With q->defer_closes, it also forgets
 * the sockets found gone, once their CLOSEs were written (or copied into
 * items: a flush failed; out of memory then, they are lost).
 */
void ch_tracker_settle(ch_tracker *t, ch_sample *s, ch_events *q);

/*
 * Takes the OS's announcement that a socket was destroyed at time at (after
 * prev_last_sample: when the newest sample began). A tracked socket is closed at that
 * exact time by the next ch_tracker_apply, with its final byte counters —
 * unless that sample finds it again under the same identity (a TCP socket
 * freed into TIME_WAIT), when its lifetime goes on and the move to
 * TIME_WAIT is dated at. A socket no sample saw gets a lifetime of its own
 * at once (an OPEN and a CLOSE), bounded by prev_last_sample (it opened
 * after it) and at; the announcement names no inode, so its owner is the
 * process a kernel event named for it, if any (ch_tracker_use_owner_facts). When
 * the next ch_tracker_apply finds a TIME_WAIT entry under a new cookie with
 * the same four-tuple, that lifetime goes on instead: its two events, still
 * in q, become an OPEN seen_by "destroy_event_time_wait" and the move to the
 * entry's state at time at (q must not be flushed in between, or they stay
 * two lifetimes). A socket the last sample already found gone is skipped.
 * Call it for every announcement before the next ch_tracker_apply. Returns
 * 0, or -1 when out of memory.
 */
int ch_tracker_destroyed(ch_tracker *t, const ch_sock *s, int64_t at, int64_t prev_last_sample, ch_events *q);

/* What ch_tracker_destroyed does for a socket the tracker tracks (or one
 * the last sample found gone, or one without identity): returns true when
 * s was such a socket and its announcement is taken, false when it is
 * unknown and must go to ch_tracker_destroyed before the next sample. It
 * needs no memory, so announcements can be taken as they are read. */
bool ch_tracker_destroyed_known(ch_tracker *t, const ch_sock *s, int64_t at);

/*
 * The same, for an announcement read after the sampler took a sample and
 * before ch_tracker_apply, sampled being that sample's time: the sockets a
 * mass close destroyed while the dump ran are announced then, and taken
 * now they close as announced instead of waiting, as found gone, for
 * announcements already read (gone_map.h keeps only so many). A socket the
 * sample found closes after it (at least at sampled + 1). False, leaving
 * the announcement for ch_tracker_destroyed after that apply, for what the
 * sweep would not close as announced: a socket unknown, in a TIME_WAIT
 * entry, left by the last run and not found, or readdressed.
 */
bool ch_tracker_destroyed_sampled(ch_tracker *t, const ch_sock *s, int64_t at, int64_t sampled);

/*
 * Streaming a sample into the tracker: ch_tracker_begin(t, at, q) when the
 * sampler starts reading the sample (at: that time), with ch_tracker_consume
 * (ctx: the tracker) as the sample's consume hook, so rows of sockets
 * already tracked under the same identity and addresses are marked as they
 * are read and never copied; ch_tracker_apply then does the rest with the
 * rows left in the sample (with the same q, and the time the sample was
 * complete). State changes of known sockets are dated at the begin time;
 * a connection no sample saw opened after the previous begin time. Without
 * ch_tracker_begin, ch_tracker_apply takes a whole sample as before.
 * Either first copies the opens still deferred in q (a flush failed) out
 * of the last sample, which must be untouched until then.
 */
void ch_tracker_begin(ch_tracker *t, int64_t at, ch_events *q);
bool ch_tracker_consume(void *ctx, const ch_sock *row);
/*
 * For a sample taken without the tables of proto (ch_sampler_leave_out_tcp:
 * a dump of them would find what the last one found): marks every tracked
 * socket of proto as seen again, unchanged, and returns how many in *kept.
 * Call it after ch_tracker_begin, before the sample is taken. Returns
 * false, marking none, when one of them waits for what only a dump
 * settles: announced destroyed (gone, or freed into a TIME_WAIT entry),
 * given final counters to write with its next sample, or seeded from the
 * database and not confirmed yet.
 */
bool ch_tracker_keep_unmoved(ch_tracker *t, int proto, size_t *kept);

/* The sample's prefetch hook (ctx: the tracker): fetches the index slots
 * and tracked sockets of the identities ch_tracker_consume is about to
 * look up. At 100,000 sockets the tracker's tables are far larger than the
 * cache, and a lookup was two cache misses in a row. */
void ch_tracker_prefetch(void *ctx, const uint64_t *idents, size_t n);

/* The inodes of the sockets the last sample found gone or freed into a
 * TIME_WAIT entry (a descriptor closed either way); valid until the next
 * sample. ch_tracker_apply has the attribution cache (procs) forget them
 * before it resolves the new sockets, so a new socket that took the
 * descriptor number of one of them is found there. With q->defer_closes,
 * the sockets found gone are not listed: their inodes are read from the
 * tracker's entries, as their CLOSEs are. */
const uint64_t *ch_tracker_gone_inodes(const ch_tracker *t, size_t *n);

/*
 * Owners from kernel events (owners.h): the tracker takes each fact as it
 * is read (ch_tracker_owner_fact) and keeps it in m until the socket's
 * lifetime opens: from a sample, when /proc showed the socket in no
 * process (gone by then, or a TIME_WAIT entry), the fact names its owner;
 * from an announcement alone (it opened and closed between samples), it
 * always does. procs gives the process record (ch_procs_identified).
 * Without this call (or with m NULL) lifetimes are attributed from /proc,
 * and an accepted connection no process was seen holding is given the
 * owner of the listener that accepted it, marked CH_OWNER_LISTENER
 * (listeners.h); with facts, never: a connection no event named was
 * accepted by nobody.
 */
void ch_tracker_use_owner_facts(ch_tracker *t, ch_owner_map *m, ch_procs *procs);

/* Takes one fact. A fact for a socket whose lifetime is open already names
 * its owner when the lifetime has none yet (or only an inferred one): an
 * OWNER event in q. A socket a sample attributed keeps that owner. */
void ch_tracker_owner_fact(ch_tracker *t, const ch_owner_fact *fact, ch_events *q);

/*
 * At the recorder's stop, with no sample to come: closes every tracked
 * lifetime the OS announced destroyed since the last sample (taken by
 * ch_tracker_destroyed), at its announced time, with its final counters
 * (seen_by "destroy_event"), last seen at last_seen. A connection that
 * left a TIME_WAIT entry is closed too: the entry, if a later run finds
 * it, is a lifetime of its own. Those the last sample missed and kept
 * (ch_tracker_hold_missing) close too, as found gone by that sample.
 * Returns 0, or -1 when out of memory.
 */
int ch_tracker_close_announced(ch_tracker *t, int64_t last_seen, ch_events *q);

/*
 * Whether ch_tracker_apply keeps the tracked sockets its sample does not
 * find and the OS has not announced (false at first), with those earlier
 * samples missed and kept: for the samples while announcements are lost
 * (overruns: a mass close). The kernel then announces sockets well after
 * they left its tables, and a sweep closing tens of thousands of them as
 * found gone could keep only so many for their announcements
 * (gone_map.h); the rest would come back as lifetimes of their own. Kept,
 * a socket whose announcement comes closes as announced. The hold goes on
 * without it while the OS announces sockets so kept (between the last
 * sample and this one: the kernel sends its announcements from one queue
 * of work, which a loaded machine delays by seconds), and begins without
 * it (ch_tracker_expect_announcements) when a sample misses more sockets,
 * not yet announced, than a quarter of the gone map. The first sample
 * applied without a hold (or the 14th after the one that missed it)
 * closes the rest, each as found gone by the sample that first missed it,
 * last seen by the one before: the same record, written later. One found
 * again goes on (a dump can miss a socket whose hash chain changed under
 * it).
 */
void ch_tracker_hold_missing(ch_tracker *t, bool hold);

/* The OS announces destroyed sockets to t (ch_tracker_destroyed): a sample
 * missing many at once holds them for their announcements
 * (ch_tracker_hold_missing). Where none come, a hold would only delay
 * their CLOSEs. */
void ch_tracker_expect_announcements(ch_tracker *t);

/*
 * A TCP connection's final byte counters from a kernel event (owners.h),
 * read before or after its destroy announcement, or instead of it (lost in
 * an overrun, or late: a connection reset by its peer is announced when
 * its process closes it). A tracked socket keeps them for its close (a
 * TIME_WAIT entry's lifetime has them written with the next sample); a
 * lifetime a sample already closed (gone_map.h) gets them at once (an
 * ANNOUNCED event in q). Any other socket's come with its announcement.
 * True when the socket was tracked, or its lifetime closed.
 */
bool ch_tracker_final_bytes(ch_tracker *t, uint64_t ident, int64_t bytes_sent, int64_t bytes_received, ch_events *q);

/* Closes every tracked lifetime (the machine rebooted while we were away). */
int ch_tracker_close_all(ch_tracker *t, int64_t last_seen, int64_t at, int reason, ch_events *q);

#endif
