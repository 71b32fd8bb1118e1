/*
 * Unit tests of the user side of the owner events: the map that keeps
 * facts until their lifetimes take them (capacity, least-recently-put
 * eviction and its count, removal against a reference model), the start
 * time conversion and record decoding, and what the tracker does with
 * facts (an announced socket's owner, a sampled socket /proc could not
 * attribute, a fact for a socket already tracked, a process that exited),
 * and the listeners whose owners accepted connections are inferred from.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "cleared_addrs.h"
#include "listeners.h"
#include "owner_map.h"
#include "owners_decode.h"
#include "owners_record.h"
#include "tracker.h"

static ch_owner_fact fact_of(uint64_t ident, int64_t pid)
{
    ch_owner_fact f = {.ident = ident, .pid = pid, .start = (uint64_t)pid * 10, .uid = 0};
    snprintf(f.name, sizeof f.name, "p%lld", (long long)pid);
    return f;
}

static void test_map_basics(void)
{
    ch_owner_map *m = ch_owner_map_new(4);
    ch_owner_fact out;
    CHECK(!ch_owner_map_take(m, 7, &out));
    ch_owner_fact a = fact_of(7, 100), later = fact_of(7, 200);
    ch_owner_map_put(m, &a);
    ch_owner_map_put(m, &later); /* the first actor stays */
    CHECK_INT(ch_owner_map_count(m), 1);
    CHECK(ch_owner_map_take(m, 7, &out));
    CHECK_INT(out.pid, 100);
    CHECK_STR(out.name, "p100");
    CHECK(!ch_owner_map_take(m, 7, &out)); /* taken: gone */
    CHECK_INT(ch_owner_map_count(m), 0);
    ch_owner_fact none = fact_of(0, 1); /* no socket identity: never kept */
    ch_owner_map_put(m, &none);
    CHECK_INT(ch_owner_map_count(m), 0);
    CHECK_INT(ch_owner_map_evicted(m), 0);
    ch_owner_map_free(m);
    CHECK(ch_owner_map_new(0) == NULL);
    /* A NULL map holds nothing and takes nothing. */
    ch_owner_map_put(NULL, &a);
    CHECK(!ch_owner_map_take(NULL, 7, &out));
    CHECK_INT(ch_owner_map_count(NULL), 0);
}

static void test_map_eviction(void)
{
    ch_owner_map *m = ch_owner_map_new(3);
    for (uint64_t id = 1; id <= 3; id++) {
        ch_owner_fact f = fact_of(id, (int64_t)id);
        ch_owner_map_put(m, &f);
    }
    /* Putting 1 again makes it the most recent: 2 is now the oldest. */
    ch_owner_fact again = fact_of(1, 99);
    ch_owner_map_put(m, &again);
    ch_owner_fact four = fact_of(4, 4), five = fact_of(5, 5);
    ch_owner_map_put(m, &four);
    CHECK_INT(ch_owner_map_evicted(m), 1);
    CHECK_INT(ch_owner_map_count(m), 3);
    ch_owner_fact out;
    CHECK(!ch_owner_map_take(m, 2, &out));
    /* Taking frees a slot: the next put evicts nothing. */
    CHECK(ch_owner_map_take(m, 3, &out));
    ch_owner_map_put(m, &five);
    CHECK_INT(ch_owner_map_evicted(m), 1);
    CHECK(ch_owner_map_take(m, 1, &out));
    CHECK_INT(out.pid, 1);
    CHECK(ch_owner_map_take(m, 4, &out));
    CHECK(ch_owner_map_take(m, 5, &out));
    CHECK_INT(ch_owner_map_count(m), 0);
    ch_owner_map_free(m);
}

/* Random puts and takes against a plain array as the model: what the map
 * holds, what it evicts (always the least recently put) and its count. */
