/*
 * Parser of netlink sock_diag dump replies (see diag_parse.h). The kernel's
 * own NLMSG_OK/NLMSG_NEXT macros trust nlmsg_len and let the remaining
 * length go negative after an unaligned last message; here every length is
 * checked against what is left of the buffer before it is used.
 */
#define _GNU_SOURCE
#include "diag_parse.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>

/* True for an IPv6 address that names a host only on one link: unicast
 * fe80::/10, or multicast of link-local scope (ffx2::). */
static bool link_local(const uint8_t *a)
{
    return (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || (a[0] == 0xff && (a[1] & 0x0f) == 0x02);
}

void ch_diag_row(const ch_diag_fields *f, ch_sock *row)
{
    int family = f->v6 ? 6 : 4;
    size_t alen = f->v6 ? 16 : 4;
    row->proto = f->tcp ? CH_TCP : CH_UDP;
    row->local.family = row->remote.family = family;
    memcpy(row->local.bytes, f->src, alen);
    memcpy(row->remote.bytes, f->dst, alen);
    row->local_port = f->sport;
    row->remote_port = f->dport;
    /* A link-local address means something with its interface only: the
     * one the socket is bound to, which a link-local connect, bind or
     * accept sets (idiag_if). The scope ids of the row, as Windows reports
     * them; 0 for other addresses, or when the socket is bound to none. */
    if (family == 6) {
        if (link_local(row->local.bytes))
            row->local_scope = f->bound_if;
        if (link_local(row->remote.bytes))
            row->remote_scope = f->bound_if;
    }
    row->state = f->state < CH_ST_UNCONN ? f->state : CH_ST_UNKNOWN;
    /* UDP reuses TCP_CLOSE for a socket with no peer. */
    if (row->proto == CH_UDP && f->state == CH_ST_CLOSE)
        row->state = CH_ST_UNCONN;
    row->ident = f->cookie;
    row->inode = f->inode;
    row->uid = f->uid;
}

/* Converts one inet_diag_msg into a neutral row. */
static void diag_to_row(const struct inet_diag_msg *m, int tcp, ch_sock *row)
{
    ch_diag_fields f = {
        .tcp = tcp != 0,
        .v6 = m->idiag_family == AF_INET6,
        .src = (const uint8_t *)m->id.idiag_src,
        .dst = (const uint8_t *)m->id.idiag_dst,
        .sport = ntohs(m->id.idiag_sport),
        .dport = ntohs(m->id.idiag_dport),
        .bound_if = m->id.idiag_if,
        .state = m->idiag_state,
        .cookie = (uint64_t)m->id.idiag_cookie[0] | (uint64_t)m->id.idiag_cookie[1] << 32,
        .inode = m->idiag_inode,
        .uid = m->idiag_uid,
    };
    ch_diag_row(&f, row);
}

/* The rows whose timer ends them, or may, with no change of state the
 * kernel would announce: TIME_WAIT entries (their substate TIME_WAIT or
 * FIN_WAIT2) and half-open requests (SYN_RECV). */
static void note_timer(ch_diag_dump *d, const struct inet_diag_msg *m)
{
    bool timed = m->idiag_state == CH_ST_TIME_WAIT || m->idiag_state == CH_ST_FIN_WAIT2 ||
                 m->idiag_state == CH_ST_SYN_RECV || m->idiag_state == CH_ST_NEW_SYN_RECV;
    if (timed && m->idiag_timer != 0 && m->idiag_expires < d->soonest_timer_ms)
        d->soonest_timer_ms = m->idiag_expires;
}

/* Reads a 64-bit counter at off inside an attribute payload of len bytes,
 * or -1 when an older kernel's shorter tcp_info does not reach it. */
static int64_t counter_at(const unsigned char *p, size_t len, size_t off)
{
    uint64_t v;
    if (off + sizeof v > len)
        return -1;
    memcpy(&v, p + off, sizeof v);
    return v > INT64_MAX ? -1 : (int64_t)v;
}

/*
 * Reads the attributes after the inet_diag_msg of a message of msg_len
 * bytes: the protocol (destroy events carry INET_DIAG_PROTOCOL; dumps do
 * not, *proto is left alone) and, from INET_DIAG_INFO (struct tcp_info),
 * the TCP byte counters. Attribute lengths are checked like message lengths.
 */
static void read_attributes(const struct nlmsghdr *h, size_t msg_len, int *proto, ch_sock *row)
{
    size_t off = NLMSG_LENGTH(NLMSG_ALIGN(sizeof(struct inet_diag_msg)));
    const unsigned char *base = (const unsigned char *)h;
    while (off + sizeof(struct rtattr) <= msg_len) {
        struct rtattr a;
        memcpy(&a, base + off, sizeof a);
        if (a.rta_len < sizeof a || a.rta_len > msg_len - off)
            return;
        const unsigned char *data = base + off + RTA_LENGTH(0);
        size_t len = a.rta_len - RTA_LENGTH(0);
        if (a.rta_type == INET_DIAG_PROTOCOL && len >= 1 && proto != NULL)
            *proto = data[0];
        else if (a.rta_type == INET_DIAG_INFO && row->proto == CH_TCP) {
            row->bytes_sent = counter_at(data, len, offsetof(struct tcp_info, tcpi_bytes_acked));
            row->bytes_received = counter_at(data, len, offsetof(struct tcp_info, tcpi_bytes_received));
        }
        off += RTA_ALIGN(a.rta_len);
    }
}

/* Handles one whole message of msg_len bytes. Returns a CH_DIAG_* code. */
static int one_message(ch_diag_dump *d, const struct nlmsghdr *h, size_t msg_len, ch_sample *out)
{
    if (h->nlmsg_seq != d->seq)
        return CH_DIAG_MORE; /* a late reply to an abandoned dump */
    if (h->nlmsg_flags & NLM_F_DUMP_INTR)
        d->interrupted = true;
    if (h->nlmsg_type == NLMSG_DONE)
        return CH_DIAG_DONE;
    if (h->nlmsg_type == NLMSG_ERROR) {
        int error = EPROTO; /* an error message too short to say which */
        if (msg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
            const struct nlmsgerr *e = NLMSG_DATA(h);
            error = e->error < 0 && e->error > -4096 ? -e->error : EPROTO;
        }
        d->error = error;
        return CH_DIAG_ERROR;
    }
    /* Replies carry the request's type: TCPDIAG_GETSOCK for the one dump
     * of TCP over both families (see sample_linux.c). */
    bool socket_msg = h->nlmsg_type == SOCK_DIAG_BY_FAMILY || (h->nlmsg_type == TCPDIAG_GETSOCK && d->tcp);
    if (!socket_msg || msg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
        return CH_DIAG_MORE;
    ch_sock *row = ch_sample_add(out);
    if (row == NULL) {
        d->error = ENOMEM;
        return CH_DIAG_ERROR;
    }
    diag_to_row(NLMSG_DATA(h), d->tcp, row);
    read_attributes(h, msg_len, NULL, row);
    if (d->tcp)
        note_timer(d, NLMSG_DATA(h));
    if (out->consume != NULL && out->consume(out->consume_ctx, row)) {
        out->count--; /* taken care of: the slot serves the next row */
        out->consumed++;
    }
    return CH_DIAG_MORE;
}

/* One destroy event: a row when it is a TCP or UDP socket. Returns 0, or -1
 * when the row could not be stored. */
static int one_event(const struct nlmsghdr *h, size_t msg_len, ch_sample *out)
{
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || msg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
        return 0;
    int proto = 0;
    ch_sock probe = {.proto = CH_TCP};
    read_attributes(h, msg_len, &proto, &probe);
    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
        return 0; /* UDP-Lite shares the UDP groups; no protocol: not ours */
    ch_sock *row = ch_sample_add(out);
    if (row == NULL)
        return -1;
    diag_to_row(NLMSG_DATA(h), proto == IPPROTO_TCP, row);
    read_attributes(h, msg_len, NULL, row);
    return 0;
}

/*
 * Calls fn on each whole message in buf, in order, while it returns go_on;
 * returns what it returned last, or go_on. Stops at a truncated message:
 * nothing after it can be trusted.
 */
typedef int (*message_fn)(void *ctx, const struct nlmsghdr *h, size_t msg_len);

static int walk(const void *buf, size_t len, message_fn fn, void *ctx, int go_on)
{
    const char *p = buf;
    size_t left = len;
    while (left >= sizeof(struct nlmsghdr)) {
        const struct nlmsghdr *h = (const struct nlmsghdr *)p;
        size_t msg_len = h->nlmsg_len;
        if (msg_len < sizeof(struct nlmsghdr) || msg_len > left)
            break;
        int rc = fn(ctx, h, msg_len);
        if (rc != go_on)
            return rc;
        size_t step = NLMSG_ALIGN(msg_len);
        if (step >= left)
            break;
        p += step;
        left -= step;
    }
    return go_on;
}

static int event_fn(void *ctx, const struct nlmsghdr *h, size_t msg_len)
{
    return one_event(h, msg_len, ctx);
}

int ch_diag_parse_events(const void *buf, size_t len, ch_sample *out)
{
    return walk(buf, len, event_fn, out, 0);
}

typedef struct {
    ch_diag_dump *d;
    ch_sample *out;
} dump_ctx;

static int dump_fn(void *ctx, const struct nlmsghdr *h, size_t msg_len)
{
    dump_ctx *c = ctx;
    return one_message(c->d, h, msg_len, c->out);
}

/* Messages whose identities are handed to the sample's prefetch hook at a
 * time: enough for their cache misses to overlap, few enough that what
 * they fetch is still in the cache when the rows are read. */
#define AHEAD 128

/*
 * The bytes of the next AHEAD whole messages at p (fewer at the end of the
 * buffer, or before a truncated message, where walk stops too), with the
 * socket cookie of each in ids (0 for a message too short to have one).
 */
static size_t next_slice(const char *p, size_t left, uint64_t *ids, size_t *nids)
{
    size_t off = 0, n = 0;
    while (n < AHEAD && left - off >= sizeof(struct nlmsghdr)) {
        const struct nlmsghdr *h = (const struct nlmsghdr *)(p + off);
        size_t msg_len = h->nlmsg_len;
        if (msg_len < sizeof(struct nlmsghdr) || msg_len > left - off)
            break;
        uint64_t id = 0;
        if (msg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            id = (uint64_t)m->id.idiag_cookie[0] | (uint64_t)m->id.idiag_cookie[1] << 32;
        }
        ids[n++] = id;
        size_t step = NLMSG_ALIGN(msg_len);
        off = step >= left - off ? left : off + step; /* the last message may lack its padding */
        if (off == left)
            break;
    }
    *nids = n;
    return off;
}

int ch_diag_parse(ch_diag_dump *d, const void *buf, size_t len, ch_sample *out)
{
    dump_ctx c = {d, out};
    if (out->prefetch == NULL || out->consume == NULL)
        return walk(buf, len, dump_fn, &c, CH_DIAG_MORE);
    const char *p = buf;
    for (size_t left = len; left > 0;) {
        uint64_t ids[AHEAD];
        size_t n, slice = next_slice(p, left, ids, &n);
        if (slice == 0)
            break;
        out->prefetch(out->consume_ctx, ids, n);
        int rc = walk(p, slice, dump_fn, &c, CH_DIAG_MORE);
        if (rc != CH_DIAG_MORE)
            return rc;
        p += slice;
        left -= slice;
    }
    return CH_DIAG_MORE;
}
