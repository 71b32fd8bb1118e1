/*
 * connhist-record: samples the machine's sockets at an interval and records
 * their lifetimes. The loop is: sample -> tracker (what changed) -> store
 * (one transaction). A failed write keeps the events queued for the next
 * tick; the recorder only exits on a signal, --once, --duration, or an error
 * it cannot recover from at start.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleared_addrs.h"
#include "closes.h"
#include "db.h"
#include "message.h"
#include "host.h"
#include "names_source.h"
#include "options.h"
#include "owner_map.h"
#include "owners.h"
#include "platform.h"
#include "procs.h"
#include "ports.h"
#include "retention.h"
#include "sample.h"
#include "store.h"
#include "timeutil.h"
#include "tracker.h"

#define PORT_CHECK_MS 60000 /* port ranges change rarely: a minute is plenty */

static void log_msg(const char *fmt, ...)
{
    char when[CH_TIME_TEXT];
    ch_format_time(ch_now_ms(), when);
    va_list ap;
    va_start(ap, fmt);
    char prefix[CH_TIME_TEXT + 32];
    snprintf(prefix, sizeof prefix, "connhist-record: %s ", when);
    ch_vmessage(stderr, prefix, fmt, ap);
    va_end(ap);
}

/* A one-line error at start (values are escaped: see message.h); returns the exit code 1. */
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ch_vmessage(stderr, "connhist-record: ", fmt, ap);
    va_end(ap);
    return 1;
}

typedef struct {
    ch_record_options opt;
    char db_path[CH_PATH_MAX];
    sqlite3 *db;
    ch_sampler *sampler;
    ch_store *store;
    ch_tracker *tracker;
    ch_procs *procs;
    ch_sample sample;
    ch_events queue;
    ch_retention *retention; /* NULL: keep everything */
    ch_closes *closes;       /* announcements of closed sockets; NULL: not available */
    ch_owner_events *owners; /* kernel events naming sockets' owners; NULL: off */
    ch_owner_map *owner_facts; /* their facts, until the lifetimes take them */
    ch_cleared_addrs *cleared; /* their addresses of sockets that linger 0 s; NULL: none */
    ch_names_source names;   /* the DNS answers captured (--names) */
    char source_notes[2][CH_ERR_MAX + 200]; /* why a source is off, for the run once it begins */
    int nsource_notes;
    int64_t overruns_stored; /* lost events as last written to the run row (runs.event_overruns) */
    bool noted_overrun, noted_lost, noted_evicted; /* each kind of loss is noted once */
    bool resync;             /* announcements were lost: sample again now */
    ch_ports *ports;         /* port ranges in force */
    int64_t last_sample;     /* newest sample taken (this run or the previous one): when it was complete */
    int64_t last_sample_mono; /* monotonic time of last_sample; 0: taken by an earlier run */
    int64_t last_began;      /* when that sample began (its dump started) */
    int64_t before_began;    /* when the sample before it began */
    size_t closes_mark;      /* closes read by the first read after the last tick (mark_closes) */
    bool between;            /* a sample taken, not yet applied (take_sampled) */
    int64_t between_at;      /* then: its time */
    int64_t overruns_applied;     /* announcement overruns counted when the last sample was applied */
    int64_t last_wall, last_mono; /* both clocks at the previous tick; 0: none yet */
    int write_failing;       /* a write failed and has not succeeded since */
    int sample_failing;
    /* The TCP tables are left out of a sample while the kernel's count of
     * their moves (owners.h) stands where it stood when they were last
     * dumped (tcp_unmoved). */
    uint64_t tcp_moves;      /* the count then */
    bool tcp_moves_known;    /* false: dump them */
    int64_t tcp_dumped_mono; /* when that sample began */
    int64_t tcp_due_mono;    /* when a timer it reported runs out; INT64_MAX: none */
    bool noted_unmoved;
    char err[CH_ERR_MAX];
} recorder;

/* Sets r->db_path from --db or the default. 0, or -1 with a message in r->err. */
static int find_db(recorder *r)
{
    if (r->opt.db == NULL)
        return ch_default_db_path(r->db_path, sizeof r->db_path, r->err);
    snprintf(r->db_path, sizeof r->db_path, "%s", r->opt.db);
    return 0;
}