static void test_map_model(void)
{
    enum { CAP = 64, IDS = 200, OPS = 200000 };
    ch_owner_map *m = ch_owner_map_new(CAP);
    uint64_t order[CAP]; /* the model: ids from least to most recently put */
    size_t n = 0;
    int64_t evicted = 0;
    srand(13);
    for (int op = 0; op < OPS; op++) {
        uint64_t id = (uint64_t)(rand() % IDS) + 1;
        size_t at = n;
        for (size_t i = 0; i < n; i++)
            if (order[i] == id)
                at = i;
        if (rand() % 3 == 0) {
            ch_owner_fact out;
            bool got = ch_owner_map_take(m, id, &out);
            CHECK(got == (at < n));
            if (got && out.ident != id)
                CHECK_INT(out.ident, id);
            if (at < n) {
                memmove(&order[at], &order[at + 1], (n - at - 1) * sizeof *order);
                n--;
            }
            continue;
        }
        ch_owner_fact f = fact_of(id, (int64_t)id);
        ch_owner_map_put(m, &f);
        if (at < n) {
            memmove(&order[at], &order[at + 1], (n - at - 1) * sizeof *order);
            n--;
        } else if (n == CAP) {
            memmove(&order[0], &order[1], (CAP - 1) * sizeof *order);
            n--;
            evicted++;
        }
        order[n++] = id;
    }
    CHECK_INT(ch_owner_map_count(m), n);
    CHECK_INT(ch_owner_map_evicted(m), evicted);
    CHECK(evicted > 0);
    for (size_t i = 0; i < n; i++) {
        ch_owner_fact out;
        CHECK(ch_owner_map_take(m, order[i], &out));
    }
    CHECK_INT(ch_owner_map_count(m), 0);
    ch_owner_map_free(m);
}

static void test_clock_ticks(void)
{
    /* USER_HZ 100: 10 ms a tick, truncated as the kernel does. */
    CHECK_INT(ch_ns_to_clock_ticks(0, 100), 0);
    CHECK_INT(ch_ns_to_clock_ticks(9999999, 100), 0);
    CHECK_INT(ch_ns_to_clock_ticks(10000000, 100), 1);
    CHECK_INT(ch_ns_to_clock_ticks(2099099999999ULL, 100), 209909);
    CHECK_INT(ch_ns_to_clock_ticks(2099100000000ULL, 100), 209910);
    CHECK_INT(ch_ns_to_clock_ticks(4000000000ULL, 250), 1000);
    /* The kernel's other two cases: 1024 (x * hz / 512) and 60 (x * 9). */
    CHECK_INT(ch_ns_to_clock_ticks(3000000000ULL, 1024), 3072);
    CHECK_INT(ch_ns_to_clock_ticks(3000000000ULL, 60), 180);
    CHECK_INT(ch_ns_to_clock_ticks(16666666ULL, 60), 0);
    CHECK_INT(ch_ns_to_clock_ticks(16666667ULL, 60), 1);
    CHECK_INT(ch_ns_to_clock_ticks(123, 0), 0);
}

static void test_decode(void)
{
    struct ch_owner_record r = {.cookie = 4242, .start_ns = 2099099999999ULL, .tgid = 321, .uid = 1000};
    memcpy(r.comm, "python3", 8);
    ch_owner_fact f;
    CHECK_INT(ch_owner_decode(&r, sizeof r, 100, &f), 0);
    CHECK_INT(f.ident, 4242);
    CHECK_INT(f.pid, 321);
    CHECK_INT(f.start, 209909);
    CHECK_INT(f.uid, 1000);
    CHECK_STR(f.name, "python3");
    /* A name that fills the kernel's 16 bytes is cut, never read past. */
    memset(r.comm, 'x', sizeof r.comm);
    CHECK_INT(ch_owner_decode(&r, sizeof r, 100, &f), 0);
    CHECK_INT(strlen(f.name), 15);
    CHECK_INT(ch_owner_decode(&r, sizeof r - 1, 100, &f), -1);
    r.cookie = 0;
    CHECK_INT(ch_owner_decode(&r, sizeof r, 100, &f), -1);
    r.cookie = 1;
    r.tgid = 0;
    CHECK_INT(ch_owner_decode(&r, sizeof r, 100, &f), -1);
}

