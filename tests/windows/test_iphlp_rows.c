/*
 * Unit tests of the Windows row conversion (recorder/windows/iphlp_rows.c) with
 * IP Helper table buffers built here: byte order of ports and addresses,
 * IPv6 scope ids, the padding before the first row, zero creation times
 * and pids (Wine), LISTEN rows' meaningless remote end, offload states, a
 * short buffer, and the size/fill retry loop; the estats pieces of the
 * TCP byte counters (the MIB row naming a connection, the counters from
 * the ROD struct, which rows are asked about); also the UTF-16 text and
 * token-user helpers of common/. Runs as a Windows .exe.
 */
#include <stdlib.h>
#include <string.h>

#include <winsock2.h>
#include <ws2ipdef.h>
#include <iphlpapi.h>

#include "check.h"
#include "iphlp_rows.h"
#include "win_text.h"
#include "win_user.h"

static char text[CH_ADDR_TEXT];

static const char *addr(const ch_addr *a)
{
    ch_addr_format(a, text);
    return text;
}

/* A DWORD port field as Windows fills it: network order in the low 16 bits, junk above. */
static DWORD port_field(uint16_t port)
{
    uint8_t b[4] = {(uint8_t)(port >> 8), (uint8_t)port, 0xAB, 0xCD};
    DWORD v;
    memcpy(&v, b, 4);
    return v;
}

static DWORD ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    uint8_t bytes[4] = {a, b, c, d};
    DWORD v;
    memcpy(&v, bytes, 4);
    return v;
}

/* The sample's first n rows (zeroed past its count), as the converter filled them. */
static void rows_of(const ch_sample *s, ch_sock *out, size_t n)
{
    memset(out, 0, n * sizeof *out);
    for (size_t i = 0; i < n && i < s->count; i++)
        out[i] = ch_sample_row(s, i);
}

static void test_tcp4_module(void)
{
    struct {
        MIB_TCPTABLE_OWNER_MODULE t;
        MIB_TCPROW_OWNER_MODULE more[2];
    } buf;
    memset(&buf, 0, sizeof buf);
    MIB_TCPROW_OWNER_MODULE *rows = buf.t.table;
    CHECK_INT(offsetof(MIB_TCPTABLE_OWNER_MODULE, table), 8); /* padding after dwNumEntries */
    buf.t.dwNumEntries = 3;
    rows[0].dwState = MIB_TCP_STATE_ESTAB;
    rows[0].dwLocalAddr = ipv4(127, 0, 0, 1);
    rows[0].dwLocalPort = port_field(8080);
    rows[0].dwRemoteAddr = ipv4(10, 1, 2, 3);
    rows[0].dwRemotePort = port_field(443);
    rows[0].dwOwningPid = 1234;
    rows[0].liCreateTimestamp.QuadPart = 116444736000000000LL + 17640000000000000LL; /* 1764000000 s */
    rows[1].dwState = MIB_TCP_STATE_LISTEN;
    rows[1].dwLocalPort = port_field(445);
    rows[1].dwRemoteAddr = ipv4(1, 2, 3, 4); /* "no meaning" for LISTEN */
    rows[1].dwRemotePort = port_field(9);
    rows[1].dwOwningPid = 4;
    rows[2].dwState = MIB_TCP_STATE_TIME_WAIT; /* Wine and TIME_WAIT: pid 0, no time */
    rows[2].dwLocalAddr = ipv4(127, 0, 0, 1);
    rows[2].dwLocalPort = port_field(50000);
    rows[2].dwRemoteAddr = ipv4(127, 0, 0, 1);
    rows[2].dwRemotePort = port_field(8080);

    ch_sample s = {0};
    char err[256];
    CHECK_INT(ch_iphlp_rows(CH_IPHLP_TCP4_MODULE, &buf, sizeof buf, &s, err, sizeof err), 0);
    CHECK_INT(s.count, 3);
    ch_sock got[4];
    rows_of(&s, got, 4);
    CHECK_INT(got[0].proto, CH_TCP);
    CHECK_INT(got[0].state, CH_ST_ESTABLISHED);
    CHECK_STR(addr(&got[0].local), "127.0.0.1");
    CHECK_INT(got[0].local_port, 8080);
    CHECK_STR(addr(&got[0].remote), "10.1.2.3");
    CHECK_INT(got[0].remote_port, 443);
    CHECK_INT(got[0].pid, 1234);
    CHECK_INT(got[0].created, 1764000000000LL);
    CHECK(got[0].ident != 0 && (got[0].ident >> 63) == 0);
    CHECK_INT(got[0].offload, -1);
    CHECK_INT(got[1].state, CH_ST_LISTEN);
    CHECK_INT(got[1].local_port, 445);
    CHECK_INT(got[1].remote_port, 0);
    CHECK(!ch_sock_has_remote(&got[1]));
    CHECK_INT(got[2].state, CH_ST_TIME_WAIT);
    CHECK_INT(got[2].created, 0);
    CHECK_INT(got[2].ident, 0); /* keyed by addresses: continues the connection's lifetime */

    /* Same socket, same identity; another creation time, another socket. */
    ch_sock again = got[0];
    CHECK(ch_iphlp_ident(&again) == got[0].ident);
    again.created += 1;
    CHECK(ch_iphlp_ident(&again) != got[0].ident);

    /* A buffer shorter than its count is refused, not overread. */
    ch_sample_clear(&s);
    CHECK_INT(ch_iphlp_rows(CH_IPHLP_TCP4_MODULE, &buf, sizeof buf - 1, &s, err, sizeof err), -1);
    buf.t.dwNumEntries = 0;
    CHECK_INT(ch_iphlp_rows(CH_IPHLP_TCP4_MODULE, &buf, 4, &s, err, sizeof err), 0);
    CHECK_INT(s.count, 0);
    ch_sample_free(&s);
}

