/*
 * Unit tests of the DNS names' recorder side: decoding captured packets
 * (recorder/linux/names_decode.c; the messages are built with ldns, the
 * IP and UDP/TCP headers in front of them here) and the answer store
 * (recorder/answers.c) on a real database file: a repeat in force only
 * counts, an expired one or one after another name for the address starts
 * a new row, a rolled-back write is written again once, and the queue is
 * bounded.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "answers.h"
#include "check.h"
#include "db.h"
#include "names_decode.h"

/* ---- decoding ---- */

typedef struct {
    ch_dns_answer got[16];
    int n;
} facts;

static void collect(void *ctx, const ch_dns_answer *a)
{
    facts *f = ctx;
    if (f->n < 16)
        f->got[f->n++] = *a;
}

/* A response to a query of type qtype (its mnemonic) for qname with the
 * answer records rrs (zone file lines), in wire format; *len its size. */
static uint8_t *response_to(const char *qname, const char *qtype, const char *const *rrs, int n, int rcode, bool qr,
                            size_t *len)
{
    ldns_pkt *p = ldns_pkt_new();
    ldns_pkt_set_qr(p, qr);
    ldns_pkt_set_rcode(p, (uint8_t)rcode);
    ldns_rr *q = NULL;
    char line[300];
    snprintf(line, sizeof line, "%s IN %s", qname, qtype);
    ldns_rr_new_question_frm_str(&q, line, NULL, NULL);
    ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q);
    for (int i = 0; i < n; i++) {
        ldns_rr *rr = NULL;
        CHECK(ldns_rr_new_frm_str(&rr, rrs[i], 0, NULL, NULL) == LDNS_STATUS_OK);
        ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
    }
    uint8_t *wire = NULL;
    CHECK(ldns_pkt2wire(&wire, p, len) == LDNS_STATUS_OK);
    ldns_pkt_free(p);
    return wire;
}

/* A response to an A query (response_to); rcode 0 unless given. */
static uint8_t *response(const char *qname, const char *const *rrs, int n, int rcode, bool qr, size_t *len)
{
    return response_to(qname, "A", rrs, n, rcode, qr, len);
}

/* msg behind an IPv4 header from 127.0.0.53 to 127.0.0.1 and a UDP header
 * from port 53 to port 40000 (or TCP, msg already length-prefixed). */
static size_t packet(uint8_t *out, const uint8_t *msg, size_t len, int proto)
{
    size_t th = proto == 17 ? 8 : 20, total = 20 + th + len;
    memset(out, 0, 20 + th);
    out[0] = 0x45;
    out[2] = (uint8_t)(total >> 8), out[3] = (uint8_t)total;
    out[9] = (uint8_t)proto;
    memcpy(out + 12, (uint8_t[]){127, 0, 0, 53}, 4);
    memcpy(out + 16, (uint8_t[]){127, 0, 0, 1}, 4);
    uint8_t *t = out + 20;
    t[1] = 53, t[2] = 40000 >> 8, t[3] = 40000 & 0xff;
    if (proto == 17)
        t[4] = (uint8_t)((8 + len) >> 8), t[5] = (uint8_t)(8 + len);
    else
        t[12] = 5 << 4;
    memcpy(out + 20 + th, msg, len);
    return total;
}

/* The question's type is kept apart from the record's: an A record may
 * answer an ANY question. */
static void test_question_type(void)
{
    const char *rrs[] = {"any.example.test. 60 IN A 192.0.2.9"};
    size_t len;
    uint8_t *msg = response_to("any.example.test.", "ANY", rrs, 1, 0, true, &len);
    uint8_t pkt[512];
    size_t n = packet(pkt, msg, len, 17);
    facts f = {.n = 0};
    CHECK_INT(ch_dns_decode_packet(pkt, n, CH_LINK_RAW, 1000, collect, &f), CH_DNS_ANSWERS);
    CHECK_INT(f.n, 1);
    CHECK_INT(f.got[0].type, CH_DNS_A);
    CHECK_INT(f.got[0].qtype, 255);
    free(msg);
}

