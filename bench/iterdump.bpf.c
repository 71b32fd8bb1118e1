/*
 * The kernel side of bench/iterdump.c: BPF iterators over the kernel's TCP
 * and UDP tables (iter/tcp, Linux 5.9; iter/udp) that write one compact
 * record per socket, with what connhist-record takes from a sock_diag row:
 * family, state (a TIME_WAIT entry's substate), ports, addresses, scope,
 * uid, inode, cookie, and a TIME_WAIT entry's timer. It measures what a
 * sampler built on them would pay for the dump (issue 17, item 3); the
 * recorder does not use it.
 *
 * Built by bench/iter_ab.sh against the running kernel's vmlinux.h (made
 * there by bpftool), so every field access is CO-RE.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "iterdump_record.h"

#define CH_AF_INET 2
#define CH_TCP_TIME_WAIT 6
#define CH_TCP_NEW_SYN_RECV 12

char LICENSE[] SEC("license") = "GPL";

/* The fields every kind of socket has (struct sock_common). The iterator
 * hands over pointers the verifier knows the type of (BTF), so the fields
 * are read directly, relocated by CO-RE: a bpf_probe_read_kernel() per
 * field (BPF_CORE_READ) cost as much as the kernel's walk of its table. */
static void fill_common(struct iterdump_record *r, struct sock_common *skc)
{
    r->family = skc->skc_family;
    r->state = skc->skc_state;
    r->local_port = skc->skc_num;
    r->remote_port = bpf_ntohs(skc->skc_dport);
    r->scope = skc->skc_bound_dev_if;
    if (r->family == CH_AF_INET) {
        __u32 local = skc->skc_rcv_saddr, remote = skc->skc_daddr;
        __builtin_memcpy(r->local, &local, 4);
        __builtin_memcpy(r->remote, &remote, 4);
    } else {
        __builtin_memcpy(r->local, &skc->skc_v6_rcv_saddr, 16);
        __builtin_memcpy(r->remote, &skc->skc_v6_daddr, 16);
    }
}

/* The inode of a full socket's file (0 when no file holds it). */
static __u64 socket_inode(struct sock *sk)
{
    struct socket *so = sk->sk_socket;
    if (so == NULL)
        return 0;
    /* struct socket_alloc: the socket, then its inode, in one allocation
     * (one cache miss, where socket->file->f_inode is three); the verifier
     * lets no direct read past the socket, so one probe read. */
    return BPF_CORE_READ((struct socket_alloc *)so, vfs_inode.i_ino);
}

SEC("iter/tcp")
int dump_tcp(struct bpf_iter__tcp *ctx)
{
    struct sock_common *skc = ctx->sk_common;
    if (skc == NULL)
        return 0;
    struct iterdump_record r = {.proto = 6, .uid = ctx->uid};
    fill_common(&r, skc);
    r.cookie = bpf_get_socket_cookie(skc);
    if (r.state == CH_TCP_TIME_WAIT) {
        struct tcp_timewait_sock *tw = bpf_skc_to_tcp_timewait_sock(skc);
        if (tw != NULL) {
            r.state = tw->tw_sk.tw_substate;
            r.timer_jiffies = tw->tw_sk.tw_timer.expires - bpf_jiffies64();
        }
    } else if (r.state != CH_TCP_NEW_SYN_RECV) {
        struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
        if (tp != NULL)
            r.inode = socket_inode(&tp->inet_conn.icsk_inet.sk);
    }
    bpf_seq_write(ctx->meta->seq, &r, sizeof r);
    return 0;
}

SEC("iter/udp")
int dump_udp(struct bpf_iter__udp *ctx)
{
    struct udp_sock *udp = ctx->udp_sk;
    if (udp == NULL)
        return 0;
    struct sock *sk = &udp->inet.sk;
    struct iterdump_record r = {.proto = 17, .uid = ctx->uid};
    fill_common(&r, &sk->__sk_common);
    r.cookie = bpf_get_socket_cookie(sk);
    r.inode = socket_inode(sk);
    bpf_seq_write(ctx->meta->seq, &r, sizeof r);
    return 0;
}
