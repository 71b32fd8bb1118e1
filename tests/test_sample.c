/*
 * The sample's packed rows (recorder/sample.c): every row comes back as it
 * was filled, whatever its fields; an IPv4 row with nothing else to say
 * takes 32 bytes; a sampler may drop the row it added last or go back to
 * a mark; a row may be replaced by one of another length; truncating gives
 * the room back.
 */
#include <string.h>

#include "check.h"
#include "sample.h"

static ch_sock row_of(uint64_t ident, const char *local, uint16_t lport, const char *remote, uint16_t rport)
{
    ch_sock s;
    memset(&s, 0, sizeof s);
    s.proto = CH_TCP;
    s.state = CH_ST_ESTABLISHED;
    s.ident = ident;
    s.inode = (uint32_t)(ident * 7);
    s.uid = 1000;
    s.local_port = lport;
    s.remote_port = rport;
    ch_addr_parse(local, &s.local);
    if (remote != NULL)
        ch_addr_parse(remote, &s.remote);
    s.bytes_sent = s.bytes_received = -1;
#if CH_SOCK_OS_FIELDS
    s.offload = -1;
#endif
    return s;
}

/* Rows of every kind the packing tells apart. */
static size_t kinds(ch_sock *out)
{
    size_t n = 0;
    out[n++] = row_of(1, "10.0.0.1", 40000, "10.0.0.2", 443); /* IPv4, nothing else */
    out[n] = row_of(2, "0.0.0.0", 80, NULL, 0);               /* a listener: no remote */
    out[n++].state = CH_ST_LISTEN;
    out[n++] = row_of(3, "2001:db8::1", 40001, "2001:db8::2", 443); /* IPv6 */
    out[n] = row_of(4, "fe80::1", 40002, "fe80::2", 22);            /* link-local: scope ids */
    out[n].local_scope = 3;
    out[n++].remote_scope = UINT32_MAX;
    out[n] = row_of(5, "10.0.0.1", 40003, "10.0.0.3", 80); /* byte counters */
    out[n].bytes_sent = 0;
    out[n++].bytes_received = INT64_MAX;
    out[n] = row_of(6, "10.0.0.1", 40004, "10.0.0.4", 80); /* one counter known */
    out[n++].bytes_received = 12345;
    out[n] = row_of(7, "10.0.0.1", 40005, "10.0.0.5", 80); /* an IPv4 address with bytes past its fourth */
    out[n++].local.bytes[15] = 1;
    out[n] = row_of(8, "10.0.0.1", 40006, NULL, 0); /* family 0 with bytes */
    out[n++].remote.bytes[0] = 9;
    out[n] = row_of(UINT64_MAX, "255.255.255.255", 65535, "1.2.3.4", 65535); /* extremes */
    out[n].inode = UINT32_MAX;
    out[n].uid = CH_UID_UNKNOWN;
    out[n].proto = CH_UDP;
    out[n++].state = CH_ST_UNCONN;
    out[n++] = row_of(10, "::", 53, NULL, 0); /* IPv6 any */
    return n;
}

static void fill(ch_sample *s, const ch_sock *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ch_sock *row = ch_sample_add(s);
        CHECK(row != NULL);
        if (row != NULL)
            *row = rows[i];
    }
}

static void same_rows(const ch_sample *s, const ch_sock *rows, size_t n)
{
    CHECK_INT(s->count, n);
    for (size_t i = 0; i < n && i < s->count; i++) {
        ch_sock got = ch_sample_row(s, i);
        if (!ch_sock_same(&got, &rows[i])) {
            CHECK(!"row comes back as filled");
            fprintf(stderr, "  row %zu (ident %llu) differs\n", i, (unsigned long long)rows[i].ident);
        }
    }
}