static void test_tcp6_module(void)
{
    MIB_TCP6TABLE_OWNER_MODULE buf;
    memset(&buf, 0, sizeof buf);
    buf.dwNumEntries = 1;
    MIB_TCP6ROW_OWNER_MODULE *r = &buf.table[0];
    r->dwState = MIB_TCP_STATE_SYN_SENT;
    r->ucLocalAddr[0] = 0xfe, r->ucLocalAddr[1] = 0x80, r->ucLocalAddr[15] = 1;
    r->dwLocalScopeId = 7;
    r->dwLocalPort = port_field(50001);
    r->ucRemoteAddr[0] = 0xfe, r->ucRemoteAddr[1] = 0x80, r->ucRemoteAddr[15] = 2;
    r->dwRemoteScopeId = 7;
    r->dwRemotePort = port_field(22);
    r->dwOwningPid = 99;
    ch_sample s = {0};
    char err[256];
    CHECK_INT(ch_iphlp_rows(CH_IPHLP_TCP6_MODULE, &buf, sizeof buf, &s, err, sizeof err), 0);
    CHECK_INT(s.count, 1);
    ch_sock got[4];
    rows_of(&s, got, 4);
    CHECK_INT(got[0].local.family, 6);
    CHECK_STR(addr(&got[0].local), "fe80::1");
    CHECK_STR(addr(&got[0].remote), "fe80::2");
    CHECK_INT(got[0].local_scope, 7);
    CHECK_INT(got[0].remote_scope, 7);
    CHECK_INT(got[0].local_port, 50001);
    CHECK_INT(got[0].remote_port, 22);
    CHECK_INT(got[0].state, CH_ST_SYN_SENT);
    CHECK(got[0].ident != 0); /* pid alone makes an identity */
    ch_sock other = got[0];
    other.local_scope = 8;
    CHECK(ch_iphlp_ident(&other) != got[0].ident);
    ch_sample_free(&s);
}

static void test_udp_module(void)
{
    MIB_UDPTABLE_OWNER_MODULE b4;
    MIB_UDP6TABLE_OWNER_MODULE b6;
    memset(&b4, 0, sizeof b4);
    memset(&b6, 0, sizeof b6);
    b4.dwNumEntries = 1;
    b4.table[0].dwLocalAddr = ipv4(0, 0, 0, 0);
    b4.table[0].dwLocalPort = port_field(53);
    b4.table[0].dwOwningPid = 0; /* Wine */
    b6.dwNumEntries = 1;
    b6.table[0].ucLocalAddr[15] = 1;
    b6.table[0].dwLocalScopeId = 0;
    b6.table[0].dwLocalPort = port_field(5353);
    b6.table[0].dwOwningPid = 321;
    ch_sample s = {0};
    char err[256];
    CHECK_INT(ch_iphlp_rows(CH_IPHLP_UDP4_MODULE, &b4, sizeof b4, &s, err, sizeof err), 0);
    CHECK_INT(ch_iphlp_rows(CH_IPHLP_UDP6_MODULE, &b6, sizeof b6, &s, err, sizeof err), 0);
    CHECK_INT(s.count, 2);
    ch_sock got[4];
    rows_of(&s, got, 4);
    CHECK_INT(got[0].proto, CH_UDP);
    CHECK_INT(got[0].state, CH_ST_UNCONN);
    CHECK_INT(got[0].local_port, 53);
    CHECK_INT(got[0].ident, 0);
    CHECK_STR(addr(&got[1].local), "::1");
    CHECK_INT(got[1].local_port, 5353);
    CHECK_INT(got[1].pid, 321);
    CHECK(!ch_sock_has_remote(&got[1]));
    ch_sample_free(&s);
}