static void test_close_decode(void)
{
    struct ch_close_record r = {.cookie = 77, .bytes_acked = 9001, .bytes_received = 1235};
    ch_close_fact f;
    CHECK_INT(ch_close_decode(&r, sizeof r, &f), 0);
    CHECK_INT(f.ident, 77);
    CHECK_INT(f.bytes_sent, 9001);
    CHECK_INT(f.bytes_received, 1235);
    ch_owner_fact o;
    CHECK_INT(ch_owner_decode(&r, sizeof r, 100, &o), -1); /* told apart by size */
    CHECK_INT(ch_close_decode(&r, sizeof r + 1, &f), -1);
    r.cookie = 0;
    CHECK_INT(ch_close_decode(&r, sizeof r, &f), -1);
}

static void test_close_addrs_decode(void)
{
    struct ch_close_addrs_record r = {.counters = {.cookie = 78, .bytes_acked = 1, .bytes_received = 2},
                                      .local_port = 40000,
                                      .remote_port = 443,
                                      .family = AF_INET};
    memcpy(r.local, (const uint8_t[]){10, 0, 0, 5}, 4);
    memcpy(r.remote, (const uint8_t[]){192, 0, 2, 7}, 4);
    ch_close_fact f;
    CHECK_INT(ch_close_decode(&r, sizeof r, &f), 0);
    CHECK_INT(f.ident, 78);
    CHECK_INT(f.bytes_received, 2);
    CHECK(f.has_addrs);
    char text[CH_ADDR_TEXT];
    ch_addr_format(&f.local, text);
    CHECK_STR(text, "10.0.0.5");
    ch_addr_format(&f.remote, text);
    CHECK_STR(text, "192.0.2.7");
    CHECK_INT(f.local_port, 40000);
    CHECK_INT(f.remote_port, 443);
    r.family = AF_INET6;
    memset(r.remote, 0, sizeof r.remote);
    r.remote[0] = 0x20, r.remote[1] = 0x01, r.remote[2] = 0x0d, r.remote[3] = 0xb8, r.remote[15] = 1;
    CHECK_INT(ch_close_decode(&r, sizeof r, &f), 0);
    ch_addr_format(&f.remote, text);
    CHECK_STR(text, "2001:db8::1");
    r.family = 1; /* AF_UNIX: not an address this record carries */
    CHECK_INT(ch_close_decode(&r, sizeof r, &f), 0);
    CHECK(!f.has_addrs);
    CHECK_INT(f.bytes_sent, 1);
    ch_owner_fact o;
    CHECK_INT(ch_owner_decode(&r, sizeof r, 100, &o), -1);
    r.counters.cookie = 0;
    CHECK_INT(ch_close_decode(&r, sizeof r, &f), -1);
}

/* Addresses the kernel cleared, given back to their announcement; kept
 * until the sample after the one they were put before. */
