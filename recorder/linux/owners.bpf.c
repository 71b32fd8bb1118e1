/*
 * The kernel half of the owner events: the first time a process acts on
 * one of its TCP or UDP sockets, one record into a ring buffer naming the
 * socket by its cookie and the process by its thread group id and start
 * time. It only collects; owners_bpf.c decides what the records mean.
 *
 * What counts as acting, always in the context of the process itself
 * (only tracepoints, a stable interface; fentry/fexit need BPF trampolines,
 * which some kernels refuse even to root):
 *  - connecting a TCP socket: sock:inet_sock_set_state from CLOSE to
 *    SYN_SENT, which tcp_v4_connect (IPv6 and fast open included) passes
 *    under the caller's socket lock;
 *  - listening on a TCP socket: the same tracepoint from CLOSE to LISTEN
 *    (listen), and from LISTEN to CLOSE (close, shutdown);
 *  - closing or shutting down a TCP connection: the same tracepoint into
 *    FIN_WAIT1 or LAST_ACK, which only tcp_close and tcp_shutdown enter
 *    (every other move of a closing connection is made by the network
 *    stack in softirq, where the current task is whoever was interrupted);
 *  - sending or receiving on a TCP or UDP socket: sock:sock_send_length
 *    and sock:sock_recv_length, which sock_sendmsg and sock_recvmsg pass
 *    (write, read, sendto, sendmmsg, io_uring and splice included). An
 *    accepted connection is first read or written by the process that
 *    accepted it, a UDP socket by the one that bound or connected it;
 *    one in a listener's backlog that nobody accepted gets no record.
 * Each socket is reported once, at the first of these (a flag in socket
 * storage, freed with the socket), so a busy socket costs one lookup per
 * call. Kernel threads and the kernel's own sockets are skipped: no
 * process owns them.
 *
 * Apart from owners, one close record for every TCP connection that
 * enters CLOSE (the same tracepoint, from any state but LISTEN; in
 * whatever context the kernel moves it): its final byte counters, which
 * the destroy announcement also carries, but which the recorder then has
 * even when that announcement is lost or comes late (a connection reset
 * by its peer is announced only when its process closes it). A socket
 * whose process set SO_LINGER to 0 s, or that no process acted on (left in
 * a listener's backlog), gets a longer one with its addresses: the kernel
 * clears its remote port and local address as it closes it (the process's
 * close, the listener's).
 *
 * And a count of the moves of the TCP tables (tcp_moves): every change of
 * state of a TCP socket of the namespace, the kernel's own included, and
 * every SYN-ACK sent again for a connection still half open (its request
 * lives on, which only a dump shows). While it stands still, a dump of the
 * TCP tables would find what the last one found, but for the timers that
 * end TIME_WAIT entries and half-open requests (the recorder dates those
 * from the dump itself).
 *
 * Reading the cookie through bpf_get_socket_cookie makes the kernel give
 * the socket its cookie now (sock_gen_cookie): sock_diag reports the same
 * value later, and the recorder joins the record to the socket's lifetime
 * by it.
 */
#include <linux/types.h>
#include <linux/bpf.h>

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "owners_kernel.h"
#include "owners_record.h"

/* Values from the kernel's headers, stable ABI. */
#define CH_PF_KTHREAD 0x00200000 /* task->flags: a kernel thread */
#define CH_IPPROTO_TCP 6
#define CH_IPPROTO_UDP 17
#define CH_TCP_ESTABLISHED 1
#define CH_TCP_SYN_SENT 2
#define CH_TCP_SYN_RECV 3
#define CH_TCP_FIN_WAIT1 4
#define CH_TCP_CLOSE 7
#define CH_TCP_CLOSE_WAIT 8
#define CH_TCP_LAST_ACK 9
#define CH_TCP_LISTEN 10
#define CH_AF_INET6 10

/* Tracing helpers are offered to GPL-compatible programs only. */
char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before the program is loaded. */
const volatile __u32 netns_inum = 0; /* the recorder's network namespace: other namespaces' sockets are not its */
const volatile __u64 wake_bytes = 1; /* wake the reader once this much is waiting */
const volatile __u64 close_limit = 0; /* no close record once this much is waiting (0: no limit) */

/* Records lost because the ring buffer was full (the reader fell behind). */
__u64 dropped = 0;

/* Moves of the namespace's TCP tables since the program was loaded. */
__u64 tcp_moves = 0;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 512 * 1024);
} records SEC(".maps");

/* Sockets already reported: a flag each, freed with the socket. */
struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, __u8);
} reported SEC(".maps");

static __always_inline int in_namespace(struct sock *sk)
{
    return netns_inum == 0 || sk->__sk_common.skc_net.net->ns.inum == netns_inum;
}

static __always_inline int is_process_socket(struct sock *sk)
{
    if (sk->sk_protocol != CH_IPPROTO_TCP && sk->sk_protocol != CH_IPPROTO_UDP)
        return 0;
    if (BPF_CORE_READ_BITFIELD(sk, sk_kern_sock))
        return 0;
    return in_namespace(sk);
}