/* Opens the database and the sampler and records the run. Returns 0 or an exit code. */
static int start(recorder *r)
{
    int from = 0;
    if (find_db(r) != 0 || ch_db_open_write(r->db_path, &r->db, &from, r->err) != 0)
        return fail("%s", r->err);
    if (from > 0 && from < ch_schema_version)
        log_msg("upgraded %s from schema version %d to %d", r->db_path, from, ch_schema_version);
    /* Never block a tick for long on a lock: retry on the next one instead. */
    int64_t wait = r->opt.once ? 10000 : r->opt.interval_ms / 2;
    sqlite3_busy_timeout(r->db, (int)(wait < 100 ? 100 : wait > 5000 ? 5000 : wait));
    /* SQLite's page cache: a tick writes a few hundred pages at most after
     * the first one, and the first one's 100,000 inserts go no slower with
     * less (they spill to the WAL before the commit): 512 KiB, not 2 MiB. */
    sqlite3_exec(r->db, "PRAGMA cache_size = -512", NULL, NULL, NULL);
    r->sampler = ch_sampler_open(r->opt.sampler, r->opt.once, r->err, sizeof r->err);
    if (r->sampler == NULL)
        return fail("%s", r->err);
    r->store = ch_store_open(r->db, r->err, sizeof r->err);
    r->procs = ch_procs_new();
    if (r->store == NULL || r->procs == NULL)
        return fail("%s", r->store ? "out of memory" : r->err);
    ch_procs_prepare(r->procs); /* while the recorder is small */
    return 0;
}

/* The earliest time an announcement read now can be given: after the last
 * sample (which still saw the socket), even if the wall clock went back. */
static int64_t close_time(const recorder *r, int64_t read_at)
{
    int64_t lo = r->last_sample >= 0 ? r->last_sample + 2 : 0;
    return read_at < lo ? lo : read_at;
}

/* Takes the announcement of a socket the tracker knows as it is read (its
 * exact close time is all it adds), so a mass close holds no copies. */
static bool absorb_close(void *ctx, const ch_sock *s, int64_t read_at)
{
    recorder *r = ctx;
    if (r->between)
        return ch_tracker_destroyed_sampled(r->tracker, s, close_time(r, read_at), r->between_at);
    return ch_tracker_destroyed_known(r->tracker, s, close_time(r, read_at));
}

/* A note on a source that is off, logged now and added to the run once
 * it begins (see note_sources). */
static void source_note(recorder *r, const char *fmt, const char *why)
{
    char *note = r->source_notes[r->nsource_notes++];
    snprintf(note, sizeof r->source_notes[0], fmt, why);
    log_msg("note: %s", note);
}

/*
 * Listens for the sockets the OS destroys, where it announces them (sample
 * with netlink only: /proc/net means sock_diag is refused). What cannot be
 * had is noted; sampling goes on without it.
 */
static void open_closes(recorder *r)
{
    char why[CH_ERR_MAX];
    if (strcmp(ch_sampler_name(r->sampler), "procfs") == 0)
        return;
    r->closes = ch_closes_open(why, sizeof why);
    if (r->closes != NULL) {
        ch_closes_set_absorb(r->closes, absorb_close, r);
        ch_tracker_expect_announcements(r->tracker);
        /* Each connection's final byte counters come with its announcement:
         * samples need not carry them (see schema/README.md). */
        ch_sampler_byte_counters(r->sampler, false);
        return;
    }
    source_note(r, "no announcements of closed sockets (%s): sampled only", why);
}

static void on_owner_fact(void *ctx, const ch_owner_fact *fact)
{
    recorder *r = ctx;
    ch_tracker_owner_fact(r->tracker, fact, &r->queue);
}

static void on_close_fact(void *ctx, const ch_close_fact *fact)
{
    recorder *r = ctx;
    /* The addresses matter only to a socket no sample saw (a tracked one
     * has its own): not kept for the others, a mass close's included. */
    if (!ch_tracker_final_bytes(r->tracker, fact->ident, fact->bytes_sent, fact->bytes_received, &r->queue))
        ch_cleared_addrs_put(r->cleared, fact);
}

static void read_owner_events(void *ctx)
{
    recorder *r = ctx;
    ch_owner_events_read(r->owners);
}

/* Facts kept for lifetimes to come: CONNHIST_OWNER_MAP_CAP when set (tests
 * shrink it to provoke evictions), else CH_OWNER_MAP_CAP. */
static size_t owner_map_cap(void)
{
    const char *env = getenv("CONNHIST_OWNER_MAP_CAP");
    long cap = env != NULL ? atol(env) : 0;
    return cap > 0 && cap <= CH_OWNER_MAP_CAP ? (size_t)cap : CH_OWNER_MAP_CAP;
}