static void test_decode_chain(void)
{
    const char *rrs[] = {"www.example.test. 300 IN CNAME Edge.CDN.test.", "edge.cdn.test. 60 IN A 192.0.2.7",
                         "evil.test. 60 IN A 198.51.100.1", "edge.cdn.test. 60 IN AAAA 2001:db8::7"};
    size_t len;
    uint8_t *msg = response("WWW.Example.test.", rrs, 4, 0, true, &len);
    uint8_t pkt[1024];
    size_t n = packet(pkt, msg, len, 17);
    facts f = {.n = 0};
    CHECK_INT(ch_dns_decode_packet(pkt, n, CH_LINK_RAW, 1000, collect, &f), CH_DNS_ANSWERS);
    CHECK_INT(f.n, 3); /* evil.test is not on the chain from the name asked */
    CHECK_INT(f.got[0].type, CH_DNS_CNAME);
    CHECK_STR(f.got[0].qname, "www.example.test");
    CHECK_STR(f.got[0].rname, "www.example.test");
    CHECK_STR(f.got[0].target, "edge.cdn.test");
    CHECK_INT(f.got[0].ttl, 300);
    CHECK_INT(f.got[1].type, CH_DNS_A);
    CHECK_STR(f.got[1].rname, "edge.cdn.test");
    CHECK_INT(f.got[1].addr.family, 4);
    CHECK_INT(f.got[1].addr.bytes[3], 7);
    CHECK_INT(f.got[1].client_port, 40000);
    for (int i = 0; i < f.n; i++)
        CHECK_INT(f.got[i].qtype, 1); /* every record answers the A question */
    CHECK_INT(f.got[1].resolver.bytes[3], 53);
    CHECK_INT(f.got[1].at, 1000);
    CHECK_INT(f.got[1].proto, 17);
    CHECK_INT(f.got[2].type, CH_DNS_AAAA);
    CHECK_INT(f.got[2].addr.family, 6);
    free(msg);
}

static void test_decode_refused(void)
{
    const char *rrs[] = {"a.test. 60 IN A 192.0.2.1"};
    size_t len;
    uint8_t pkt[1024];
    facts f = {.n = 0};
    uint8_t *query = response("a.test.", rrs, 1, 0, false, &len);
    CHECK_INT(ch_dns_decode_packet(pkt, packet(pkt, query, len, 17), CH_LINK_RAW, 0, collect, &f), CH_DNS_NOT_RESPONSE);
    free(query);
    uint8_t *nx = response("a.test.", rrs, 1, 3, true, &len); /* NXDOMAIN: nothing taken from it */
    CHECK_INT(ch_dns_decode_packet(pkt, packet(pkt, nx, len, 17), CH_LINK_RAW, 0, collect, &f), CH_DNS_ANSWERS);
    CHECK_INT(ch_dns_decode_message(nx, len - 3, &(ch_dns_answer){0}, collect, &f), CH_DNS_MALFORMED);
    free(nx);
    CHECK_INT(f.n, 0);
    /* Headers cut short, a wrong port, an unknown link: never read past the end. */
    uint8_t *ok = response("a.test.", rrs, 1, 0, true, &len);
    size_t n = packet(pkt, ok, len, 17);
    for (size_t cut = 0; cut < n; cut++)
        ch_dns_decode_packet(pkt, cut, CH_LINK_RAW, 0, collect, &f);
    CHECK_INT(f.n, 0);
    pkt[21] = 54;
    CHECK_INT(ch_dns_decode_packet(pkt, n, CH_LINK_RAW, 0, collect, &f), CH_DNS_NOT_RESPONSE);
    CHECK_INT(ch_dns_decode_packet(pkt, n, 9999, 0, collect, &f), CH_DNS_NOT_RESPONSE);
    free(ok);
}

static void test_decode_tcp(void)
{
    const char *rrs[] = {"a.test. 60 IN A 192.0.2.1"};
    size_t len;
    uint8_t *msg = response("a.test.", rrs, 1, 0, true, &len);
    uint8_t two[1024], pkt[2048];
    for (int i = 0; i < 2; i++) { /* two length-prefixed messages in one segment */
        two[i * (len + 2)] = (uint8_t)(len >> 8), two[i * (len + 2) + 1] = (uint8_t)len;
        memcpy(two + i * (len + 2) + 2, msg, len);
    }
    facts f = {.n = 0};
    CHECK_INT(ch_dns_decode_packet(pkt, packet(pkt, two, 2 * (len + 2), 6), CH_LINK_RAW, 0, collect, &f), CH_DNS_ANSWERS);
    CHECK_INT(f.n, 2);
    CHECK_INT(f.got[0].proto, 6);
    /* A message split over segments is not reassembled. */
    CHECK_INT(ch_dns_decode_packet(pkt, packet(pkt, two, len, 6), CH_LINK_RAW, 0, collect, &f), CH_DNS_MALFORMED);
    CHECK_INT(f.n, 2);
    free(msg);
}

/* ---- the answer store ---- */

static sqlite3 *db;
static ch_addr_ids *ids;
static int64_t run_id;

