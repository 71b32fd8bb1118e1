/*
 * The kernel half of the socket iterator sampler (socks_iter.c): BPF
 * iterators over the kernel's TCP and UDP tables (iter/tcp, iter/udp) that
 * write one record per socket with what a sock_diag dump row gives the
 * recorder, in inet_diag's terms: a TIME_WAIT entry by its substate, a
 * half-open request as SYN_RECV with uid and inode 0, the time left of the
 * timer that may end a TIME_WAIT entry, a request or a SYN_RECV or
 * FIN_WAIT2 socket. The same walk of the tables as a dump, without a
 * netlink message and attributes per socket.
 *
 * The kernel types are declared by hand with the fields read only, as in
 * owners_kernel.h (CO-RE: libbpf moves each access to where the running
 * kernel keeps the field, through anonymous unions too).
 */
#include <linux/types.h>
#include <linux/bpf.h>

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "socks_iter_record.h"

#define CH_AF_INET 2
#define CH_TCP_SYN_RECV 3
#define CH_TCP_FIN_WAIT2 5
#define CH_TCP_TIME_WAIT 6
#define CH_TCP_NEW_SYN_RECV 12

char LICENSE[] SEC("license") = "GPL";

/* The kernel's HZ, from its configuration; 0 when libbpf found none. */
extern unsigned int CONFIG_HZ __kconfig __weak;

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct seq_file;

struct bpf_iter_meta {
    struct seq_file *seq;
};

struct in6_addr {
    __u8 s6_addr[16];
};

struct sock_common {
    __be32 skc_daddr;
    __be32 skc_rcv_saddr;
    __be16 skc_dport;
    __u16 skc_num;
    unsigned short skc_family;
    volatile unsigned char skc_state;
    int skc_bound_dev_if;
    struct in6_addr skc_v6_daddr;
    struct in6_addr skc_v6_rcv_saddr;
};

struct hlist_node {
    struct hlist_node *next, **pprev;
};

struct timer_list {
    struct hlist_node entry;
    unsigned long expires;
};

struct inode {
    unsigned long i_ino;
};

struct socket {
    short type;
};

struct socket_alloc {
    struct socket socket;
    struct inode vfs_inode;
};

struct sock {
    struct sock_common __sk_common;
    struct socket *sk_socket;
    struct timer_list sk_timer;
};

struct inet_sock {
    struct sock sk;
};

struct inet_connection_sock {
    struct inet_sock icsk_inet;
    struct timer_list icsk_retransmit_timer;
};

struct tcp_sock {
    struct inet_connection_sock inet_conn;
};

struct udp_sock {
    struct inet_sock inet;
};

struct inet_timewait_sock {
    unsigned char tw_substate;
    struct timer_list tw_timer;
};

struct tcp_timewait_sock {
    struct inet_timewait_sock tw_sk;
};

struct request_sock {
    struct timer_list rsk_timer;
};

struct inet_request_sock {
    struct request_sock req;
};

struct tcp_request_sock {
    struct inet_request_sock req;
};

struct bpf_iter__tcp {
    struct bpf_iter_meta *meta;
    struct sock_common *sk_common;
    __u32 uid;
};

struct bpf_iter__udp {
    struct bpf_iter_meta *meta;
    struct udp_sock *udp_sk;
    __u32 uid;
};

#pragma clang attribute pop

/* The fields every kind of socket has. */
static void fill_common(struct ch_sock_record *r, struct sock_common *skc)
{
    r->family = (__u8)skc->skc_family;
    r->state = skc->skc_state;
    r->local_port = skc->skc_num;
    r->remote_port = __builtin_bswap16(skc->skc_dport);
    r->bound_if = (__u32)skc->skc_bound_dev_if;
    if (r->family == CH_AF_INET) {
        __u32 local = skc->skc_rcv_saddr, remote = skc->skc_daddr;
        __builtin_memcpy(r->local, &local, 4);
        __builtin_memcpy(r->remote, &remote, 4);
    } else {
        __builtin_memcpy(r->local, &skc->skc_v6_rcv_saddr, 16);
        __builtin_memcpy(r->remote, &skc->skc_v6_daddr, 16);
    }
}