/*
 * Starts the kernel events that name the owners of sockets no sample sees
 * (--events). They join lifetimes by socket cookie, so they need the
 * netlink sampler and its announcements. Off, or not available, the run's
 * notes say why; with --events bpf that stops the recorder before its run
 * begins. Returns 0 or an exit code.
 */
static int open_owner_events(recorder *r)
{
    char why[CH_ERR_MAX];
    if (r->opt.events == CH_EVENTS_OFF)
        snprintf(why, sizeof why, "--events off");
    else if (r->opt.once && r->opt.events == CH_EVENTS_AUTO) /* not worth loading for one sample */
        snprintf(why, sizeof why, "--once takes one sample and watches nothing between samples");
    else if (strcmp(ch_sampler_name(r->sampler), "procfs") == 0)
        snprintf(why, sizeof why, "the procfs sampler has no socket cookies to join them to");
    else if (r->closes == NULL)
        snprintf(why, sizeof why, "no announcements of closed sockets to join them to");
    else if ((r->owner_facts = ch_owner_map_new(owner_map_cap())) == NULL)
        snprintf(why, sizeof why, "out of memory");
    else if ((r->owners = ch_owner_events_open(on_owner_fact, r, why, sizeof why)) != NULL) {
        ch_tracker_use_owner_facts(r->tracker, r->owner_facts, r->procs);
        r->cleared = ch_cleared_addrs_new(); /* out of memory: addresses stay cleared */
        ch_owner_events_on_close(r->owners, on_close_fact, r);
        ch_closes_wait_also(r->closes, ch_owner_events_handle(r->owners), read_owner_events, r);
        return 0;
    }
    ch_owner_map_free(r->owner_facts);
    r->owner_facts = NULL;
    if (r->opt.events == CH_EVENTS_BPF)
        return fail("--events bpf: the kernel events of socket owners cannot run: %s", why);
    source_note(r,
                "socket owner events off: %s, so sockets that open and close between samples have no owner, and "
                "those their process resets (SO_LINGER 0) no remote port",
                why);
    return 0;
}

/* Logs a note (of the DNS capture, or of the holder look-ups) and adds it
 * to the run. */
static void names_note(recorder *r, const char *note)
{
    if (note == NULL)
        return;
    log_msg("note: %s", note);
    ch_store_note(r->store, note);
}

/* Adds the notes on the sources that are off to the run, which has begun. */
static void note_sources(recorder *r)
{
    for (int i = 0; i < r->nsource_notes; i++)
        ch_store_note(r->store, r->source_notes[i]);
    if (r->closes != NULL)
        ch_store_event_overruns(r->store, 0);
}

/*
 * Picks up where the previous run stopped: lifetimes it left open either
 * continue (same socket still there) or are closed honestly — or, after a
 * reboot, all closed at once.
 */
static int resume(recorder *r, const ch_run_info *run, int64_t boot_time)
{
    ch_history h;
    if (ch_store_history(r->store, run->host, run->boot_id, &h, r->err, sizeof r->err) != 0)
        return fail("%s", r->err);
    if (h.live_pid != 0 && ch_host_recorder_alive(h.live_pid)) {
        fail("another connhist-record (pid %lld) is writing %s: stop it first",
                (long long)h.live_pid, r->db_path);
        return 1;
    }
    r->tracker = ch_tracker_new(h.next_lifetime_id);
    if (r->tracker == NULL)
        return fail("out of memory");
    r->sample.consume = ch_tracker_consume;
    r->sample.prefetch = ch_tracker_prefetch;
    r->sample.consume_ctx = r->tracker;
    r->queue.defer_opens = true;  /* a sample's new sockets are written from the sample */
    r->queue.defer_closes = true; /* and the gone ones' closes from the tracker */
    r->last_sample = h.last_sample;
    r->last_began = r->before_began = h.last_sample;
    if (ch_store_load_open(r->store, r->tracker, run->ident_is_cookie, r->err, sizeof r->err) != 0)
        return fail("%s", r->err);
    int rebooted = h.boot_id[0] != '\0' && run->boot_id != NULL && strcmp(h.boot_id, run->boot_id) != 0;
    if (rebooted && ch_tracker_count(r->tracker) > 0) {
        /* Sockets cannot outlive a reboot: they were gone by boot time. */
        int64_t gone = boot_time > h.last_sample ? boot_time : run->started_at;
        if (gone <= h.last_sample) /* the wall clock went back since */
            gone = h.last_sample + 1;
        log_msg("the machine rebooted since the last run: closing %zu open lifetimes", ch_tracker_count(r->tracker));
        if (ch_tracker_close_all(r->tracker, h.last_sample, gone, CH_CLOSE_REBOOT, &r->queue) != 0)
            return fail("out of memory");
    }
    open_closes(r);
    int rc = open_owner_events(r);
    if (rc != 0)
        return rc;
    if (ch_names_source_start(&r->names, r->opt.names, r->opt.once, r->db, r->opt.interval_ms, r->store) != 0)
        return fail("--names on: %s", r->names.off);
    if (ch_store_begin_run(r->store, run, r->err, sizeof r->err) != 0)
        return fail("%s", r->err);
    note_sources(r);
    names_note(r, ch_names_source_begin_run(&r->names, ch_store_run_id(r->store)));
    r->ports = ch_ports_new(r->db, r->opt.watch, r->opt.nwatch, PORT_CHECK_MS);
    if (r->ports == NULL)
        return fail("out of memory");
    if (r->opt.retain_ms > 0) {
        r->retention = ch_retention_new(r->db, r->opt.retain_ms, ch_store_run_id(r->store));
        if (r->retention == NULL)
            return fail("cannot prepare pruning: %s", sqlite3_errmsg(r->db));
    }
    return 0;
}

