/*
 * Unit tests of the tracker's diff logic with synthetic samples: opens,
 * state changes, TIME_WAIT continuity, a four-tuple reused by a new socket,
 * closes, restart continuity, reboot, and rows without identity.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include "check.h"
#include "gone_map.h"
#include "hidden_socket.h"
#include "procs.h"
#include "tracker.h"

static ch_sock tcp(uint64_t cookie, const char *local, int lport, const char *remote, int rport, int state)
{
    ch_sock s;
    memset(&s, 0, sizeof s);
    s.proto = CH_TCP;
    ch_addr_parse(local, &s.local);
    ch_addr_parse(remote, &s.remote);
    s.local_port = (uint16_t)lport;
    s.remote_port = (uint16_t)rport;
    s.state = (uint8_t)state;
    s.ident = cookie;
    s.inode = cookie ? cookie + 1000 : 0;
    s.uid = 0;
    return s;
}

static void sample_of(ch_sample *s, const ch_sock *rows, size_t n)
{
    ch_sample_clear(s);
    for (size_t i = 0; i < n; i++)
        *ch_sample_add(s) = rows[i];
}

/* Row i of s moves on to state. */
static void set_state(ch_sample *s, size_t i, int state)
{
    ch_sock row = ch_sample_row(s, i);
    row.state = (uint8_t)state;
    CHECK_INT(ch_sample_put(s, i, &row), 0);
}

/* Counts events of a type in q. */
static int count(const ch_events *q, int type)
{
    int n = 0;
    for (size_t i = 0; i < q->count; i++)
        n += q->items[i].type == type;
    return n;
}

static const ch_event *find(const ch_events *q, int type, int64_t id)
{
    for (size_t i = 0; i < q->count; i++)
        if (q->items[i].type == type && q->items[i].lifetime_id == id)
            return &q->items[i];
    return NULL;
}

static void test_lifecycle(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock a = tcp(11, "10.0.0.1", 40000, "10.0.0.2", 443, CH_ST_SYN_SENT);
    ch_sock l = tcp(12, "0.0.0.0", 22, "0.0.0.0", 0, CH_ST_LISTEN);

    ch_sock s1[] = {a, l};
    sample_of(&s, s1, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    CHECK_INT(count(&q, CH_EV_OPEN), 2);
    CHECK_INT(q.items[0].lifetime_id, 1);
    CHECK_INT(q.items[0].state, CH_ST_SYN_SENT);
    CHECK_INT(q.items[0].at, 1000);
    CHECK(ch_events_opened(&q, &q.items[0])->owner.proc == NULL);
    q.count = 0;

    /* Nothing changed: no events at all (dedup). */
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK_INT(q.count, 0);

    /* SYN_SENT -> ESTABLISHED -> TIME_WAIT keeps one lifetime (cookie survives). */
    set_state(&s, 0, CH_ST_ESTABLISHED);
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_STATE);
    CHECK_INT(q.items[0].state, CH_ST_ESTABLISHED);
    CHECK_INT(q.items[0].lifetime_id, 1);
    q.count = 0;
    ch_sock r0 = ch_sample_row(&s, 0);
    r0.state = CH_ST_TIME_WAIT;
    r0.inode = 0; /* the kernel reports no inode in TIME_WAIT */
    CHECK_INT(ch_sample_put(&s, 0, &r0), 0);
    CHECK_INT(ch_tracker_apply(t, &s, 4000, 3000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_STATE);
    CHECK_INT(q.items[0].lifetime_id, 1);
    q.count = 0;

    /* Gone: closed with last_seen = previous sample, closed_at = this one. */
    sample_of(&s, &l, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 5000, 4000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    const ch_event *c = find(&q, CH_EV_CLOSE, 1);
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->last_seen, 4000);
        CHECK_INT(c->at, 5000);
        CHECK_STR(ch_close_reason_name(c->reason), "gone");
    }
    q.count = 0;

    /* The same four-tuple reused by a new socket (new cookie) is a new lifetime. */
    ch_sock again = tcp(13, "10.0.0.1", 40000, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    ch_sock s2[] = {l, again};
    sample_of(&s, s2, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 6000, 5000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_OPEN);
    CHECK_INT(q.items[0].lifetime_id, 3);
    CHECK_INT(ch_tracker_count(t), 2);

    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* A restart: lifetimes open in the database continue or close honestly. */
static void test_restart(void)
{
    ch_tracker *t = ch_tracker_new(100);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock still = tcp(21, "::1", 5000, "::1", 6000, CH_ST_ESTABLISHED);
    ch_sock gone = tcp(22, "127.0.0.1", 7000, "127.0.0.1", 8000, CH_ST_ESTABLISHED);
    CHECK_INT(ch_tracker_load(t, &still, 7), 0);
    CHECK_INT(ch_tracker_load(t, &gone, 8), 0);
    still.state = CH_ST_CLOSE_WAIT;
    ch_sock fresh = tcp(23, "127.0.0.1", 9000, "0.0.0.0", 0, CH_ST_LISTEN);
    ch_sock rows[] = {still, fresh};
    sample_of(&s, rows, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 90000, 60000, NULL, &q), 0);
    CHECK_INT(q.count, 3);
    const ch_event *st = find(&q, CH_EV_STATE, 7);
    CHECK(st != NULL && st->state == CH_ST_CLOSE_WAIT);
    const ch_event *c = find(&q, CH_EV_CLOSE, 8);
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->last_seen, 60000);
        CHECK_INT(c->at, 90000);
        CHECK_STR(ch_close_reason_name(c->reason), "gone_while_stopped");
    }
    CHECK(find(&q, CH_EV_OPEN, 100) != NULL);
    CHECK(find(&q, CH_EV_OPEN, 7) == NULL); /* no duplicate row for a continuing socket */
    q.count = 0;

    /* Reboot: everything open is closed at once. */
    CHECK_INT(ch_tracker_close_all(t, 90000, 120000, CH_CLOSE_REBOOT, &q), 0);
    CHECK_INT(count(&q, CH_EV_CLOSE), 2);
    CHECK_STR(ch_close_reason_name(q.items[0].reason), "reboot");
    CHECK_INT(ch_tracker_count(t), 0);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* /proc/net gives no cookie: TIME_WAIT rows (inode 0) continue by address. */