static ch_dns_answer fact(const char *qname, const char *addr, int64_t at, uint32_t ttl)
{
    ch_dns_answer a;
    memset(&a, 0, sizeof a);
    a.at = a.last_at = at;
    a.count = 1;
    a.type = CH_DNS_A;
    a.proto = 17;
    a.ttl = ttl;
    ch_addr_parse(addr, &a.addr);
    ch_addr_parse("127.0.0.53", &a.resolver);
    ch_addr_parse("127.0.0.1", &a.client);
    a.client_port = 40000;
    snprintf(a.qname, sizeof a.qname, "%s", qname);
    snprintf(a.rname, sizeof a.rname, "%s", qname);
    return a;
}

/* Adds the facts and writes them in one committed transaction. */
static void write_all(ch_answers *s, const ch_dns_answer *f, size_t n)
{
    ch_answers_add(s, f, n);
    CHECK_INT(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    int rc = ch_answers_write(s, ids, run_id);
    CHECK_INT(rc, SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    ch_answers_done(s, true);
}

static int64_t count(const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

static void test_store(void)
{
    char err[256];
    ch_answers *s = ch_answers_new(db, 1000, err, sizeof err);
    CHECK(s != NULL);
    ch_dns_answer f[3] = {fact("a.test", "192.0.2.1", 10000, 60)};
    write_all(s, f, 1);
    f[0] = fact("a.test", "192.0.2.1", 20000, 50); /* a cache counting down: still in force */
    f[0].count = 3;
    write_all(s, f, 1);
    CHECK_INT(count("SELECT count(*) FROM dns_answers"), 1);
    CHECK_INT(count("SELECT times_seen FROM dns_answers"), 4);
    CHECK_INT(count("SELECT last_seen_after FROM dns_answers"), 10000);
    CHECK_INT(count("SELECT expires_after FROM dns_answers"), 60000); /* max(10 s + 60 s, 20 s + 50 s) - 10 s */
    CHECK_INT(count("SELECT ttl FROM dns_answers"), 60);
    CHECK_INT(count("SELECT count(*) FROM dns_names"), 1);
    /* Expired (at 70 s), then seen again: a new row. */
    f[0] = fact("a.test", "192.0.2.1", 71000, 60);
    write_all(s, f, 1);
    CHECK_INT(count("SELECT count(*) FROM dns_answers"), 2);
    /* Another name for the address meanwhile: the next a.test starts a row. */
    f[0] = fact("b.test", "192.0.2.1", 72000, 60);
    f[1] = fact("a.test", "192.0.2.1", 73000, 60);
    write_all(s, f, 2);
    CHECK_INT(count("SELECT count(*) FROM dns_answers"), 4);
    CHECK_INT(count("SELECT count(*) FROM dns_answers a JOIN addrs x ON x.addr_id = a.addr_id WHERE x.addr = '192.0.2.1'"), 4);
    /* Rolled back: written again, once, by the next write. */
    f[0] = fact("c.test", "192.0.2.3", 80000, 60);
    ch_answers_add(s, f, 1);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    CHECK_INT(ch_answers_write(s, ids, run_id), SQLITE_OK);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    ch_addr_ids_forget(ids);
    ch_answers_done(s, false);
    CHECK_INT(ch_answers_pending(s), 1);
    write_all(s, NULL, 0);
    CHECK_INT(count("SELECT count(*) FROM v_dns_answers WHERE qname = 'c.test'"), 1);
    CHECK_INT(ch_answers_pending(s), 0);
    /* Bounded: what does not fit waits nowhere, and is counted. */
    ch_dns_answer *many = calloc(CH_ANSWERS_PENDING_MAX + 10, sizeof *many);
    ch_answers_add(s, many, CH_ANSWERS_PENDING_MAX + 10);
    CHECK_INT(ch_answers_pending(s), CH_ANSWERS_PENDING_MAX);
    CHECK_INT(ch_answers_dropped(s), 10);
    free(many);
    ch_answers_free(s);
}

int main(void)
{
    test_decode_chain();
    test_question_type();
    test_decode_refused();
    test_decode_tcp();
    char dir[] = "/tmp/connhist-test-dns-XXXXXX", path[64], err[CH_ERR_MAX];
    int from;
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/connhist.db", dir);
    CHECK_INT(ch_db_open_write(path, &db, &from, err), 0);
    CHECK_INT(sqlite3_exec(db, "INSERT INTO runs(started_at, mode, interval_ms, host, os, sampler, version, pid)"
                               " VALUES (0, 'continuous', 1000, 'h', 'o', 'netlink', 'v', 1)", NULL, NULL, NULL), SQLITE_OK);
    run_id = sqlite3_last_insert_rowid(db);
    ids = ch_addr_ids_open(db, err, sizeof err);
    test_store();
    ch_addr_ids_close(ids);
    sqlite3_close(db);
    unlink(path);
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    rmdir(dir);
    return check_report("test_dns");
}