/* Checks the port ranges in force when a check is due; what cannot be read
 * is logged and noted in the run once, and retried at the next check. */
static void check_ports(recorder *r)
{
    const char *note = NULL;
    if (ch_ports_step(r->ports, ch_now_ms(), &note, r->err, sizeof r->err) != 0)
        log_msg("%s", r->err);
    if (note != NULL) {
        log_msg("%s", note);
        ch_store_note(r->store, note);
    }
}

/* One pruning batch when one is due; failures are logged and retried later. */
static void prune(recorder *r)
{
    if (r->retention == NULL)
        return;
    ch_pruned n;
    if (ch_retention_step(r->retention, ch_now_ms(), &n, r->err, sizeof r->err) < 0)
        log_msg("%s", r->err);
    else if (r->opt.verbose && (n.lifetimes > 0 || n.answers > 0))
        log_msg("pruned %d closed lifetimes and %d DNS answers", n.lifetimes, n.answers);
}

/* Says once, in the log and in the run row, what the sampler could not do. */
static void take_notes(recorder *r)
{
    const char *note;
    while ((note = ch_sampler_next_note(r->sampler)) != NULL) {
        log_msg("note: %s", note);
        ch_store_note(r->store, note);
    }
}

/* A wall clock step bigger than this between two ticks is noted. */
#define CLOCK_STEP_MS 1000

static void note_clock(recorder *r, const char *fmt, long long ms)
{
    char note[160];
    snprintf(note, sizeof note, fmt, ms);
    log_msg("note: %s", note);
    ch_store_note(r->store, note);
}

/*
 * The time of a sample. Lifetimes need sample times that only move forward:
 * a wall clock stepped back (by hand, by NTP) would otherwise close sockets
 * before they were seen. A reading not after the previous sample is
 * replaced by the previous sample plus the monotonic time since, until the
 * wall clock catches up. Steps either way are logged and noted in the run.
 */
static int64_t sample_time(recorder *r, int64_t mono)
{
    int64_t wall = ch_now_ms();
    if (r->last_mono != 0) {
        int64_t step = (wall - r->last_wall) - (mono - r->last_mono);
        if (step < -CLOCK_STEP_MS)
            note_clock(r, "wall clock stepped back by %lld ms: sample times continue from the previous sample", -step);
        else if (step > CLOCK_STEP_MS)
            note_clock(r, "wall clock stepped forward by %lld ms (or the machine was suspended)", step);
    } else if (wall <= r->last_sample) {
        note_clock(r, "wall clock is %lld ms behind the previous run's last sample: sample times continue from it",
                   r->last_sample - wall);
    }
    r->last_wall = wall;
    r->last_mono = mono;
    if (wall > r->last_sample)
        return wall;
    int64_t since = r->last_sample_mono != 0 ? mono - r->last_sample_mono : 0;
    return r->last_sample + (since > 0 ? since : 1);
}

/* Notes a kind of loss the first time it happens. */
static void note_loss(recorder *r, bool *noted, int64_t count, const char *note)
{
    if (count == 0 || *noted)
        return;
    log_msg("note: %s", note);
    if (ch_store_note(r->store, note) == 0)
        *noted = true;
}

