/*
 * Sample-to-lifetime tracking. Every tracked socket lives in a dense array
 * with an open-addressing index keyed by its identity, so one sample costs
 * one hash lookup per row and a sweep over the tracked set.
 *
 * Identity is the sampler's ident (the sock_diag cookie, or the inode from
 * /proc/net). Rows without one (TIME_WAIT in /proc/net has inode 0) are
 * keyed by their addresses, and a socket that vanished in the same sample
 * with the very same addresses is taken to be the one that moved to
 * TIME_WAIT, so its lifetime continues. Likewise a TIME_WAIT entry with a
 * cookie never seen continues a connection with its very addresses that the
 * OS announced destroyed since the last sample (continue_announced).
 */
#include "tracker.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gone_map.h"
#include "listeners.h"

/*
 * A tracked socket, 48 bytes (a steady recorder holds one per socket of
 * the machine): only what finds it again and what a change writes. Its
 * addresses are kept as a 64-bit hash (tuple_hash), enough to tell a
 * readdressed socket from the same one and to pair a TIME_WAIT row with a
 * socket that just vanished; the OPEN row has the addresses. The byte
 * counters are 48-bit (256 TiB; beyond, or not reported: unknown), read
 * and set through entry_sent, entry_received and entry_set_bytes. When
 * the OS announced it destroyed (destroyed_at) is kept in the entry's
 * spare bits when it is at most HERE_MAX ms after the tracker's
 * destroyed_base, otherwise beside the entries (a mass close announces
 * every socket: 1.2 MiB more at 100,000 sockets when beside them).
 */
#define COUNTER_UNKNOWN ((UINT64_C(1) << 48) - 1)
#define HERE_LO_BITS 9
#define HERE_HI_BITS 8
#define HERE_MAX ((INT64_C(1) << (HERE_LO_BITS + HERE_HI_BITS)) - 1) /* 2.2 minutes */
_Static_assert(CH_ST_COUNT <= 32 && CH_UDP < 4, "states and protocols fit their bits");

typedef struct {
    uint64_t key;
    int64_t lifetime_id;
    uint64_t tuple;     /* tuple_hash of its addresses */
    uint64_t sent : 48; /* as last reported; COUNTER_UNKNOWN: unknown */
    uint64_t proto : 2; /* enum ch_proto */
    uint64_t state : 5; /* as last seen (enum ch_state) */
    uint64_t here_lo : HERE_LO_BITS;
    uint64_t received : 48;
    uint64_t has_ident : 1; /* keyed by the sampler's ident, not by its addresses */
    uint64_t loaded : 1;    /* seeded from the database, not yet confirmed */
    uint64_t owner : 2;     /* how its lifetime's owner is known (enum ch_owner_source); loaded: unknown */
    uint64_t bytes_due : 1; /* a TIME_WAIT entry given its connection's final counters, not yet written */
    uint64_t destroyed : 1; /* announced destroyed since the last sample: when, in here or t->destroyed */
    uint64_t here : 1;      /* destroyed: when is here_hi:here_lo ms after t->destroyed_base */
    uint64_t missing : 1;   /* samples since gen did not find it, yet kept it (ch_tracker_hold_missing) */
    uint64_t here_hi : HERE_HI_BITS;
    uint32_t inode;         /* 0 when the kernel gave none */
    uint32_t gen;           /* the last sample that saw it */
} entry;

_Static_assert(sizeof(entry) <= 48, "a tracked socket stays small");

static int64_t counter_of(uint64_t c)
{
    return c == COUNTER_UNKNOWN ? -1 : (int64_t)c;
}

static int64_t entry_sent(const entry *e)
{
    return counter_of(e->sent);
}

static int64_t entry_received(const entry *e)
{
    return counter_of(e->received);
}

static uint64_t counter_kept(int64_t c)
{
    return c >= 0 && (uint64_t)c < COUNTER_UNKNOWN ? (uint64_t)c : COUNTER_UNKNOWN;
}

static void entry_set_bytes(entry *e, int64_t sent, int64_t received)
{
    e->sent = counter_kept(sent);
    e->received = counter_kept(received);
}

/* When the OS announced a tracked socket destroyed (entry.destroyed), for
 * a time too far from destroyed_base to be kept in the entry, 12 bytes:
 * the time in ms after destroyed_base (the first time noted since no
 * entry was marked), which spans 24 days either way. A marked entry has one
 * record under its key; unmarked, its record is voided (at VOID_AT), so a
 * key used again (an identity readdressed: a new entry under it) has at
 * most one record that counts. */
typedef struct {
    uint32_t key_hi, key_lo; /* two halves: 4-byte alignment */
    int32_t at;
} destroyed_entry;

#define VOID_AT INT32_MIN

static uint64_t record_key(const destroyed_entry *r)
{
    return (uint64_t)r->key_hi << 32 | r->key_lo;
}

/* A list of announced sockets at least this long is freed once no entry
 * is marked, not kept for the next burst. */
#define DESTROYED_KEPT 4096

/* A lifetime opened and closed from an announcement alone (open_destroyed),
 * its two events still queued. */
typedef struct {
    uint64_t tuple;      /* tuple_key of its addresses */
    size_t seq;          /* order of arrival: the latest of one tuple wins */
    size_t open_ev, close_ev; /* its OPEN and CLOSE events in the queue */
    int64_t lifetime_id;
} announced;

/* A tracked socket left without an owner that a later look-up in the
 * processes may still find (ch_procs_may_find_later). */
typedef struct {
    uint64_t key;
    uint64_t inode; /* the socket's when it was left: another one is not looked up */
} retry_entry;

/* A sample applied (ch_tracker_apply): its gen and time. */
typedef struct {
    uint32_t gen;
    int64_t at;
} applied_sample;

/* Samples whose times are kept: a socket missed by samples is kept
 * through this many less two (keeps_missing), closed by the next. */
#define SAMPLES_KEPT 16

/* A TIME_WAIT entry a sample found under a new cookie. */
typedef struct {
    uint64_t tuple;      /* tuple_key of its addresses; first, for cmp_key */
    uint64_t ident;      /* its cookie; 0 once an announcement was joined to it */
} recent_entry;

struct ch_tracker {
    entry *entries;
    size_t count, cap;
    uint32_t *slots; /* the index (slot_value); 0 = empty */
    size_t nslots;   /* a multiple of 64, at most 7/8 full (INDEX_FULL) */
    uint32_t gen;
    int64_t next_id;
    /* A sample being taken (ch_tracker_begin): rows of known sockets are
     * marked as the sampler reads them (ch_tracker_consume). */
    bool begun;
    int consume_err;
    int64_t cur_at;      /* when the sample being taken began */
    int64_t prev_began;  /* when the sample before it began; -1: none */
    size_t undated_from; /* state changes queued from here on are dated when the sample is complete */
    ch_events *cur_q;
    /* inodes of the sockets the last apply found gone */
    uint64_t *gone;
    size_t ngone, gone_cap;
    /* scratch reused across samples */
    uint32_t *fresh;     /* rows of the current sample not yet tracked */
    size_t nfresh, fresh_cap;
    ch_owner *owners;    /* of the fresh rows (deferred opens point here), then of the late ones */
    size_t owners_cap;
    /* The fresh rows of the last sample whose OPENs are deferred (see
     * place_pending): row fresh[i] of pending_sample is to be entry count + i,
     * lifetime pending_first_id + i; npending 0: none. */
    size_t npending;
    const ch_sample *pending_sample;
    int64_t pending_first_id;
    /* lifetimes samples closed (found gone) before their socket was
     * announced: a late announcement joins them (gone_map.h); NULL when
     * out of memory */
    ch_gone_map *gone_lives;
    /* connections announced destroyed since the last sample that no sample
     * saw; their rows are still in the queue, so the TIME_WAIT entry one of
     * them left may yet continue it (see continue_announced) */
    announced *announced;
    size_t nannounced, announced_cap;
    /* when the entries with .destroyed were announced (destroyed_at):
     * sorted by key when destroyed_sorted; emptied once no entry has
     * .destroyed (ndestroyed_live) */
    destroyed_entry *destroyed;
    size_t ndestroyed, destroyed_cap, ndestroyed_live;
    int64_t destroyed_base; /* what destroyed[].at counts from */
    bool destroyed_sorted;
    /* TIME_WAIT entries the last sample opened a lifetime for, sorted by
     * tuple key: the announcement of their connection may come just after
     * (see join_recent_entry); recent_prev is the sample before that one */
    recent_entry *recent;
    size_t nrecent, recent_cap;
    int64_t recent_prev;
    /* owners from kernel events, waiting for their lifetimes; NULL: none */
    ch_owner_map *facts;
    ch_procs *fact_procs;
    /* TCP listeners this run opened or found again, for inferred owners (used only
     * without kernel events: with them, an accepted connection that no
     * event named was accepted by nobody); NULL when out of memory */
    ch_listeners *listeners;
    /* identities of tracked sockets without an owner that a sample found
     * held by a file at last (an accepted connection first seen in the
     * backlog): their owners are looked up when the sample is applied */
    uint64_t *late;
    size_t nlate, late_cap;
    /* sockets the last apply left without an owner that a later look-up
     * may find: asked again, with the late ones, at the next apply */
    retry_entry *retry;
    size_t nretry, retry_cap;
    /* Sockets the last sample found gone whose CLOSEs closing_q reads from
     * here (q->defer_closes): entries[count, count + nclosing), each with
     * when it closed in .tuple and whether an announcement saw it in
     * .destroyed (retire_at). Kept until the tracker is next called. */
    size_t nclosing;
    ch_events *closing_q;
    /* The sockets the next sample does not find are kept, .missing
     * (ch_tracker_hold_missing); the samples applied last tell when each
     * was last seen (its gen) and first missed. held_announced counts the
     * kept ones announced since the last sweep: while it moves, the OS is
     * still announcing what the samples miss, and the hold goes on. */
    bool hold_missing;
    size_t held_announced;
    bool announcing; /* ch_tracker_expect_announcements */
    applied_sample applied[SAMPLES_KEPT];
    size_t napplied;
};

const char *ch_close_reason_name(int reason)
{
    static const char *const names[] = {NULL, "gone", "gone_while_stopped", "reboot", "readdressed"};
    return reason > 0 && reason < (int)(sizeof names / sizeof names[0]) ? names[reason] : NULL;
}

const char *ch_seen_by_name(int seen_by)
{
    static const char *const names[] = {NULL, "destroy_event", "destroy_event_only", "destroy_event_time_wait"};
    return seen_by > 0 && seen_by < (int)(sizeof names / sizeof names[0]) ? names[seen_by] : NULL;
}

/*
 * Makes room for at least need items of size bytes in the growable array
 * items of *cap items (doubling, from first). Returns the array, moved or
 * not, or NULL with the array and *cap unchanged when memory runs out.
 */
static void *reserve(void *items, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return items;
    size_t n = *cap ? *cap : first;
    while (n < need)
        n *= 2;
    void *grown = realloc(items, n * size);
    if (grown != NULL)
        *cap = n;
    return grown;
}

