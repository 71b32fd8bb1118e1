/*
 * The sock_diag parser (recorder/linux/diag_parse.c) on replies built here
 * as the kernel lays them out: the soonest timer of a TCP dump, which
 * dates the next dump of a recorder that leaves the TCP tables out while
 * nothing moved them. Only TIME_WAIT entries (substate TIME_WAIT or
 * FIN_WAIT2) and half-open requests count: their timers end them with no
 * change of state an event announces. And the scope ids of link-local
 * addresses: the interface the socket is bound to.
 */
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "check.h"
#include "diag_parse.h"

#define SEQ 7

typedef struct {
    uint32_t buf[1024]; /* aligned as recv() leaves it */
    size_t len;
} reply;

/* Appends one socket message: state, timer kind and ms left. */
static void add_socket(reply *r, int state, int timer, uint32_t expires, uint32_t cookie)
{
    struct nlmsghdr h = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct inet_diag_msg)),
                         .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                         .nlmsg_flags = NLM_F_MULTI,
                         .nlmsg_seq = SEQ};
    struct inet_diag_msg m = {.idiag_family = 2,
                              .idiag_state = (uint8_t)state,
                              .idiag_timer = (uint8_t)timer,
                              .idiag_expires = expires,
                              .idiag_inode = cookie};
    m.id.idiag_cookie[0] = cookie;
    m.id.idiag_sport = htons(40000);
    char *at = (char *)r->buf + r->len;
    memcpy(at, &h, sizeof h);
    memcpy(NLMSG_DATA((struct nlmsghdr *)at), &m, sizeof m);
    r->len += NLMSG_ALIGN(h.nlmsg_len);
}

/* Appends one TCP socket message of IPv6 addresses, bound to interface ifindex. */
static void add_socket6(reply *r, const char *local, const char *remote, uint32_t ifindex, uint32_t cookie)
{
    struct nlmsghdr h = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct inet_diag_msg)),
                         .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                         .nlmsg_flags = NLM_F_MULTI,
                         .nlmsg_seq = SEQ};
    struct inet_diag_msg m = {.idiag_family = AF_INET6, .idiag_state = CH_ST_ESTABLISHED, .idiag_inode = cookie};
    inet_pton(AF_INET6, local, m.id.idiag_src);
    inet_pton(AF_INET6, remote, m.id.idiag_dst);
    m.id.idiag_if = ifindex;
    m.id.idiag_cookie[0] = cookie;
    m.id.idiag_sport = htons(40000);
    m.id.idiag_dport = htons(443);
    char *at = (char *)r->buf + r->len;
    memcpy(at, &h, sizeof h);
    memcpy(NLMSG_DATA((struct nlmsghdr *)at), &m, sizeof m);
    r->len += NLMSG_ALIGN(h.nlmsg_len);
}

static void add_done(reply *r)
{
    struct nlmsghdr h = {
        .nlmsg_len = NLMSG_LENGTH(sizeof(int)), .nlmsg_type = NLMSG_DONE, .nlmsg_flags = NLM_F_MULTI, .nlmsg_seq = SEQ};
    memcpy((char *)r->buf + r->len, &h, sizeof h);
    memset((char *)r->buf + r->len + sizeof h, 0, sizeof(int));
    r->len += NLMSG_ALIGN(h.nlmsg_len);
}

/* Parses r as one dump; returns its soonest timer. */
static uint32_t soonest(const reply *r, int tcp, size_t rows)
{
    ch_diag_dump d = {.seq = SEQ, .tcp = tcp, .soonest_timer_ms = UINT32_MAX};
    ch_sample s = {0};
    CHECK_INT(ch_diag_parse(&d, r->buf, r->len, &s), CH_DIAG_DONE);
    CHECK_INT(s.count, rows);
    ch_sample_free(&s);
    return d.soonest_timer_ms;
}

static void test_soonest_timer(void)
{
    reply r = {0};
    add_socket(&r, CH_ST_ESTABLISHED, 1, 200, 1); /* a retransmit: any move it makes is announced */
    add_socket(&r, CH_ST_LISTEN, 0, 0, 2);
    add_socket(&r, CH_ST_TIME_WAIT, 3, 59000, 3);
    add_socket(&r, CH_ST_FIN_WAIT2, 3, 2500, 4); /* a FIN_WAIT2 entry */
    add_socket(&r, CH_ST_FIN_WAIT2, 0, 0, 5);    /* a socket waiting for its peer, no timer */
    add_done(&r);
    CHECK_INT(soonest(&r, 1, 5), 2500);

    reply req = {0};
    add_socket(&req, CH_ST_TIME_WAIT, 3, 59000, 6);
    add_socket(&req, CH_ST_SYN_RECV, 1, 700, 7); /* a half-open request: its next SYN-ACK */
    add_done(&req);
    CHECK_INT(soonest(&req, 1, 2), 700);

    reply none = {0};
    add_socket(&none, CH_ST_ESTABLISHED, 2, 100, 8); /* keepalive */
    add_done(&none);
    CHECK_INT(soonest(&none, 1, 1), UINT32_MAX);
    CHECK_INT(soonest(&r, 0, 5), UINT32_MAX); /* UDP: no timers */
}

/* The interface of a link-local address is the row's scope id, as
 * Windows reports it; other addresses have none, bound or not. */
static void test_link_local_scope(void)
{
    reply r = {0};
    add_socket6(&r, "fe80::1", "fe80::2", 3, 1);
    add_socket6(&r, "2001:db8::1", "fe80::2", 4, 2);     /* a global address bound to an interface */
    add_socket6(&r, "2001:db8::1", "2001:db8::2", 5, 3); /* SO_BINDTODEVICE: no scope */
    add_socket6(&r, "fe80::1", "ff02::1", 6, 4);         /* link-local multicast */
    add_socket6(&r, "fe80::1", "fe80::2", 0, 5);         /* bound to none: unknown */
    add_done(&r);
    ch_diag_dump d = {.seq = SEQ, .tcp = 1, .soonest_timer_ms = UINT32_MAX};
    ch_sample s = {0};
    CHECK_INT(ch_diag_parse(&d, r.buf, r.len, &s), CH_DIAG_DONE);
    CHECK_INT(s.count, 5);
    if (s.count == 5) {
        CHECK_INT(ch_sample_row(&s, 0).local_scope, 3);
        CHECK_INT(ch_sample_row(&s, 0).remote_scope, 3);
        CHECK_INT(ch_sample_row(&s, 1).local_scope, 0);
        CHECK_INT(ch_sample_row(&s, 1).remote_scope, 4);
        CHECK_INT(ch_sample_row(&s, 2).local_scope, 0);
        CHECK_INT(ch_sample_row(&s, 2).remote_scope, 0);
        CHECK_INT(ch_sample_row(&s, 3).local_scope, 6);
        CHECK_INT(ch_sample_row(&s, 3).remote_scope, 6);
        CHECK_INT(ch_sample_row(&s, 4).local_scope, 0);
        CHECK_INT(ch_sample_row(&s, 4).remote_scope, 0);
    }
    ch_sample_free(&s);
}

int main(void)
{
    test_soonest_timer();
    test_link_local_scope();
    return check_report("test_diag_parse");
}