/*
 * Events lost, counted together in the run row (runs.event_overruns) and
 * each kind noted once: announcements of closed sockets overran their
 * queue (each time followed by a full resync), owner events the kernel
 * could not buffer, owner facts evicted unused.
 */
static void count_overruns(recorder *r)
{
    int64_t overruns = ch_closes_overruns(r->closes), lost = ch_owner_events_lost(r->owners);
    int64_t evicted = ch_owner_map_evicted(r->owner_facts);
    note_loss(r, &r->noted_overrun, overruns,
              "announcements of closed sockets overran their queue: resynchronised with a full dump"
              " (runs.event_overruns counts them)");
    note_loss(r, &r->noted_lost, lost,
              "socket owner events were lost: the kernel's buffer was full before the recorder read it"
              " (runs.event_overruns counts them)");
    note_loss(r, &r->noted_evicted, evicted,
              "socket owner events were evicted unused: more sockets opened between two samples than the"
              " recorder keeps (runs.event_overruns counts them)");
    int64_t n = overruns + lost + evicted;
    if (n != r->overruns_stored && ch_store_event_overruns(r->store, n) == 0)
        r->overruns_stored = n;
}

/* At the end of a run that lost owner events, what runs.event_overruns is made of. */
static void note_losses(recorder *r)
{
    int64_t lost = ch_owner_events_lost(r->owners), evicted = ch_owner_map_evicted(r->owner_facts);
    if (lost == 0 && evicted == 0)
        return;
    char note[200];
    snprintf(note, sizeof note,
             "event_overruns: %lld announcement overruns, %lld owner events lost, %lld owner events evicted",
             (long long)ch_closes_overruns(r->closes), (long long)lost, (long long)evicted);
    log_msg("note: %s", note);
    ch_store_note(r->store, note);
}

/*
 * Hands the closes announced since the last sample to the tracker. Their
 * times are clamped into (last sample, at]: an announcement read just after
 * a wall clock step must not land outside the interval it belongs to.
 */
static void take_closes(recorder *r, int64_t at)
{
    if (r->closes == NULL)
        return;
    if (ch_closes_take_overrun(r->closes))
        r->resync = true;
    size_t n;
    const ch_closed *c = ch_closes_closed(r->closes, &n);
    for (size_t i = 0; i < n; i++) {
        int64_t when = close_time(r, c[i].at);
        if (when > at)
            when = at;
        /* Not in the last sample: it opened after that dump began, or it
         * was destroyed while that dump ran, before the dump reached it
         * (read only after it: mark_closes), and then it opened after the
         * sample before began. */
        int64_t opened_after = i < r->closes_mark ? r->before_began : r->last_began;
        ch_sock sock = c[i].sock;
        ch_cleared_addrs_restore(r->cleared, &sock);
        if (ch_tracker_destroyed(r->tracker, &sock, when, opened_after, &r->queue) != 0) {
            log_msg("out of memory while tracking closed sockets");
            break;
        }
    }
    ch_cleared_addrs_age(r->cleared);
    ch_closes_clear(r->closes);
    r->closes_mark = 0;
}

/*
 * Reads the announcements queued while the tick ran and marks them: the
 * recorder reads none while it dumps, so a socket destroyed during the dump
 * before the dump reached it is announced only now, stamped later than the
 * dump's end, though it may have opened before the dump began. Those read
 * later were destroyed after the dump ended: had they opened before it
 * began, it would have found them.
 */
static void mark_closes(recorder *r)
{
    if (r->closes == NULL)
        return;
    ch_closes_wait(r->closes, 0);
    ch_closes_closed(r->closes, &r->closes_mark);
}

/*
 * Reads the announcements queued while the sampler dumped, before the
 * sample taken at at is applied: the recorder reads none during a dump, and
 * a mass close destroys many of the sockets it tracks meanwhile. Taken
 * now, they close as announced; read after the sweep, they would be found
 * gone first, and more than the tracker keeps for their announcements
 * (gone_map.h) would make lifetimes of their own, the same sockets twice.
 */
static void take_sampled(recorder *r, int64_t at)
{
    if (r->closes == NULL)
        return;
    r->between = true;
    r->between_at = at;
    ch_closes_wait(r->closes, 0);
    r->between = false;
}

/* One tick: sample, diff, write. Errors are logged once per streak. */
/* The TCP tables are dumped at least this often, moved or not. */
#define TCP_DUMP_AT_LEAST_MS 10000