/* Records that the current process acted on sk, the first time only. */
static __always_inline void report(struct sock *sk)
{
    if (sk == 0 || !is_process_socket(sk))
        return;
    struct task_struct *task = bpf_get_current_task_btf();
    if (task->flags & CH_PF_KTHREAD)
        return;
    if (bpf_sk_storage_get(&reported, sk, 0, 0) != 0)
        return;
    __u8 *flag = bpf_sk_storage_get(&reported, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (flag == 0)
        return; /* no memory for the flag: report it anyway, perhaps again */
    struct task_struct *leader = task->group_leader;
    struct ch_owner_record *r = bpf_ringbuf_reserve(&records, sizeof *r, 0);
    if (r == 0) {
        __sync_fetch_and_add(&dropped, 1);
        return;
    }
    r->cookie = bpf_get_socket_cookie(sk);
    r->start_ns = leader->start_boottime;
    r->tgid = task->tgid;
    r->uid = leader->real_cred->uid.val;
    __builtin_memset(r->comm, 0, sizeof r->comm);
    bpf_probe_read_kernel_str(r->comm, sizeof r->comm, leader->comm);
    /* The reader drains at every sample; between samples it is woken
     * only when the buffer fills up. */
    __u64 waiting = bpf_ringbuf_query(&records, BPF_RB_AVAIL_DATA);
    bpf_ringbuf_submit(r, waiting >= wake_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void fill_counters(struct ch_close_record *r, struct sock *sk)
{
    struct tcp_sock *tp = (struct tcp_sock *)sk;
    r->cookie = bpf_get_socket_cookie(sk);
    r->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
    r->bytes_received = BPF_CORE_READ(tp, bytes_received);
}

/* True when sk's process set SO_LINGER to 0 s: its close resets the
 * connection and clears the addresses (see ch_close_addrs_record). */
static __always_inline int lingers_0s(struct sock *sk)
{
    unsigned long flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
    return (flags >> bpf_core_enum_value(enum sock_flags, SOCK_LINGER) & 1) != 0 &&
           BPF_CORE_READ(sk, sk_lingertime) == 0;
}

/* The close record with the addresses, as submit_close writes it. */
static __always_inline void submit_close_addrs(struct sock *sk)
{
    struct ch_close_addrs_record *r = bpf_ringbuf_reserve(&records, sizeof *r, 0);
    if (r == 0) {
        __sync_fetch_and_add(&dropped, 1);
        return;
    }
    fill_counters(&r->counters, sk);
    __builtin_memset(r->local, 0, sizeof r->local);
    __builtin_memset(r->remote, 0, sizeof r->remote);
    r->family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (r->family == CH_AF_INET6) {
        bpf_probe_read_kernel(r->local, sizeof r->local, &sk->__sk_common.skc_v6_rcv_saddr);
        bpf_probe_read_kernel(r->remote, sizeof r->remote, &sk->__sk_common.skc_v6_daddr);
    } else {
        __u32 local = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
        __u32 remote = BPF_CORE_READ(sk, __sk_common.skc_daddr);
        __builtin_memcpy(r->local, &local, sizeof local);
        __builtin_memcpy(r->remote, &remote, sizeof remote);
    }
    r->local_port = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
    r->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
    r->zero = 0;
    __u64 waiting = bpf_ringbuf_query(&records, BPF_RB_AVAIL_DATA);
    bpf_ringbuf_submit(r, waiting >= wake_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* Writes the close record of the TCP socket sk, counted as dropped when
 * the ring is full (woken as report does). The counters are read through
 * bpf_probe_read_kernel: the verifier knows sk only as a struct sock. */
static __always_inline void submit_close(struct sock *sk)
{
    /* The owner records come first: close records only repeat what the
     * destroy announcements carry, so they leave the last part of the
     * ring to them (a skipped one is counted as lost). */
    if (close_limit != 0 && bpf_ringbuf_query(&records, BPF_RB_AVAIL_DATA) >= close_limit) {
        __sync_fetch_and_add(&dropped, 1);
        return;
    }
    /* The kernel clears the addresses of a socket that lingers 0 s, and of
     * one left in a listener's backlog (no process acted on it) when that
     * listener closes. */
    if (lingers_0s(sk) || bpf_sk_storage_get(&reported, sk, 0, 0) == 0) {
        submit_close_addrs(sk);
        return;
    }
    struct ch_close_record *r = bpf_ringbuf_reserve(&records, sizeof *r, 0);
    if (r == 0) {
        __sync_fetch_and_add(&dropped, 1);
        return;
    }
    fill_counters(r, sk);
    __u64 waiting = bpf_ringbuf_query(&records, BPF_RB_AVAIL_DATA);
    bpf_ringbuf_submit(r, waiting >= wake_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* The moves a TCP socket makes only in the owning process's own call. */
static __always_inline int by_process(int oldstate, int newstate)
{
    if (newstate == CH_TCP_SYN_SENT)
        return oldstate == CH_TCP_CLOSE;
    if (newstate == CH_TCP_LISTEN)
        return oldstate == CH_TCP_CLOSE;
    if (newstate == CH_TCP_CLOSE)
        return oldstate == CH_TCP_LISTEN;
    if (newstate == CH_TCP_FIN_WAIT1)
        return oldstate == CH_TCP_ESTABLISHED || oldstate == CH_TCP_SYN_RECV;
    return newstate == CH_TCP_LAST_ACK && oldstate == CH_TCP_CLOSE_WAIT;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_tcp_state, struct sock *sk, int oldstate, int newstate)
{
    if (sk != 0 && sk->sk_protocol == CH_IPPROTO_TCP && in_namespace(sk))
        __sync_fetch_and_add(&tcp_moves, 1);
    if (by_process(oldstate, newstate))
        report(sk);
    if (newstate == CH_TCP_CLOSE && oldstate != CH_TCP_LISTEN && sk != 0 && sk->sk_protocol == CH_IPPROTO_TCP &&
        is_process_socket(sk))
        submit_close(sk);
    return 0;
}

/* A SYN-ACK sent again: sk is the listener, its request still half open. */
SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(on_synack_again, const struct sock *sk)
{
    if (sk != 0 && in_namespace((struct sock *)sk))
        __sync_fetch_and_add(&tcp_moves, 1);
    return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(on_send, struct sock *sk)
{
    report(sk);
    return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(on_recv, struct sock *sk)
{
    report(sk);
    return 0;
}