int ch_events_push(ch_events *q, const ch_event *ev)
{
    if (q->opens.count > 0 && ch_events_keep(q) != 0) /* they come first */
        return -1;
    void *grown = reserve(q->items, &q->cap, q->count + 1, sizeof *q->items, 256);
    if (grown == NULL)
        return -1;
    q->items = grown;
    q->items[q->count++] = *ev;
    return 0;
}

int ch_events_push_open(ch_events *q, const ch_event *ev, const ch_sock *sock, ch_owner owner)
{
    if (q->opens.count > 0 && ch_events_keep(q) != 0) /* they come first */
        return -1;
    if (q->nopened >= UINT32_MAX)
        return -1;
    void *grown = reserve(q->opened, &q->opened_cap, q->nopened + 1, sizeof *q->opened, 64);
    if (grown == NULL)
        return -1;
    q->opened = grown;
    ch_event open = *ev;
    open.opened = (uint32_t)q->nopened;
    if (ch_events_push(q, &open) != 0)
        return -1;
    q->opened[q->nopened++] = (ch_opened){.sock = *sock, .owner = owner};
    return 0;
}

ch_opened *ch_events_opened(const ch_events *q, const ch_event *ev)
{
    return &q->opened[ev->opened];
}

void ch_events_free(ch_events *q)
{
    free(q->items);
    free(q->opened);
    bool defer = q->defer_opens;
    memset(q, 0, sizeof *q);
    q->defer_opens = defer;
}

size_t ch_events_pending(const ch_events *q)
{
    return q->count + q->closes.count + q->opens.count;
}

int ch_events_push_owner(ch_events *q, int64_t lifetime_id, int64_t at, ch_owner owner)
{
    ch_event ev = {.type = CH_EV_OWNER, .lifetime_id = lifetime_id, .at = at};
    ch_sock none = {0};
    return ch_events_push_open(q, &ev, &none, owner);
}

ch_event ch_events_open_at(const ch_events *q, size_t i, ch_opened *out)
{
    const ch_open_batch *b = &q->opens;
    *out = (ch_opened){.sock = ch_sample_row(b->sample, b->index[i]), .owner = b->owners[i]};
    return (ch_event){
        .type = CH_EV_OPEN, .state = out->sock.state, .lifetime_id = b->first_id + (int64_t)i, .at = b->at};
}

static ch_event close_event(const entry *e, int64_t closed, bool announced, int64_t last_seen);

/*
 * For a socket last seen by the sample of gen and missed since: that
 * sample's time in *seen (the last applied at or before gen: the sampler
 * may have failed after seeing it) and the next one's in *missed. False
 * (both untouched) when they are no longer kept.
 */
static bool missed_times(const ch_tracker *t, uint32_t gen, int64_t *seen, int64_t *missed)
{
    size_t n = t->napplied < SAMPLES_KEPT ? t->napplied : SAMPLES_KEPT;
    for (size_t k = 1; k < n; k++) { /* from the newest */
        const applied_sample *after = &t->applied[(t->napplied - k) % SAMPLES_KEPT];
        const applied_sample *before = &t->applied[(t->napplied - k - 1) % SAMPLES_KEPT];
        if ((int32_t)(before->gen - gen) <= 0 && (int32_t)(after->gen - gen) > 0) {
            *seen = before->at;
            *missed = after->at;
            return true;
        }
    }
    return false;
}

ch_event ch_events_close_at(const ch_events *q, size_t i)
{
    const ch_close_batch *b = &q->closes;
    const entry *e = &b->tracker->entries[b->first + b->count - 1 - i]; /* the first retired is the last */
    int64_t last_seen = b->last_seen;
    if (e->missing)
        missed_times(b->tracker, e->gen, &last_seen, &(int64_t){0});
    return close_event(e, (int64_t)e->tuple, e->destroyed, last_seen);
}

/* Copies the deferred closes into items at their place (see ch_events_keep). */
static int keep_closes(ch_events *q)
{
    size_t n = q->closes.count, at = q->closes.at_item;
    if (n == 0)
        return 0;
    void *items = reserve(q->items, &q->cap, q->count + n, sizeof *q->items, 256);
    if (items == NULL)
        return -1;
    q->items = items;
    memmove(&q->items[at + n], &q->items[at], (q->count - at) * sizeof *q->items);
    for (size_t i = 0; i < n; i++)
        q->items[at + i] = ch_events_close_at(q, i);
    q->count += n;
    q->closes.count = 0;
    return 0;
}

int ch_events_keep(ch_events *q)
{
    if (keep_closes(q) != 0)
        return -1;
    size_t n = q->opens.count;
    if (n == 0)
        return 0;
    /* Room for all of them first: out of memory, the batch stays as it is. */
    if (q->nopened + n > UINT32_MAX)
        return -1;
    void *items = reserve(q->items, &q->cap, q->count + n, sizeof *q->items, 256);
    if (items == NULL)
        return -1;
    q->items = items;
    void *opened = reserve(q->opened, &q->opened_cap, q->nopened + n, sizeof *q->opened, 64);
    if (opened == NULL)
        return -1;
    q->opened = opened;
    for (size_t i = 0; i < n; i++) {
        ch_event ev = ch_events_open_at(q, i, &q->opened[q->nopened]);
        ev.opened = (uint32_t)q->nopened++;
        q->items[q->count++] = ev;
    }
    q->opens.count = 0;
    return 0;
}

/* Events a queue keeps room for once emptied: a steady tick's, not a
 * burst's (a mass close's moves to TIME_WAIT, a failed flush's kept OPENs). */
#define EVENTS_KEPT 4096

