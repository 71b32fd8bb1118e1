/*
 * IP Helper table buffers to neutral rows (see iphlp_rows.h). Facts a
 * reader cannot see in the types:
 *  - ports are DWORDs whose low 16 bits hold the port in network byte
 *    order, as the bytes lie in memory; the high 16 bits are not defined;
 *  - addresses are in network byte order (IPv4 as a DWORD's four bytes);
 *  - the remote end of a LISTEN row "has no meaning" (Microsoft's words):
 *    it is not always zero, so it is cleared here;
 *  - tables holding LARGE_INTEGER timestamps are 8-byte aligned, so their
 *    first row starts after 4 bytes of padding: offsetof, never sizeof(DWORD);
 *  - UDP tables have no remote end at all: every UDP row is UNCONN;
 *  - GetPerTcp*ConnectionEStats fills the ROD (read-only dynamic) struct
 *    only while collection is enabled on the connection; the RW struct
 *    returned alongside says whether it is.
 */
#include "iphlp_rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <winsock2.h>
#include <ws2ipdef.h>
#include <iphlpapi.h>

/* 100 ns ticks between 1601-01-01 (FILETIME) and 1970-01-01. */
#define FILETIME_UNIX_EPOCH 116444736000000000LL

/* What every layout has, before it becomes a neutral row. */
typedef struct {
    int tcp;
    int family;
    DWORD state;
    const void *local, *remote; /* 4 or 16 bytes; remote NULL for UDP */
    DWORD local_port, remote_port, local_scope, remote_scope, pid;
    int64_t created;
} raw_row;

int64_t ch_iphlp_filetime_ms(int64_t filetime)
{
    /* Not after 1970 is no socket's creation time but garbage (or Wine's 0),
     * and subtracting the epoch from it could overflow. */
    return filetime <= FILETIME_UNIX_EPOCH ? 0 : (filetime - FILETIME_UNIX_EPOCH) / 10000;
}

/* The port in the low 16 bits of a DWORD, network order in memory. */
static uint16_t port_of(DWORD v)
{
    uint8_t b[4];
    memcpy(b, &v, 4);
    return (uint16_t)(b[0] << 8 | b[1]);
}

/* A port as the tables hold it (see port_of), the high bits zero. */
static DWORD port_field(uint16_t port)
{
    uint8_t b[4] = {(uint8_t)(port >> 8), (uint8_t)port, 0, 0};
    DWORD v;
    memcpy(&v, b, 4);
    return v;
}

/* MIB states and neutral states; the first of a neutral state is the one
 * it maps back to. */
static const struct {
    DWORD mib;
    uint8_t state;
} tcp_states[] = {
    {MIB_TCP_STATE_LISTEN, CH_ST_LISTEN},         {MIB_TCP_STATE_SYN_SENT, CH_ST_SYN_SENT},
    {MIB_TCP_STATE_SYN_RCVD, CH_ST_SYN_RECV},     {MIB_TCP_STATE_ESTAB, CH_ST_ESTABLISHED},
    {MIB_TCP_STATE_FIN_WAIT1, CH_ST_FIN_WAIT1},   {MIB_TCP_STATE_FIN_WAIT2, CH_ST_FIN_WAIT2},
    {MIB_TCP_STATE_CLOSE_WAIT, CH_ST_CLOSE_WAIT}, {MIB_TCP_STATE_CLOSING, CH_ST_CLOSING},
    {MIB_TCP_STATE_LAST_ACK, CH_ST_LAST_ACK},     {MIB_TCP_STATE_TIME_WAIT, CH_ST_TIME_WAIT},
    {MIB_TCP_STATE_CLOSED, CH_ST_CLOSE},          {MIB_TCP_STATE_DELETE_TCB, CH_ST_CLOSE},
};
#define NSTATES (sizeof tcp_states / sizeof tcp_states[0])

static int tcp_state(DWORD s)
{
    for (size_t i = 0; i < NSTATES; i++)
        if (tcp_states[i].mib == s)
            return tcp_states[i].state;
    return CH_ST_UNKNOWN;
}