static void test_pid_layouts(void)
{
    MIB_TCPTABLE_OWNER_PID t;
    memset(&t, 0, sizeof t);
    t.dwNumEntries = 1;
    t.table[0].dwState = MIB_TCP_STATE_CLOSE_WAIT;
    t.table[0].dwLocalAddr = ipv4(192, 168, 0, 2);
    t.table[0].dwLocalPort = port_field(1);
    t.table[0].dwRemoteAddr = ipv4(192, 168, 0, 3);
    t.table[0].dwRemotePort = port_field(65535);
    t.table[0].dwOwningPid = 77;
    ch_sample s = {0};
    char err[256];
    CHECK_INT(ch_iphlp_rows(CH_IPHLP_TCP4_PID, &t, sizeof t, &s, err, sizeof err), 0);
    ch_sock got[4];
    rows_of(&s, got, 4);
    CHECK_INT(got[0].state, CH_ST_CLOSE_WAIT);
    CHECK_INT(got[0].remote_port, 65535);
    CHECK_INT(got[0].created, 0);
    CHECK_INT(got[0].pid, 77);
    ch_sample_free(&s);
}

static void test_offload(void)
{
    MIB_TCPTABLE_OWNER_PID t;
    memset(&t, 0, sizeof t);
    t.dwNumEntries = 1;
    t.table[0].dwState = MIB_TCP_STATE_ESTAB;
    t.table[0].dwLocalAddr = ipv4(127, 0, 0, 1);
    t.table[0].dwLocalPort = port_field(1000);
    t.table[0].dwRemoteAddr = ipv4(127, 0, 0, 1);
    t.table[0].dwRemotePort = port_field(2000);
    ch_sample s = {0};
    char err[256];
    CHECK_INT(ch_iphlp_rows(CH_IPHLP_TCP4_PID, &t, sizeof t, &s, err, sizeof err), 0);
    struct {
        MIB_TCPTABLE2 t;
        MIB_TCPROW2 more;
    } t2;
    memset(&t2, 0, sizeof t2);
    t2.t.dwNumEntries = 2;
    MIB_TCPROW2 *rows2 = (MIB_TCPROW2 *)((char *)&t2 + offsetof(MIB_TCPTABLE2, table));
    rows2[0].dwState = MIB_TCP_STATE_ESTAB; /* another connection: no match */
    rows2[0].dwLocalPort = port_field(1);
    rows2[0].dwOffloadState = TcpConnectionOffloadStateOffloaded;
    rows2[1] = (MIB_TCPROW2){MIB_TCP_STATE_ESTAB, t.table[0].dwLocalAddr, t.table[0].dwLocalPort,
                                  t.table[0].dwRemoteAddr, t.table[0].dwRemotePort, 0,
                                  TcpConnectionOffloadStateInHost};
    ch_iphlp_offload(4, &t2, sizeof t2, &s, 0);
    ch_sock got[4];
    rows_of(&s, got, 4);
    CHECK_INT(got[0].offload, CH_OFFLOAD_IN_HOST);
    CHECK_STR(ch_offload_name(got[0].offload), "in_host");
    ch_sample_free(&s);
}

/* Found by fuzz/fuzz_iphlp_rows.c: a garbage creation time overflowed the
 * epoch subtraction, and the offload pass did arithmetic on a NULL buffer. */