void ch_events_clear(ch_events *q)
{
    q->count = 0;
    q->nopened = 0;
    q->opens.count = 0;
    q->closes.count = 0;
    if (q->cap > EVENTS_KEPT) {
        free(q->items);
        q->items = NULL;
        q->cap = 0;
    }
    if (q->opened_cap > EVENTS_KEPT) {
        free(q->opened);
        q->opened = NULL;
        q->opened_cap = 0;
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static bool same_tuple(const ch_sock *a, const ch_sock *b)
{
    return a->proto == b->proto && a->local_port == b->local_port && a->remote_port == b->remote_port &&
           a->local.family == b->local.family && memcmp(a->local.bytes, b->local.bytes, 16) == 0 &&
           memcmp(a->remote.bytes, b->remote.bytes, 16) == 0 && a->local_scope == b->local_scope &&
           a->remote_scope == b->remote_scope;
}

/* Identity key of a row: its ident, else a hash of its addresses with the
 * top bit set (cookies and inodes never reach it). */
static uint64_t sock_key(const ch_sock *s)
{
    if (s->ident != 0)
        return s->ident;
    uint64_t h = mix64((uint64_t)s->proto << 40 | (uint64_t)s->local_port << 16 | s->remote_port);
    for (int i = 0; i < 16; i += 8) {
        uint64_t a, b;
        memcpy(&a, s->local.bytes + i, 8);
        memcpy(&b, s->remote.bytes + i, 8);
        h = mix64(h ^ a) ^ mix64(b + (uint64_t)i);
    }
    if (s->local_scope != 0 || s->remote_scope != 0) /* link-local twins on two interfaces */
        h = mix64(h ^ ((uint64_t)s->local_scope << 32 | s->remote_scope));
    return h | 1ULL << 63;
}

/* Key of a socket's addresses alone, whatever its identity. */
static uint64_t tuple_key(const ch_sock *s)
{
    ch_sock k = *s;
    k.ident = 0;
    return sock_key(&k);
}

/* What an entry keeps of its addresses: tuple_key with the family folded
 * in (0.0.0.0 and :: have the same bytes). Two rows with the same hash are
 * taken to have the same addresses (same_tuple), a 2^-64 chance otherwise. */
static uint64_t tuple_hash(const ch_sock *s)
{
    return mix64(tuple_key(s) ^ (uint64_t)(uint32_t)s->local.family);
}

/* True when the entry's socket has the row's addresses. */
static bool entry_has_tuple(const entry *e, const ch_sock *row)
{
    return e->proto == row->proto && e->tuple == tuple_hash(row);
}

/*
 * True when a row has a port the kernel clears while it closes the socket:
 * the local port once the socket lets it go (TCP or UDP: a sample that
 * reads the socket just then has 0 there, and a TCP socket's TIME_WAIT
 * entry after it has the port again), a TCP socket's remote port when a
 * reset disconnects it (cleared_addrs.h). No socket in the tables has
 * either at 0 otherwise, but for a TCP listener's remote port and an
 * unconnected UDP socket's.
 */
static bool ports_cleared(const ch_sock *row)
{
    if (row->ident == 0)
        return false;
    if (row->local_port == 0)
        return true;
    return row->proto == CH_TCP && row->state != CH_ST_LISTEN && row->remote_port == 0;
}

/* True when a row of the entry's identity is the same lifetime's: the
 * addresses it had, or some of them cleared as it closes. */
static bool entry_continues(const entry *e, const ch_sock *row)
{
    return entry_has_tuple(e, row) || (e->proto == row->proto && ports_cleared(row));
}

/* Takes a row's identity, addresses, state, inode and byte counters as
 * the entry's. */
static void entry_take_row(entry *e, const ch_sock *s)
{
    e->key = sock_key(s);
    e->tuple = tuple_hash(s);
    e->inode = s->inode;
    entry_set_bytes(e, s->bytes_sent, s->bytes_received);
    e->proto = s->proto;
    e->state = s->state;
    e->has_ident = s->ident != 0;
    e->missing = 0;
}

/* The room a tracker keeps however few sockets it tracks: the entries
 * and index slots it starts with. */
#define ENTRIES_KEPT 1024
#define SLOTS_KEPT 1024

ch_tracker *ch_tracker_new(int64_t next_id)
{
    ch_tracker *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->next_id = next_id;
    t->cur_at = -1; /* no sample begun yet */
    t->nslots = SLOTS_KEPT;
    t->slots = calloc(t->nslots, sizeof *t->slots);
    t->listeners = ch_listeners_new();
    t->gone_lives = ch_gone_map_new(CH_GONE_MAP_CAP);
    if (t->slots == NULL || t->listeners == NULL || t->gone_lives == NULL) {
        free(t->slots);
        ch_listeners_free(t->listeners);
        ch_gone_map_free(t->gone_lives);
        free(t);
        return NULL;
    }
    return t;
}

void ch_tracker_free(ch_tracker *t)
{
    if (t == NULL)
        return;
    free(t->entries);
    free(t->slots);
    free(t->fresh);
    free(t->owners);
    ch_gone_map_free(t->gone_lives);
    free(t->gone);
    free(t->announced);
    free(t->destroyed);
    free(t->recent);
    free(t->late);
    free(t->retry);
    ch_listeners_free(t->listeners);
    free(t);
}

size_t ch_tracker_count(const ch_tracker *t)
{
    return t->count + t->npending;
}

size_t ch_tracker_room(const ch_tracker *t)
{
    return t->cap * sizeof *t->entries + t->nslots * sizeof *t->slots;
}

/*
 * The index: open addressing with linear probing, keyed by mix64(key):
 * its high half, scaled to [0, nslots), is the home slot (nslots need not
 * be a power of two, index_size_for). A slot holds the entry's place + 1
 * in its low SLOT_PLACE_BITS (0: empty) and 8 more bits of the key's hash
 * above them, so that a probe reads an entry (a cache miss) only when
 * those match: 1 in 256 for another key. That lets the index be 3/4 to
 * 7/8 full instead of a quarter to a half (at 100,000 sockets 512 KiB
 * instead of 1 MiB) with fewer entries read than before. It caps what is
 * tracked at once at CH_TRACKER_MAX_SOCKETS; past that a sample fails as
 * out of memory.
 */
#define SLOT_PLACE_BITS 24
#define SLOT_PLACE_MASK ((UINT32_C(1) << SLOT_PLACE_BITS) - 1)
_Static_assert(CH_TRACKER_MAX_SOCKETS == SLOT_PLACE_MASK - 1, "every place + 1 fits a slot");
#define INDEX_FULL(count, nslots) ((count)*8 > (nslots)*7)

static uint32_t slot_tag(uint64_t hash)
{
    return (uint32_t)(hash >> 24 & 0xff) << SLOT_PLACE_BITS; /* below the bits home_slot uses */
}

static size_t home_slot(const ch_tracker *t, uint64_t hash)
{
    return (size_t)(((hash >> 32) * (uint64_t)t->nslots) >> 32);
}

static size_t next_slot(const ch_tracker *t, size_t i)
{
    return i + 1 < t->nslots ? i + 1 : 0;
}

/* The slots of an index for count entries: 3/4 full, so that it grows
 * again (at 7/8) only after 1/6 more. A power of two would leave an index
 * just past one at half that load. */
static size_t index_size_for(size_t count)
{
    return (count * 4 / 3 + 63) / 64 * 64;
}

/* What the index holds for entries[idx]. */
static uint32_t slot_value(const ch_tracker *t, size_t idx)
{
    return slot_tag(mix64(t->entries[idx].key)) | (uint32_t)(idx + 1);
}

/* The entry a full slot points to. */
static entry *slot_entry(const ch_tracker *t, uint32_t v)
{
    return &t->entries[(v & SLOT_PLACE_MASK) - 1];
}

/* Slot holding key, or the empty slot where it would go. */
static size_t find_slot(const ch_tracker *t, uint64_t key)
{
    uint64_t h = mix64(key);
    uint32_t tag = slot_tag(h);
    for (size_t i = home_slot(t, h);; i = next_slot(t, i)) {
        uint32_t v = t->slots[i];
        if (v == 0 || ((v & ~SLOT_PLACE_MASK) == tag && slot_entry(t, v)->key == key))
            return i;
    }
}

static entry *lookup(ch_tracker *t, uint64_t key)
{
    uint32_t v = t->slots[find_slot(t, key)];
    return v ? slot_entry(t, v) : NULL;
}

/* Makes the index n slots (more than count / INDEX_FULL). */
static int rebuild_index(ch_tracker *t, size_t n)
{
    uint32_t *slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return -1;
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
    for (size_t i = 0; i < t->count; i++)
        t->slots[find_slot(t, t->entries[i].key)] = slot_value(t, i);
    return 0;
}

/* Makes room in the index for need entries. */
static int grow_index(ch_tracker *t, size_t need)
{
    return INDEX_FULL(need, t->nslots) ? rebuild_index(t, index_size_for(need)) : 0;
}

/* Fresh rows a tracker keeps scratch room for between samples. */
#define FRESH_KEPT 4096

/* Items an emptied side list keeps room for: a steady tick's, not a
 * burst's (the announcements of thousands of short connections). */
#define SIDE_KEPT 4096

/* The list items of n items, its room freed when it is empty and more
 * than SIDE_KEPT (*cap then 0). */
static void *give_back(void *items, size_t n, size_t *cap)
{
    if (n > 0 || *cap <= SIDE_KEPT)
        return items;
    free(items);
    *cap = 0;
    return NULL;
}

/*
 * Gives back the room of sockets that closed (after a mass close, or once
 * a first sample's load is gone): an entries array at most a quarter used
 * shrinks to twice what it holds, an index at most an eighth used to
 * twice, so that the next growth is as far away as the next shrink; the
 * scratch of a sample with thousands of new sockets; and the room of the
 * side lists a burst filled, once they are empty. Out of memory,
 * they stay as they are. Only between samples: nothing is pending or
 * closing.
 */
static void shrink(ch_tracker *t)
{
    if (t->npending > 0 || t->nclosing > 0)
        return;
    if (t->owners_cap > FRESH_KEPT || t->fresh_cap > FRESH_KEPT) {
        free(t->owners);
        free(t->fresh);
        t->owners = NULL;
        t->fresh = NULL;
        t->owners_cap = t->fresh_cap = t->nfresh = 0;
    }
    if (t->cap > ENTRIES_KEPT && t->count * 4 <= t->cap) {
        size_t cap = t->count * 2 > ENTRIES_KEPT ? t->count * 2 : ENTRIES_KEPT;
        entry *entries = realloc(t->entries, cap * sizeof *entries);
        if (entries != NULL) {
            t->entries = entries;
            t->cap = cap;
        }
    }
    if (t->nslots > SLOTS_KEPT && t->count * 8 <= t->nslots) {
        rebuild_index(t, t->count * 2 > SLOTS_KEPT ? index_size_for(t->count + t->count / 2) : SLOTS_KEPT);
    }
    t->announced = give_back(t->announced, t->nannounced, &t->announced_cap);
    t->recent = give_back(t->recent, t->nrecent, &t->recent_cap);
    t->retry = give_back(t->retry, t->nretry, &t->retry_cap);
}

/* Empties the lists of gone inodes and late sockets for the sample being
 * taken, and gives back a burst's room. */
static void clear_gone_and_late(ch_tracker *t)
{
    t->ngone = t->nlate = 0;
    t->gone = give_back(t->gone, 0, &t->gone_cap);
    t->late = give_back(t->late, 0, &t->late_cap);
}

static entry *insert(ch_tracker *t, const ch_sock *s, int64_t lifetime_id)
{
    if (t->count + 1 > CH_TRACKER_MAX_SOCKETS || grow_index(t, t->count + 1) != 0)
        return NULL;
    void *grown = reserve(t->entries, &t->cap, t->count + 1, sizeof *t->entries, ENTRIES_KEPT);
    if (grown == NULL)
        return NULL;
    t->entries = grown;
    entry *e = &t->entries[t->count];
    entry_take_row(e, s);
    e->lifetime_id = lifetime_id;
    e->gen = t->gen;
    e->loaded = false;
    e->owner = CH_OWNER_UNKNOWN;
    e->bytes_due = 0;
    e->destroyed = 0;
    e->here = 0;
    size_t slot = find_slot(t, e->key);
    t->slots[slot] = slot_value(t, t->count++);
    return e;
}

/* Empties slot i, shifting later members of its probe run back. */
static void clear_slot(ch_tracker *t, size_t i)
{
    for (size_t j = next_slot(t, i); t->slots[j] != 0; j = next_slot(t, j)) {
        size_t home = home_slot(t, mix64(slot_entry(t, t->slots[j])->key));
        /* Move j into the hole unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i] = 0;
}

static bool entry_is_listener(const entry *e)
{
    return e->proto == CH_TCP && e->state == CH_ST_LISTEN;
}

static void clear_destroyed(ch_tracker *t, entry *e);

/* Removes entries[idx]; the last entry moves into its place, and what
 * was there into the last place, just past the tracked ones (retire_at). */
static void remove_at(ch_tracker *t, size_t idx)
{
    clear_destroyed(t, &t->entries[idx]);
    if (entry_is_listener(&t->entries[idx]))
        ch_listeners_drop(t->listeners, t->entries[idx].lifetime_id);
    clear_slot(t, find_slot(t, t->entries[idx].key));
    size_t last = t->count - 1;
    if (idx != last) {
        entry removed = t->entries[idx];
        t->entries[idx] = t->entries[last];
        t->slots[find_slot(t, t->entries[idx].key)] = slot_value(t, idx);
        t->entries[last] = removed;
    }
    t->count--;
}

/* Removes entries[idx], a socket found gone that closed at closed (seen
 * by an announcement or not), and keeps it among the closing ones, whose
 * CLOSEs the queue reads from the tracker (ch_events_close_at). Only while
 * the closing ones are just past the tracked ones: nothing may be added
 * or removed between the sweep that retires them and release_closing. */
static void retire_at(ch_tracker *t, size_t idx, int64_t closed, bool announced)
{
    remove_at(t, idx);
    entry *e = &t->entries[t->count];
    e->tuple = (uint64_t)closed;
    e->destroyed = announced;
    t->nclosing++;
}

/*
 * Forgets the closing entries, once the queue they were left in wrote
 * them or copies them into its items (a flush failed), which must happen
 * before anything takes their place. Returns 0, or -1 when out of memory
 * for the copy: their CLOSEs are then lost.
 */
static int release_closing(ch_tracker *t)
{
    if (t->nclosing == 0)
        return 0;
    ch_events *q = t->closing_q;
    int rc = 0;
    if (q->closes.count > 0 && q->closes.tracker == t && keep_closes(q) != 0) {
        q->closes.count = 0;
        rc = -1;
    }
    t->nclosing = 0;
    return rc;
}

/* Notes when entry e was announced destroyed. Out of memory (or 24 days
 * away from the first time of the list), it is not marked: a sample then
 * finds it gone and closes it at its own time. */
static void set_destroyed(ch_tracker *t, entry *e, int64_t at)
{
    if (t->ndestroyed_live == 0) {
        t->ndestroyed = 0; /* none of the times kept is wanted any more */
        t->destroyed_base = at;
    }
    int64_t after = at - t->destroyed_base;
    if (after >= 0 && after <= HERE_MAX) {
        e->here_lo = (uint64_t)after & ((1u << HERE_LO_BITS) - 1);
        e->here_hi = (uint64_t)after >> HERE_LO_BITS;
        e->here = 1;
        t->ndestroyed_live++;
        e->destroyed = 1;
        return;
    }
    if (after <= VOID_AT || after > INT32_MAX)
        return;
    void *grown = reserve(t->destroyed, &t->destroyed_cap, t->ndestroyed + 1, sizeof *t->destroyed, 64);
    if (grown == NULL)
        return;
    t->destroyed = grown;
    t->destroyed[t->ndestroyed++] = (destroyed_entry){
        .key_hi = (uint32_t)(e->key >> 32), .key_lo = (uint32_t)e->key, .at = (int32_t)(at - t->destroyed_base)};
    t->destroyed_sorted = false;
    t->ndestroyed_live++;
    e->destroyed = 1;
}

static int cmp_destroyed(const void *a, const void *b)
{
    uint64_t x = record_key(a), y = record_key(b);
    return x < y ? -1 : x > y;
}

/* The record of marked entry e (sorting the list first when records were
 * added since the last look-up); NULL when there is none. */
static destroyed_entry *destroyed_record(ch_tracker *t, const entry *e)
{
    if (!t->destroyed_sorted) {
        qsort(t->destroyed, t->ndestroyed, sizeof *t->destroyed, cmp_destroyed);
        t->destroyed_sorted = true;
    }
    size_t lo = 0, hi = t->ndestroyed; /* the first with its key or a greater one */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (record_key(&t->destroyed[mid]) < e->key)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < t->ndestroyed && record_key(&t->destroyed[lo]) == e->key; lo++)
        if (t->destroyed[lo].at != VOID_AT)
            return &t->destroyed[lo];
    return NULL;
}

static void clear_destroyed(ch_tracker *t, entry *e)
{
    if (!e->destroyed)
        return;
    destroyed_entry *r = e->here ? NULL : destroyed_record(t, e);
    if (r != NULL)
        r->at = VOID_AT;
    e->destroyed = 0;
    e->here = 0;
    if (--t->ndestroyed_live == 0 && t->destroyed_cap >= DESTROYED_KEPT) {
        free(t->destroyed); /* a burst's: its memory back */
        t->destroyed = NULL;
        t->ndestroyed = t->destroyed_cap = 0;
    }
}

/* When entry e was announced destroyed; otherwise (not marked) fallback. */
static int64_t destroyed_at(ch_tracker *t, const entry *e, int64_t fallback)
{
    if (e->destroyed && e->here)
        return t->destroyed_base + (int64_t)(e->here_hi << HERE_LO_BITS | e->here_lo);
    const destroyed_entry *r = e->destroyed ? destroyed_record(t, e) : NULL;
    return r != NULL ? t->destroyed_base + r->at : fallback;
}

static int remember_gone(ch_tracker *t, uint64_t inode);
static int settle(ch_tracker *t);

/* Re-keys an entry (a socket that moved to an address-keyed TIME_WAIT row,
 * which reports no counters: the connection's last ones are kept). */
static int rekey(ch_tracker *t, size_t idx, const ch_sock *s)
{
    entry *e = &t->entries[idx];
    clear_slot(t, find_slot(t, e->key));
    int64_t sent = entry_sent(e), received = entry_received(e);
    int64_t announced = destroyed_at(t, e, 0);
    uint64_t inode = e->inode;
    clear_destroyed(t, e);
    entry_take_row(e, s);
    if (s->bytes_sent < 0 && s->bytes_received < 0)
        entry_set_bytes(e, sent, received);
    if (announced != 0) /* the time is kept by key */
        set_destroyed(t, e, announced);
    t->slots[find_slot(t, t->entries[idx].key)] = slot_value(t, idx);
    /* The socket's file was closed as it left its entry behind. */
    return inode != 0 && inode != s->inode ? remember_gone(t, inode) : 0;
}

int ch_tracker_load(ch_tracker *t, const ch_sock *s, int64_t lifetime_id)
{
    settle(t);
    if (lookup(t, sock_key(s)) != NULL)
        return 0; /* two open rows for one socket: keep the first */
    entry *e = insert(t, s, lifetime_id);
    if (e == NULL)
        return -1;
    e->loaded = true;
    e->gen = t->gen - 1; /* not seen by any sample yet */
    return 0;
}

static int push_state(ch_events *q, const entry *e, int64_t at)
{
    ch_event ev = {.type = CH_EV_STATE,
                   .state = e->state,
                   .lifetime_id = e->lifetime_id,
                   .at = at,
                   .bytes_sent = entry_sent(e),
                   .bytes_received = entry_received(e)};
    return ch_events_push(q, &ev);
}

static int push_close(ch_events *q, const entry *e, int64_t last_seen, int64_t at, int reason)
{
    ch_event ev = {.type = CH_EV_CLOSE,
                   .reason = reason,
                   .lifetime_id = e->lifetime_id,
                   .at = at,
                   .last_seen = last_seen,
                   .bytes_sent = entry_sent(e),
                   .bytes_received = entry_received(e)};
    return ch_events_push(q, &ev);
}

/* Keeps the counters of a report; a report without them (TIME_WAIT, UDP)
 * leaves the last known ones. */
static void take_bytes(entry *kept, const ch_sock *row)
{
    if (row->bytes_sent >= 0 || row->bytes_received >= 0)
        entry_set_bytes(kept, row->bytes_sent, row->bytes_received);
}

/* Notes the inode of a socket found gone or freed
 * into a TIME_WAIT entry (ch_tracker_gone_inodes). */
static int remember_gone(ch_tracker *t, uint64_t inode)
{
    void *grown = reserve(t->gone, &t->gone_cap, t->ngone + 1, sizeof *t->gone, 256);
    if (grown == NULL)
        return -1;
    t->gone = grown;
    t->gone[t->ngone++] = inode;
    return 0;
}

/* Notes a tracked socket without an owner that a sample found held by a
 * file at last (its inode is new): its owner is looked up (resolve_owners). */
static int remember_late(ch_tracker *t, uint64_t key)
{
    void *grown = reserve(t->late, &t->late_cap, t->nlate + 1, sizeof *t->late, 64);
    if (grown == NULL)
        return -1;
    t->late = grown;
    t->late[t->nlate++] = key;
    return 0;
}

/*
 * What a sample says of a tracked socket's file: one it no longer has was
 * closed (a connection freed into its TIME_WAIT entry), so its inode is
 * gone and the descriptor that held it is free; one it has at last (an
 * accepted connection first seen in the backlog) may name the owner the
 * lifetime lacks. Returns 0, or -1 when out of memory.
 */
static int take_inode(ch_tracker *t, entry *e, uint64_t inode)
{
    if (inode == e->inode)
        return 0;
    uint64_t old = e->inode;
    e->inode = inode;
    if (old != 0)
        return remember_gone(t, old);
    bool unowned = e->owner == CH_OWNER_UNKNOWN || e->owner == CH_OWNER_LISTENER;
    return unowned && !e->loaded && e->has_ident ? remember_late(t, e->key) : 0;
}

static int remember_fresh(ch_tracker *t, size_t row)
{
    if (row >= UINT32_MAX)
        return -1;
    void *grown = reserve(t->fresh, &t->fresh_cap, t->nfresh + 1, sizeof *t->fresh, 256);
    if (grown == NULL)
        return -1;
    t->fresh = grown;
    t->fresh[t->nfresh++] = (uint32_t)row;
    return 0;
}

/* The time of a state change a sample being streamed finds: not known
 * until the sample is complete (see date_consumed). */
#define AT_SAMPLE_END INT64_MIN

/* A listener an earlier run recorded, found again: known from now on, its
 * owner looked up with the late ones (resolve_owners), so that connections
 * it accepts can be inferred after a restart of the recorder too. */
static int resume_listener(ch_tracker *t, entry *e, const ch_sock *row)
{
    ch_listeners_add(t->listeners, row, e->lifetime_id, NULL); /* out of memory: not known */
    return e->inode != 0 ? remember_late(t, e->key) : 0;
}

/* The final counters of a TIME_WAIT entry's connection, announced after a
 * sample had opened or moved the entry's lifetime: only the counters. */
static int push_final_bytes(ch_events *q, const entry *e)
{
    ch_event ev = {.type = CH_EV_ANNOUNCED,
                   .lifetime_id = e->lifetime_id,
                   .opened_after = -1,
                   .bytes_sent = entry_sent(e),
                   .bytes_received = entry_received(e)};
    return ch_events_push(q, &ev);
}

/* A tracked socket the sample has again: marked, and its state change
 * reported. */
static int seen_again(ch_tracker *t, entry *e, const ch_sock *row, int64_t at, ch_events *q)
{
    if (e->loaded && row->state == CH_ST_LISTEN && entry_is_listener(e) && resume_listener(t, e, row) != 0)
        return -1;
    e->gen = t->gen;
    e->loaded = false;
    e->missing = 0; /* missed by a dump, not gone */
    /* Announced, yet here: freed into its TIME_WAIT entry, which kept
     * the cookie; it moved there when announced. */
    int64_t moved = destroyed_at(t, e, at);
    clear_destroyed(t, e);
    take_bytes(e, row);
    if (take_inode(t, e, row->inode) != 0)
        return -1;
    if (e->bytes_due && e->state == row->state && push_final_bytes(q, e) != 0)
        return -1;
    e->bytes_due = 0; /* else the state change below writes them */
    if (e->state != row->state) {
        if (entry_is_listener(e)) /* shut down: it accepts no more */
            ch_listeners_drop(t->listeners, e->lifetime_id);
        e->state = row->state;
        if (push_state(q, e, moved) != 0)
            return -1;
    }
    return 0;
}

/*
 * Pass 1: marks every tracked socket the sample still has, reports state
 * changes, and lists the rows not tracked yet. A known identity whose
 * addresses changed (a UDP socket that connect()ed elsewhere) is closed and
 * its row treated as new: a lifetime has one set of addresses. One with
 * ports cleared as it closes is not (entry_continues).
 */
static int mark_present(ch_tracker *t, const ch_sample *s, int64_t at, int64_t prev, ch_events *q)
{
    t->nfresh = 0;
    for (size_t i = 0; i < s->count; i++) {
        ch_sock kept = ch_sample_row(s, i);
        const ch_sock *row = &kept;
        entry *e = lookup(t, sock_key(row));
        if (e != NULL && e->gen == t->gen)
            continue; /* the same identity twice in one sample: keep the first */
        if (e != NULL && !entry_continues(e, row)) {
            int64_t seen = prev;
            if (e->missing)
                missed_times(t, e->gen, &seen, &(int64_t){0});
            if (push_close(q, e, seen, at, CH_CLOSE_READDRESSED) != 0)
                return -1;
            remove_at(t, (size_t)(e - t->entries));
            e = NULL;
        }
        if (e == NULL) {
            if (remember_fresh(t, i) != 0)
                return -1;
            continue;
        }
        if (seen_again(t, e, row, at, q) != 0)
            return -1;
    }
    return 0;
}

/* Makes room for n owners in t->owners (its contents are not kept).
 * Returns 0, or -1 when out of memory. */
static int reserve_owners(ch_tracker *t, size_t n)
{
    if (n <= t->owners_cap)
        return 0;
    free(t->owners);
    t->owners = malloc(n * sizeof *t->owners);
    t->owners_cap = t->owners ? n : 0;
    return t->owners ? 0 : -1;
}

/*
 * Drops the repeats among the fresh rows, keeping the first, as
 * mark_present keeps a tracked socket's first row. A dump may list a socket
 * twice when its table changes under it (/proc/net/tcp is read in pieces);
 * two entries of one key would leave the index naming only one of them,
 * and removing the other would unname that one too (three lifetimes for
 * one socket). The keys seen go to a hash set in the room the fresh rows'
 * owners take next (open_fresh), so that a first sample's 100,000 rows
 * cost neither memory of their own nor a sort (glibc's qsort copies the
 * array). Returns 0, or -1 when out of memory.
 */
static int drop_fresh_repeats(ch_tracker *t, const ch_sample *s)
{
    if (t->nfresh < 2)
        return 0;
    size_t nslots = 2 * t->nfresh + 1;        /* at most half full */
    size_t owners = t->nfresh + t->nlate + 1; /* what open_fresh needs */
    size_t scratch = (nslots * sizeof(uint64_t) + sizeof *t->owners - 1) / sizeof *t->owners;
    if (reserve_owners(t, owners > scratch ? owners : scratch) != 0)
        return -1;
    uint64_t *seen = (uint64_t *)(void *)t->owners; /* malloc's room suits any type; keys are never 0 */
    memset(seen, 0, nslots * sizeof *seen);
    size_t kept = 0;
    for (size_t i = 0; i < t->nfresh; i++) {
        ch_sock row = ch_sample_row(s, t->fresh[i]);
        uint64_t key = sock_key(&row);
        size_t j = (size_t)(mix64(key) % nslots);
        while (seen[j] != 0 && seen[j] != key)
            j = j + 1 < nslots ? j + 1 : 0;
        if (seen[j] == key)
            continue; /* a repeat */
        seen[j] = key;
        t->fresh[kept++] = t->fresh[i];
    }
    t->nfresh = kept;
    return 0;
}

/* A fresh row without identity continuing a socket that just vanished. */
static bool adopt_vanished(ch_tracker *t, const ch_sock *row, int64_t at, ch_events *q, int *err)
{
    for (size_t i = 0; i < t->count; i++) {
        entry *e = &t->entries[i];
        if (e->gen == t->gen || !entry_has_tuple(e, row))
            continue;
        if (rekey(t, i, row) != 0)
            *err = -1;
        e->gen = t->gen;
        e->loaded = false;
        if (push_state(q, e, at) != 0)
            *err = -1;
        return true;
    }
    return false;
}

/* Keeps a lifetime closed without its socket's announcement for the
 * announcement, which may come later (gone_map.h). */
static void remember_swept(ch_tracker *t, const entry *e)
{
    bool owned = e->owner == CH_OWNER_SOCKET || e->owner == CH_OWNER_EVENT;
    ch_gone_map_put(t->gone_lives, &(ch_gone){.ident = e->key, .lifetime_id = e->lifetime_id, .owned = owned});
}

static int cmp_key(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * When a socket the sample no longer has closed: at its announced time
 * when the OS announced it (*announced), else at this sample. One the
 * announcement did not see is remembered for a late one (remember_swept).
 */
static int64_t gone_at(ch_tracker *t, const entry *e, int64_t at, bool *announced)
{
    /* A socket of the last run that no sample of this one saw: the kernel
     * sends an announcement after an RCU grace period and from a work
     * queue, so one destroyed while the recorder was stopped may still
     * reach it after it started. Its close lies between the two runs'
     * samples (gone_while_stopped), not at the time the news came. */
    *announced = e->destroyed && !e->loaded;
    if (!*announced) {
        if (e->has_ident)
            remember_swept(t, e);
        return at;
    }
    /* Not after the sample that found it gone (a wall clock set back
     * since the announcement was read). */
    int64_t announced_at = destroyed_at(t, e, at);
    return announced_at < at ? announced_at : at;
}

/* The CLOSE of a socket found gone that closed at closed. */
static ch_event close_event(const entry *e, int64_t closed, bool announced, int64_t last_seen)
{
    return (ch_event){.type = CH_EV_CLOSE,
                      .reason = e->loaded ? CH_CLOSE_GONE_WHILE_STOPPED : CH_CLOSE_GONE,
                      .seen_by = announced ? CH_SEEN_BY_DESTROY_EVENT : CH_SEEN_BY_SAMPLES,
                      .lifetime_id = e->lifetime_id,
                      .at = closed,
                      .last_seen = last_seen,
                      .bytes_sent = entry_sent(e),
                      .bytes_received = entry_received(e)};
}

/* Closes one socket the sample no longer has (gone_at). */
static int close_gone(ch_tracker *t, entry *e, int64_t at, int64_t prev, ch_events *q)
{
    bool announced;
    int64_t closed = gone_at(t, e, at, &announced);
    ch_event ev = close_event(e, closed, announced, prev);
    return ch_events_push(q, &ev);
}

static bool entry_is_time_wait(const entry *e);

/* Whether e, missed by a sample and not announced, may be kept for its
 * announcement: one this run tracked by its identity, not a TIME_WAIT
 * entry (which no announcement ends). */
static bool may_hold(const entry *e)
{
    return e->has_ident && !e->loaded && !entry_is_time_wait(e);
}

/* Whether the sweep keeps e, a socket the sample does not have, for the
 * next one (ch_tracker_hold_missing): one the OS will announce, while the
 * times of the sample that last saw it and of the next stay kept. */
static bool keeps_missing(const ch_tracker *t, const entry *e, bool hold)
{
    /* Announced after the dump and kept (ch_tracker_destroyed_sampled):
     * by the first sample that misses it only, none applied since gen. */
    if (e->missing && e->destroyed)
        return t->napplied < 2 || (int32_t)(e->gen - t->applied[(t->napplied - 2) % SAMPLES_KEPT].gen) >= 0;
    if (!hold || e->destroyed)
        return false;
    if (e->missing)
        return t->gen - e->gen < SAMPLES_KEPT - 1;
    return may_hold(e);
}

/*
 * Whether the sweep of the sample of gen t->gen keeps the sockets it
 * misses: while announcements are lost (ch_tracker_hold_missing); while the
 * OS still announces sockets kept so (a mass close's announcements trail
 * its sockets by seconds when a loaded machine delays the kernel's work
 * that sends them, lost or not); and, where the OS announces
 * (ch_tracker_expect_announcements), when the sample newly misses,
 * unannounced, more sockets than a quarter of what the gone map keeps: a
 * mass close whose announcements have not begun, which found gone would
 * overflow it.
 */
static bool holds_missing(const ch_tracker *t)
{
    if (t->hold_missing || t->held_announced > 0)
        return true;
    if (!t->announcing)
        return false;
    size_t n = 0, most = CH_GONE_MAP_CAP / 4;
    for (size_t i = 0; i < t->count && n <= most && t->count > most; i++) {
        const entry *e = &t->entries[i];
        n += e->gen != t->gen && !e->missing && !e->destroyed && may_hold(e);
    }
    return n > most;
}

/* Pass 2: closes every tracked socket the sample no longer has; with
 * q->defer_closes, leaving their CLOSEs in the tracker (retire_at). One
 * the sample before missed closes as found gone by that one. */
static int sweep_gone(ch_tracker *t, int64_t at, int64_t prev, ch_events *q)
{
    int rc = 0;
    t->applied[t->napplied++ % SAMPLES_KEPT] = (applied_sample){.gen = t->gen, .at = at};
    bool hold = holds_missing(t);
    t->held_announced = 0;
    for (size_t i = t->count; i-- > 0 && rc == 0;) {
        entry *e = &t->entries[i];
        if (e->gen == t->gen)
            continue;
        if (keeps_missing(t, e, hold)) {
            e->missing = 1;
            continue;
        }
        int64_t gone = at, seen = prev;
        if (e->missing)
            missed_times(t, e->gen, &seen, &gone);
        bool announced = false;
        int64_t closed = q->defer_closes ? gone_at(t, e, gone, &announced) : 0;
        if (!q->defer_closes && close_gone(t, e, gone, seen, q) != 0)
            return -1;
        if (q->defer_closes) { /* its inode stays in its entry (forget_gone) */
            retire_at(t, i, closed, announced);
            continue;
        }
        rc = e->inode != 0 ? remember_gone(t, e->inode) : 0;
        if (rc == 0)
            remove_at(t, i);
    }
    if (t->nclosing > 0) {
        q->closes = (ch_close_batch){
            .tracker = t, .first = t->count, .count = t->nclosing, .at_item = q->count, .last_seen = prev};
        t->closing_q = q;
    }
    return rc;
}

/*
 * Owners of the fresh rows into owners[0, nfresh): by inode, then by the
 * pid the OS reported with the row (Windows); and in the same look-up the
 * owners of the late sockets (take_inode, resume_listener) into the nlate
 * after them: a second look-up in one sample would find nothing new in the
 * processes the first had just read. The list of inodes is built for the
 * call and freed: on a first sample it is as long as the machine's socket
 * table.
 */
static int resolve_owners(ch_tracker *t, const ch_sample *s, ch_procs *procs)
{
    size_t n = t->nfresh, m = t->nlate;
    uint64_t *inodes = malloc((n + m) * sizeof *inodes);
    if (inodes == NULL)
        return -1;
    bool any_pid = false;
    for (size_t i = 0; i < n; i++) {
        ch_sock row = ch_sample_row(s, t->fresh[i]);
        inodes[i] = row.inode;
        any_pid |= ch_sock_pid(&row) > 0;
    }
    for (size_t i = 0; i < m; i++) {
        entry *e = lookup(t, t->late[i]);
        inodes[n + i] = e != NULL ? e->inode : 0;
    }
    ch_procs_resolve(procs, inodes, n + m, t->owners);
    free(inodes);
    if (!any_pid)
        return 0;
    int64_t *pids = malloc(n * sizeof *pids);
    if (pids == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        ch_sock row = ch_sample_row(s, t->fresh[i]);
        pids[i] = ch_sock_pid(&row);
    }
    ch_procs_resolve_pids(procs, pids, n, t->owners);
    free(pids);
    return 0;
}

void ch_tracker_use_owner_facts(ch_tracker *t, ch_owner_map *m, ch_procs *procs)
{
    t->facts = m;
    t->fact_procs = procs;
}

/* A fact for a socket whose lifetime a sample closed already (gone_map.h):
 * it names that lifetime's owner when it had none yet (or only an
 * inferred one), an OWNER event in q. */
static void name_gone_owner(ch_tracker *t, const ch_owner_fact *fact, ch_events *q)
{
    ch_gone *g = ch_gone_map_find(t->gone_lives, fact->ident);
    const ch_proc *p = g != NULL && !g->owned && q != NULL ? ch_procs_identified(t->fact_procs, fact) : NULL;
    ch_owner owner = {p, 1, CH_OWNER_EVENT};
    if (p != NULL && ch_events_push_owner(q, g->lifetime_id, t->cur_at > 0 ? t->cur_at : 0, owner) == 0)
        g->owned = true;
}

void ch_tracker_owner_fact(ch_tracker *t, const ch_owner_fact *fact, ch_events *q)
{
    settle(t);
    if (t->facts == NULL)
        return;
    entry *e = lookup(t, fact->ident);
    if (e == NULL && ch_gone_map_find(t->gone_lives, fact->ident) != NULL) {
        name_gone_owner(t, fact, q);
        return;
    }
    if (e == NULL) {
        ch_owner_map_put(t->facts, fact);
        return;
    }
    /* Open already (a sample found it in a listener's backlog, or as a
     * TIME_WAIT entry, or its process could not be read): the fact is
     * its owner, unless a process was seen holding it. */
    if (e->owner == CH_OWNER_SOCKET || e->owner == CH_OWNER_EVENT || q == NULL)
        return;
    const ch_proc *p = ch_procs_identified(t->fact_procs, fact);
    ch_owner owner = {p, 1, CH_OWNER_EVENT};
    if (p != NULL && ch_events_push_owner(q, e->lifetime_id, t->cur_at > 0 ? t->cur_at : 0, owner) == 0)
        e->owner = CH_OWNER_EVENT;
}

/* The owner inferred for a socket no process was seen holding and no
 * event named: an accepted connection's is its listener's. Only without
 * kernel events: with them, a connection no event named was never
 * accepted (it died in the backlog) or was the kernel's. */
static ch_owner inferred(const ch_tracker *t, const ch_sock *row, ch_owner owner)
{
    if (owner.proc != NULL || t->facts != NULL)
        return owner;
    const ch_proc *p = ch_listeners_owner(t->listeners, row);
    return p != NULL ? (ch_owner){p, 1, CH_OWNER_LISTENER} : owner;
}

/* Notes the fresh listeners, which will open lifetimes first_id + i for
 * fresh row i, with their owners, before any fresh connection is given an
 * inferred owner: a listener and a connection it accepted may be new in
 * one sample. Out of memory, a listener is not noted (no inference). */
static void note_fresh_listeners(ch_tracker *t, const ch_sample *s, int64_t first_id)
{
    for (size_t i = 0; i < t->nfresh; i++) {
        ch_sock row = ch_sample_row(s, t->fresh[i]);
        if (row.proto == CH_TCP && row.state == CH_ST_LISTEN)
            ch_listeners_add(t->listeners, &row, first_id + (int64_t)i, t->owners[i].proc);
    }
}

/*
 * Gives the sockets a sample found held by a file at last (see take_inode)
 * and the listeners of an earlier run (resume_listener) the owners found
 * for them (owners[i] of late[i]); each found is an OWNER event.
 */
static int take_late(ch_tracker *t, int64_t at, const ch_owner *owners, ch_events *q)
{
    int rc = 0;
    for (size_t i = 0; owners != NULL && rc == 0 && i < t->nlate; i++) {
        entry *e = owners[i].proc != NULL ? lookup(t, t->late[i]) : NULL;
        if (e == NULL)
            continue;
        rc = ch_events_push_owner(q, e->lifetime_id, at, owners[i]); /* a row with an owner keeps it */
        e->owner = CH_OWNER_SOCKET;
        if (entry_is_listener(e))
            ch_listeners_set_owner(t->listeners, e->lifetime_id, owners[i].proc);
    }
    t->nlate = 0;
    return rc;
}

/* Notes a socket left without an owner whose inode the processes' cache
 * may yet find. Out of memory, it is not asked again (it keeps no owner). */
static void add_retry(ch_tracker *t, uint64_t key, uint64_t inode, ch_procs *procs)
{
    if (inode == 0 || !ch_procs_may_find_later(procs, inode))
        return;
    void *grown = reserve(t->retry, &t->retry_cap, t->nretry + 1, sizeof *t->retry, 16);
    if (grown == NULL)
        return;
    t->retry = grown;
    t->retry[t->nretry++] = (retry_entry){key, inode};
}

static bool owner_wanted(uint8_t source)
{
    return source == CH_OWNER_UNKNOWN || source == CH_OWNER_LISTENER;
}

/* The late sockets (owners[i] of late[i]) left without an owner that may
 * yet be found. */
static void retry_late(ch_tracker *t, const ch_owner *owners, ch_procs *procs)
{
    for (size_t i = 0; i < t->nlate; i++) {
        const entry *e = owners[i].proc == NULL ? lookup(t, t->late[i]) : NULL;
        if (e != NULL && !e->loaded)
            add_retry(t, e->key, e->inode, procs);
    }
}

/* The fresh rows left without an owner (or with an inferred one) that may
 * yet be found. */
static void retry_fresh(ch_tracker *t, const ch_sample *s, ch_procs *procs)
{
    for (size_t i = 0; i < t->nfresh; i++) {
        if (!owner_wanted(t->owners[i].source))
            continue;
        ch_sock row = ch_sample_row(s, t->fresh[i]);
        add_retry(t, sock_key(&row), row.inode, procs);
    }
}

/*
 * Asks again, with the late ones, for the owners the last apply could not
 * find but a later look-up may: sockets still tracked with the same inode
 * and still without an owner (an event may have named it since).
 */
static int requeue_retries(ch_tracker *t)
{
    size_t n = t->nretry;
    t->nretry = 0;
    for (size_t i = 0; i < n; i++) {
        const entry *e = lookup(t, t->retry[i].key);
        if (e != NULL && e->inode == t->retry[i].inode && owner_wanted(e->owner) && remember_late(t, e->key) != 0)
            return -1;
    }
    return 0;
}

/* Takes the fact of a socket about to open a lifetime; it names the owner
 * when nothing else did. */
static ch_owner with_fact(ch_tracker *t, uint64_t ident, ch_owner owner)
{
    ch_owner_fact fact;
    if (!ch_owner_map_take(t->facts, ident, &fact) || owner.proc != NULL)
        return owner;
    const ch_proc *p = ch_procs_identified(t->fact_procs, &fact);
    return p != NULL ? (ch_owner){p, 1, CH_OWNER_EVENT} : owner;
}

/*
 * Makes room for n more entries, in the array and in the index, without
 * touching it: at a first sample the room is taken only after the flush
 * (place_pending), while the sample's rows are given back.
 */
static int reserve_entries(ch_tracker *t, size_t n)
{
    if (t->count + n > CH_TRACKER_MAX_SOCKETS)
        return -1;
    if (grow_index(t, t->count + n) != 0)
        return -1;
    void *grown = reserve(t->entries, &t->cap, t->count + n, sizeof *t->entries, ENTRIES_KEPT);
    if (grown == NULL)
        return -1;
    t->entries = grown;
    return 0;
}

/* Rows given back to the sample at a time while the pending entries are placed. */
#define PLACE_STEP 4096

/* Shrinks the fresh rows' list and their owners to their first n (a
 * first sample's, once the entries from n on are made). Keeping more is
 * never wrong, so a failed realloc is not one. */
static void give_back_fresh(ch_tracker *t, size_t n)
{
    if (n == 0)
        return; /* the caller frees them */
    ch_owner *owners = n < t->owners_cap ? realloc(t->owners, n * sizeof *owners) : NULL;
    if (owners != NULL) {
        t->owners = owners;
        t->owners_cap = n;
    }
    uint32_t *fresh = n < t->fresh_cap ? realloc(t->fresh, n * sizeof *fresh) : NULL;
    if (fresh != NULL) {
        t->fresh = fresh;
        t->fresh_cap = n;
    }
}

/*
 * Makes the pending fresh rows entries, last first, each at the place and
 * with the lifetime id it was given, then indexes them (the order, ids and
 * index are those inserting them one by one in open_fresh would give, a
 * later row of one identity winning the index). With trim (the sample
 * they are in), every PLACE_STEP rows the rows no longer needed are given
 * back, with their owners and places in the list of fresh rows (the
 * caller frees the rest), and at the end all of them: a first sample's
 * rows, owners and list (56 bytes a socket at least) and its entries (48)
 * are then never resident together. Cannot fail: reserve_entries made the
 * room.
 */
static void place_pending(ch_tracker *t, ch_sample *trim)
{
    size_t n = t->npending, base = t->count;
    t->npending = 0;
    if (trim != t->pending_sample)
        trim = NULL; /* not the sample the rows are in: nothing of it to give back */
    for (size_t i = n; i-- > 0;) {
        entry *e = &t->entries[base + i];
        ch_sock row = ch_sample_row(t->pending_sample, t->fresh[i]);
        entry_take_row(e, &row);
        e->lifetime_id = t->pending_first_id + (int64_t)i;
        e->gen = t->gen;
        e->loaded = false;
        e->owner = t->owners[i].source;
        e->bytes_due = 0;
        e->destroyed = 0;
        e->here = 0;
        if (trim != NULL && (n - i) % PLACE_STEP == 0) {
            ch_sample_truncate(trim, t->fresh[i]);
            give_back_fresh(t, i);
        }
    }
    if (trim != NULL) /* nothing needs its rows any more */
        ch_sample_truncate(trim, 0);
    /* The index last: its slots, touched at random, are resident at once. */
    for (size_t i = 0; i < n; i++)
        t->slots[find_slot(t, t->entries[base + i].key)] = slot_value(t, base + i);
    t->count = base + n;
}

/* Forgets the closing entries and places the pending ones before
 * anything reads the tracker. Returns 0, or -1 when the CLOSEs of the
 * closing ones were lost (release_closing). */
static int settle(ch_tracker *t)
{
    int rc = release_closing(t);
    if (t->npending > 0)
        place_pending(t, NULL);
    return rc;
}

void ch_tracker_settle(ch_tracker *t, ch_sample *s, ch_events *q)
{
    release_closing(t); /* before the pending entries take their place */
    if (t->npending == 0) {
        shrink(t);
        return;
    }
    /* The deferred opens leave the sample first (a flush failed). */
    bool written = q->opens.count == 0 || ch_events_keep(q) == 0;
    bool large = t->owners_cap > PLACE_STEP; /* a first sample's */
    place_pending(t, written ? s : NULL);
    if (written && large) { /* place_pending gave back most of them */
        free(t->owners);
        free(t->fresh);
        t->owners = NULL;
        t->fresh = NULL;
        t->owners_cap = t->fresh_cap = t->nfresh = 0;
    }
}

/* Pass 3: opens lifetimes for the fresh rows, attributing them in one batch. */
static int open_fresh(ch_tracker *t, const ch_sample *s, int64_t at, ch_procs *procs, ch_events *q)
{
    size_t need = t->nfresh + t->nlate + 1; /* the late ones' owners follow the fresh ones' */
    if (reserve_owners(t, need) != 0)
        return -1;
    if (t->nfresh == 0 && (t->nlate == 0 || procs == NULL)) {
        t->nlate = 0;
        return 0;
    }
    memset(t->owners, 0, need * sizeof *t->owners);
    if (procs != NULL && resolve_owners(t, s, procs) != 0)
        return -1;
    if (procs != NULL)
        retry_late(t, t->owners + t->nfresh, procs);
    if (take_late(t, at, procs != NULL ? t->owners + t->nfresh : NULL, q) != 0)
        return -1;
    if (t->nfresh == 0)
        return 0;
    for (size_t i = 0; ch_owner_map_count(t->facts) > 0 && i < t->nfresh; i++)
        t->owners[i] = with_fact(t, ch_sample_row(s, t->fresh[i]).ident, t->owners[i]);
    note_fresh_listeners(t, s, t->next_id);
    for (size_t i = 0; t->facts == NULL && i < t->nfresh; i++) {
        ch_sock row = ch_sample_row(s, t->fresh[i]);
        t->owners[i] = inferred(t, &row, t->owners[i]);
    }
    if (procs != NULL)
        retry_fresh(t, s, procs);
    /* Deferred, the OPENs stay in the sample: no copy of every socket of
     * the machine on the first sample; nor are their entries made before
     * the flush (place_pending). */
    ch_open_batch batch = {.sample = s, .index = t->fresh, .owners = t->owners, .first_id = t->next_id, .at = at};
    if (q->defer_opens) {
        if (reserve_entries(t, t->nfresh) != 0)
            return -1;
        t->npending = batch.count = t->nfresh;
        t->pending_sample = s;
        t->pending_first_id = t->next_id;
        t->next_id += (int64_t)t->nfresh;
        q->opens = batch;
        return 0;
    }
    int rc = release_closing(t); /* the entries made take their place */
    for (size_t i = 0; i < t->nfresh && rc == 0; i++) {
        ch_sock kept = ch_sample_row(s, t->fresh[i]);
        const ch_sock *row = &kept;
        entry *e = insert(t, row, t->next_id++);
        if (e == NULL) {
            t->next_id--;
            rc = -1;
            break;
        }
        e->owner = t->owners[i].source;
        ch_event ev = {.type = CH_EV_OPEN, .state = row->state, .lifetime_id = e->lifetime_id, .at = at};
        rc = ch_events_push_open(q, &ev, row, t->owners[i]);
    }
    return rc;
}

static int continue_announced(ch_tracker *t, const ch_sample *s, int64_t prev, ch_events *q);

/* Has the attribution cache forget the inodes of the sockets this sample
 * found gone: those listed (ch_tracker_gone_inodes), and those of the
 * closing entries, read from the entries a few at a time (a mass close
 * lists no inode). */
static void forget_gone(ch_tracker *t, ch_procs *procs)
{
    ch_procs_forget(procs, t->gone, t->ngone);
    uint64_t some[256];
    size_t n = 0;
    for (size_t i = 0; i < t->nclosing; i++) {
        uint32_t inode = t->entries[t->count + i].inode;
        if (inode != 0)
            some[n++] = inode;
        if (n == sizeof some / sizeof some[0] || (n > 0 && i + 1 == t->nclosing)) {
            ch_procs_forget(procs, some, n);
            n = 0;
        }
    }
}

/* Dates the state changes ch_tracker_consume queued for the sample being
 * taken: a change the dump found happened by the time it was complete. */
static void date_consumed(ch_tracker *t, ch_events *q, int64_t at)
{
    for (size_t i = t->undated_from; i < q->count; i++)
        if (q->items[i].at == AT_SAMPLE_END)
            q->items[i].at = at;
    t->undated_from = q->count;
}

int ch_tracker_apply(ch_tracker *t, const ch_sample *s, int64_t at, int64_t prev_last_sample,
                     ch_procs *procs, ch_events *q)
{
    if (settle(t) != 0)
        return -1;
    /* A socket no sample saw was missing from the last sample's dump when
     * the dump reached it: it opened after that dump began. */
    int64_t opened_after = prev_last_sample;
    if (t->begun) {
        if (t->prev_began >= 0)
            opened_after = t->prev_began;
        date_consumed(t, q, at);
    } else {
        t->gen++;
        if (ch_events_keep(q) != 0)
            return -1;
    }
    if (!t->begun) /* else ch_tracker_begin did */
        clear_gone_and_late(t);
    t->begun = false;
    if (t->consume_err != 0) {
        t->consume_err = 0;
        return -1;
    }
    if (mark_present(t, s, at, prev_last_sample, q) != 0 || drop_fresh_repeats(t, s) != 0)
        return -1;
    /* Rows without identity may continue a socket that just vanished. */
    size_t kept = 0;
    int err = 0;
    for (size_t i = 0; i < t->nfresh; i++) {
        ch_sock row = ch_sample_row(s, t->fresh[i]);
        if (row.ident != 0 || !adopt_vanished(t, &row, at, q, &err))
            t->fresh[kept++] = t->fresh[i];
    }
    t->nfresh = kept;
    if (err != 0 || continue_announced(t, s, opened_after, q) != 0 || sweep_gone(t, at, prev_last_sample, q) != 0)
        return -1;
    /* A new socket mostly takes the descriptor number of one just closed:
     * the cache looks there first once it has forgotten the closed one. */
    if (procs != NULL)
        forget_gone(t, procs);
    if (procs != NULL && requeue_retries(t) != 0)
        return -1;
    return open_fresh(t, s, at, procs, q);
}

/*
 * States an announced connection can report when it left a TIME_WAIT entry
 * behind. The kernel frees the socket as it hands it over to the entry and
 * marks it CLOSE first: Linux 6.18 announces both ends of a connection in
 * CLOSE, so CLOSE alone does not tell the end that closed first; the entry
 * showing up in the very next sample does. A socket announced in any other
 * state (ESTABLISHED, SYN_SENT, CLOSE_WAIT, LAST_ACK, LISTEN) left none.
 */
static bool may_leave_time_wait(int state)
{
    return state == CH_ST_CLOSE || state == CH_ST_FIN_WAIT1 || state == CH_ST_FIN_WAIT2 ||
           state == CH_ST_CLOSING || state == CH_ST_TIME_WAIT;
}

/* A TIME_WAIT entry (the kernel's mini-socket, held by no file): in
 * TIME_WAIT, or in FIN_WAIT2 while the peer has not closed yet. */
static bool is_time_wait(int proto, uint64_t inode, int state)
{
    return proto == CH_TCP && inode == 0 && (state == CH_ST_TIME_WAIT || state == CH_ST_FIN_WAIT2);
}

static bool is_time_wait_entry(const ch_sock *s)
{
    return is_time_wait(s->proto, s->inode, s->state);
}

static bool entry_is_time_wait(const entry *e)
{
    return is_time_wait(e->proto, e->inode, e->state);
}

static int cmp_announced(const void *a, const void *b)
{
    const announced *x = a, *y = b;
    if (x->tuple != y->tuple)
        return x->tuple < y->tuple ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The latest announcement with that tuple key in the sorted list, or NULL. */
static const announced *latest_announced(const announced *a, size_t n, uint64_t tuple)
{
    size_t lo = 0, hi = n; /* first index with a larger key */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid].tuple <= tuple)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && a[lo - 1].tuple == tuple ? &a[lo - 1] : NULL;
}

/* The queued event at index i when it is still the one of that type and
 * lifetime (the queue was not flushed since), else NULL. */
static ch_event *queued(ch_events *q, size_t i, int type, int64_t lifetime_id)
{
    if (i >= q->count || q->items[i].type != type || q->items[i].lifetime_id != lifetime_id)
        return NULL;
    return &q->items[i];
}

/*
 * Turns an announced connection's queued OPEN and CLOSE into the start of
 * the TIME_WAIT entry row's lifetime: the OPEN takes the entry's cookie (a
 * restart finds the row again by it), the CLOSE becomes the move to the
 * entry's state at the announced time, and the row stays open while the
 * entry lives, with the connection's final byte counters.
 */
static int continue_as_time_wait(ch_tracker *t, const ch_sock *row, ch_events *q, ch_event *open,
                                 ch_event *close)
{
    entry *e = insert(t, row, open->lifetime_id);
    if (e == NULL)
        return -1;
    e->owner = ch_events_opened(q, open)->owner.source;
    entry_set_bytes(e, close->bytes_sent, close->bytes_received); /* the entry reports no counters */
    ch_events_opened(q, open)->sock.ident = row->ident;
    open->seen_by = CH_SEEN_BY_DESTROY_EVENT_TIME_WAIT;
    *close = (ch_event){.type = CH_EV_STATE,
                        .state = row->state,
                        .lifetime_id = e->lifetime_id,
                        .at = close->at,
                        .bytes_sent = entry_sent(e),
                        .bytes_received = entry_received(e)};
    return 0;
}

static int remember_recent(ch_tracker *t, const ch_sock *row)
{
    void *grown = reserve(t->recent, &t->recent_cap, t->nrecent + 1, sizeof *t->recent, 64);
    if (grown == NULL)
        return -1;
    t->recent = grown;
    t->recent[t->nrecent++] = (recent_entry){.tuple = tuple_key(row), .ident = row->ident};
    return 0;
}

/*
 * Pass 1b: fresh TIME_WAIT entries that continue a connection announced
 * destroyed since the last sample. A connection closed first by this side
 * is freed as it enters TIME_WAIT (or FIN_WAIT2, peer still open); when no
 * dump had given it a cookie, its entry gets a new one, so only the
 * four-tuple ties the two. The entry exists before the announcement is
 * sent, so it is in the first sample taken after the announcement was read:
 * only announcements since the last sample are candidates (an entry found
 * later belongs to another connection), and of several with one four-tuple
 * the latest (an entry is unique per four-tuple; the earlier ones were
 * other connections that left none).
 */
static int continue_announced(ch_tracker *t, const ch_sample *s, int64_t prev, ch_events *q)
{
    size_t n = t->nannounced, kept = 0;
    t->nannounced = 0;
    t->nrecent = 0;
    t->recent_prev = prev;
    if (n > 1)
        qsort(t->announced, n, sizeof *t->announced, cmp_announced);
    for (size_t i = 0; i < t->nfresh; i++) {
        ch_sock kept_row = ch_sample_row(s, t->fresh[i]);
        const ch_sock *row = &kept_row;
        bool entry_row = is_time_wait_entry(row) && row->ident != 0;
        const announced *a = entry_row && n > 0 ? latest_announced(t->announced, n, tuple_key(row)) : NULL;
        ch_event *open = a ? queued(q, a->open_ev, CH_EV_OPEN, a->lifetime_id) : NULL;
        ch_event *close = a ? queued(q, a->close_ev, CH_EV_CLOSE, a->lifetime_id) : NULL;
        if (open == NULL || close == NULL || !same_tuple(&ch_events_opened(q, open)->sock, row)) {
            t->fresh[kept++] = t->fresh[i];
            if (entry_row && remember_recent(t, row) != 0)
                return -1;
            continue;
        }
        if (continue_as_time_wait(t, row, q, open, close) != 0)
            return -1;
    }
    t->nfresh = kept;
    if (t->nrecent > 1)
        qsort(t->recent, t->nrecent, sizeof *t->recent, cmp_key);
    return 0;
}

/*
 * The other order: the last sample found a connection's TIME_WAIT entry
 * (and opened a lifetime for it) before the connection's announcement was
 * read. The entry appears just before the announcement is sent, so this
 * happens when a connection closes while a sample is being taken. That
 * lifetime is the connection's: the announcement adds its final counters,
 * opened_after and seen_by to the row instead of making a second one. Only
 * an entry first found by the last sample qualifies (the same window as
 * continue_announced), once. Returns 1 when joined, 0 when not, -1 when out
 * of memory.
 */
static int join_recent_entry(ch_tracker *t, const ch_sock *s, ch_events *q)
{
    if (t->nrecent == 0 || s->proto != CH_TCP || !may_leave_time_wait(s->state))
        return 0;
    uint64_t tuple = tuple_key(s);
    recent_entry *r = bsearch(&tuple, t->recent, t->nrecent, sizeof *t->recent, cmp_key);
    entry *e = r != NULL && r->ident != 0 ? lookup(t, r->ident) : NULL;
    if (e == NULL || !entry_has_tuple(e, s) || !entry_is_time_wait(e))
        return 0;
    r->ident = 0;
    take_bytes(e, s);
    ch_event ev = {.type = CH_EV_ANNOUNCED,
                   .lifetime_id = e->lifetime_id,
                   .opened_after = t->recent_prev,
                   .seen_by = CH_SEEN_BY_DESTROY_EVENT_TIME_WAIT,
                   .bytes_sent = entry_sent(e),
                   .bytes_received = entry_received(e)};
    return ch_events_push(q, &ev) != 0 ? -1 : 1;
}

/* True when s has the cookie and addresses of a TIME_WAIT entry the last
 * sample opened a lifetime for, not yet joined to an announcement. */
static bool is_recent(const ch_tracker *t, const ch_sock *s)
{
    uint64_t tuple = tuple_key(s);
    const recent_entry *r = t->nrecent > 0 ? bsearch(&tuple, t->recent, t->nrecent, sizeof *t->recent, cmp_key) : NULL;
    return r != NULL && r->ident == s->ident;
}

/* Notes a connection just opened and closed from its announcement, whose
 * TIME_WAIT entry the next sample may find (continue_announced). */
static int remember_announced(ch_tracker *t, const ch_sock *s, const ch_events *q)
{
    if (s->proto != CH_TCP || !ch_sock_has_remote(s) || !may_leave_time_wait(s->state))
        return 0;
    void *grown = reserve(t->announced, &t->announced_cap, t->nannounced + 1, sizeof *t->announced, 64);
    if (grown == NULL)
        return -1;
    t->announced = grown;
    t->announced[t->nannounced] = (announced){.tuple = tuple_key(s), .seq = t->nannounced, .open_ev = q->count - 2,
                                              .close_ev = q->count - 1,
                                              .lifetime_id = q->items[q->count - 1].lifetime_id};
    t->nannounced++;
    return 0;
}

/* A lifetime from an announcement alone: seen once, as it was destroyed. */
static int open_destroyed(ch_tracker *t, const ch_sock *s, int64_t at, int64_t prev, ch_events *q)
{
    int64_t id = t->next_id++;
    /* Existed just before the announcement was read, gone when it was. */
    ch_event open = {.type = CH_EV_OPEN,
                     .state = s->state,
                     .lifetime_id = id,
                     .at = at - 1,
                     .opened_after = prev,
                     .seen_by = CH_SEEN_BY_DESTROY_EVENT_ONLY};
    ch_event close = {.type = CH_EV_CLOSE,
                      .reason = CH_CLOSE_GONE,
                      .lifetime_id = id,
                      .at = at,
                      .last_seen = at - 1,
                      .bytes_sent = s->bytes_sent,
                      .bytes_received = s->bytes_received,
                      .seen_by = CH_SEEN_BY_DESTROY_EVENT_ONLY};
    ch_owner owner = inferred(t, s, with_fact(t, s->ident, (ch_owner){0}));
    if (ch_events_push_open(q, &open, s, owner) != 0 || ch_events_push(q, &close) != 0)
        return -1;
    return 0;
}

bool ch_tracker_destroyed_known(ch_tracker *t, const ch_sock *s, int64_t at)
{
    settle(t);
    if (s->ident == 0)
        return true; /* nothing to join it to */
    entry *e = lookup(t, s->ident);
    if (e == NULL)
        return false; /* unknown, or closed by a sample (join_gone): both need the queue */
    if (entry_is_time_wait(e)) {
        /* The connection that left this entry, which kept its cookie (a
         * dump or an owner event had given the connection one): a
         * sample found the entry before the announcement was read. First
         * found by the last sample, the entry's row is the connection's
         * (join_recent_entry); else only its counters are new, written
         * with the next sample. */
        if (is_recent(t, s))
            return false;
        take_bytes(e, s);
        e->bytes_due = s->bytes_sent >= 0 || s->bytes_received >= 0;
        return true;
    }
    if (!e->destroyed) {
        t->held_announced += e->missing;
        set_destroyed(t, e, at); /* out of memory: closed when a sample finds it gone */
    }
    take_bytes(e, s);
    return true;
}

bool ch_tracker_destroyed_sampled(ch_tracker *t, const ch_sock *s, int64_t at, int64_t sampled)
{
    if (!t->begun || s->ident == 0)
        return ch_tracker_destroyed_known(t, s, at);
    entry *e = lookup(t, s->ident);
    if (e == NULL || e->loaded || entry_is_time_wait(e) || !entry_has_tuple(e, s))
        return false;
    /* Found by the dump (consumed: every row tracked under its identity
     * and addresses is), then destroyed: not before the sample's time. */
    bool found = e->gen == t->gen;
    if (found && at <= sampled)
        at = sampled + 1;
    if (!ch_tracker_destroyed_known(t, s, at))
        return false;
    /* Not found, yet it may have left a TIME_WAIT entry made after the
     * dump passed its place: kept for the next sample, which finds the
     * entry under its cookie (seen_again) or closes it as announced. */
    e = lookup(t, s->ident);
    if (!found && e != NULL && e->destroyed && s->proto == CH_TCP && may_leave_time_wait(s->state))
        e->missing = 1;
    return true;
}

/*
 * The announcement of a socket whose lifetime a sample already closed
 * (found gone): the same socket, announced late (reset by its peer, or
 * failed to connect, and closed by its process samples later; or simply
 * read just after that sample). It adds the kernel's final counters to
 * that lifetime, once. Returns 1 when joined, 0 when not, -1 when out of
 * memory.
 */
static int join_gone(ch_tracker *t, const ch_sock *s, ch_events *q)
{
    const ch_gone *g = ch_gone_map_find(t->gone_lives, s->ident);
    if (g == NULL)
        return 0;
    ch_event ev = {.type = CH_EV_ANNOUNCED, .lifetime_id = g->lifetime_id, .opened_after = -1,
                   .bytes_sent = s->bytes_sent, .bytes_received = s->bytes_received};
    ch_gone_map_drop(t->gone_lives, s->ident);
    if (ev.bytes_sent < 0 && ev.bytes_received < 0)
        return 1; /* no counters (UDP): nothing to add */
    return ch_events_push(q, &ev) != 0 ? -1 : 1;
}

int ch_tracker_destroyed(ch_tracker *t, const ch_sock *s, int64_t at, int64_t prev_last_sample, ch_events *q)
{
    if (ch_tracker_destroyed_known(t, s, at))
        return 0;
    int joined = join_gone(t, s, q);
    if (joined == 0)
        joined = join_recent_entry(t, s, q);
    if (joined != 0)
        return joined < 0 ? -1 : 0;
    if (open_destroyed(t, s, at, prev_last_sample, q) != 0)
        return -1;
    return remember_announced(t, s, q);
}

bool ch_tracker_final_bytes(ch_tracker *t, uint64_t ident, int64_t bytes_sent, int64_t bytes_received, ch_events *q)
{
    settle(t);
    ch_sock counters = {.ident = ident, .bytes_sent = bytes_sent, .bytes_received = bytes_received};
    entry *e = ident != 0 ? lookup(t, ident) : NULL;
    if (e != NULL) {
        take_bytes(e, &counters);
        /* An entry's lifetime is written only on a change: these are one. */
        if (entry_is_time_wait(e))
            e->bytes_due = 1;
        return true;
    }
    const ch_gone *g = ch_gone_map_find(t->gone_lives, ident);
    if (g == NULL)
        return false;
    if (q == NULL)
        return true;
    /* Kept in the map: its announcement, if it comes, still joins it. */
    ch_event ev = {.type = CH_EV_ANNOUNCED, .lifetime_id = g->lifetime_id, .opened_after = -1,
                   .bytes_sent = bytes_sent, .bytes_received = bytes_received};
    ch_events_push(q, &ev); /* out of memory: the announcement may still bring them */
    return true;
}

int ch_tracker_close_announced(ch_tracker *t, int64_t last_seen, ch_events *q)
{
    settle(t);
    for (size_t i = t->count; i-- > 0;) {
        entry *e = &t->entries[i];
        if (!e->destroyed && !e->missing)
            continue;
        int64_t seen = last_seen, gone = destroyed_at(t, e, last_seen);
        if (e->missing)
            missed_times(t, e->gen, &seen, &gone);
        if (close_gone(t, e, gone, seen, q) != 0)
            return -1;
        remove_at(t, i);
    }
    return 0;
}

void ch_tracker_hold_missing(ch_tracker *t, bool hold)
{
    t->hold_missing = hold;
}

void ch_tracker_expect_announcements(ch_tracker *t)
{
    t->announcing = true;
}

int ch_tracker_close_all(ch_tracker *t, int64_t last_seen, int64_t at, int reason, ch_events *q)
{
    settle(t);
    for (size_t i = t->count; i-- > 0;) {
        if (push_close(q, &t->entries[i], last_seen, at, reason) != 0)
            return -1;
        remove_at(t, i);
    }
    return 0;
}

void ch_tracker_begin(ch_tracker *t, int64_t at, ch_events *q)
{
    settle(t);
    t->gen++;
    clear_gone_and_late(t); /* what the rows consumed find goes here */
    t->begun = true;
    /* The deferred opens of the last sample (a flush failed) must leave it
     * before the sampler overwrites it; out of memory they are lost. */
    t->consume_err = ch_events_keep(q);
    q->opens.count = 0;
    if (t->begun) /* the last sample failed half way: date what it found */
        date_consumed(t, q, t->cur_at);
    t->undated_from = q->count;
    t->prev_began = t->cur_at;
    t->cur_at = at;
    t->cur_q = q;
}

/*
 * A row as the sampler reads it: a socket tracked under the same identity
 * and addresses is marked here and its state change queued, so the sample
 * needs no copy of it; anything else (new, readdressed, without identity)
 * is left to ch_tracker_apply. A row seen twice (a dump redone) is
 * consumed again harmlessly.
 */
bool ch_tracker_consume(void *ctx, const ch_sock *row)
{
    ch_tracker *t = ctx;
    if (!t->begun || row->ident == 0)
        return false;
    entry *e = lookup(t, row->ident);
    if (e == NULL)
        return false;
    if (e->gen == t->gen)
        return true; /* the same identity twice in one sample: keep the first */
    if (!entry_continues(e, row))
        return false;
    if (seen_again(t, e, row, AT_SAMPLE_END, t->cur_q) != 0)
        t->consume_err = -1;
    return true;
}

bool ch_tracker_keep_unmoved(ch_tracker *t, int proto, size_t *kept)
{
    *kept = 0;
    if (!t->begun)
        return false;
    for (size_t i = 0; i < t->count; i++) {
        const entry *e = &t->entries[i];
        if (e->proto == proto && (e->destroyed || e->bytes_due || e->loaded || e->missing))
            return false;
    }
    for (size_t i = 0; i < t->count; i++) {
        if (t->entries[i].proto == proto) {
            t->entries[i].gen = t->gen;
            (*kept)++;
        }
    }
    return true;
}

void ch_tracker_prefetch(void *ctx, const uint64_t *idents, size_t n)
{
    ch_tracker *t = ctx;
    if (!t->begun || t->count == 0)
        return;
    /* The slots first, all of them, so that their loads overlap; then the
     * entries they point to (a key not at its home slot is not helped). */
    for (size_t i = 0; i < n; i++)
        __builtin_prefetch(&t->slots[home_slot(t, mix64(idents[i]))]);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = mix64(idents[i]);
        uint32_t v = t->slots[home_slot(t, h)];
        if (v != 0 && (v & ~SLOT_PLACE_MASK) == slot_tag(h))
            __builtin_prefetch(slot_entry(t, v), 1);
    }
}

const uint64_t *ch_tracker_gone_inodes(const ch_tracker *t, size_t *n)
{
    *n = t->ngone;
    return t->gone;
}