static void test_cleared_addrs(void)
{
    ch_cleared_addrs *m = ch_cleared_addrs_new();
    CHECK(m != NULL);
    ch_close_fact f = {.ident = 5, .has_addrs = true, .local_port = 40001, .remote_port = 8443};
    ch_addr_parse("10.0.0.5", &f.local);
    ch_addr_parse("192.0.2.7", &f.remote);
    ch_cleared_addrs_put(m, &f);
    ch_close_fact none = {.ident = 6}; /* no addresses: ignored */
    ch_cleared_addrs_put(m, &none);
    ch_sock cleared = {.proto = CH_TCP, .ident = 5, .local_port = 40001};
    ch_addr_parse("0.0.0.0", &cleared.local);
    ch_addr_parse("192.0.2.7", &cleared.remote);
    ch_sock s = cleared;
    s.ident = 6;
    CHECK(!ch_cleared_addrs_restore(m, &s));
    s = cleared;
    s.remote_port = 80; /* not cleared: left as announced */
    CHECK(!ch_cleared_addrs_restore(m, &s));
    CHECK_INT(s.remote_port, 80);
    s = cleared;
    s.proto = CH_UDP;
    CHECK(!ch_cleared_addrs_restore(m, &s));
    ch_cleared_addrs_age(m); /* its announcement may come with the next sample */
    s = cleared;
    CHECK(ch_cleared_addrs_restore(m, &s));
    char text[CH_ADDR_TEXT];
    ch_addr_format(&s.local, text);
    CHECK_STR(text, "10.0.0.5");
    CHECK_INT(s.remote_port, 8443);
    CHECK_INT(s.local_port, 40001);
    ch_cleared_addrs_age(m); /* not after that */
    s = cleared;
    CHECK(!ch_cleared_addrs_restore(m, &s));
    for (uint64_t i = 1; i <= 5000; i++) { /* a burst, searched after it was put */
        f.ident = i * 7919 % 5003 + 100;
        f.remote_port = (uint16_t)i;
        ch_cleared_addrs_put(m, &f);
    }
    s = cleared;
    s.ident = 2 * 7919 % 5003 + 100;
    CHECK(ch_cleared_addrs_restore(m, &s));
    CHECK_INT(s.remote_port, 2);
    ch_cleared_addrs_free(m);
}

static ch_sock tcp(uint64_t cookie, int lport, int rport, int state)
{
    ch_sock s;
    memset(&s, 0, sizeof s);
    s.proto = CH_TCP;
    ch_addr_parse("127.0.0.1", &s.local);
    ch_addr_parse("127.0.0.1", &s.remote);
    s.local_port = (uint16_t)lport;
    s.remote_port = (uint16_t)rport;
    s.state = (uint8_t)state;
    s.ident = cookie;
    s.uid = -1;
    s.bytes_sent = s.bytes_received = -1;
    return s;
}

/* This process's start in clock ticks, as /proc/self/stat gives it. */
static uint64_t own_start(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *s = strrchr(buf, ')');
    unsigned long long start = 0;
    /* Field 22: the space before field 3 is the one after ")". */
    for (int field = 2; s && field < 22; field++)
        s = strchr(s + 1, ' ');
    if (s)
        sscanf(s + 1, "%llu", &start);
    return start;
}

static const ch_owner *owner_of(const ch_events *q, int64_t id)
{
    for (size_t i = 0; i < q->count; i++)
        if (q->items[i].type == CH_EV_OPEN && q->items[i].lifetime_id == id)
            return &ch_events_opened(q, &q->items[i])->owner;
    return NULL;
}

static const ch_event *event_of(const ch_events *q, int type, int64_t id)
{
    for (size_t i = 0; i < q->count; i++)
        if (q->items[i].type == type && q->items[i].lifetime_id == id)
            return &q->items[i];
    return NULL;
}

/* Final counters from a close fact: a tracked connection closed by a sample
 * (no announcement) has them; a lifetime a sample closed before the fact
 * was read gets them at once; a fact naming the owner of such a lifetime
 * names it, once. */