static void test_identless(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock est = tcp(0, "127.0.0.1", 41000, "127.0.0.1", 80, CH_ST_ESTABLISHED);
    est.ident = est.inode = 555;
    est.bytes_sent = 700;
    est.bytes_received = 30;
    sample_of(&s, &est, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    q.count = 0;
    ch_sock tw = est;
    tw.ident = tw.inode = 0;
    tw.state = CH_ST_TIME_WAIT;
    tw.bytes_sent = tw.bytes_received = -1; /* the TIME_WAIT row reports none (Windows) */
    sample_of(&s, &tw, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_STATE);
    CHECK_INT(q.items[0].lifetime_id, 1);
    CHECK_INT(q.items[0].bytes_sent, 700); /* the connection's last counters are kept */
    CHECK_INT(q.items[0].bytes_received, 30);
    q.count = 0;
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    CHECK_INT(q.count, 0);
    ch_sample_clear(&s);
    CHECK_INT(ch_tracker_apply(t, &s, 4000, 3000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_CLOSE);
    CHECK_INT(q.items[0].bytes_sent, 700);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/*
 * A new socket listed twice in one sample (a dump whose table changed
 * under it) is one lifetime, and stays one: the repeat once made a second
 * entry of the same key, and when it was swept the index lost the first
 * too, so the next sample opened a third lifetime. With an identity and
 * without (/proc/net/tcp's rows carry the inode; TIME_WAIT rows none).
 */
static void test_fresh_repeats(void)
{
    for (int with_ident = 0; with_ident <= 1; with_ident++) {
        ch_tracker *t = ch_tracker_new(1);
        ch_sample s = {0};
        ch_events q = {0};
        ch_sock a = tcp(with_ident ? 21 : 0, "127.0.0.1", 43552, "127.0.0.1", 42193, CH_ST_ESTABLISHED);
        ch_sock b = tcp(with_ident ? 22 : 0, "127.0.0.1", 43553, "127.0.0.1", 42193, CH_ST_ESTABLISHED);
        ch_sock twice[] = {a, b, a, b, a};
        sample_of(&s, twice, 5);
        CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
        CHECK_INT(count(&q, CH_EV_OPEN), 2);
        CHECK_INT(q.items[0].lifetime_id, 1);
        CHECK_INT(q.items[1].lifetime_id, 2);
        ch_sock once[] = {a, b};
        for (int64_t at = 2000; at <= 4000; at += 1000) {
            q.count = 0;
            sample_of(&s, once, 2);
            CHECK_INT(ch_tracker_apply(t, &s, at, at - 1000, NULL, &q), 0);
            CHECK_INT(q.count, 0); /* no close, no new lifetime */
        }
        q.count = 0;
        ch_sample_clear(&s);
        CHECK_INT(ch_tracker_apply(t, &s, 5000, 4000, NULL, &q), 0);
        CHECK_INT(count(&q, CH_EV_CLOSE), 2);
        CHECK(find(&q, CH_EV_CLOSE, 1) != NULL);
        CHECK(find(&q, CH_EV_CLOSE, 2) != NULL);
        ch_events_free(&q);
        ch_sample_free(&s);
        ch_tracker_free(t);
    }
}

/* A UDP socket that connect()s elsewhere: a new lifetime for the new peer. */
static void test_readdressed(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock u = tcp(31, "0.0.0.0", 5353, "0.0.0.0", 0, CH_ST_UNCONN);
    u.proto = CH_UDP;
    sample_of(&s, &u, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    q.count = 0;
    ch_sock r0 = ch_sample_row(&s, 0);
    ch_addr_parse("10.1.1.1", &r0.remote);
    r0.remote_port = 53;
    r0.state = CH_ST_ESTABLISHED;
    CHECK_INT(ch_sample_put(&s, 0, &r0), 0);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    const ch_event *c = find(&q, CH_EV_CLOSE, 1);
    CHECK(c != NULL && strcmp(ch_close_reason_name(c->reason), "readdressed") == 0);
    CHECK(find(&q, CH_EV_OPEN, 2) != NULL);
    /* The same bytes in another family are other addresses (the tracker
     * keeps only a hash of them, which must tell the two apart). */
    q.count = 0;
    r0.local.family = r0.remote.family = 6;
    CHECK_INT(ch_sample_put(&s, 0, &r0), 0);
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    c = find(&q, CH_EV_CLOSE, 2);
    CHECK(c != NULL && strcmp(ch_close_reason_name(c->reason), "readdressed") == 0);
    CHECK(find(&q, CH_EV_OPEN, 3) != NULL);
    q.count = 0;
    CHECK_INT(ch_tracker_apply(t, &s, 4000, 3000, NULL, &q), 0); /* the same again: nothing */
    CHECK_INT(q.count, 0);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/*
 * A TCP socket read while the kernel closes it, with a port cleared: the
 * local port once the socket let it go (the TIME_WAIT entry after it has
 * it again), or the remote port after a reset; a UDP socket likewise
 * without its local port. The same lifetime, not one readdressed; a UDP
 * socket that unconnects is another lifetime still.
 */
static void test_ports_cleared(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock rows[] = {tcp(41, "127.0.0.1", 41868, "127.10.7.1", 45001, CH_ST_ESTABLISHED),
                      tcp(42, "127.0.0.1", 41870, "127.10.7.1", 45001, CH_ST_ESTABLISHED),
                      tcp(43, "10.0.0.1", 5353, "10.1.1.1", 53, CH_ST_ESTABLISHED),
                      tcp(44, "10.0.0.1", 5354, "10.1.1.1", 53, CH_ST_ESTABLISHED)};
    rows[2].proto = rows[3].proto = CH_UDP;
    sample_of(&s, rows, 4);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    q.count = 0;
    ch_sock cleared[] = {rows[0], rows[1], rows[2], rows[3]};
    cleared[0].local_port = 0;
    cleared[0].state = CH_ST_FIN_WAIT2;
    cleared[1].remote_port = 0;
    cleared[1].state = CH_ST_CLOSE;
    cleared[2].remote_port = 0;
    ch_addr_parse("0.0.0.0", &cleared[2].remote);
    cleared[2].state = CH_ST_UNCONN;
    cleared[3].local_port = 0;
    sample_of(&s, cleared, 4);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK(find(&q, CH_EV_STATE, 1) != NULL && find(&q, CH_EV_STATE, 1)->state == CH_ST_FIN_WAIT2);
    CHECK(find(&q, CH_EV_STATE, 2) != NULL && find(&q, CH_EV_STATE, 2)->state == CH_ST_CLOSE);
    CHECK(find(&q, CH_EV_CLOSE, 1) == NULL && find(&q, CH_EV_CLOSE, 2) == NULL && find(&q, CH_EV_CLOSE, 4) == NULL);
    const ch_event *c = find(&q, CH_EV_CLOSE, 3);
    CHECK(c != NULL && c->reason == CH_CLOSE_READDRESSED);
    CHECK_INT(count(&q, CH_EV_OPEN), 1); /* the UDP socket's second lifetime */
    q.count = 0;
    rows[0].state = CH_ST_TIME_WAIT; /* the entry it left, with its port */
    sample_of(&s, rows, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    CHECK(find(&q, CH_EV_STATE, 1) != NULL && find(&q, CH_EV_STATE, 1)->state == CH_ST_TIME_WAIT);
    CHECK_INT(count(&q, CH_EV_OPEN), 0);
    c = find(&q, CH_EV_CLOSE, 2);
    CHECK(c != NULL && c->reason == CH_CLOSE_GONE);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* Many sockets in and out: the index stays consistent through growth and removal. */
static void test_many(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    enum { N = 20000 };
    for (int round = 0; round < 3; round++) {
        ch_sample_clear(&s);
        for (int i = 0; i < N; i++) {
            if ((i + round) % 3 == 0)
                continue; /* a different third missing each round */
            *ch_sample_add(&s) = tcp((uint64_t)i + 1, "10.0.0.1", 1 + i % 60000, "10.0.0.2", 80, CH_ST_ESTABLISHED);
        }
        q.count = 0;
        CHECK_INT(ch_tracker_apply(t, &s, 1000 * (round + 1), 1000 * round, NULL, &q), 0);
        CHECK_INT(ch_tracker_count(t), s.count);
        if (round > 0) {
            int opens = 0, closes = 0; /* back: missing last round; gone: missing now */
            for (int i = 0; i < N; i++) {
                opens += (i + round - 1) % 3 == 0;
                closes += (i + round) % 3 == 0;
            }
            CHECK_INT(count(&q, CH_EV_OPEN), opens);
            CHECK_INT(count(&q, CH_EV_CLOSE), closes);
        }
    }
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* An announcement of a destroyed socket as the sock_diag event carries it:
 * no inode, state as reported, the final byte counters. */
static ch_sock announced(ch_sock s, int state, int64_t sent, int64_t received)
{
    s.inode = 0;
    s.state = (uint8_t)state;
    s.bytes_sent = sent;
    s.bytes_received = received;
    return s;
}

/* The TIME_WAIT entry a connection left: a cookie of its own, no inode, no counters. */
static ch_sock time_wait_entry(ch_sock s, uint64_t cookie, int state)
{
    s.ident = cookie;
    s.inode = 0;
    s.state = (uint8_t)state;
    s.bytes_sent = s.bytes_received = -1;
    return s;
}

/* Announcements taken as they are read: a known socket's is taken with no
 * event and no copy, and closes it at that time; an unknown one is left to
 * ch_tracker_destroyed. */
static void test_destroyed_as_read(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock a = tcp(61, "10.0.0.1", 40000, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    sample_of(&s, &a, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    q.count = 0;
    ch_sock gone = announced(a, CH_ST_CLOSE, 5, 6);
    ch_sock stranger = announced(tcp(62, "10.0.0.1", 40001, "10.0.0.2", 443, 0), CH_ST_CLOSE, 1, 1);
    CHECK(ch_tracker_destroyed_known(t, &gone, 1300));
    CHECK(!ch_tracker_destroyed_known(t, &stranger, 1400));
    CHECK_INT(q.count, 0);
    ch_sample_clear(&s);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    const ch_event *c = find(&q, CH_EV_CLOSE, 1);
    CHECK(c != NULL && c->at == 1300 && c->bytes_sent == 5);
    CHECK_STR(c ? ch_seen_by_name(c->seen_by) : NULL, "destroy_event");
    CHECK_INT(q.count, 1);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* A sample gives back the room a much larger one left, keeping its rows. */
static void test_sample_trim(void)
{
    ch_sample s = {0};
    for (int i = 0; i < 5000; i++)
        CHECK(ch_sample_add(&s) != NULL);
    CHECK(s.at_cap >= 5000);
    ch_sample_trim(&s);
    CHECK(s.at_cap >= 5000); /* all in use */
    ch_sample_clear(&s);
    for (int i = 0; i < 10; i++)
        ch_sample_add(&s)->local_port = (uint16_t)(i + 1);
    ch_sample_trim(&s);
    CHECK_INT(s.at_cap, 1025); /* room for 1,024 rows, and where the last one ends */
    CHECK_INT(s.packed_cap, 64 * 1024);
    CHECK_INT(s.count, 10);
    CHECK_INT(ch_sample_row(&s, 9).local_port, 10);
    CHECK_INT(ch_sample_row(&s, 8).local_port, 9);
    ch_sample_trim(&s);
    CHECK_INT(s.at_cap, 1025);
    ch_sample_free(&s);
}

/* A tracked socket announced destroyed: closed at the announced time with
 * its final counters; one announced while moving into TIME_WAIT under its
 * cookie goes on, the move dated by the announcement. */
static void test_destroyed_known(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock a = tcp(41, "10.0.0.1", 40000, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    ch_sock b = tcp(42, "10.0.0.1", 40001, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    a.bytes_sent = b.bytes_sent = 10;
    a.bytes_received = b.bytes_received = 20;
    ch_sock rows[] = {a, b};
    sample_of(&s, rows, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    q.count = 0;

    ch_sock gone = announced(a, CH_ST_CLOSE, 5001, 7002);
    ch_sock to_tw = announced(b, CH_ST_CLOSE, 301, 401);
    CHECK_INT(ch_tracker_destroyed(t, &gone, 1234, 1000, &q), 0);
    CHECK_INT(ch_tracker_destroyed(t, &to_tw, 1300, 1000, &q), 0);
    CHECK_INT(q.count, 0); /* nothing until the next sample */
    ch_sock tw = time_wait_entry(b, 42, CH_ST_TIME_WAIT);
    sample_of(&s, &tw, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK_INT(q.count, 2);
    const ch_event *c = find(&q, CH_EV_CLOSE, 1);
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->at, 1234);
        CHECK_INT(c->last_seen, 1000);
        CHECK_INT(c->bytes_sent, 5001);
        CHECK_INT(c->bytes_received, 7002);
        CHECK_STR(ch_close_reason_name(c->reason), "gone");
        CHECK_STR(ch_seen_by_name(c->seen_by), "destroy_event");
    }
    const ch_event *st = find(&q, CH_EV_STATE, 2);
    CHECK(st != NULL);
    if (st) {
        CHECK_INT(st->state, CH_ST_TIME_WAIT);
        CHECK_INT(st->at, 1300);
        CHECK_INT(st->bytes_sent, 301);
    }
    CHECK(find(&q, CH_EV_CLOSE, 2) == NULL);
    CHECK_INT(ch_tracker_count(t), 1);
    q.count = 0;

    /* The TIME_WAIT entry goes: closed by the sample, counters kept. */
    ch_sample_clear(&s);
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    c = find(&q, CH_EV_CLOSE, 2);
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->at, 3000);
        CHECK_INT(c->last_seen, 2000);
        CHECK_INT(c->bytes_sent, 301);
        CHECK(ch_seen_by_name(c->seen_by) == NULL);
    }
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/*
 * An announcement's time is kept in the tracker's entry when it lies at
 * most 4.4 minutes after the first one noted, beside the entries when not
 * (a much later one, an earlier one): every CLOSE has its own time.
 */
static void test_destroyed_far_apart(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock rows[3];
    for (int i = 0; i < 3; i++)
        rows[i] = tcp(51 + (uint64_t)i, "10.0.0.1", 41000 + i, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    sample_of(&s, rows, 3);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    q.count = 0;
    const int64_t at[3] = {600000, 600000 + 300000, 599000}; /* the first, 5 minutes later, earlier */
    for (int i = 0; i < 3; i++) {
        ch_sock gone = announced(rows[i], CH_ST_CLOSE, 10 + i, 20 + i);
        CHECK_INT(ch_tracker_destroyed(t, &gone, at[i], 1000, &q), 0);
    }
    ch_sample_clear(&s);
    CHECK_INT(ch_tracker_apply(t, &s, 1000000, 1000, NULL, &q), 0);
    for (int i = 0; i < 3; i++) {
        const ch_event *c = find(&q, CH_EV_CLOSE, 1 + i);
        CHECK(c != NULL);
        if (c) {
            CHECK_INT(c->at, at[i]);
            CHECK_INT(c->bytes_sent, 10 + i);
        }
    }
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* A socket no sample saw: a lifetime from the announcement alone, at once. */
static void test_destroyed_unknown(void)
{
    ch_tracker *t = ch_tracker_new(10);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock u = announced(tcp(51, "10.0.0.1", 40000, "10.0.0.2", 443, 0), CH_ST_CLOSE, 102, 1);
    CHECK_INT(ch_tracker_destroyed(t, &u, 2500, 2000, &q), 0);
    CHECK_INT(q.count, 2);
    const ch_event *o = find(&q, CH_EV_OPEN, 10), *c = find(&q, CH_EV_CLOSE, 10);
    CHECK(o != NULL && c != NULL);
    if (o && c) {
        CHECK_INT(o->at, 2499);
        CHECK_INT(o->opened_after, 2000);
        CHECK_INT(o->state, CH_ST_CLOSE);
        CHECK_STR(ch_seen_by_name(o->seen_by), "destroy_event_only");
        CHECK(ch_events_opened(&q, o)->owner.proc == NULL);
        CHECK_INT(c->at, 2500);
        CHECK_INT(c->last_seen, 2499);
        CHECK_INT(c->bytes_sent, 102);
        CHECK_INT(c->bytes_received, 1);
        CHECK_STR(ch_seen_by_name(c->seen_by), "destroy_event_only");
    }
    /* The next sample has nothing of it: the two events stay as they are. */
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    CHECK_INT(q.count, 2);
    CHECK_INT(ch_tracker_count(t), 0);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/*
 * Issue 4: a connection that opened and closed between two samples. The end
 * that closed first is announced destroyed (in CLOSE) and lives on as a
 * TIME_WAIT entry with a new cookie: one lifetime, opened by the
 * announcement, moved to TIME_WAIT at the announced time, open while the
 * entry lives. The other end keeps its announcement-only lifetime.
 */
static void test_time_wait_continues_announced(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock client = tcp(61, "127.0.0.1", 40000, "127.0.0.1", 8080, 0);
    ch_sock server = tcp(62, "127.0.0.1", 8080, "127.0.0.1", 40000, 0);
    ch_sock other = tcp(63, "127.0.0.1", 40002, "127.0.0.1", 8080, 0); /* closed first, in FIN_WAIT2 */
    ch_sample_clear(&s);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    ch_sock c1 = announced(client, CH_ST_CLOSE, 102, 1);
    ch_sock s1 = announced(server, CH_ST_CLOSE, 1, 101);
    ch_sock o1 = announced(other, CH_ST_CLOSE, 5, 1);
    CHECK_INT(ch_tracker_destroyed(t, &c1, 1500, 1000, &q), 0);
    CHECK_INT(ch_tracker_destroyed(t, &s1, 1501, 1000, &q), 0);
    CHECK_INT(ch_tracker_destroyed(t, &o1, 1600, 1000, &q), 0);
    CHECK_INT(q.count, 6);
    ch_sock tw[] = {time_wait_entry(client, 99, CH_ST_TIME_WAIT), time_wait_entry(other, 98, CH_ST_FIN_WAIT2)};
    sample_of(&s, tw, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK_INT(q.count, 6); /* no new lifetime for the entries */
    CHECK_INT(count(&q, CH_EV_OPEN), 3);
    CHECK_INT(count(&q, CH_EV_STATE), 2);
    CHECK_INT(count(&q, CH_EV_CLOSE), 1);
    const ch_event *o = find(&q, CH_EV_OPEN, 1), *st = find(&q, CH_EV_STATE, 1);
    CHECK(o != NULL && st != NULL && find(&q, CH_EV_CLOSE, 1) == NULL);
    if (o && st) {
        CHECK_STR(ch_seen_by_name(o->seen_by), "destroy_event_time_wait");
        CHECK_INT(o->at, 1499);
        CHECK_INT(o->opened_after, 1000);
        CHECK_INT(o->state, CH_ST_CLOSE);
        CHECK_INT(ch_events_opened(&q, o)->sock.ident, 99); /* the entry's cookie: a restart finds the row by it */
        CHECK_INT(st->state, CH_ST_TIME_WAIT);
        CHECK_INT(st->at, 1500);
        CHECK_INT(st->bytes_sent, 102);
        CHECK_INT(st->bytes_received, 1);
    }
    const ch_event *srv = find(&q, CH_EV_CLOSE, 2);
    CHECK(srv != NULL && strcmp(ch_seen_by_name(srv->seen_by), "destroy_event_only") == 0);
    st = find(&q, CH_EV_STATE, 3);
    CHECK(st != NULL && st->state == CH_ST_FIN_WAIT2 && st->at == 1600);
    CHECK_INT(ch_tracker_count(t), 2);
    q.count = 0;

    /* The entry lives on, moves on to TIME_WAIT, then goes: closed by samples. */
    set_state(&s, 1, CH_ST_TIME_WAIT);
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK(find(&q, CH_EV_STATE, 3) != NULL);
    q.count = 0;
    ch_sample_clear(&s);
    CHECK_INT(ch_tracker_apply(t, &s, 4000, 3000, NULL, &q), 0);
    const ch_event *c = find(&q, CH_EV_CLOSE, 1);
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->at, 4000);
        CHECK_INT(c->last_seen, 3000);
        CHECK_INT(c->bytes_sent, 102);
        CHECK_STR(ch_close_reason_name(c->reason), "gone");
        CHECK(ch_seen_by_name(c->seen_by) == NULL); /* the row keeps destroy_event_time_wait */
    }
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* The other order: the connection closed while a sample was being taken, so
 * that sample found its TIME_WAIT entry before the announcement was read.
 * The entry's row gets the announcement's counters and bounds, no second
 * row; only for an entry first found by the last sample, and only once. */
static void test_announced_after_time_wait(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock c = tcp(65, "127.0.0.1", 40010, "127.0.0.1", 8080, 0);
    ch_sock old = tcp(66, "127.0.0.1", 40011, "127.0.0.1", 8080, 0);
    ch_sock tw[] = {time_wait_entry(old, 97, CH_ST_TIME_WAIT)};
    sample_of(&s, tw, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, 500, NULL, &q), 0); /* lifetime 1: old's entry */
    ch_sock tw2[] = {tw[0], time_wait_entry(c, 96, CH_ST_TIME_WAIT)};
    sample_of(&s, tw2, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0); /* lifetime 2: c's entry */
    q.count = 0;
    ch_sock c1 = announced(c, CH_ST_CLOSE, 102, 1), old1 = announced(old, CH_ST_CLOSE, 7, 1);
    CHECK_INT(ch_tracker_destroyed(t, &c1, 2003, 2000, &q), 0);
    CHECK_INT(ch_tracker_destroyed(t, &c1, 2004, 2000, &q), 0); /* a second one is not joined */
    CHECK_INT(ch_tracker_destroyed(t, &old1, 2005, 2000, &q), 0); /* its entry is older: not joined */
    CHECK_INT(q.count, 5);
    const ch_event *a = &q.items[0];
    CHECK_INT(a->type, CH_EV_ANNOUNCED);
    CHECK_INT(a->lifetime_id, 2);
    CHECK_INT(a->opened_after, 1000);
    CHECK_STR(ch_seen_by_name(a->seen_by), "destroy_event_time_wait");
    CHECK_INT(a->bytes_sent, 102);
    CHECK_INT(count(&q, CH_EV_OPEN), 2);
    q.count = 0;
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    CHECK_INT(q.count, 0);
    ch_sample_clear(&s);
    CHECK_INT(ch_tracker_apply(t, &s, 4000, 3000, NULL, &q), 0);
    const ch_event *cl = find(&q, CH_EV_CLOSE, 2);
    CHECK(cl != NULL && cl->bytes_sent == 102 && cl->at == 4000);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/*
 * The same with a TIME_WAIT entry that kept its connection's cookie (a dump
 * or an owner event gave the connection one before it closed): the
 * announcement, read after a sample found the entry, is joined to the
 * entry's row as seen_by "destroy_event_time_wait" with the final counters
 * when the entry was new in the last sample, and otherwise adds its
 * counters at the next sample (a connection sampled ESTABLISHED, then in
 * TIME_WAIT before its announcement was read). Before, both kept the
 * counters in memory until the entry expired, 60 s later, and lost them
 * when the recorder stopped first.
 */
static void test_announced_after_time_wait_same_cookie(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock c = tcp(70, "::1", 40020, "::1", 8080, 0);
    ch_sock d = tcp(71, "127.0.0.1", 40021, "127.0.0.1", 8080, CH_ST_ESTABLISHED);
    ch_sock rows1[] = {d};
    sample_of(&s, rows1, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, 500, NULL, &q), 0); /* lifetime 1: d */
    ch_sock rows2[] = {time_wait_entry(d, 71, CH_ST_TIME_WAIT), time_wait_entry(c, 70, CH_ST_TIME_WAIT)};
    sample_of(&s, rows2, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0); /* d moves; lifetime 2: c's entry */
    q.count = 0;
    ch_sock c1 = announced(c, CH_ST_CLOSE, 65537, 12851), d1 = announced(d, CH_ST_CLOSE, 9, 33);
    CHECK_INT(ch_tracker_destroyed(t, &c1, 2003, 2000, &q), 0);
    CHECK_INT(ch_tracker_destroyed(t, &d1, 2004, 2000, &q), 0);
    CHECK_INT(q.count, 1);
    const ch_event *a = find(&q, CH_EV_ANNOUNCED, 2);
    CHECK(a != NULL);
    if (a != NULL) {
        CHECK_STR(ch_seen_by_name(a->seen_by), "destroy_event_time_wait");
        CHECK_INT(a->opened_after, 1000);
        CHECK_INT(a->bytes_sent, 65537);
        CHECK_INT(a->bytes_received, 12851);
    }
    q.count = 0;
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0); /* both entries again */
    CHECK_INT(q.count, 1);
    a = find(&q, CH_EV_ANNOUNCED, 1);
    CHECK(a != NULL && ch_seen_by_name(a->seen_by) == NULL && a->opened_after == -1 && a->bytes_sent == 9 &&
          a->bytes_received == 33);
    q.count = 0;
    CHECK_INT(ch_tracker_apply(t, &s, 4000, 3000, NULL, &q), 0); /* written once */
    CHECK_INT(q.count, 0);
    CHECK_INT(count(&q, CH_EV_OPEN), 0); /* never a second lifetime */
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* A TIME_WAIT entry that did not come from the announced connection with
 * its four-tuple is a lifetime of its own. */
static void test_time_wait_reuse_not_merged(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock x = tcp(71, "10.0.0.1", 40000, "10.0.0.2", 443, 0);
    ch_sock y = tcp(72, "10.0.0.1", 40001, "10.0.0.2", 443, 0);
    ch_sock z = tcp(73, "10.0.0.1", 40002, "10.0.0.2", 443, 0);

    /* Announced in a state that never leads to TIME_WAIT (reset while
     * ESTABLISHED, a passive close in LAST_ACK): the entry is a newer
     * connection's. */
    ch_sock x1 = announced(x, CH_ST_ESTABLISHED, 1, 1), y1 = announced(y, CH_ST_LAST_ACK, 1, 1);
    CHECK_INT(ch_tracker_destroyed(t, &x1, 1500, 1000, &q), 0);
    CHECK_INT(ch_tracker_destroyed(t, &y1, 1500, 1000, &q), 0);
    ch_sock tw1[] = {time_wait_entry(x, 91, CH_ST_TIME_WAIT), time_wait_entry(y, 92, CH_ST_TIME_WAIT)};
    sample_of(&s, tw1, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK_INT(count(&q, CH_EV_OPEN), 4);
    CHECK_INT(count(&q, CH_EV_CLOSE), 2);
    CHECK_INT(count(&q, CH_EV_STATE), 0);
    q.count = 0;

    /* Announced before the previous sample: an entry found only now is
     * another connection's (the announced one's was there already). */
    ch_sock z1 = announced(z, CH_ST_CLOSE, 1, 1);
    CHECK_INT(ch_tracker_destroyed(t, &z1, 2500, 2000, &q), 0);
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    q.count = 0;
    ch_sock tw2[] = {tw1[0], tw1[1], time_wait_entry(z, 93, CH_ST_TIME_WAIT)};
    sample_of(&s, tw2, 3);
    CHECK_INT(ch_tracker_apply(t, &s, 4000, 3000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_OPEN);
    CHECK(ch_seen_by_name(q.items[0].seen_by) == NULL);
    CHECK_INT(q.items[0].at, 4000);
    q.count = 0;

    /* Two connections with one four-tuple since the last sample: only the
     * latest left the entry; the earlier keeps its own lifetime. */
    ch_sock w = tcp(74, "10.0.0.1", 40003, "10.0.0.2", 443, 0);
    ch_sock w1 = announced(w, CH_ST_CLOSE, 11, 1), w2 = announced(w, CH_ST_CLOSE, 22, 1);
    w2.ident = 75;
    CHECK_INT(ch_tracker_destroyed(t, &w1, 4200, 4000, &q), 0);
    int64_t first = q.items[0].lifetime_id;
    CHECK_INT(ch_tracker_destroyed(t, &w2, 4400, 4000, &q), 0);
    int64_t second = q.items[2].lifetime_id;
    ch_sock tw3[] = {tw2[0], tw2[1], tw2[2], time_wait_entry(w, 94, CH_ST_TIME_WAIT)};
    sample_of(&s, tw3, 4);
    CHECK_INT(ch_tracker_apply(t, &s, 5000, 4000, NULL, &q), 0);
    CHECK_INT(q.count, 4);
    CHECK(find(&q, CH_EV_CLOSE, first) != NULL);
    const ch_event *st = find(&q, CH_EV_STATE, second);
    CHECK(st != NULL && st->at == 4400 && st->bytes_sent == 22);
    q.count = 0;

    /* The queue was written between the announcement and the sample: its
     * lifetime is in the database already, the entry gets its own. */
    ch_sock v = tcp(76, "10.0.0.1", 40004, "10.0.0.2", 443, 0);
    ch_sock v1 = announced(v, CH_ST_CLOSE, 1, 1);
    CHECK_INT(ch_tracker_destroyed(t, &v1, 5500, 5000, &q), 0);
    q.count = 0; /* flushed */
    ch_sock tw4[] = {tw3[0], tw3[1], tw3[2], tw3[3], time_wait_entry(v, 95, CH_ST_TIME_WAIT)};
    sample_of(&s, tw4, 5);
    CHECK_INT(ch_tracker_apply(t, &s, 6000, 5000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_OPEN);
    CHECK_INT(ch_events_opened(&q, &q.items[0])->sock.ident, 95);
    CHECK_INT(ch_tracker_count(t), 5);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* An announcement read after the sample that already found the socket gone
 * adds its final counters to that lifetime: no second lifetime. */
static void test_destroyed_after_sample(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock a = tcp(81, "10.0.0.1", 40000, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    sample_of(&s, &a, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    ch_sample_clear(&s);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK(find(&q, CH_EV_CLOSE, 1) != NULL);
    q.count = 0;
    ch_sock late = announced(a, CH_ST_CLOSE, 9, 9);
    CHECK_INT(ch_tracker_destroyed(t, &late, 2002, 2000, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_ANNOUNCED);
    CHECK_INT(q.items[0].lifetime_id, 1);
    CHECK_INT(q.items[0].bytes_sent, 9);
    CHECK(ch_seen_by_name(q.items[0].seen_by) == NULL); /* only the counters */
    q.count = 0;
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    CHECK_INT(q.count, 0);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* A connection reset by its peer leaves the tables (a sample closes its
 * lifetime) and is announced only when its process closes it, samples
 * later: the announcement joins that lifetime by cookie, with the final
 * counters, instead of opening a second one. */
static void test_reset_announced_samples_later(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock a = tcp(82, "10.0.0.1", 40001, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    sample_of(&s, &a, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    ch_sample_clear(&s);
    for (int64_t at = 2000; at <= 5000; at += 1000) /* gone, and three samples more */
        CHECK_INT(ch_tracker_apply(t, &s, at, at - 1000, NULL, &q), 0);
    q.count = 0;
    ch_sock late = announced(a, CH_ST_CLOSE, 5001, 700);
    CHECK_INT(ch_tracker_destroyed(t, &late, 5500, 5000, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_ANNOUNCED);
    CHECK_INT(q.items[0].lifetime_id, 1);
    CHECK_INT(q.items[0].bytes_received, 700);
    CHECK(find(&q, CH_EV_OPEN, 2) == NULL);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* The gone map keeps at most its capacity, dropping the oldest first, and
 * finds what it keeps after drops that shift its index. */
static void test_gone_map(void)
{
    ch_gone_map *m = ch_gone_map_new(4);
    for (uint64_t i = 1; i <= 6; i++)
        ch_gone_map_put(m, &(ch_gone){.ident = i * 1024, .lifetime_id = (int64_t)i});
    CHECK_INT(ch_gone_map_count(m), 4);
    CHECK(ch_gone_map_find(m, 1024) == NULL);
    CHECK(ch_gone_map_find(m, 2048) == NULL);
    for (uint64_t i = 3; i <= 6; i++) {
        const ch_gone *g = ch_gone_map_find(m, i * 1024);
        CHECK(g != NULL && g->lifetime_id == (int64_t)i);
    }
    ch_gone_map_drop(m, 4096);
    CHECK_INT(ch_gone_map_count(m), 3);
    CHECK(ch_gone_map_find(m, 4096) == NULL);
    CHECK(ch_gone_map_find(m, 3072) != NULL && ch_gone_map_find(m, 6144) != NULL);
    ch_gone_map_put(m, &(ch_gone){.ident = 7, .lifetime_id = 7}); /* overwrites 3 */
    ch_gone_map_put(m, &(ch_gone){.ident = 8, .lifetime_id = 8}); /* overwrites the dropped place */
    CHECK_INT(ch_gone_map_count(m), 4);
    CHECK(ch_gone_map_find(m, 3072) == NULL);
    CHECK(ch_gone_map_find(m, 7) != NULL && ch_gone_map_find(m, 8) != NULL && ch_gone_map_find(m, 5120) != NULL);
    ch_gone_map_free(m);
}

/* Feeds rows to a sample as a streaming sampler does: each is offered to
 * the consume hook first and kept only when refused. */
static void stream_of(ch_sample *s, const ch_sock *rows, size_t n)
{
    ch_sample_clear(s);
    for (size_t i = 0; i < n; i++) {
        ch_sock *row = ch_sample_add(s);
        *row = rows[i];
        if (s->consume != NULL && s->consume(s->consume_ctx, row)) {
            s->count--;
            s->consumed++;
        }
    }
}

/* A sample whose rows are streamed into t as they are read (stream_of). */
static ch_sample streamed_into(ch_tracker *t)
{
    return (ch_sample){.consume = ch_tracker_consume, .consume_ctx = t};
}

/* An unconnected UDP socket. */
static ch_sock udp_unconn(uint64_t cookie, int lport)
{
    ch_sock u = tcp(cookie, "0.0.0.0", lport, "0.0.0.0", 0, CH_ST_UNCONN);
    u.proto = CH_UDP;
    return u;
}

/* Streaming: rows of known sockets are marked as they are read and never
 * kept; new, readdressed and identless rows are left to apply; a dump
 * redone in the same sample is harmless; gone sockets' inodes are listed. */
static void test_streaming(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = streamed_into(t);
    ch_events q = {0};
    ch_sock a = tcp(41, "10.0.0.1", 40001, "10.0.0.2", 443, CH_ST_SYN_SENT);
    ch_sock b = tcp(42, "10.0.0.1", 40002, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    ch_sock rows[] = {a, b, udp_unconn(43, 5353)};

    ch_tracker_begin(t, 1000, &q);
    stream_of(&s, rows, 3);
    CHECK_INT(s.count, 3); /* nothing known yet: all kept */
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    CHECK_INT(count(&q, CH_EV_OPEN), 3);
    q.count = 0;

    /* Known and unchanged: consumed, no event; a state change is queued
     * while reading; a readdressed row is kept for apply. */
    rows[0].state = CH_ST_ESTABLISHED;
    ch_addr_parse("10.9.9.9", &rows[2].remote);
    rows[2].remote_port = 53;
    rows[2].state = CH_ST_ESTABLISHED;
    ch_tracker_begin(t, 2000, &q);
    stream_of(&s, rows, 3);
    CHECK_INT(s.count, 1);
    CHECK_INT(s.consumed, 2);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_STATE);
    CHECK_INT(q.items[0].lifetime_id, 1);
    /* The dump redone (interrupted): the same rows again change nothing. */
    stream_of(&s, rows, 3);
    CHECK_INT(s.count, 1);
    CHECK_INT(q.count, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK(find(&q, CH_EV_CLOSE, 3) != NULL); /* readdressed */
    CHECK(find(&q, CH_EV_OPEN, 4) != NULL);
    CHECK_INT(count(&q, CH_EV_CLOSE), 1);
    size_t ngone;
    ch_tracker_gone_inodes(t, &ngone);
    CHECK_INT(ngone, 0); /* readdressed is not gone: the socket lives on */
    q.count = 0;

    /* b gone: closed by apply, its inode listed for the attribution cache. */
    ch_sock left[] = {rows[0], rows[2]};
    ch_tracker_begin(t, 3000, &q);
    stream_of(&s, left, 2);
    CHECK_INT(s.count, 0);
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK(find(&q, CH_EV_CLOSE, 2) != NULL);
    const uint64_t *gone = ch_tracker_gone_inodes(t, &ngone);
    CHECK_INT(ngone, 1);
    CHECK(ngone == 1 && gone[0] == b.inode);
    CHECK_INT(ch_tracker_count(t), 2);
    q.count = 0;

    /* A whole sample without ch_tracker_begin still works as before. */
    s.consume = NULL;
    sample_of(&s, left, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 4000, 3000, NULL, &q), 0);
    CHECK_INT(q.count, 0);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/*
 * A sample without the TCP tables (the kernel counted no move of them):
 * every tracked TCP socket is kept as it was, the UDP ones go by the
 * sample; not while a TCP socket waits for what only a dump settles (an
 * announcement), which then closes it as announced.
 */
static void test_keep_unmoved(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = streamed_into(t);
    ch_events q = {0};
    ch_sock a = tcp(61, "10.0.0.1", 40001, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    ch_sock b = tcp(62, "10.0.0.1", 40002, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    ch_sock u = udp_unconn(63, 5353);
    ch_sock rows[] = {a, b, u, udp_unconn(64, 5354)};
    size_t kept = 99;
    CHECK(!ch_tracker_keep_unmoved(t, CH_TCP, &kept)); /* no sample begun */
    CHECK_INT(kept, 0);

    ch_tracker_begin(t, 1000, &q);
    stream_of(&s, rows, 4);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    CHECK_INT(count(&q, CH_EV_OPEN), 4);
    q.count = 0;

    /* The UDP dump alone, v gone: a and b kept, v closed. */
    ch_tracker_begin(t, 2000, &q);
    CHECK(ch_tracker_keep_unmoved(t, CH_TCP, &kept));
    CHECK_INT(kept, 2);
    stream_of(&s, &u, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK(find(&q, CH_EV_CLOSE, 4) != NULL);
    CHECK_INT(ch_tracker_count(t), 3);
    q.count = 0;

    /* a announced destroyed: refused, nothing marked; the full sample
     * then closes a at its announced time. */
    CHECK(ch_tracker_destroyed_known(t, &a, 2500));
    ch_tracker_begin(t, 3000, &q);
    CHECK(!ch_tracker_keep_unmoved(t, CH_TCP, &kept));
    CHECK_INT(kept, 0);
    ch_sock left[] = {b, u};
    stream_of(&s, left, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    const ch_event *closed = find(&q, CH_EV_CLOSE, 1);
    CHECK(closed != NULL && closed->at == 2500);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/*
 * A streamed sample is dated when it was complete (what the dump found may
 * have happened while it ran), and a connection no sample saw opened after
 * the previous sample began (the dump may have passed it by just before).
 */
static void test_sample_dates(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = streamed_into(t);
    ch_events q = {0};
    ch_sock a = tcp(51, "10.0.0.1", 40001, "10.0.0.2", 443, CH_ST_SYN_SENT);
    ch_sock c = tcp(52, "10.0.0.1", 40002, "10.0.0.2", 443, CH_ST_ESTABLISHED);

    ch_tracker_begin(t, 1000, &q);
    stream_of(&s, &a, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 1012, 900, NULL, &q), 0);
    const ch_event *open = find(&q, CH_EV_OPEN, 1);
    CHECK(open != NULL && open->at == 1012);
    q.count = 0;

    /* The state change is found while reading, dated at completion. */
    a.state = CH_ST_ESTABLISHED;
    ch_tracker_begin(t, 2000, &q);
    stream_of(&s, &a, 1);
    CHECK_INT(q.count, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 2015, 1012, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_STATE);
    CHECK_INT(q.items[0].at, 2015);
    q.count = 0;

    /* c opened and entered TIME_WAIT while the next dump ran, which found
     * its entry; its announcement comes after: it opened after 2000. */
    ch_sock tw[] = {a, time_wait_entry(c, 95, CH_ST_TIME_WAIT)};
    ch_tracker_begin(t, 3000, &q);
    stream_of(&s, tw, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 3020, 2015, NULL, &q), 0);
    const ch_event *entry = find(&q, CH_EV_OPEN, 2);
    CHECK(entry != NULL && entry->at == 3020);
    q.count = 0;
    ch_sock c1 = announced(c, CH_ST_CLOSE, 10, 1);
    CHECK_INT(ch_tracker_destroyed(t, &c1, 3030, 3000, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_ANNOUNCED);
    CHECK_INT(q.items[0].opened_after, 2000);

    /* A sample that fails half way: what it found is dated when it began. */
    q.count = 0;
    a.state = CH_ST_CLOSE_WAIT;
    ch_tracker_begin(t, 4000, &q);
    stream_of(&s, &a, 1);
    ch_tracker_begin(t, 5000, &q);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].at, 4000);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* Two OPENs alike, their sockets and owners (ao, bo) included. */
static bool same_open(const ch_event *a, const ch_opened *ao, const ch_event *b, const ch_opened *bo)
{
    return a->type == b->type && a->state == b->state && a->lifetime_id == b->lifetime_id && a->at == b->at &&
           memcmp(&ao->sock, &bo->sock, sizeof ao->sock) == 0 && ao->owner.proc == bo->owner.proc &&
           ao->owner.holders == bo->owner.holders && a->seen_by == b->seen_by;
}

/*
 * Deferred opens: the OPENs of a sample's new sockets stay in the sample
 * (q.opens) and read as the copied ones would; a failed flush keeps them,
 * and the tracker copies them into the queue, in order, before the sample
 * is taken again or another event is queued.
 */
static void test_deferred_opens(void)
{
    ch_tracker *plain = ch_tracker_new(1), *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events copied = {0}, q = {.defer_opens = true};
    ch_sock rows[] = {tcp(101, "10.0.0.1", 40000, "10.0.0.2", 443, CH_ST_ESTABLISHED),
                      tcp(102, "0.0.0.0", 22, "0.0.0.0", 0, CH_ST_LISTEN),
                      tcp(0, "127.0.0.1", 41000, "127.0.0.1", 80, CH_ST_TIME_WAIT)};
    sample_of(&s, rows, 3);
    CHECK_INT(ch_tracker_apply(plain, &s, 1000, -1, NULL, &copied), 0);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    CHECK_INT(copied.count, 3);
    CHECK_INT(q.count, 0);
    CHECK_INT(q.opens.count, 3);
    CHECK_INT(ch_events_pending(&q), 3);
    for (size_t i = 0; i < 3; i++) {
        ch_opened o;
        ch_event ev = ch_events_open_at(&q, i, &o);
        CHECK(same_open(&ev, &o, &copied.items[i], ch_events_opened(&copied, &copied.items[i])));
    }

    /* The flush failed; the next tick begins: copied out of the sample,
     * which may then be overwritten. */
    ch_tracker_begin(t, 2000, &q);
    CHECK_INT(q.opens.count, 0);
    CHECK_INT(q.count, 3);
    ch_sock other = tcp(103, "10.0.0.9", 50000, "10.0.0.2", 443, CH_ST_SYN_SENT);
    sample_of(&s, rows, 2);
    CHECK_INT(ch_sample_put(&s, 1, &other), 0);
    for (size_t i = 0; i < 3; i++)
        CHECK(same_open(&q.items[i], ch_events_opened(&q, &q.items[i]), &copied.items[i],
                        ch_events_opened(&copied, &copied.items[i])));
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK_INT(q.count, 5); /* the two gone closed; the new one deferred */
    CHECK_INT(q.opens.count, 1);
    ch_opened oo;
    ch_event o = ch_events_open_at(&q, 0, &oo);
    CHECK_INT(o.lifetime_id, 4);
    CHECK_INT(oo.sock.ident, 103);

    /* An event queued behind deferred opens comes after them. */
    ch_sock unseen = tcp(104, "10.0.0.1", 40004, "10.0.0.2", 443, CH_ST_CLOSE);
    CHECK_INT(ch_tracker_destroyed(t, &unseen, 2500, 2000, &q), 0);
    CHECK_INT(q.opens.count, 0);
    CHECK_INT(q.count, 8);
    CHECK_INT(q.items[5].lifetime_id, 4);
    CHECK_INT(ch_events_opened(&q, &q.items[5])->sock.ident, 103);
    CHECK_INT(q.items[6].type, CH_EV_OPEN);
    CHECK_INT(q.items[6].lifetime_id, 5);
    ch_events_clear(&q);
    CHECK_INT(ch_events_pending(&q), 0);
    ch_events_free(&q);
    ch_events_free(&copied);
    ch_sample_free(&s);
    ch_tracker_free(t);
    ch_tracker_free(plain);
}

/* A sample of n connections, cookies 1..n, with one connection twice
 * (the same identity in one sample: its first row is kept, the repeat
 * dropped, see test_fresh_repeats). */
static void many_of(ch_sample *s, int n)
{
    ch_sample_clear(s);
    for (int i = 0; i < n; i++)
        *ch_sample_add(s) = tcp((uint64_t)i + 1, "10.0.0.1", 1 + i % 60000, "10.0.0.2", 80, CH_ST_ESTABLISHED);
    *ch_sample_add(s) = tcp(7, "10.0.0.1", 7, "10.0.0.2", 80, CH_ST_CLOSE_WAIT);
}

/*
 * A first sample's new sockets become entries only once their OPENs are
 * written (ch_tracker_settle), the sample's rows given back meanwhile: the
 * tracker then holds what a tracker that took them in at once holds, under
 * the same lifetime ids (the next samples' events are the same), and the
 * sample is empty, its memory back to the minimum. When the flush failed,
 * the OPENs are first copied out of the sample, in order.
 */
static void test_settle(void)
{
    enum { N = 10000 }; /* more than a step of rows given back */
    ch_tracker *plain = ch_tracker_new(1), *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events ref = {0}, q = {.defer_opens = true};
    many_of(&s, N);
    CHECK_INT(ch_tracker_apply(plain, &s, 1000, -1, NULL, &ref), 0);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    CHECK_INT(q.opens.count, N);
    CHECK_INT(ch_tracker_count(t), ch_tracker_count(plain));
    ch_events_clear(&q); /* written */
    ch_tracker_settle(t, &s, &q);
    CHECK_INT(s.count, 0);
    CHECK(s.at_cap <= 1025 && s.packed_cap <= 64 * 1024); /* given back */
    CHECK_INT(ch_tracker_count(t), ch_tracker_count(plain));
    ch_tracker_settle(t, &s, &q); /* nothing pending: nothing happens */
    CHECK_INT(ch_tracker_count(t), N);

    /* The next sample: a third gone (cookie 7 among them), one
     * changed state. Both trackers report the same, in the same order. */
    ch_sample_clear(&s);
    for (int i = 0; i < N; i++)
        if (i % 3 != 0)
            *ch_sample_add(&s) = tcp((uint64_t)i + 1, "10.0.0.1", 1 + i % 60000, "10.0.0.2", 80,
                                     i == 1 ? CH_ST_FIN_WAIT1 : CH_ST_ESTABLISHED);
    ch_events a = {0}, b = {0};
    CHECK_INT(ch_tracker_apply(plain, &s, 2000, 1000, NULL, &a), 0);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &b), 0);
    CHECK_INT(b.count, a.count);
    CHECK_INT(count(&b, CH_EV_CLOSE), (N + 2) / 3);
    CHECK_INT(count(&b, CH_EV_STATE), 1);
    for (size_t i = 0; i < a.count && i < b.count; i++) {
        CHECK_INT(b.items[i].type, a.items[i].type);
        CHECK_INT(b.items[i].lifetime_id, a.items[i].lifetime_id);
        CHECK_INT(b.items[i].state, a.items[i].state);
    }
    ch_events_free(&a);
    ch_events_free(&b);

    /* A flush that failed: the OPENs leave the sample for the queue first. */
    ch_tracker *failed = ch_tracker_new(1);
    ch_events kept = {.defer_opens = true};
    many_of(&s, 3);
    CHECK_INT(ch_tracker_apply(failed, &s, 1000, -1, NULL, &kept), 0);
    ch_tracker_settle(failed, &s, &kept);
    CHECK_INT(kept.opens.count, 0);
    CHECK_INT(kept.count, 4);
    CHECK_INT(s.count, 0);
    for (size_t i = 0; i < kept.count; i++) {
        CHECK_INT(kept.items[i].type, CH_EV_OPEN);
        CHECK_INT(kept.items[i].lifetime_id, (int64_t)i + 1);
        CHECK_INT(ch_events_opened(&kept, &kept.items[i])->sock.ident, i < 3 ? i + 1 : 7);
    }
    CHECK_INT(ch_tracker_count(failed), 4);
    ch_events_free(&kept);
    ch_tracker_free(failed);

    ch_events_free(&q);
    ch_events_free(&ref);
    ch_sample_free(&s);
    ch_tracker_free(t);
    ch_tracker_free(plain);
}

/*
 * A socket whose owner the processes' cache could not find, because its
 * read of every process was rationed away (test_procs), is asked for again
 * at the next samples: once such a read is allowed, its lifetime gets the
 * owner (an OWNER event). The cache's clocks are the test's.
 */
static void test_owner_asked_again(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_procs *procs = ch_procs_new();
    ch_sample s = {0};
    ch_events q = {0};
    hider h;
    ch_owner o;
    uint64_t nobody = 0xf2000000u;
    CHECK(t != NULL && procs != NULL && hider_start(&h) == 0);
    CHECK(ch_procs_resolve(procs, &h.first, 1, &o) > 0); /* the child read whole */
    /* Asked twice (a full read is for inodes asked again), nobody's socket
     * makes a read of every process, which takes 1 s: none for 9 s. */
    CHECK(ch_procs_resolve(procs, &nobody, 1, &o) > 0);
    clock_cpu_step(1000000000);
    CHECK(ch_procs_resolve(procs, &nobody, 1, &o) > 0);
    clock_cpu_step(0);
    CHECK(hider_swap(&h) == 0);
    ch_sock u = tcp(51, "127.0.0.1", 5353, "0.0.0.0", 0, CH_ST_UNCONN);
    u.proto = CH_UDP;
    u.inode = h.second;
    sample_of(&s, &u, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, procs, &q), 0);
    CHECK_INT(count(&q, CH_EV_OPEN), 1);
    CHECK(q.count > 0 && ch_events_opened(&q, &q.items[0])->owner.proc == NULL);
    q.count = 0;
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, procs, &q), 0); /* still rationed */
    CHECK_INT(q.count, 0);
    clock_skip(9000000000LL);
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, procs, &q), 0);
    CHECK_INT(q.count, 1);
    const ch_event *ev = find(&q, CH_EV_OWNER, 1);
    const ch_opened *named = ev != NULL ? ch_events_opened(&q, ev) : NULL;
    CHECK(named != NULL && named->owner.proc != NULL && named->owner.proc->pid == h.pid);
    CHECK(named != NULL && named->owner.source == CH_OWNER_SOCKET);
    q.count = 0;
    CHECK_INT(ch_tracker_apply(t, &s, 4000, 3000, procs, &q), 0); /* settled: not asked again */
    CHECK_INT(q.count, 0);
    hider_stop(&h);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_procs_free(procs);
    ch_tracker_free(t);
}

/* The tracker keeps byte counters in 48 bits (256 TiB): kept exactly up
 * to there; beyond, unknown (-1), never a wrong count. */
static void test_counters_48_bits(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    const int64_t most = ((int64_t)1 << 48) - 2;
    ch_sock a = tcp(51, "10.0.0.1", 40000, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    ch_sock b = tcp(52, "10.0.0.1", 40001, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    a.bytes_sent = most;
    a.bytes_received = 5;
    b.bytes_sent = most + 1;
    b.bytes_received = (int64_t)1 << 50;
    ch_sock rows[] = {a, b};
    sample_of(&s, rows, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    q.count = 0;
    ch_sample_clear(&s);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    const ch_event *ca = find(&q, CH_EV_CLOSE, 1), *cb = find(&q, CH_EV_CLOSE, 2);
    CHECK(ca != NULL && cb != NULL);
    if (ca != NULL && cb != NULL) {
        CHECK_INT(ca->bytes_sent, most);
        CHECK_INT(ca->bytes_received, 5);
        CHECK_INT(cb->bytes_sent, -1);
        CHECK_INT(cb->bytes_received, -1);
    }
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* Many sockets announced destroyed, their cookies in no order: each
 * closes at its own announcement's time (kept beside the entries, by
 * key), and a later burst finds them kept apart from the first. */
static void test_destroyed_many(void)
{
    enum { N = 500 };
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    static ch_sock rows[N];
    for (int i = 0; i < N; i++) /* cookies 1..1000 in a scrambled order */
        rows[i] = tcp((uint64_t)((i * 7919) % 1000 + 1), "10.0.0.1", 20000 + i, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    sample_of(&s, rows, N);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    q.count = 0;
    for (int round = 0; round < 2; round++) {
        /* round 0: the even ones, announced last first; round 1: the odd ones */
        for (int i = N - 1; i >= 0; i--) {
            if (i % 2 != round)
                continue;
            ch_sock gone = announced(rows[i], CH_ST_CLOSE, i, 2 * i);
            CHECK_INT(ch_tracker_destroyed(t, &gone, 1100 + 1000 * round + i, 1000 + 1000 * round, &q), 0);
        }
        ch_sample_clear(&s);
        for (int i = 0; i < N; i++)
            if (round == 0 && i % 2 == 1)
                *ch_sample_add(&s) = rows[i];
        CHECK_INT(ch_tracker_apply(t, &s, 2000 + 1000 * round, 1000 + 1000 * round, NULL, &q), 0);
        int closed = 0, wrong = 0;
        for (int i = 0; i < N; i++) {
            if (i % 2 != round)
                continue;
            const ch_event *c = find(&q, CH_EV_CLOSE, 1 + i);
            closed += c != NULL;
            wrong += c != NULL &&
                     (c->at != 1100 + 1000 * round + i || c->bytes_sent != i || ch_seen_by_name(c->seen_by) == NULL);
        }
        CHECK_INT(closed, N / 2);
        CHECK_INT(wrong, 0);
        CHECK_INT(q.count, N / 2);
        CHECK_INT(ch_tracker_count(t), round == 0 ? N / 2 : 0);
        q.count = 0;
    }
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/* The k-th event of q in the order the store writes them: the items
 * before the deferred closes, the closes, the other items, the deferred
 * opens. */
static ch_event written_at(const ch_events *q, size_t k)
{
    size_t split = q->closes.count > 0 ? q->closes.at_item : q->count;
    if (k < split)
        return q->items[k];
    k -= split;
    if (k < q->closes.count)
        return ch_events_close_at(q, k);
    k -= q->closes.count;
    if (k < q->count - split)
        return q->items[split + k];
    ch_opened o;
    return ch_events_open_at(q, k - (q->count - split), &o);
}

/* How many of q's events, in the order written, are ref's. */
static size_t same_stream(const ch_events *q, const ch_events *ref)
{
    size_t same = 0;
    for (size_t k = 0; k < ch_events_pending(q) && k < ch_events_pending(ref); k++) {
        ch_event a = written_at(q, k), b = written_at(ref, k);
        same += a.type == b.type && a.state == b.state && a.reason == b.reason && a.seen_by == b.seen_by &&
                a.lifetime_id == b.lifetime_id && a.at == b.at && a.last_seen == b.last_seen &&
                a.bytes_sent == b.bytes_sent && a.bytes_received == b.bytes_received;
    }
    return same;
}

/* The same sockets in two samples, one for each tracker: a tracker gives
 * back its sample's rows. The rows of rows[0, n) that keep(i) keeps (row
 * moved in FIN_WAIT1), then extra new ones. */
static void samples_of(ch_sample *a, ch_sample *b, const ch_sock *rows, size_t n, bool (*keep)(size_t), size_t moved,
                       int extra)
{
    ch_sample_clear(a);
    ch_sample_clear(b);
    for (size_t i = 0; i < n; i++) {
        if (!keep(i))
            continue;
        ch_sock row = rows[i];
        if (i == moved)
            row.state = CH_ST_FIN_WAIT1;
        *ch_sample_add(a) = row;
        *ch_sample_add(b) = row;
    }
    for (int i = 0; i < extra; i++) {
        ch_sock row = tcp(50000 + (uint64_t)i, "10.0.0.4", 30000 + i, "10.0.0.2", 443, CH_ST_SYN_SENT);
        *ch_sample_add(a) = row;
        *ch_sample_add(b) = row;
    }
}

/* Frees two trackers fed the same samples, their samples and queues. */
static void free_pair(ch_tracker *plain, ch_tracker *t, ch_sample *sp, ch_sample *st, ch_events *ref, ch_events *q)
{
    ch_events_free(ref);
    ch_events_free(q);
    ch_sample_free(sp);
    ch_sample_free(st);
    ch_tracker_free(plain);
    ch_tracker_free(t);
}

static bool keep_all(size_t i)
{
    (void)i;
    return true;
}

static bool keep_two_thirds(size_t i)
{
    return i % 3 != 0 && i % 10 != 0; /* every third gone, and the announced ones */
}

static bool keep_none(size_t i)
{
    (void)i;
    return false;
}

/* The CLOSE of a lifetime in q, in the order written; type 0 when none. */
static ch_event close_of(const ch_events *q, int64_t id)
{
    for (size_t k = 0; k < ch_events_pending(q); k++) {
        ch_event ev = written_at(q, k);
        if (ev.type == CH_EV_CLOSE && ev.lifetime_id == id)
            return ev;
    }
    return (ch_event){0};
}

/* The CLOSE of lifetime id in q: when, last seen when, and how. */
static void check_close(const ch_events *q, int64_t id, int64_t at, int64_t last_seen, int seen_by)
{
    ch_event c = close_of(q, id);
    CHECK_INT(c.at, at);
    CHECK_INT(c.last_seen, last_seen);
    CHECK_INT(c.seen_by, seen_by);
}

/*
 * Deferred closes: the CLOSEs of the sockets a sample found gone stay in
 * the tracker (q.closes) and read, in the order written, as the queued
 * ones of a tracker that does not defer them; a failed flush, or any call
 * of the tracker before ch_tracker_settle, copies them into the queue at
 * their place; after a written flush the tracker goes on as the other.
 */
static void test_deferred_closes(void)
{
    enum { N = 3000 };
    ch_tracker *plain = ch_tracker_new(1), *t = ch_tracker_new(1);
    ch_sample sp = {0}, st = {0};
    ch_events ref = {.defer_opens = true}, q = {.defer_opens = true, .defer_closes = true};
    static ch_sock rows[N];
    for (int i = 0; i < N; i++) {
        rows[i] = tcp((uint64_t)i + 1, "10.0.0.1", 20000 + i, "10.0.0.2", 443, CH_ST_ESTABLISHED);
        rows[i].bytes_sent = i;
        rows[i].bytes_received = 2 * i;
    }
    rows[3] = tcp(4, "0.0.0.0", 8080, "0.0.0.0", 0, CH_ST_LISTEN);
    samples_of(&sp, &st, rows, N, keep_all, SIZE_MAX, 0);
    CHECK_INT(ch_tracker_apply(plain, &sp, 1000, -1, NULL, &ref), 0);
    CHECK_INT(ch_tracker_apply(t, &st, 1000, -1, NULL, &q), 0);
    CHECK_INT(q.closes.count, 0);
    ch_events_clear(&ref); /* written */
    ch_events_clear(&q);
    ch_tracker_settle(plain, &sp, &ref);
    ch_tracker_settle(t, &st, &q);

    /* A tenth announced destroyed, and a socket no sample saw; then a
     * sample finds a third of them gone, one moved on, five new. */
    for (int i = 0; i < N; i += 10) {
        ch_sock gone = announced(rows[i], CH_ST_CLOSE, i, 2 * i);
        CHECK_INT(ch_tracker_destroyed(plain, &gone, 1100 + i / 10, 1000, &ref), 0);
        CHECK_INT(ch_tracker_destroyed(t, &gone, 1100 + i / 10, 1000, &q), 0);
    }
    ch_sock unseen = tcp(9999, "10.0.0.3", 40000, "10.0.0.2", 443, CH_ST_CLOSE);
    CHECK_INT(ch_tracker_destroyed(plain, &unseen, 1900, 1000, &ref), 0);
    CHECK_INT(ch_tracker_destroyed(t, &unseen, 1900, 1000, &q), 0);
    samples_of(&sp, &st, rows, N, keep_two_thirds, 1, 5);
    CHECK_INT(ch_tracker_apply(plain, &sp, 2000, 1000, NULL, &ref), 0);
    CHECK_INT(ch_tracker_apply(t, &st, 2000, 1000, NULL, &q), 0);
    size_t gone = 0;
    for (size_t i = 0; i < N; i++)
        gone += !keep_two_thirds(i);
    CHECK_INT(q.closes.count, gone);
    CHECK_INT(q.count + q.closes.count, ref.count);
    CHECK_INT(q.closes.at_item, 3); /* after the unseen one's OPEN and CLOSE and the STATE */
    CHECK_INT(ch_events_pending(&q), ch_events_pending(&ref));
    CHECK_INT(same_stream(&q, &ref), ch_events_pending(&ref));
    ch_event c = close_of(&q, 11); /* rows[10], announced at 1101 */
    CHECK_INT(c.at, 1101);
    CHECK_INT(c.seen_by, CH_SEEN_BY_DESTROY_EVENT);
    CHECK_INT(c.bytes_sent, 10);
    CHECK_INT(c.bytes_received, 20);
    c = close_of(&q, 4); /* the listener, gone unannounced */
    CHECK_INT(c.at, 2000);
    CHECK_INT(c.last_seen, 1000);
    CHECK_INT(c.seen_by, CH_SEEN_BY_SAMPLES);
    CHECK_INT(c.reason, CH_CLOSE_GONE);

    /* That flush failed: copied into the queue where they were. */
    ch_tracker_settle(plain, &sp, &ref);
    ch_tracker_settle(t, &st, &q);
    CHECK_INT(q.closes.count, 0);
    CHECK_INT(q.count, ref.count);
    CHECK_INT(same_stream(&q, &ref), ref.count);
    CHECK_INT(ch_tracker_count(t), ch_tracker_count(plain));

    /* The next sample finds all gone but the five new ones: its closes
     * follow the kept events; a tracker call before the flush (an
     * announcement) copies them, and the deferred opens, first. */
    samples_of(&sp, &st, rows, N, keep_none, SIZE_MAX, 5);
    CHECK_INT(ch_tracker_apply(plain, &sp, 3000, 2000, NULL, &ref), 0);
    CHECK_INT(ch_tracker_apply(t, &st, 3000, 2000, NULL, &q), 0);
    CHECK_INT(q.closes.count, N - gone);
    CHECK_INT(q.closes.at_item, ref.count - (N - gone));
    CHECK_INT(same_stream(&q, &ref), ch_events_pending(&ref));
    ch_sock late = tcp(9998, "10.0.0.3", 40001, "10.0.0.2", 443, CH_ST_CLOSE);
    CHECK_INT(ch_tracker_destroyed(plain, &late, 3500, 3000, &ref), 0);
    CHECK_INT(ch_tracker_destroyed(t, &late, 3500, 3000, &q), 0);
    CHECK_INT(q.closes.count, 0);
    CHECK_INT(q.count, ref.count);
    CHECK_INT(same_stream(&q, &ref), ref.count);

    /* Written; the five go, three more come: the trackers agree. */
    ch_events_clear(&ref);
    ch_events_clear(&q);
    ch_tracker_settle(plain, &sp, &ref);
    ch_tracker_settle(t, &st, &q);
    CHECK_INT(ch_tracker_count(t), 5);
    ch_sample_clear(&sp);
    ch_sample_clear(&st);
    for (int i = 0; i < 3; i++) {
        *ch_sample_add(&sp) = rows[i];
        *ch_sample_add(&st) = rows[i];
    }
    CHECK_INT(ch_tracker_apply(plain, &sp, 4000, 3000, NULL, &ref), 0);
    CHECK_INT(ch_tracker_apply(t, &st, 4000, 3000, NULL, &q), 0);
    CHECK_INT(q.closes.count, 5);
    CHECK_INT(q.opens.count, 3);
    CHECK_INT(same_stream(&q, &ref), 8);
    ch_events_clear(&ref);
    ch_events_clear(&q);
    ch_tracker_settle(plain, &sp, &ref);
    ch_tracker_settle(t, &st, &q);
    CHECK_INT(ch_tracker_count(t), 3);
    samples_of(&sp, &st, rows, 2, keep_all, 1, 0); /* the third gone, the second moved on */
    CHECK_INT(ch_tracker_apply(plain, &sp, 5000, 4000, NULL, &ref), 0);
    CHECK_INT(ch_tracker_apply(t, &st, 5000, 4000, NULL, &q), 0);
    CHECK_INT(ch_events_pending(&q), 2);
    CHECK_INT(same_stream(&q, &ref), 2);

    /* Without deferred opens, the new sockets' entries take the closing
     * ones' place: the closes are copied into the queue first. */
    ch_tracker *u = ch_tracker_new(1), *v = ch_tracker_new(1);
    ch_events uq = {0}, vq = {.defer_closes = true};
    samples_of(&sp, &st, rows, 100, keep_all, SIZE_MAX, 0);
    CHECK_INT(ch_tracker_apply(u, &sp, 1000, -1, NULL, &uq), 0);
    CHECK_INT(ch_tracker_apply(v, &st, 1000, -1, NULL, &vq), 0);
    ch_events_clear(&uq);
    ch_events_clear(&vq);
    samples_of(&sp, &st, rows, 100, keep_two_thirds, 1, 5);
    CHECK_INT(ch_tracker_apply(u, &sp, 2000, 1000, NULL, &uq), 0);
    CHECK_INT(ch_tracker_apply(v, &st, 2000, 1000, NULL, &vq), 0);
    CHECK_INT(vq.closes.count, 0);
    CHECK_INT(vq.count, uq.count);
    CHECK_INT(same_stream(&vq, &uq), uq.count);
    CHECK_INT(count(&vq, CH_EV_CLOSE), 40);
    CHECK_INT(ch_tracker_count(v), ch_tracker_count(u));
    /* An event queued after deferred closes stays after them when they are copied. */
    ch_events_clear(&uq);
    ch_events_clear(&vq);
    samples_of(&sp, &st, rows, 100, keep_none, SIZE_MAX, 0);
    CHECK_INT(ch_tracker_apply(u, &sp, 3000, 2000, NULL, &uq), 0);
    CHECK_INT(ch_tracker_apply(v, &st, 3000, 2000, NULL, &vq), 0);
    ch_event after = {.type = CH_EV_STATE, .state = CH_ST_CLOSE, .lifetime_id = 1, .at = 3000};
    CHECK_INT(ch_events_push(&uq, &after), 0);
    CHECK_INT(ch_events_push(&vq, &after), 0);
    CHECK_INT(vq.count, 1);
    CHECK_INT(vq.closes.count, 65);
    ch_tracker_settle(v, &st, &vq);
    CHECK_INT(vq.count, 66);
    CHECK_INT(same_stream(&vq, &uq), 66);
    CHECK_INT(vq.items[65].type, CH_EV_STATE);
    ch_events_free(&uq);
    ch_events_free(&vq);
    ch_tracker_free(u);
    ch_tracker_free(v);

    free_pair(plain, t, &sp, &st, &ref, &q);
}

/*
 * A socket announced destroyed, then closed otherwise (readdressed: its
 * identity found with other addresses), leaves no time behind: when the
 * new lifetime under that identity is announced and found gone, it closes
 * at its own announcement's time.
 */
static void test_destroyed_key_reused(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock rows[] = {tcp(5, "10.0.0.1", 40000, "10.0.0.2", 443, CH_ST_ESTABLISHED),
                      tcp(6, "10.0.0.1", 40001, "10.0.0.2", 443, CH_ST_ESTABLISHED)};
    sample_of(&s, rows, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    ch_sock gone = announced(rows[0], CH_ST_CLOSE, 1, 2);
    CHECK(ch_tracker_destroyed_known(t, &gone, 1100));
    gone = announced(rows[1], CH_ST_CLOSE, 1, 2);
    CHECK(ch_tracker_destroyed_known(t, &gone, 1200));
    rows[0] = tcp(5, "10.0.0.1", 40000, "10.0.0.3", 443, CH_ST_ESTABLISHED);
    sample_of(&s, rows, 1); /* cookie 5 readdressed, cookie 6 gone */
    q.count = 0;
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK(find(&q, CH_EV_CLOSE, 1) != NULL && find(&q, CH_EV_CLOSE, 1)->reason == CH_CLOSE_READDRESSED);
    const ch_event *c = find(&q, CH_EV_CLOSE, 2);
    CHECK(c != NULL && c->at == 1200 && c->seen_by == CH_SEEN_BY_DESTROY_EVENT);
    gone = announced(rows[0], CH_ST_CLOSE, 3, 4);
    CHECK(ch_tracker_destroyed_known(t, &gone, 2500));
    sample_of(&s, rows, 0);
    q.count = 0;
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    c = find(&q, CH_EV_CLOSE, 3);
    CHECK(c != NULL && c->at == 2500 && c->seen_by == CH_SEEN_BY_DESTROY_EVENT && c->bytes_sent == 3);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/*
 * The attribution cache forgets the inodes of the sockets a sample found
 * gone when their CLOSEs are deferred too (read from the closing entries):
 * a closed socket's inode is then looked up afresh, not answered from the
 * cache.
 */
static void test_deferred_closes_forget(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_procs *procs = ch_procs_new();
    ch_sample s = {0};
    ch_events q = {.defer_opens = true, .defer_closes = true};
    int fd = loopback_socket(AF_INET, SOCK_DGRAM);
    CHECK(t != NULL && procs != NULL && fd >= 0);
    ch_sock row = tcp(77, "127.0.0.1", 5353, "0.0.0.0", 0, CH_ST_UNCONN);
    row.proto = CH_UDP;
    uint64_t inode = inode_of(fd);
    row.inode = inode;
    sample_of(&s, &row, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, procs, &q), 0);
    ch_opened o;
    ch_events_open_at(&q, 0, &o);
    CHECK(o.owner.proc != NULL && o.owner.proc->pid == (int64_t)getpid());
    ch_events_clear(&q);
    ch_tracker_settle(t, &s, &q);
    ch_owner again;
    CHECK_INT(ch_procs_resolve(procs, &inode, 1, &again), 0); /* known: no read */
    close(fd);
    sample_of(&s, &row, 0);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, procs, &q), 0);
    CHECK_INT(q.closes.count, 1);
    CHECK(ch_procs_resolve(procs, &inode, 1, &again) > 0); /* forgotten: read again */
    CHECK(again.proc == NULL);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_procs_free(procs);
    ch_tracker_free(t);
}

/* Same events, in the same order, in a and b. */
static void check_same_events(const ch_events *a, const ch_events *b)
{
    CHECK_INT(b->count, a->count);
    for (size_t i = 0; i < a->count && i < b->count; i++) {
        CHECK_INT(b->items[i].type, a->items[i].type);
        CHECK_INT(b->items[i].lifetime_id, a->items[i].lifetime_id);
        CHECK_INT(b->items[i].state, a->items[i].state);
    }
}

/* One sample applied to both trackers, each into an emptied queue; t then
 * settled (where it gives back room). */
static void apply_both(ch_tracker *plain, ch_tracker *t, ch_sample *s, int64_t at, ch_events *a, ch_events *b)
{
    ch_events_clear(a);
    ch_events_clear(b);
    CHECK_INT(ch_tracker_apply(plain, s, at, at - 1000, NULL, a), 0);
    CHECK_INT(ch_tracker_apply(t, s, at, at - 1000, NULL, b), 0);
    check_same_events(a, b);
    ch_events_clear(b); /* written */
    ch_tracker_settle(t, s, b);
}

/*
 * After a mass close the tracker gives back the room of the sockets that
 * closed (ch_tracker_settle), and tracks what is left, and what comes
 * after, exactly as a tracker that kept its room.
 */
static void test_room_given_back(void)
{
    enum { N = 20000, LEFT = 100 };
    ch_tracker *plain = ch_tracker_new(1), *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events a = {0}, b = {0};
    many_of(&s, N);
    apply_both(plain, t, &s, 1000, &a, &b);
    size_t full = ch_tracker_room(t);
    CHECK(full >= N * 52);
    many_of(&s, LEFT); /* all but LEFT (and cookie 7) close */
    apply_both(plain, t, &s, 2000, &a, &b);
    CHECK_INT(count(&a, CH_EV_CLOSE), N - LEFT);
    CHECK(a.cap >= N - LEFT);
    ch_events_clear(&a); /* the queue's room too */
    CHECK(a.cap <= 4096);
    size_t left = ch_tracker_room(t);
    CHECK(left < full / 8);
    CHECK(left <= 64 * 1024); /* back to what a few sockets need */
    /* The ones left, one of them moving on, and new ones. */
    many_of(&s, LEFT + 50);
    set_state(&s, 3, CH_ST_FIN_WAIT1);
    apply_both(plain, t, &s, 3000, &a, &b);
    CHECK_INT(count(&a, CH_EV_OPEN), 50);
    CHECK_INT(count(&a, CH_EV_STATE), 1);
    CHECK_INT(count(&a, CH_EV_CLOSE), 0);
    /* Growing again. */
    many_of(&s, N);
    apply_both(plain, t, &s, 4000, &a, &b);
    CHECK_INT(count(&a, CH_EV_OPEN), N - LEFT - 50);
    CHECK_INT(ch_tracker_count(t), ch_tracker_count(plain));
    many_of(&s, N); /* all found again */
    apply_both(plain, t, &s, 5000, &a, &b);
    CHECK_INT(a.count, 0);
    ch_events_free(&a);
    ch_events_free(&b);
    ch_sample_free(&s);
    ch_tracker_free(t);
    ch_tracker_free(plain);
}

static bool keep_first_ten(size_t i)
{
    return i < 10;
}

/* Opens rows[0, n) in both trackers at 1000, written and settled. */
static void open_all(ch_tracker *plain, ch_tracker *t, ch_sample *sp, ch_sample *st, ch_events *ref, ch_events *q,
                     const ch_sock *rows, size_t n)
{
    samples_of(sp, st, rows, n, keep_all, SIZE_MAX, 0);
    CHECK_INT(ch_tracker_apply(plain, sp, 1000, -1, NULL, ref), 0);
    CHECK_INT(ch_tracker_apply(t, st, 1000, -1, NULL, q), 0);
    ch_events_clear(ref);
    ch_events_clear(q);
    ch_tracker_settle(plain, sp, ref);
    ch_tracker_settle(t, st, q);
}

/*
 * A mass close after lost announcements: a sample misses more sockets
 * than the gone map keeps and their announcements come after it. Kept for
 * one more sample (ch_tracker_hold_missing), each socket has one lifetime,
 * closed as found gone by the sample that missed it, with its announcement's
 * counters where one came; one missed and found again goes on. With the
 * CLOSEs left in the tracker (the recorder's queue) or copied.
 */
static void test_missing_held(void)
{
    enum { N = CH_GONE_MAP_CAP + 4000 };
    ch_tracker *plain = ch_tracker_new(1), *t = ch_tracker_new(1);
    ch_sample sp = {0}, st = {0};
    ch_events ref = {.defer_opens = true}, q = {.defer_opens = true, .defer_closes = true};
    static ch_sock rows[N];
    for (int i = 0; i < N; i++)
        rows[i] = tcp((uint64_t)i + 1, "10.0.0.1", 1024 + i % 60000, i < 60000 ? "10.0.0.2" : "10.0.0.3", 443,
                      CH_ST_ESTABLISHED);
    open_all(plain, t, &sp, &st, &ref, &q, rows, N);

    /* All but ten missed by the sample at 2000, none announced yet. */
    ch_tracker_hold_missing(plain, true);
    ch_tracker_hold_missing(t, true);
    samples_of(&sp, &st, rows, N, keep_first_ten, SIZE_MAX, 0);
    CHECK_INT(ch_tracker_apply(plain, &sp, 2000, 1000, NULL, &ref), 0);
    CHECK_INT(ch_tracker_apply(t, &st, 2000, 1000, NULL, &q), 0);
    CHECK_INT(ch_events_pending(&ref), 0);
    CHECK_INT(ch_events_pending(&q), 0);
    CHECK_INT(ch_tracker_count(t), N);
    ch_tracker_settle(plain, &sp, &ref);
    ch_tracker_settle(t, &st, &q);

    /* Announced after that sample, all but rows[10, 20): no lifetime of
     * their own. */
    for (int i = 20; i < N; i++) {
        ch_sock gone = announced(rows[i], CH_ST_CLOSE, i, 2 * i);
        CHECK_INT(ch_tracker_destroyed(plain, &gone, 2100 + i % 500, 2000, &ref), 0);
        CHECK_INT(ch_tracker_destroyed(t, &gone, 2100 + i % 500, 2000, &q), 0);
    }
    CHECK_INT(count(&q, CH_EV_OPEN) + count(&ref, CH_EV_OPEN), 0);

    /* The next sample (no loss since) finds the ten and rows[10] again.
     * Sockets it kept were announced since the last: the rest stay kept. */
    ch_tracker_hold_missing(plain, false);
    ch_tracker_hold_missing(t, false);
    samples_of(&sp, &st, rows, 11, keep_all, SIZE_MAX, 0);
    CHECK_INT(ch_tracker_apply(plain, &sp, 3000, 2000, NULL, &ref), 0);
    CHECK_INT(ch_tracker_apply(t, &st, 3000, 2000, NULL, &q), 0);
    CHECK_INT(ch_events_pending(&q), N - 20);
    CHECK_INT(ch_events_pending(&ref), N - 20);
    CHECK_INT(same_stream(&q, &ref), N - 20);
    CHECK_INT(ch_tracker_count(t), 20);
    CHECK_INT(close_of(&q, 11).type, 0); /* rows[10]: found again, open */
    CHECK_INT(close_of(&q, 12).type, 0); /* rows[11]: never announced, still kept */
    for (int i = 20; i < N; i += 997) {
        ch_event c = close_of(&q, i + 1);
        CHECK_INT(c.at, 2000); /* the sample that missed it: it was gone by then */
        CHECK_INT(c.last_seen, 1000);
        CHECK_INT(c.seen_by, CH_SEEN_BY_DESTROY_EVENT);
        CHECK_INT(c.bytes_sent, i);
        CHECK_INT(c.bytes_received, 2 * i);
    }
    ch_events_clear(&ref);
    ch_events_clear(&q);
    ch_tracker_settle(plain, &sp, &ref);
    ch_tracker_settle(t, &st, &q);

    /* None announced since: the next sample closes rows[11, 20). */
    samples_of(&sp, &st, rows, 11, keep_all, SIZE_MAX, 0);
    CHECK_INT(ch_tracker_apply(plain, &sp, 4000, 3000, NULL, &ref), 0);
    CHECK_INT(ch_tracker_apply(t, &st, 4000, 3000, NULL, &q), 0);
    CHECK_INT(ch_events_pending(&q), 9);
    CHECK_INT(same_stream(&q, &ref), 9);
    CHECK_INT(ch_tracker_count(t), 11);
    check_close(&q, 12, 2000, 1000, CH_SEEN_BY_SAMPLES); /* rows[11]: never announced */
    CHECK_INT(close_of(&q, 12).reason, CH_CLOSE_GONE);
    ch_events_clear(&ref);
    ch_events_clear(&q);
    ch_tracker_settle(plain, &sp, &ref);
    ch_tracker_settle(t, &st, &q);

    /* rows[11]'s announcement, later still: joins its lifetime. */
    ch_sock late = announced(rows[11], CH_ST_CLOSE, 5, 6);
    CHECK_INT(ch_tracker_destroyed(t, &late, 4500, 4000, &q), 0);
    CHECK_INT(ch_events_pending(&q), 1);
    CHECK_INT(q.items[0].type, CH_EV_ANNOUNCED);
    CHECK_INT(q.items[0].lifetime_id, 12);
    free_pair(plain, t, &sp, &st, &ref, &q);
}

/* Missed sockets still kept when the recorder stops close as found gone by
 * the sample that missed them; while one waits, a sample must dump the TCP
 * tables (without them it would be taken as present). */
static void test_missing_at_stop(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock rows[] = {tcp(1, "10.0.0.1", 40001, "10.0.0.2", 443, CH_ST_ESTABLISHED),
                      tcp(2, "10.0.0.1", 40002, "10.0.0.2", 443, CH_ST_ESTABLISHED)};
    sample_of(&s, rows, 2);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    q.count = 0;
    ch_tracker_hold_missing(t, true);
    sample_of(&s, rows, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK_INT(q.count, 0);
    size_t kept = 0;
    ch_tracker_begin(t, 3000, &q);
    CHECK(!ch_tracker_keep_unmoved(t, CH_TCP, &kept));
    ch_tracker_hold_missing(t, false); /* no loss since */
    sample_of(&s, rows, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(close_of(&q, 2).at, 2000);
    q.count = 0;

    /* Missed again and kept, then the stop. */
    ch_tracker_hold_missing(t, true);
    ch_sample_clear(&s);
    CHECK_INT(ch_tracker_apply(t, &s, 4000, 3000, NULL, &q), 0);
    CHECK_INT(q.count, 0);
    CHECK_INT(ch_tracker_close_announced(t, 4000, &q), 0);
    CHECK_INT(q.count, 1);
    check_close(&q, 1, 4000, 3000, CH_SEEN_BY_SAMPLES);
    CHECK_INT(ch_tracker_count(t), 0);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/*
 * A mass close whose announcements have not begun when the next sample is
 * applied (the kernel's work that sends them delayed), no loss counted: a
 * tracker told the OS announces holds the sockets that sample misses when
 * they are many, and closes them as announced when the announcements
 * come; one not told closes them at once, as found gone. A few missed are
 * closed at once by both.
 */
static void test_mass_miss_held(void)
{
    enum { N = CH_GONE_MAP_CAP / 4 + 1, FEW = CH_GONE_MAP_CAP / 4 };
    ch_tracker *told = ch_tracker_new(1), *plain = ch_tracker_new(1);
    ch_tracker_expect_announcements(told);
    ch_sample s = {0};
    ch_events q = {0}, p = {0};
    static ch_sock rows[N + FEW];
    for (int i = 0; i < N + FEW; i++)
        rows[i] = tcp((uint64_t)i + 1, "10.0.0.1", 1024 + i, "10.0.0.2", 443, CH_ST_ESTABLISHED);

    /* FEW missed: closed at once by both. */
    sample_of(&s, rows, N + FEW);
    CHECK_INT(ch_tracker_apply(told, &s, 1000, -1, NULL, &q), 0);
    CHECK_INT(ch_tracker_apply(plain, &s, 1000, -1, NULL, &p), 0);
    q.count = p.count = 0;
    sample_of(&s, rows, N);
    CHECK_INT(ch_tracker_apply(told, &s, 2000, 1000, NULL, &q), 0);
    CHECK_INT(ch_tracker_apply(plain, &s, 2000, 1000, NULL, &p), 0);
    CHECK_INT(count(&q, CH_EV_CLOSE), FEW);
    CHECK_INT(count(&p, CH_EV_CLOSE), FEW);

    /* All N missed, none announced: held by the told one only. */
    q.count = p.count = 0;
    ch_sample_clear(&s);
    CHECK_INT(ch_tracker_apply(told, &s, 3000, 2000, NULL, &q), 0);
    CHECK_INT(ch_tracker_apply(plain, &s, 3000, 2000, NULL, &p), 0);
    CHECK_INT(q.count, 0);
    CHECK_INT(ch_tracker_count(told), N);
    CHECK_INT(count(&p, CH_EV_CLOSE), N);

    /* All but the first ten announced after it: closed as announced, dated
     * by the sample that missed them; the ten stay held a sample more. */
    for (int i = 10; i < N; i++) {
        ch_sock gone = announced(rows[i], CH_ST_CLOSE, i, 2 * i);
        CHECK_INT(ch_tracker_destroyed(told, &gone, 3400, 3000, &q), 0);
    }
    CHECK_INT(ch_tracker_apply(told, &s, 4000, 3000, NULL, &q), 0);
    CHECK_INT(count(&q, CH_EV_OPEN), 0); /* none twice */
    CHECK_INT(count(&q, CH_EV_CLOSE), N - 10);
    ch_event c = close_of(&q, 11); /* rows[10] */
    CHECK_INT(c.at, 3000);
    CHECK_INT(c.last_seen, 2000);
    CHECK_INT(c.seen_by, CH_SEEN_BY_DESTROY_EVENT);
    CHECK_INT(c.bytes_sent, 10);
    CHECK_INT(ch_tracker_count(told), 10);

    /* None announced since: the ten close as found gone by that sample. */
    q.count = 0;
    CHECK_INT(ch_tracker_apply(told, &s, 5000, 4000, NULL, &q), 0);
    CHECK_INT(count(&q, CH_EV_CLOSE), 10);
    check_close(&q, 1, 3000, 2000, CH_SEEN_BY_SAMPLES); /* rows[0] */
    CHECK_INT(ch_tracker_count(told), 0);
    ch_events_free(&q);
    ch_events_free(&p);
    ch_sample_free(&s);
    ch_tracker_free(told);
    ch_tracker_free(plain);
}

/*
 * Held through a storm: each socket closes as found gone by the sample that
 * first missed it, once a sample is applied without the hold and without
 * announcements of held sockets since the last, or by the 14th sample after
 * that one.
 */
static void test_missing_storm(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = {0};
    ch_events q = {0};
    ch_sock rows[3];
    for (int i = 0; i < 3; i++)
        rows[i] = tcp((uint64_t)i + 1, "10.0.0.1", 40001 + i, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    sample_of(&s, rows, 3);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    ch_tracker_hold_missing(t, true);
    q.count = 0;
    for (int n = 2; n >= 0; n--) { /* rows[2] missed at 2000, rows[1] at 2100, rows[0] at 2200 */
        sample_of(&s, rows, (size_t)n);
        CHECK_INT(ch_tracker_apply(t, &s, 2000 + 100 * (2 - n), n == 2 ? 1000 : 1900 + 100 * (2 - n), NULL, &q), 0);
    }
    CHECK_INT(q.count, 0);
    ch_sock late = announced(rows[1], CH_ST_CLOSE, 3, 4);
    CHECK_INT(ch_tracker_destroyed(t, &late, 2250, 2200, &q), 0);
    CHECK_INT(q.count, 0);
    /* Without the hold: rows[1] closes as announced, and the others stay
     * kept a sample more, for one was announced since the last. */
    ch_tracker_hold_missing(t, false);
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2200, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 3100, 3000, NULL, &q), 0);
    CHECK_INT(q.count, 3);
    ch_event c = close_of(&q, 3);
    CHECK(c.at == 2000 && c.last_seen == 1000 && c.seen_by == CH_SEEN_BY_SAMPLES);
    c = close_of(&q, 2);
    CHECK(c.at == 2100 && c.last_seen == 2000 && c.seen_by == CH_SEEN_BY_DESTROY_EVENT && c.bytes_sent == 3);
    c = close_of(&q, 1);
    CHECK(c.at == 2200 && c.last_seen == 2100 && c.seen_by == CH_SEEN_BY_SAMPLES);

    /* A storm that goes on: held 14 samples at most, then closed with the
     * times of its own samples all the same. */
    sample_of(&s, rows, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 4000, 3000, NULL, &q), 0);
    q.count = 0;
    ch_tracker_hold_missing(t, true);
    ch_sample_clear(&s);
    int64_t closed_by = 0;
    for (int64_t at = 5000; at < 30000 && q.count == 0; at += 1000) {
        CHECK_INT(ch_tracker_apply(t, &s, at, at - 1000, NULL, &q), 0);
        closed_by = at;
    }
    CHECK_INT(closed_by, 5000 + 14 * 1000);
    CHECK_INT(q.count, 1);
    c = close_of(&q, 4);
    CHECK(c.at == 5000 && c.last_seen == 4000);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

/*
 * Announcements read between a sample and its apply
 * (ch_tracker_destroyed_sampled): a socket the sample did not find closes
 * as announced by that apply, not later than the sample; one announced in
 * a state that may leave a TIME_WAIT entry waits a sample for it (the dump
 * may have passed before the entry was made): found under its cookie, its
 * lifetime goes on, else it closes as announced. One the sample found (its
 * row consumed) stays open and closes with the next sample, after this
 * one. An unknown one is left for ch_tracker_destroyed.
 */
static void test_destroyed_sampled(void)
{
    ch_tracker *t = ch_tracker_new(1);
    ch_sample s = streamed_into(t);
    ch_events q = {0};
    ch_sock rows[4];
    for (int i = 0; i < 4; i++)
        rows[i] = tcp((uint64_t)i + 1, "10.0.0.1", 40001 + i, "10.0.0.2", 443, CH_ST_ESTABLISHED);
    ch_tracker_begin(t, 1000, &q);
    stream_of(&s, rows, 4);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    q.count = 0;

    ch_tracker_begin(t, 2000, &q);
    stream_of(&s, rows, 1); /* the others gone before the dump reached them */
    CHECK_INT(s.consumed, 1);
    ch_sock a = announced(rows[0], CH_ST_CLOSE, 7, 8), b = announced(rows[1], CH_ST_CLOSE, 9, 10);
    ch_sock c = announced(rows[2], CH_ST_FIN_WAIT1, 11, 12), d = announced(rows[3], CH_ST_ESTABLISHED, 13, 14);
    ch_sock unknown = tcp(9, "10.0.0.1", 40009, "10.0.0.2", 443, CH_ST_CLOSE);
    CHECK(ch_tracker_destroyed_sampled(t, &a, 2050, 2100));
    CHECK(ch_tracker_destroyed_sampled(t, &b, 2060, 2100));
    CHECK(ch_tracker_destroyed_sampled(t, &c, 2065, 2100));
    CHECK(ch_tracker_destroyed_sampled(t, &d, 2068, 2100));
    CHECK(!ch_tracker_destroyed_sampled(t, &unknown, 2070, 2100));
    CHECK_INT(ch_tracker_apply(t, &s, 2100, 1000, NULL, &q), 0);
    CHECK_INT(count(&q, CH_EV_CLOSE), 1); /* d: reset, it left no entry */
    ch_event ev = close_of(&q, 4);
    CHECK(ev.at == 2068 && ev.last_seen == 1000 && ev.seen_by == CH_SEEN_BY_DESTROY_EVENT && ev.bytes_sent == 13);
    q.count = 0;

    /* The next dump finds c's TIME_WAIT entry (its cookie) and not b's. */
    ch_sock c_entry = time_wait_entry(rows[2], 3, CH_ST_TIME_WAIT);
    ch_tracker_begin(t, 3000, &q);
    stream_of(&s, &c_entry, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2100, NULL, &q), 0);
    CHECK_INT(count(&q, CH_EV_CLOSE), 2);
    ev = close_of(&q, 1);
    CHECK(ev.at == 2101 && ev.last_seen == 2100 &&
          ev.seen_by == CH_SEEN_BY_DESTROY_EVENT); /* after the sample that found it */
    CHECK_INT(ev.bytes_sent, 7);
    ev = close_of(&q, 2);
    CHECK(ev.at == 2060 && ev.last_seen == 1000 && ev.seen_by == CH_SEEN_BY_DESTROY_EVENT && ev.bytes_received == 10);
    CHECK(close_of(&q, 3).type == 0); /* goes on in its entry */
    const ch_event *moved = find(&q, CH_EV_STATE, 3);
    CHECK(moved != NULL && moved->state == CH_ST_TIME_WAIT && moved->at == 2065);
    CHECK_INT(ch_tracker_count(t), 1);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
}

int main(void)
{
    test_missing_held();
    test_missing_at_stop();
    test_missing_storm();
    test_mass_miss_held();
    test_destroyed_sampled();
    test_room_given_back();
    test_deferred_closes_forget();
    test_destroyed_key_reused();
    test_deferred_closes();
    test_owner_asked_again();
    test_settle();
    test_deferred_opens();
    test_streaming();
    test_keep_unmoved();
    test_sample_dates();
    test_sample_trim();
    test_destroyed_as_read();
    test_lifecycle();
    test_restart();
    test_identless();
    test_fresh_repeats();
    test_readdressed();
    test_ports_cleared();
    test_many();
    test_destroyed_known();
    test_destroyed_far_apart();
    test_destroyed_unknown();
    test_time_wait_continues_announced();
    test_announced_after_time_wait();
    test_announced_after_time_wait_same_cookie();
    test_time_wait_reuse_not_merged();
    test_destroyed_after_sample();
    test_reset_announced_samples_later();
    test_gone_map();
    test_counters_48_bits();
    test_destroyed_many();
    return check_report("test_tracker");
}