static void test_hostile_tables(void)
{
    CHECK_INT(ch_iphlp_filetime_ms(INT64_MIN), 0);
    CHECK_INT(ch_iphlp_filetime_ms(-1), 0);
    CHECK_INT(ch_iphlp_filetime_ms(116444736000000000LL), 0);
    CHECK_INT(ch_iphlp_filetime_ms(INT64_MAX), (INT64_MAX - 116444736000000000LL) / 10000);
    MIB_UDPTABLE_OWNER_MODULE t;
    memset(&t, 0, sizeof t);
    t.dwNumEntries = 1;
    t.table[0].dwLocalPort = port_field(53);
    t.table[0].dwOwningPid = 8;
    t.table[0].liCreateTimestamp.QuadPart = INT64_MIN;
    ch_sample s = {0};
    char err[256];
    CHECK_INT(ch_iphlp_rows(CH_IPHLP_UDP4_MODULE, &t, sizeof t, &s, err, sizeof err), 0);
    ch_sock got[4];
    rows_of(&s, got, 4);
    CHECK_INT(got[0].created, 0);
    CHECK(got[0].ident != 0); /* the pid alone */
    /* A table never filled: no rows, nothing matched, no crash. */
    CHECK_INT(ch_iphlp_rows(CH_IPHLP_TCP4_PID, NULL, 0, &s, err, sizeof err), -1);
    ch_iphlp_offload(4, NULL, 0, &s, 0);
    ch_iphlp_offload(6, NULL, 0, &s, 0);
    rows_of(&s, got, 4);
    CHECK_INT(s.count, 1);
    CHECK_INT(got[0].offload, -1);
    ch_sample_free(&s);
}

/* Bytes of a DWORD as they lie in memory. */
static int dword_bytes_are(DWORD v, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3)
{
    uint8_t want[4] = {b0, b1, b2, b3};
    return memcmp(&v, want, 4) == 0;
}

/* A connection from a table, back into the MIB_TCPROW estats takes: ports
 * in network byte order in the low 16 bits, high bits zero (not the junk
 * the table had), addresses as they were. */
static void test_estats_tcp_row(void)
{
    MIB_TCPTABLE_OWNER_PID t;
    memset(&t, 0, sizeof t);
    t.dwNumEntries = 1;
    t.table[0].dwState = MIB_TCP_STATE_CLOSE_WAIT;
    t.table[0].dwLocalAddr = ipv4(192, 168, 1, 20);
    t.table[0].dwLocalPort = port_field(0x1234);
    t.table[0].dwRemoteAddr = ipv4(10, 0, 0, 7);
    t.table[0].dwRemotePort = port_field(443);
    t.table[0].dwOwningPid = 42;
    ch_sample s = {0};
    char err[256];
    CHECK_INT(ch_iphlp_rows(CH_IPHLP_TCP4_PID, &t, sizeof t, &s, err, sizeof err), 0);
    MIB_TCPROW mib;
    ch_sock got[4];
    rows_of(&s, got, 4);
    CHECK_INT(ch_iphlp_tcp_row(&got[0], &mib), 0);
    CHECK_INT(mib.dwState, MIB_TCP_STATE_CLOSE_WAIT);
    CHECK(dword_bytes_are(mib.dwLocalPort, 0x12, 0x34, 0, 0));
    CHECK(dword_bytes_are(mib.dwRemotePort, 0x01, 0xbb, 0, 0));
    CHECK(dword_bytes_are(mib.dwLocalAddr, 192, 168, 1, 20));
    CHECK(dword_bytes_are(mib.dwRemoteAddr, 10, 0, 0, 7));
    CHECK_INT(ntohs((u_short)mib.dwLocalPort), 0x1234); /* how Microsoft's samples read it */
    /* Other states map back too. */
    got[0].state = CH_ST_ESTABLISHED;
    CHECK_INT(ch_iphlp_tcp_row(&got[0], &mib), 0);
    CHECK_INT(mib.dwState, MIB_TCP_STATE_ESTAB);
    got[0].state = CH_ST_NEW_SYN_RECV;
    CHECK_INT(ch_iphlp_tcp_row(&got[0], &mib), 0);
    CHECK_INT(mib.dwState, MIB_TCP_STATE_SYN_RCVD);
    /* Not an IPv6 row, and UDP names no connection. */
    MIB_TCP6ROW mib6;
    CHECK_INT(ch_iphlp_tcp6_row(&got[0], &mib6), -1);
    got[0].proto = CH_UDP;
    CHECK_INT(ch_iphlp_tcp_row(&got[0], &mib), -1);
    ch_sample_free(&s);
}