/*
 * True when this sample, beginning at now (monotonic ms), may leave out the
 * TCP tables: kernel events counted no move of them since their last dump
 * (moves, read before this sample: the count the dump would cover), no
 * timer that dump reported has run out, and it is less than
 * TCP_DUMP_AT_LEAST_MS old. Not after lost announcements or a failed
 * sample, which a full sample must follow.
 */
static bool tcp_unmoved(const recorder *r, bool counted, uint64_t moves, int64_t now)
{
    return counted && r->tcp_moves_known && moves == r->tcp_moves && !r->resync && r->sample_failing == 0 &&
           now < r->tcp_due_mono && now - r->tcp_dumped_mono < TCP_DUMP_AT_LEAST_MS;
}

/* After a sample that dumped the TCP tables, begun at began (monotonic):
 * the count its dump covers and when a timer it reported runs out. */
static void tcp_dumped(recorder *r, bool counted, uint64_t moves, int64_t began)
{
    r->tcp_moves = moves;
    r->tcp_moves_known = counted;
    r->tcp_dumped_mono = began;
    int64_t timer = ch_sampler_tcp_timer_ms(r->sampler);
    r->tcp_due_mono = timer >= 0 ? began + timer : INT64_MAX;
}

static void tick(recorder *r)
{
    if (r->closes != NULL)
        ch_closes_wait(r->closes, 0); /* what was announced up to this sample */
    /* After the announcements: every socket they announce had its owner
     * event written before it was destroyed. */
    ch_owner_events_read(r->owners);
    int64_t t0 = ch_mono_ms();
    int64_t at = sample_time(r, t0);
    take_closes(r, at);
    size_t before = ch_events_pending(&r->queue);
    ch_tracker_begin(r->tracker, at, &r->queue); /* known rows are marked as they are read */
    uint64_t moves = 0;
    bool counted = r->owners != NULL && ch_owner_events_tcp_moves(r->owners, &moves);
    size_t kept = 0;
    bool unmoved = tcp_unmoved(r, counted, moves, t0) && ch_sampler_leave_out_tcp(r->sampler, true) &&
                   ch_tracker_keep_unmoved(r->tracker, CH_TCP, &kept);
    if (!unmoved)
        ch_sampler_leave_out_tcp(r->sampler, false);
    if (ch_sampler_take(r->sampler, &r->sample, r->err, sizeof r->err) != 0) {
        take_notes(r);
        if (!r->sample_failing++)
            log_msg("sampling failed, will retry: %s", r->err);
        return;
    }
    take_notes(r);
    if (!unmoved)
        tcp_dumped(r, counted, moves, t0);
    else if (!r->noted_unmoved) {
        r->noted_unmoved = true;
        names_note(r, "TCP tables dumped only after kernel events counted a move of them (a change of state, a "
                      "SYN-ACK sent again), when a timer the last dump reported ran out, and at least every 10 s, "
                      "the samples in between finding the TCP sockets of the last dump as it left them");
    }
    /* Again, for the sockets the dump found that opened while it ran (a
     * long dump, of a machine with many sockets): their events were
     * written before the dump reached them. */
    ch_owner_events_read(r->owners);
    if (r->sample_failing)
        log_msg("sampling works again after %d failed attempts", r->sample_failing);
    r->sample_failing = 0;
    int64_t t_sampled = ch_mono_ms();
    /* The sample is dated when it was complete: a socket it found may have
     * opened while the dump ran, one it missed may have closed meanwhile. */
    int64_t began = at;
    at += t_sampled - t0;
    take_sampled(r, at);
    /* While announcements are lost, the sockets the samples miss wait for
     * theirs, which a mass close delays. */
    int64_t overruns = r->closes != NULL ? ch_closes_overruns(r->closes) : 0;
    ch_tracker_hold_missing(r->tracker, r->resync || overruns != r->overruns_applied);
    r->overruns_applied = overruns;
    if (ch_tracker_apply(r->tracker, &r->sample, at, r->last_sample, r->procs, &r->queue) != 0) {
        log_msg("out of memory while tracking sockets");
        return;
    }
    size_t changes = ch_events_pending(&r->queue) - before;
    r->last_sample = at;
    r->last_sample_mono = t_sampled;
    r->before_began = r->last_began;
    r->last_began = began;
    int64_t t_tracked = ch_mono_ms();
    names_note(r, ch_names_source_tick(&r->names));
    names_note(r, ch_procs_next_note(r->procs)); /* which way the first look-up read holders */
    int rc = ch_store_flush(r->store, &r->queue, at, r->err, sizeof r->err);
    if (rc != SQLITE_OK) {
        if (!r->write_failing++)
            log_msg("cannot write to %s, keeping %zu events for the next try: %s", r->db_path,
                    ch_events_pending(&r->queue), r->err);
    } else if (r->write_failing) {
        log_msg("writing to %s works again after %d failed attempts", r->db_path, r->write_failing);
        r->write_failing = 0;
    }
    size_t seen = r->sample.count + r->sample.consumed + kept;
    /* The new sockets' entries, once their OPENs are written (or kept):
     * the sample's rows are given back meanwhile. */
    ch_tracker_settle(r->tracker, &r->sample, &r->queue);
    if (rc == SQLITE_OK)
        ch_sample_trim(&r->sample); /* the opens written from it are gone from the queue */
    if (r->closes != NULL)
        count_overruns(r);
    r->resync = false; /* this sample was a full one */
    if (r->opt.verbose) {
        int64_t t_end = ch_mono_ms();
        log_msg("sample: %zu sockets, %zu changes, %zu queued, %lld ms (dump %lld, track %lld, write %lld)%s", seen,
                changes, ch_events_pending(&r->queue), (long long)(t_end - t0), (long long)(t_sampled - t0),
                (long long)(t_tracked - t_sampled), (long long)(t_end - t_tracked), unmoved ? ", TCP unmoved" : "");
    }
}

