/*
 * Unit tests of the tracker's diff logic with synthetic samples: opens,
 * state changes, TIME_WAIT continuity, a four-tuple reused by a new socket,
 * closes, restart continuity, reboot, and rows without identity.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
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
    CHECK(q.items[0].owner.proc == NULL);
    q.count = 0;

    /* Nothing changed: no events at all (dedup). */
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK_INT(q.count, 0);

    /* SYN_SENT -> ESTABLISHED -> TIME_WAIT keeps one lifetime (cookie survives). */
    s.rows[0].state = CH_ST_ESTABLISHED;
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_STATE);
    CHECK_INT(q.items[0].state, CH_ST_ESTABLISHED);
    CHECK_INT(q.items[0].lifetime_id, 1);
    q.count = 0;
    s.rows[0].state = CH_ST_TIME_WAIT;
    s.rows[0].inode = 0; /* the kernel reports no inode in TIME_WAIT */
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
        CHECK_STR(c->reason, "gone");
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
        CHECK_STR(c->reason, "gone_while_stopped");
    }
    CHECK(find(&q, CH_EV_OPEN, 100) != NULL);
    CHECK(find(&q, CH_EV_OPEN, 7) == NULL); /* no duplicate row for a continuing socket */
    q.count = 0;

    /* Reboot: everything open is closed at once. */
    CHECK_INT(ch_tracker_close_all(t, 90000, 120000, "reboot", &q), 0);
    CHECK_INT(count(&q, CH_EV_CLOSE), 2);
    CHECK_STR(q.items[0].reason, "reboot");
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
    sample_of(&s, &est, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 1000, -1, NULL, &q), 0);
    q.count = 0;
    ch_sock tw = est;
    tw.ident = tw.inode = 0;
    tw.state = CH_ST_TIME_WAIT;
    sample_of(&s, &tw, 1);
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    CHECK_INT(q.count, 1);
    CHECK_INT(q.items[0].type, CH_EV_STATE);
    CHECK_INT(q.items[0].lifetime_id, 1);
    q.count = 0;
    CHECK_INT(ch_tracker_apply(t, &s, 3000, 2000, NULL, &q), 0);
    CHECK_INT(q.count, 0);
    ch_events_free(&q);
    ch_sample_free(&s);
    ch_tracker_free(t);
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
    ch_addr_parse("10.1.1.1", &s.rows[0].remote);
    s.rows[0].remote_port = 53;
    s.rows[0].state = CH_ST_ESTABLISHED;
    CHECK_INT(ch_tracker_apply(t, &s, 2000, 1000, NULL, &q), 0);
    const ch_event *c = find(&q, CH_EV_CLOSE, 1);
    CHECK(c != NULL && strcmp(c->reason, "readdressed") == 0);
    CHECK(find(&q, CH_EV_OPEN, 2) != NULL);
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

int main(void)
{
    test_lifecycle();
    test_restart();
    test_identless();
    test_readdressed();
    test_many();
    return check_report("test_tracker");
}