static void test_estats_tcp6_row(void)
{
    MIB_TCP6TABLE_OWNER_PID t;
    memset(&t, 0, sizeof t);
    t.dwNumEntries = 1;
    MIB_TCP6ROW_OWNER_PID *r = &t.table[0];
    r->dwState = MIB_TCP_STATE_ESTAB;
    r->ucLocalAddr[0] = 0xfe, r->ucLocalAddr[1] = 0x80, r->ucLocalAddr[15] = 1;
    r->dwLocalScopeId = 12;
    r->dwLocalPort = port_field(50002);
    r->ucRemoteAddr[0] = 0x20, r->ucRemoteAddr[1] = 0x01, r->ucRemoteAddr[15] = 9;
    r->dwRemoteScopeId = 0;
    r->dwRemotePort = port_field(8443);
    r->dwOwningPid = 7;
    ch_sample s = {0};
    char err[256];
    CHECK_INT(ch_iphlp_rows(CH_IPHLP_TCP6_PID, &t, sizeof t, &s, err, sizeof err), 0);
    MIB_TCP6ROW mib;
    ch_sock got[4];
    rows_of(&s, got, 4);
    CHECK_INT(ch_iphlp_tcp6_row(&got[0], &mib), 0);
    CHECK_INT(mib.State, MIB_TCP_STATE_ESTAB);
    CHECK(memcmp(&mib.LocalAddr, r->ucLocalAddr, 16) == 0);
    CHECK(memcmp(&mib.RemoteAddr, r->ucRemoteAddr, 16) == 0);
    CHECK_INT(mib.dwLocalScopeId, 12);
    CHECK_INT(mib.dwRemoteScopeId, 0);
    CHECK(dword_bytes_are(mib.dwLocalPort, 50002 >> 8, 50002 & 0xff, 0, 0));
    CHECK(dword_bytes_are(mib.dwRemotePort, 8443 >> 8, 8443 & 0xff, 0, 0));
    MIB_TCPROW mib4;
    CHECK_INT(ch_iphlp_tcp_row(&got[0], &mib4), -1);
    ch_sample_free(&s);
}

/* The counters are ThruBytesAcked / ThruBytesReceived, full 64 bits; not
 * collected or out of range is unknown (-1), never 0. */
static void test_estats_bytes(void)
{
    TCP_ESTATS_DATA_RW_v0 rw = {TRUE};
    TCP_ESTATS_DATA_ROD_v0 rod;
    memset(&rod, 0, sizeof rod);
    rod.DataBytesOut = 999999; /* with retransmissions: not what is stored */
    rod.DataBytesIn = 888888;
    rod.ThruBytesAcked = 0x123456789ULL; /* beyond 32 bits */
    rod.ThruBytesReceived = 10002;
    ch_sock row;
    memset(&row, 0, sizeof row);
    row.bytes_sent = row.bytes_received = -1;
    ch_iphlp_estats_bytes(&rw, &rod, &row);
    CHECK_INT(row.bytes_sent, 0x123456789LL);
    CHECK_INT(row.bytes_received, 10002);
    rod.ThruBytesAcked = 0, rod.ThruBytesReceived = 0; /* collected, nothing moved: a real 0 */
    ch_iphlp_estats_bytes(&rw, &rod, &row);
    CHECK_INT(row.bytes_sent, 0);
    CHECK_INT(row.bytes_received, 0);
    rod.ThruBytesAcked = 0x8000000000000000ULL; /* does not fit the database's INTEGER */
    rod.ThruBytesReceived = 5;
    ch_iphlp_estats_bytes(&rw, &rod, &row);
    CHECK_INT(row.bytes_sent, -1);
    CHECK_INT(row.bytes_received, 5);
    rw.EnableCollection = FALSE; /* not collected: whatever the ROD holds is not a count */
    rod.ThruBytesAcked = 100;
    ch_iphlp_estats_bytes(&rw, &rod, &row);
    CHECK_INT(row.bytes_sent, -1);
    CHECK_INT(row.bytes_received, -1);
    ch_iphlp_estats_bytes(NULL, &rod, &row);
    CHECK_INT(row.bytes_sent, -1);
}

/* Only connections with a peer and a live TCB are asked about. */
static void test_estats_wanted(void)
{
    ch_sock row;
    memset(&row, 0, sizeof row);
    row.proto = CH_TCP;
    row.local.family = row.remote.family = 4;
    row.local_port = 5000;
    row.state = CH_ST_LISTEN;
    CHECK(!ch_iphlp_estats_wanted(&row));
    row.remote.bytes[0] = 10, row.remote_port = 80;
    row.state = CH_ST_ESTABLISHED;
    CHECK(ch_iphlp_estats_wanted(&row));
    row.state = CH_ST_SYN_SENT;
    CHECK(ch_iphlp_estats_wanted(&row));
    row.state = CH_ST_CLOSE_WAIT;
    CHECK(ch_iphlp_estats_wanted(&row));
    row.state = CH_ST_TIME_WAIT;
    CHECK(!ch_iphlp_estats_wanted(&row));
    row.state = CH_ST_CLOSE;
    CHECK(!ch_iphlp_estats_wanted(&row));
    row.state = CH_ST_ESTABLISHED;
    row.proto = CH_UDP;
    CHECK(!ch_iphlp_estats_wanted(&row));
}