/* Resyncs after overruns come at most this often, so a storm of closes
 * cannot keep the recorder dumping back to back. */
#define RESYNC_MIN_MS 100

/*
 * Sleeps until the monotonic deadline, or until a stop is requested,
 * reading announcements of closed sockets meanwhile. When some were lost
 * (an overrun), it returns early so that a full sample resynchronises.
 */
static void sleep_until(recorder *r, int64_t deadline)
{
    while (!ch_host_stop_requested()) {
        if (r->closes != NULL && !r->resync && ch_closes_take_overrun(r->closes))
            r->resync = true;
        if (r->resync) {
            int64_t soonest = r->last_sample_mono + RESYNC_MIN_MS;
            deadline = deadline < soonest ? deadline : soonest;
        }
        int64_t left = deadline - ch_mono_ms();
        if (left <= 0)
            return;
        if (r->closes != NULL)
            ch_closes_wait(r->closes, left);
        else
            ch_host_sleep_ms(left);
    }
}

static const char *run_loop(recorder *r)
{
    int64_t start = ch_mono_ms(), next = start;
    for (;;) {
        tick(r);
        mark_closes(r);
        prune(r);
        check_ports(r);
        if (r->opt.once)
            return "once";
        /* Missed slots are skipped, never made up in a burst; a resync
         * ahead of its slot (after an overrun) keeps the slot. */
        int64_t now = ch_mono_ms();
        if (next <= now)
            next += r->opt.interval_ms;
        if (next <= now)
            next += ((now - next) / r->opt.interval_ms + 1) * r->opt.interval_ms;
        if (r->opt.duration_ms > 0 && next - start > r->opt.duration_ms)
            return "duration";
        sleep_until(r, next);
        if (ch_host_stop_requested())
            return "signal";
    }
}

/*
 * At the stop, with no sample to come: what the OS announced and the
 * kernel events reported since the last sample, read once more, so that
 * sockets closed just before the stop have their close times, final
 * counters and owners (those no sample saw get rows of their own, as at
 * any tick). Their times may be after the last sample, up to the stop.
 */
static void drain_at_stop(recorder *r)
{
    if (r->closes == NULL)
        return;
    ch_closes_wait(r->closes, 0);
    ch_owner_events_read(r->owners); /* after the announcements: see tick */
    int64_t now = ch_now_ms();
    take_closes(r, now > r->last_sample ? now : r->last_sample + 2);
    if (ch_tracker_close_announced(r->tracker, r->last_sample, &r->queue) != 0)
        log_msg("out of memory while closing the sockets announced at the stop");
}