static void test_close_facts(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_procs *procs = ch_procs_new();
    ch_owner_map *m = ch_owner_map_new(16);
    ch_tracker_use_owner_facts(t, m, procs);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock rows[] = {tcp(601, 40601, 80, CH_ST_ESTABLISHED), tcp(602, 40602, 80, CH_ST_ESTABLISHED)};
    rows[0].inode = rows[1].inode = 0; /* no process seen holding them */
    for (size_t i = 0; i < 2; i++)
        *ch_sample_add(&s) = rows[i];
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, procs, &q), 0);
    ch_events_keep(&q);
    q.count = 0;
    CHECK(ch_tracker_final_bytes(t, 601, 9001, 1235, &q)); /* reset: no announcement to come */
    CHECK_INT(q.count, 0);
    CHECK(!ch_tracker_final_bytes(t, 603, 1, 2, &q)); /* no sample saw it */
    CHECK_INT(q.count, 0);
    ch_sample_clear(&s);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, procs, &q), 0);
    const ch_event *c1 = event_of(&q, CH_EV_CLOSE, 1), *c2 = event_of(&q, CH_EV_CLOSE, 2);
    CHECK(c1 != NULL && c1->bytes_sent == 9001 && c1->bytes_received == 1235);
    CHECK(c2 != NULL && c2->bytes_sent == -1);
    q.count = 0;
    q.nopened = 0;
    CHECK(ch_tracker_final_bytes(t, 602, 50, 60, &q)); /* read after the sample closed it */
    const ch_event *a2 = event_of(&q, CH_EV_ANNOUNCED, 2);
    CHECK(a2 != NULL && a2->bytes_sent == 50 && a2->bytes_received == 60 && ch_seen_by_name(a2->seen_by) == NULL);
    ch_owner_fact me = {.ident = 602, .pid = getpid(), .start = own_start(), .uid = (int64_t)getuid()};
    ch_tracker_owner_fact(t, &me, &q);
    const ch_event *o2 = event_of(&q, CH_EV_OWNER, 2);
    CHECK(o2 != NULL && ch_events_opened(&q, o2)->owner.proc != NULL);
    CHECK_INT(ch_owner_map_count(m), 0); /* not kept for a lifetime to come */
    size_t n = q.count;
    ch_tracker_owner_fact(t, &me, &q); /* named once */
    CHECK_INT(q.count, n);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_owner_map_free(m);
    ch_procs_free(procs);
    ch_tracker_free(t);
}