/* A table that doubles between every size call and fill call, grow_times times. */
typedef struct {
    unsigned long size;
    int calls;
    int grow_times;
} growing;

static unsigned long growing_fetch(void *ctx, void *buf, unsigned long *size)
{
    growing *g = ctx;
    g->calls++;
    if (g->grow_times-- > 0)
        g->size *= 2;
    if (buf == NULL || *size < g->size) {
        *size = g->size;
        return ERROR_INSUFFICIENT_BUFFER;
    }
    memset(buf, 0, 4);
    return NO_ERROR;
}

static unsigned long failing_fetch(void *ctx, void *buf, unsigned long *size)
{
    (void)ctx, (void)buf, (void)size;
    return ERROR_INVALID_PARAMETER;
}

static void test_fill_retry(void)
{
    ch_iphlp_buf b = {0};
    growing g = {100000, 0, 3};
    CHECK_INT(ch_iphlp_fill(growing_fetch, &g, &b), NO_ERROR);
    CHECK(g.calls >= 2 && g.calls <= CH_IPHLP_TRIES);
    CHECK(b.cap >= g.size);
    /* Reused: the next fill needs one call. */
    g.calls = 0;
    CHECK_INT(ch_iphlp_fill(growing_fetch, &g, &b), NO_ERROR);
    CHECK_INT(g.calls, 1);
    /* Growing forever: bounded, transient, not a crash. */
    g = (growing){100000, 0, 20};
    ch_iphlp_buf_free(&b);
    CHECK_INT(ch_iphlp_fill(growing_fetch, &g, &b), ERROR_INSUFFICIENT_BUFFER);
    CHECK_INT(g.calls, CH_IPHLP_TRIES);
    CHECK_INT(ch_iphlp_fill(failing_fetch, NULL, &b), ERROR_INVALID_PARAMETER);
    ch_iphlp_buf_free(&b);
}

/* Process names and paths come as UTF-16: non-ASCII must reach the database as UTF-8. */
static void test_utf16_text(void)
{
    /* "café-日本😀.exe": a Latin-1 letter, two CJK ideographs, a surrogate pair */
    const wchar_t name[] = {'c', 'a', 'f', 0x00e9, '-', 0x65e5, 0x672c, 0xd83d, 0xde00, '.', 'e', 'x', 'e', 0};
    char *u = ch_utf8_from_wide(name, -1);
    CHECK_STR(u, "caf\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac\xf0\x9f\x98\x80.exe");
    free(u);
    const wchar_t lone[] = {'a', 0xd800, 'b', 0}; /* an unpaired surrogate */
    u = ch_utf8_from_wide(lone, -1);
    CHECK_STR(u, "a\xef\xbf\xbd" "b");
    free(u);
    wchar_t *w = ch_wide_from_utf8("caf\xc3\xa9");
    CHECK(w != NULL && w[3] == 0x00e9 && w[4] == 0);
    free(w);
    CHECK(ch_wide_from_utf8("bad \xff") == NULL);
}

/* The token user, as the directory ACL (SID) and process attribution (name) read it. */
static void test_process_user(void)
{
    wchar_t *sid = ch_process_user_sid(GetCurrentProcess());
    CHECK(sid != NULL && wcsncmp(sid, L"S-1-", 4) == 0);
    LocalFree(sid);
    char *name = ch_process_user_name(GetCurrentProcess());
    CHECK(name != NULL && name[0] != '\0');
    free(name);
    CHECK(ch_process_user_sid(NULL) == NULL);
    CHECK(ch_process_user_name(NULL) == NULL);
}

int main(void)
{
    test_utf16_text();
    test_process_user();
    test_tcp4_module();
    test_tcp6_module();
    test_udp_module();
    test_pid_layouts();
    test_offload();
    test_hostile_tables();
    test_fill_retry();
    test_estats_tcp_row();
    test_estats_tcp6_row();
    test_estats_bytes();
    test_estats_wanted();
    CHECK_INT(ch_iphlp_filetime_ms(0), 0);
    return check_report("test_iphlp_rows");
}