/* Writes what is still queued, trying a few times, and ends the run. */
static int finish(recorder *r, const char *reason)
{
    drain_at_stop(r);
    /* The DNS answers captured since the last sample ride on this flush. */
    bool answers = ch_names_source_drain(&r->names);
    for (int attempt = 0; (ch_events_pending(&r->queue) > 0 || answers) && attempt < 5; attempt++) {
        if (ch_store_flush(r->store, &r->queue, r->last_sample, r->err, sizeof r->err) == SQLITE_OK)
            break;
        ch_host_sleep_ms(1000);
    }
    int rc = 0;
    if (ch_events_pending(&r->queue) > 0) {
        log_msg("could not write %zu events to %s: %s", ch_events_pending(&r->queue), r->db_path, r->err);
        rc = 1;
    }
    if (r->closes != NULL) {
        count_overruns(r);
        note_losses(r);
    }
    int64_t ended = ch_now_ms();
    if (ch_store_end_run(r->store, ended > r->last_sample ? ended : r->last_sample, reason, r->err, sizeof r->err) != 0) {
        log_msg("%s", r->err);
        rc = 1;
    }
    return rc;
}

/*
 * --upgrade: brings an existing database up to this program's schema
 * version (see ch_db_open_write) and says what it did on stdout; records
 * nothing. Returns the exit code.
 */
static int upgrade_only(recorder *r)
{
    if (find_db(r) != 0)
        return fail("%s", r->err);
    if (ch_path_kind(r->db_path) == CH_PATH_MISSING)
        return fail("no database at %s: nothing to upgrade (pass --db PATH)", r->db_path);
    int from = 0;
    if (ch_db_open_write(r->db_path, &r->db, &from, r->err) != 0)
        return fail("%s", r->err);
    if (from == ch_schema_version)
        ch_message(stdout, "", "%s: already at version %d", r->db_path, ch_schema_version);
    else if (from == 0)
        ch_message(stdout, "", "%s: was empty, now a new database at version %d", r->db_path, ch_schema_version);
    else
        ch_message(stdout, "", "%s: schema version %d -> %d", r->db_path, from, ch_schema_version);
    return 0;
}

static void cleanup(recorder *r)
{
    ch_names_source_stop(&r->names);
    ch_retention_free(r->retention);
    ch_ports_free(r->ports);
    ch_owner_events_close(r->owners);
    ch_owner_map_free(r->owner_facts);
    ch_cleared_addrs_free(r->cleared);
    ch_closes_close(r->closes);
    ch_store_close(r->store);
    if (r->db != NULL)
        sqlite3_close(r->db);
    ch_sampler_close(r->sampler);
    ch_tracker_free(r->tracker);
    ch_procs_free(r->procs);
    ch_sample_free(&r->sample);
    ch_events_free(&r->queue);
}

int main(int argc, char **argv)
{
    recorder r;
    memset(&r, 0, sizeof r);
    ch_platform_init(&argc, &argv);
    int rc = ch_record_parse_options(argc, argv, &r.opt);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    ch_host_private_files();
    ch_host_return_freed_memory();
    /* The database is used by this thread alone (the capture thread hands
     * its answers over), so SQLite need not lock the connection around each
     * call, nor count every allocation under a global lock. Before SQLite
     * is initialized, or refused harmlessly. */
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    /* The sorts that build a new database's indexes (store.c, a bulk
     * flush) keep 128 KiB of keys in memory before they spill to a file,
     * not the default 1 MiB. */
    sqlite3_config(SQLITE_CONFIG_PMASZ, 32);
    if (r.opt.upgrade) {
        rc = upgrade_only(&r);
        cleanup(&r);
        return rc;
    }
    ch_host_catch_stop();
    char host[256], os[256], boot_id[64];
    ch_host_name(host, sizeof host);
    ch_host_os(os, sizeof os);
    int have_boot = ch_host_boot_id(boot_id, sizeof boot_id) == 0;
    int64_t boot_time = ch_boot_time_ms();
    rc = start(&r);
    if (rc == 0) {
        ch_run_info run = {
            .mode = r.opt.once ? "once" : "continuous", .interval_ms = r.opt.interval_ms, .host = host, .os = os,
            .boot_id = have_boot ? boot_id : NULL, .boot_time = boot_time, .sampler = ch_sampler_name(r.sampler),
            .ident_is_cookie = ch_sampler_ident_is_stable(r.sampler), .version = CONNHIST_VERSION,
            .pid = ch_host_pid(), .uid = ch_host_uid(), .started_at = ch_now_ms(),
        };
        rc = resume(&r, &run, boot_time);
        if (rc == 0) {
            if (!r.opt.once)
                log_msg("recording to %s every %lld ms with %s", r.db_path, (long long)r.opt.interval_ms, run.sampler);
            const char *reason = run_loop(&r);
            rc = finish(&r, reason);
            if (!r.opt.once)
                log_msg("stopped (%s)", reason);
        }
    }
    cleanup(&r);
    ch_host_stop_done();
    return rc;
}