static void test_tracker_facts(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_procs *procs = ch_procs_new();
    ch_owner_map *m = ch_owner_map_new(16);
    ch_tracker_use_owner_facts(t, m, procs);
    ch_sample s = {0};
    ch_events q = {0};
    uint64_t start = own_start();
    CHECK(start > 0);

    /* A connection announced destroyed, never sampled: its fact names this
     * process, read from /proc as a scan would (path, same start time). */
    ch_owner_fact me = {.ident = 501, .pid = getpid(), .start = start, .uid = (int64_t)getuid()};
    snprintf(me.name, sizeof me.name, "not-read");
    ch_tracker_owner_fact(t, &me, &q);
    ch_sock gone = tcp(501, 40001, 80, CH_ST_CLOSE);
    CHECK_INT(ch_tracker_destroyed(t, &gone, 1500, 1000, &q), 0);
    const ch_owner *o = owner_of(&q, 1);
    CHECK(o != NULL && o->proc != NULL);
    if (o != NULL && o->proc != NULL) {
        CHECK_INT(o->source, CH_OWNER_EVENT);
        CHECK_INT(o->holders, 1);
        CHECK_INT(o->proc->pid, getpid());
        CHECK(o->proc->path != NULL);                 /* alive: read from /proc */
        CHECK(strcmp(o->proc->name, "not-read") != 0); /* its real name */
        /* The very process row a /proc scan makes: found by a socket it holds. */
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct stat st;
        ch_procs *scan = ch_procs_new();
        ch_owner found = {0};
        uint64_t inode = fd >= 0 && fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
        ch_procs_resolve(scan, &inode, 1, &found);
        CHECK(found.proc != NULL && found.source == CH_OWNER_SOCKET);
        if (found.proc != NULL) {
            CHECK_INT(o->proc->start_time, found.proc->start_time);
            CHECK_STR(o->proc->name, found.proc->name);
            CHECK_STR(o->proc->path, found.proc->path);
        }
        ch_procs_free(scan);
        close(fd);
    }
    CHECK_INT(ch_owner_map_count(m), 0); /* taken */

    /* A process that exited (no such pid): the event's name and uid, no
     * path or command line; a later fact for it finds the same record. */
    ch_owner_fact ghost = {.ident = 502, .pid = 4194304 + 77, .start = 12345, .uid = 0};
    snprintf(ghost.name, sizeof ghost.name, "curl");
    ch_tracker_owner_fact(t, &ghost, &q);
    ch_sock gone2 = tcp(502, 40002, 80, CH_ST_CLOSE);
    CHECK_INT(ch_tracker_destroyed(t, &gone2, 1600, 1000, &q), 0);
    o = owner_of(&q, 2);
    CHECK(o != NULL && o->proc != NULL);
    if (o != NULL && o->proc != NULL) {
        CHECK_STR(o->proc->name, "curl");
        CHECK(o->proc->path == NULL && o->proc->cmdline == NULL);
        CHECK_INT(o->proc->uid, 0);
        CHECK(ch_procs_identified(procs, &ghost) == o->proc);
    }
    /* An announcement without a fact: no owner, never a guess. */
    ch_sock gone3 = tcp(503, 40003, 80, CH_ST_CLOSE);
    CHECK_INT(ch_tracker_destroyed(t, &gone3, 1700, 1000, &q), 0);
    o = owner_of(&q, 3);
    CHECK(o != NULL && o->proc == NULL && o->source == CH_OWNER_UNKNOWN);
    ch_events_clear(&q);

    /* A sampled socket /proc finds no process for (a TIME_WAIT entry has no
     * inode) takes its fact; one that has a fact but was attributed by /proc
     * would keep the /proc owner (procs is not given here, so none is). */
    ch_owner_fact tw = ghost;
    tw.ident = 504;
    ch_tracker_owner_fact(t, &tw, &q);
    ch_sock entry = tcp(504, 40004, 80, CH_ST_TIME_WAIT);
    ch_sock other = tcp(505, 40005, 80, CH_ST_ESTABLISHED);
    ch_sock rows[] = {entry, other};
    ch_sample_clear(&s);
    for (size_t i = 0; i < 2; i++)
        *ch_sample_add(&s) = rows[i];
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    o = owner_of(&q, 4);
    CHECK(o != NULL && o->proc != NULL && o->source == CH_OWNER_EVENT);
    o = owner_of(&q, 5);
    CHECK(o != NULL && o->proc == NULL);
    ch_events_clear(&q);

    /* A fact read after a sample opened its socket's lifetime without an
     * owner (a connection found in the backlog) names the owner late: an
     * OWNER event, once; one for a lifetime that has an owner is dropped.
     * The map keeps nothing that no lifetime will take. */
    ch_owner_fact late = ghost;
    late.ident = 505;
    ch_tracker_owner_fact(t, &late, &q);
    ch_tracker_owner_fact(t, &late, &q);
    ch_owner_fact again = ghost;
    again.ident = 504;
    ch_tracker_owner_fact(t, &again, &q);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.count > 0 ? q.items[0].type : -1, CH_EV_OWNER);
    CHECK_INT(q.count > 0 ? q.items[0].lifetime_id : -1, 5);
    o = q.count > 0 ? &ch_events_opened(&q, &q.items[0])->owner : NULL;
    CHECK(o != NULL && o->source == CH_OWNER_EVENT && o->proc == ch_procs_identified(procs, &ghost));
    CHECK_INT(ch_owner_map_count(m), 0);
    CHECK_INT(ch_owner_map_evicted(m), 0);

    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
    ch_owner_map_free(m);
    ch_procs_free(procs);
}

/* The owner of a connection's listener: by port and address (any address
 * of the connection's family included), only when exactly one owner is
 * possible. */
/*
 * The attribution cache by inode: a socket this process holds on two
 * descriptors is its, with one holder; the same inode plus 2^32 (the
 * cache keeps 32 bits: socket inodes on Linux never need more) is nobody's
 * and never looked up; a second look-up comes from the cache, and a
 * forgotten inode is looked up again.
 */