/* The MIB state of a neutral one; CLOSED for those Windows has not. */
static DWORD mib_state(int state)
{
    for (size_t i = 0; i < NSTATES; i++)
        if (tcp_states[i].state == state)
            return tcp_states[i].mib;
    return state == CH_ST_NEW_SYN_RECV ? (DWORD)MIB_TCP_STATE_SYN_RCVD : (DWORD)MIB_TCP_STATE_CLOSED;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t ch_iphlp_ident(const ch_sock *r)
{
    if (r->created == 0 && r->pid == 0)
        return 0;
    uint64_t h = mix64((uint64_t)r->created ^ (uint64_t)r->pid << 40);
    h = mix64(h ^ ((uint64_t)r->proto << 48 | (uint64_t)r->local_port << 16 | r->remote_port));
    h = mix64(h ^ ((uint64_t)r->local_scope << 32 | r->remote_scope));
    for (int i = 0; i < 16; i += 8) {
        uint64_t a, b;
        memcpy(&a, r->local.bytes + i, 8);
        memcpy(&b, r->remote.bytes + i, 8);
        h = mix64(h ^ a) ^ mix64(b + (uint64_t)i);
    }
    /* Positive (SQLite keeps it as is), non-zero, and never with the top
     * bit the tracker sets on its address-derived keys. */
    h &= ~(1ULL << 63);
    return h ? h : 1;
}

static int put_row(const raw_row *r, ch_sample *out)
{
    ch_sock *row = ch_sample_add(out);
    if (row == NULL)
        return -1;
    size_t alen = r->family == 6 ? 16 : 4;
    row->proto = r->tcp ? CH_TCP : CH_UDP;
    row->local.family = row->remote.family = r->family;
    memcpy(row->local.bytes, r->local, alen);
    row->local_port = port_of(r->local_port);
    row->local_scope = r->family == 6 ? r->local_scope : 0;
    row->state = (uint8_t)(r->tcp ? tcp_state(r->state) : CH_ST_UNCONN);
    if (r->remote != NULL && row->state != CH_ST_LISTEN) {
        memcpy(row->remote.bytes, r->remote, alen);
        row->remote_port = port_of(r->remote_port);
        row->remote_scope = r->family == 6 ? r->remote_scope : 0;
    }
    row->pid = r->pid;
    row->created = ch_iphlp_filetime_ms(r->created);
    row->uid = CH_UID_UNKNOWN;
    row->ident = ch_iphlp_ident(row);
    return 0;
}

static int64_t large(LARGE_INTEGER v)
{
    return (int64_t)v.QuadPart;
}

/* Fills r from entry i of a table of the given layout. */
static void read_entry(enum ch_iphlp_layout layout, const void *table, size_t i, raw_row *r)
{
    memset(r, 0, sizeof *r);
    switch (layout) {
    case CH_IPHLP_TCP4_MODULE: {
        const MIB_TCPROW_OWNER_MODULE *e = &((const MIB_TCPROW_OWNER_MODULE *)table)[i];
        *r = (raw_row){1, 4, e->dwState, &e->dwLocalAddr, &e->dwRemoteAddr, e->dwLocalPort, e->dwRemotePort, 0, 0,
                       e->dwOwningPid, large(e->liCreateTimestamp)};
        break;
    }
    case CH_IPHLP_TCP6_MODULE: {
        const MIB_TCP6ROW_OWNER_MODULE *e = &((const MIB_TCP6ROW_OWNER_MODULE *)table)[i];
        *r = (raw_row){1, 6, e->dwState, e->ucLocalAddr, e->ucRemoteAddr, e->dwLocalPort, e->dwRemotePort,
                       e->dwLocalScopeId, e->dwRemoteScopeId, e->dwOwningPid, large(e->liCreateTimestamp)};
        break;
    }
    case CH_IPHLP_UDP4_MODULE: {
        const MIB_UDPROW_OWNER_MODULE *e = &((const MIB_UDPROW_OWNER_MODULE *)table)[i];
        *r = (raw_row){0, 4, 0, &e->dwLocalAddr, NULL, e->dwLocalPort, 0, 0, 0, e->dwOwningPid,
                       large(e->liCreateTimestamp)};
        break;
    }
    case CH_IPHLP_UDP6_MODULE: {
        const MIB_UDP6ROW_OWNER_MODULE *e = &((const MIB_UDP6ROW_OWNER_MODULE *)table)[i];
        *r = (raw_row){0, 6, 0, e->ucLocalAddr, NULL, e->dwLocalPort, 0, e->dwLocalScopeId, 0, e->dwOwningPid,
                       large(e->liCreateTimestamp)};
        break;
    }
    case CH_IPHLP_TCP4_PID: {
        const MIB_TCPROW_OWNER_PID *e = &((const MIB_TCPROW_OWNER_PID *)table)[i];
        *r = (raw_row){1, 4, e->dwState, &e->dwLocalAddr, &e->dwRemoteAddr, e->dwLocalPort, e->dwRemotePort, 0, 0,
                       e->dwOwningPid, 0};
        break;
    }
    case CH_IPHLP_TCP6_PID: {
        const MIB_TCP6ROW_OWNER_PID *e = &((const MIB_TCP6ROW_OWNER_PID *)table)[i];
        *r = (raw_row){1, 6, e->dwState, e->ucLocalAddr, e->ucRemoteAddr, e->dwLocalPort, e->dwRemotePort,
                       e->dwLocalScopeId, e->dwRemoteScopeId, e->dwOwningPid, 0};
        break;
    }
    case CH_IPHLP_UDP4_PID: {
        const MIB_UDPROW_OWNER_PID *e = &((const MIB_UDPROW_OWNER_PID *)table)[i];
        *r = (raw_row){0, 4, 0, &e->dwLocalAddr, NULL, e->dwLocalPort, 0, 0, 0, e->dwOwningPid, 0};
        break;
    }
    case CH_IPHLP_UDP6_PID: {
        const MIB_UDP6ROW_OWNER_PID *e = &((const MIB_UDP6ROW_OWNER_PID *)table)[i];
        *r = (raw_row){0, 6, 0, e->ucLocalAddr, NULL, e->dwLocalPort, 0, e->dwLocalScopeId, 0, e->dwOwningPid, 0};
        break;
    }
    }
}

/* Where the rows of a layout start, and how big one is. */
static void geometry(enum ch_iphlp_layout layout, size_t *first, size_t *size)
{
    switch (layout) {
    case CH_IPHLP_TCP4_MODULE:
        *first = offsetof(MIB_TCPTABLE_OWNER_MODULE, table), *size = sizeof(MIB_TCPROW_OWNER_MODULE);
        break;
    case CH_IPHLP_TCP6_MODULE:
        *first = offsetof(MIB_TCP6TABLE_OWNER_MODULE, table), *size = sizeof(MIB_TCP6ROW_OWNER_MODULE);
        break;
    case CH_IPHLP_UDP4_MODULE:
        *first = offsetof(MIB_UDPTABLE_OWNER_MODULE, table), *size = sizeof(MIB_UDPROW_OWNER_MODULE);
        break;
    case CH_IPHLP_UDP6_MODULE:
        *first = offsetof(MIB_UDP6TABLE_OWNER_MODULE, table), *size = sizeof(MIB_UDP6ROW_OWNER_MODULE);
        break;
    case CH_IPHLP_TCP4_PID:
        *first = offsetof(MIB_TCPTABLE_OWNER_PID, table), *size = sizeof(MIB_TCPROW_OWNER_PID);
        break;
    case CH_IPHLP_TCP6_PID:
        *first = offsetof(MIB_TCP6TABLE_OWNER_PID, table), *size = sizeof(MIB_TCP6ROW_OWNER_PID);
        break;
    case CH_IPHLP_UDP4_PID:
        *first = offsetof(MIB_UDPTABLE_OWNER_PID, table), *size = sizeof(MIB_UDPROW_OWNER_PID);
        break;
    case CH_IPHLP_UDP6_PID:
        *first = offsetof(MIB_UDP6TABLE_OWNER_PID, table), *size = sizeof(MIB_UDP6ROW_OWNER_PID);
        break;
    }
}

/* The entry count of a table, or -1 when len cannot hold that many. */
static int64_t entries_in(const void *buf, size_t len, size_t first, size_t size)
{
    DWORD n;
    if (buf == NULL || len < sizeof n)
        return -1;
    memcpy(&n, buf, sizeof n);
    if (n == 0)
        return 0;
    if (len < first || (uint64_t)n > (len - first) / size)
        return -1;
    return n;
}

int ch_iphlp_rows(enum ch_iphlp_layout layout, const void *buf, size_t len, ch_sample *out, char *err, size_t errn)
{
    size_t first = 0, size = 1;
    geometry(layout, &first, &size);
    int64_t n = entries_in(buf, len, first, size);
    if (n < 0) {
        snprintf(err, errn, "IP Helper table of %zu bytes is shorter than its entry count says", len);
        return -1;
    }
    const char *table = (const char *)buf + first;
    for (int64_t i = 0; i < n; i++) {
        raw_row r;
        read_entry(layout, table, (size_t)i, &r);
        if (put_row(&r, out) != 0) {
            snprintf(err, errn, "out of memory for socket rows");
            return -1;
        }
    }
    return 0;
}

/* True when row has these addresses, ports and scopes. */
static int row_matches(const ch_sock *row, const raw_row *r)
{
    size_t alen = r->family == 6 ? 16 : 4;
    if (row->proto != CH_TCP || row->local.family != r->family || row->local_port != port_of(r->local_port) ||
        memcmp(row->local.bytes, r->local, alen) != 0 || (r->family == 6 && row->local_scope != r->local_scope))
        return 0;
    if (tcp_state(r->state) == CH_ST_LISTEN)
        return row->state == CH_ST_LISTEN;
    return row->remote_port == port_of(r->remote_port) && memcmp(row->remote.bytes, r->remote, alen) == 0 &&
           (r->family != 6 || row->remote_scope == r->remote_scope);
}

/* Row i of out into *row; whether it is the socket r. */
static int row_at_matches(const ch_sample *out, size_t i, const raw_row *r, ch_sock *row)
{
    *row = ch_sample_row(out, i);
    return row_matches(row, r);
}

void ch_iphlp_offload(int family, const void *buf, size_t len, ch_sample *out, size_t from)
{
    size_t first = family == 6 ? offsetof(MIB_TCP6TABLE2, table) : offsetof(MIB_TCPTABLE2, table);
    size_t size = family == 6 ? sizeof(MIB_TCP6ROW2) : sizeof(MIB_TCPROW2);
    int64_t n = entries_in(buf, len, first, size);
    if (n <= 0)
        return; /* empty, never filled (NULL), or shorter than its count */
    const char *table = (const char *)buf + first;
    /* Both tables come from the same connection list, usually in the same
     * order: try the row after the last match first, then search. */
    size_t hint = from;
    for (int64_t i = 0; i < n; i++) {
        raw_row r = {0};
        DWORD offload;
        r.tcp = 1;
        r.family = family;
        if (family == 6) {
            const MIB_TCP6ROW2 *e = &((const MIB_TCP6ROW2 *)table)[i];
            r.state = (DWORD)e->State, r.local = &e->LocalAddr, r.remote = &e->RemoteAddr;
            r.local_port = e->dwLocalPort, r.remote_port = e->dwRemotePort;
            r.local_scope = e->dwLocalScopeId, r.remote_scope = e->dwRemoteScopeId;
            offload = (DWORD)e->dwOffloadState;
        } else {
            const MIB_TCPROW2 *e = &((const MIB_TCPROW2 *)table)[i];
            r.state = e->dwState, r.local = &e->dwLocalAddr, r.remote = &e->dwRemoteAddr;
            r.local_port = e->dwLocalPort, r.remote_port = e->dwRemotePort;
            offload = (DWORD)e->dwOffloadState;
        }
        size_t found = out->count;
        ch_sock row;
        if (hint < out->count && row_at_matches(out, hint, &r, &row))
            found = hint;
        for (size_t j = from; found == out->count && j < out->count; j++)
            if (row_at_matches(out, j, &r, &row))
                found = j;
        if (found == out->count)
            continue;
        row.offload = (int8_t)(offload <= CH_OFFLOAD_UPLOADING ? (int)offload : -1);
        ch_sample_put(out, found, &row); /* rows with a pid keep every field: the same room */
        hint = found + 1;
    }
}

bool ch_iphlp_estats_wanted(const ch_sock *row)
{
    if (row->proto != CH_TCP || !ch_sock_has_remote(row))
        return false;
    switch (row->state) {
    case CH_ST_LISTEN:
    case CH_ST_TIME_WAIT:
    case CH_ST_CLOSE:
    case CH_ST_UNKNOWN: return false;
    default: return true;
    }
}

int ch_iphlp_tcp_row(const ch_sock *row, MIB_TCPROW *out)
{
    if (row->proto != CH_TCP || row->local.family != 4)
        return -1;
    memset(out, 0, sizeof *out);
    out->dwState = mib_state(row->state);
    memcpy(&out->dwLocalAddr, row->local.bytes, 4);
    out->dwLocalPort = port_field(row->local_port);
    memcpy(&out->dwRemoteAddr, row->remote.bytes, 4);
    out->dwRemotePort = port_field(row->remote_port);
    return 0;
}

int ch_iphlp_tcp6_row(const ch_sock *row, MIB_TCP6ROW *out)
{
    if (row->proto != CH_TCP || row->local.family != 6)
        return -1;
    memset(out, 0, sizeof *out);
    out->State = (MIB_TCP_STATE)mib_state(row->state);
    memcpy(&out->LocalAddr, row->local.bytes, 16);
    out->dwLocalScopeId = row->local_scope;
    out->dwLocalPort = port_field(row->local_port);
    memcpy(&out->RemoteAddr, row->remote.bytes, 16);
    out->dwRemoteScopeId = row->remote_scope;
    out->dwRemotePort = port_field(row->remote_port);
    return 0;
}

/* A ULONG64 count as the int64 a row holds; -1 (unknown) beyond it. */
static int64_t count_of(ULONG64 v)
{
    return v > (ULONG64)INT64_MAX ? -1 : (int64_t)v;
}

/*
 * Which counters: the Linux rows hold tcpi_bytes_acked (bytes the peer
 * acknowledged) and tcpi_bytes_received, which are RFC 4898's
 * ThruOctetsAcked and ThruOctetsReceived. TCP_ESTATS_DATA_ROD_v0 has those
 * same two as ThruBytesAcked ("octets for which cumulative
 * acknowledgments have been received") and ThruBytesReceived ("octets for
 * which cumulative acknowledgments have been sent"), so both platforms
 * store the same quantity. DataBytesOut and DataBytesIn count the data of
 * every segment, retransmissions included: they overstate a lossy
 * connection's transfer and are not used.
 */
void ch_iphlp_estats_bytes(const TCP_ESTATS_DATA_RW_v0 *rw, const TCP_ESTATS_DATA_ROD_v0 *rod, ch_sock *row)
{
    row->bytes_sent = row->bytes_received = -1;
    if (rw == NULL || rod == NULL || !rw->EnableCollection)
        return; /* not collected: the ROD was not filled */
    row->bytes_sent = count_of(rod->ThruBytesAcked);
    row->bytes_received = count_of(rod->ThruBytesReceived);
}

unsigned long ch_iphlp_fill(ch_iphlp_fetch fetch, void *ctx, ch_iphlp_buf *b)
{
    for (int attempt = 0; attempt < CH_IPHLP_TRIES; attempt++) {
        unsigned long size = b->cap;
        unsigned long rc = fetch(ctx, b->data, &size);
        if (rc == NO_ERROR) {
            b->len = b->cap;
            return NO_ERROR;
        }
        if (rc != ERROR_INSUFFICIENT_BUFFER)
            return rc;
        /* It grew (or we had nothing): what it asked for, plus slack for
         * the sockets opened before our next call. */
        unsigned long want = size > b->cap ? size : b->cap * 2;
        want += want / 4 + 4096;
        void *data = realloc(b->data, want);
        if (data == NULL)
            return ERROR_NOT_ENOUGH_MEMORY;
        b->data = data;
        b->cap = want;
    }
    return ERROR_INSUFFICIENT_BUFFER;
}

void ch_iphlp_buf_free(ch_iphlp_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}