static void test_round_trip(void)
{
    ch_sock rows[16];
    size_t n = kinds(rows);
    ch_sample s = {0};
    fill(&s, rows, n);
    same_rows(&s, rows, n);
#if !CH_SOCK_OS_FIELDS
    CHECK_INT(ch_sample_row_bytes(&s, 0), 32); /* IPv4, nothing else */
    CHECK_INT(ch_sample_row_bytes(&s, 1), 28); /* a listener */
    CHECK_INT(ch_sample_row_bytes(&s, 2), 56); /* IPv6 */
    CHECK_INT(ch_sample_row_bytes(&s, 3), 64); /* with scope ids */
    CHECK_INT(ch_sample_row_bytes(&s, 4), 48); /* with counters */
#endif
    /* the staged row counts: the last one is still a ch_sock */
    CHECK_INT(ch_sample_row_bytes(&s, n - 1), 0);
    ch_sample_free(&s);
}

/* A sampler drops the row it added last (consumed), and goes back to a
 * mark (an interrupted dump read again). */
static void test_count_lowered(void)
{
    ch_sock rows[16];
    size_t n = kinds(rows);
    ch_sample s = {0};
    fill(&s, rows, 3);
    s.count--; /* the third dropped */
    fill(&s, rows + 3, n - 3);
    ch_sock want[16];
    memcpy(want, rows, 2 * sizeof *rows);
    memcpy(want + 2, rows + 3, (n - 3) * sizeof *rows);
    same_rows(&s, want, n - 1);
    s.count = 4; /* back to a mark */
    same_rows(&s, want, 4);
    fill(&s, rows, 2);
    memcpy(want + 4, rows, 2 * sizeof *rows);
    same_rows(&s, want, 6);
    s.count = 0;
    fill(&s, rows + 5, 1);
    same_rows(&s, rows + 5, 1);
    ch_sample_clear(&s);
    CHECK_INT(s.count, 0);
    fill(&s, rows, n);
    same_rows(&s, rows, n);
    ch_sample_free(&s);
}

/* A row replaced by one packed longer or shorter; the others stay. */
static void test_put(void)
{
    ch_sock rows[16];
    size_t n = kinds(rows);
    ch_sample s = {0};
    fill(&s, rows, n);
    ch_sock v6 = rows[2], v4 = rows[0];
    CHECK_INT(ch_sample_put(&s, 0, &v6), 0); /* longer */
    CHECK_INT(ch_sample_put(&s, 2, &v4), 0); /* shorter */
    rows[0] = v6;
    rows[2] = v4;
    rows[4].state = CH_ST_CLOSE_WAIT;
    rows[4].bytes_sent = 99;
    CHECK_INT(ch_sample_put(&s, 4, &rows[4]), 0);
    rows[n - 1].state = CH_ST_LISTEN; /* the staged one */
    CHECK_INT(ch_sample_put(&s, n - 1, &rows[n - 1]), 0);
    same_rows(&s, rows, n);
    ch_sample_free(&s);
}

/* Truncating keeps the first rows and gives back the room of the rest. */
static void test_truncate(void)
{
    ch_sample s = {0};
    ch_sock rows[16];
    kinds(rows);
    for (size_t i = 0; i < 100000; i++) {
        ch_sock *row = ch_sample_add(&s);
        CHECK(row != NULL);
        *row = rows[i % 3];
        row->ident = i + 1;
    }
    CHECK(s.packed_cap >= 100000 * 28);
    ch_sample_truncate(&s, 50000);
    CHECK_INT(s.count, 50000);
    CHECK(s.packed_cap < 100000 * 28);
    CHECK_INT(ch_sample_row(&s, 49999).ident, 50000);
    ch_sock last = ch_sample_row(&s, 49998);
    CHECK_INT(last.ident, 49999);
    CHECK_INT(last.local.family, rows[49998 % 3].local.family);
    ch_sample_truncate(&s, 0);
    CHECK_INT(s.count, 0);
    CHECK_INT(s.packed_cap, 64 * 1024);
    CHECK_INT(s.at_cap, 1025);
    ch_sample_free(&s);
}

int main(void)
{
    test_round_trip();
    test_count_lowered();
    test_put();
    test_truncate();
    return check_report("test_sample");
}