static void test_resolve_inodes(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0), again = fd >= 0 ? dup(fd) : -1;
    struct stat st;
    CHECK(again >= 0 && fstat(fd, &st) == 0);
    uint64_t inodes[] = {(uint64_t)st.st_ino, (uint64_t)st.st_ino + (1ULL << 32), 0};
    ch_owner owners[3];
    ch_procs *p = ch_procs_new();
    CHECK(ch_procs_resolve(p, inodes, 3, owners) > 0);
    CHECK(owners[0].proc != NULL && owners[0].proc->pid == getpid());
    CHECK_INT(owners[0].holders, 1);
    CHECK_INT(owners[0].source, CH_OWNER_SOCKET);
    CHECK(owners[1].proc == NULL && owners[1].source == CH_OWNER_UNKNOWN);
    CHECK(owners[2].proc == NULL);
    CHECK_INT(ch_procs_resolve(p, inodes, 3, owners), 0); /* cached */
    CHECK(owners[0].proc != NULL && owners[1].proc == NULL);
    CHECK_INT(ch_procs_resolve(p, inodes + 1, 1, owners), 0); /* never looked up */
    ch_procs_forget(p, inodes, 1);
    CHECK(ch_procs_resolve(p, inodes, 1, owners) > 0);
    CHECK(owners[0].proc != NULL);
    ch_procs_free(p);
    close(again);
    close(fd);
}

static void test_listeners(void)
{
    ch_proc web = {.pid = 10}, other = {.pid = 11};
    ch_listeners *l = ch_listeners_new();
    CHECK(l != NULL);
    if (l == NULL)
        return;
    ch_sock any4 = tcp(1, 80, 0, CH_ST_LISTEN), lo6 = tcp(2, 443, 0, CH_ST_LISTEN);
    memset(&any4.local.bytes, 0, sizeof any4.local.bytes);
    memset(&any4.remote.bytes, 0, sizeof any4.remote.bytes);
    ch_addr_parse("::1", &lo6.local);
    CHECK_INT(ch_listeners_add(l, &any4, 1, &web), 0);
    CHECK_INT(ch_listeners_add(l, &lo6, 2, &other), 0);
    ch_sock conn = tcp(3, 80, 50000, CH_ST_ESTABLISHED);
    CHECK(ch_listeners_owner(l, &conn) == &web);            /* 0.0.0.0:80 accepts 127.0.0.1:80 */
    ch_sock client = tcp(4, 50000, 80, CH_ST_ESTABLISHED);
    CHECK(ch_listeners_owner(l, &client) == NULL);          /* no listener on its port */
    ch_sock six = tcp(5, 443, 50001, CH_ST_TIME_WAIT);
    ch_addr_parse("::1", &six.local);
    ch_addr_parse("::1", &six.remote);
    CHECK(ch_listeners_owner(l, &six) == &other);
    ch_addr_parse("::2", &six.local);
    CHECK(ch_listeners_owner(l, &six) == NULL);             /* ::1 does not listen on ::2 */
    ch_sock reset = tcp(6, 80, 0, CH_ST_CLOSE);
    CHECK(ch_listeners_owner(l, &reset) == NULL);           /* no peer: not a connection */
    /* A second listener on port 80 of another process (SO_REUSEPORT), or
     * of an unknown one: either could have accepted it, so none. */
    ch_sock again = tcp(7, 80, 0, CH_ST_LISTEN);
    CHECK_INT(ch_listeners_add(l, &again, 7, &other), 0);
    CHECK(ch_listeners_owner(l, &conn) == NULL);
    ch_listeners_drop(l, 7);
    CHECK(ch_listeners_owner(l, &conn) == &web);
    CHECK_INT(ch_listeners_add(l, &again, 8, NULL), 0);
    CHECK(ch_listeners_owner(l, &conn) == NULL);
    ch_listeners_drop(l, 8);
    CHECK_INT(ch_listeners_add(l, &again, 9, &web), 0);     /* the same process twice: it */
    CHECK(ch_listeners_owner(l, &conn) == &web);
    ch_listeners_drop(l, 1);
    ch_listeners_drop(l, 9);
    CHECK(ch_listeners_owner(l, &conn) == NULL);            /* closed */
    ch_listeners_free(l);
}

int main(void)
{
    test_resolve_inodes();
    test_map_basics();
    test_map_eviction();
    test_map_model();
    test_clock_ticks();
    test_decode();
    test_close_decode();
    test_close_addrs_decode();
    test_cleared_addrs();
    test_tracker_facts();
    test_close_facts();
    test_listeners();
    return check_report("test_owners");
}