/* What is left of a timer ending at expires (jiffies), in ms, as inet_diag
 * reports it (0 once past). Without the kernel's HZ, 0: the recorder then
 * dumps the table again at its next sample, which is never wrong. */
static __u32 left_ms(unsigned long expires)
{
    __s64 left = (__s64)(expires - bpf_jiffies64());
    if (left <= 0 || CONFIG_HZ == 0)
        return 0;
    __u64 ms = (__u64)left * 1000 / CONFIG_HZ;
    return ms < CH_SOCK_NO_TIMER ? (__u32)ms : CH_SOCK_NO_TIMER - 1;
}

/* The soonest of a full socket's pending timers (the retransmission timer,
 * and sk_timer: keepalive or FIN_WAIT2's), no later than the one inet_diag
 * reports. */
static __u32 socket_timer_ms(struct tcp_sock *tp)
{
    __u32 ms = CH_SOCK_NO_TIMER;
    struct timer_list *t = &tp->inet_conn.icsk_retransmit_timer;
    if (t->entry.pprev != 0)
        ms = left_ms(t->expires);
    t = &tp->inet_conn.icsk_inet.sk.sk_timer;
    if (t->entry.pprev != 0) {
        __u32 other = left_ms(t->expires);
        if (other < ms)
            ms = other;
    }
    return ms;
}

/* The inode of a full socket's file (0 when no file holds it): the inode
 * follows the socket in one allocation (struct socket_alloc). */
static __u32 socket_inode(struct sock *sk)
{
    struct socket *so = sk->sk_socket;
    if (so == 0)
        return 0;
    return (__u32)BPF_CORE_READ((struct socket_alloc *)so, vfs_inode.i_ino);
}

SEC("iter/tcp")
int socks_tcp(struct bpf_iter__tcp *ctx)
{
    struct sock_common *skc = ctx->sk_common;
    if (skc == 0)
        return 0;
    struct ch_sock_record r = {.proto = 6, .uid = ctx->uid, .timer_ms = CH_SOCK_NO_TIMER};
    fill_common(&r, skc);
    r.cookie = bpf_get_socket_cookie(skc);
    if (r.state == CH_TCP_TIME_WAIT) {
        struct tcp_timewait_sock *tw = bpf_skc_to_tcp_timewait_sock(skc);
        if (tw == 0)
            return 0;
        r.state = tw->tw_sk.tw_substate;
        r.timer_ms = left_ms(tw->tw_sk.tw_timer.expires);
        r.uid = 0;
    } else if (r.state == CH_TCP_NEW_SYN_RECV) {
        struct tcp_request_sock *req = bpf_skc_to_tcp_request_sock(skc);
        if (req == 0)
            return 0;
        r.state = CH_TCP_SYN_RECV;
        r.timer_ms = left_ms(req->req.req.rsk_timer.expires);
        r.uid = 0;
    } else {
        struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
        if (tp == 0)
            return 0;
        r.inode = socket_inode(&tp->inet_conn.icsk_inet.sk);
        if (r.state == CH_TCP_SYN_RECV || r.state == CH_TCP_FIN_WAIT2)
            r.timer_ms = socket_timer_ms(tp);
    }
    bpf_seq_write(ctx->meta->seq, &r, sizeof r);
    return 0;
}

SEC("iter/udp")
int socks_udp(struct bpf_iter__udp *ctx)
{
    struct udp_sock *udp = ctx->udp_sk;
    if (udp == 0)
        return 0;
    struct sock *sk = &udp->inet.sk;
    struct ch_sock_record r = {.proto = 17, .uid = ctx->uid, .timer_ms = CH_SOCK_NO_TIMER};
    fill_common(&r, &sk->__sk_common);
    r.cookie = bpf_get_socket_cookie(sk);
    r.inode = socket_inode(sk);
    bpf_seq_write(ctx->meta->seq, &r, sizeof r);
    return 0;
}
