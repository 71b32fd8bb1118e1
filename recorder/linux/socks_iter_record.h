/*
 * The record the BPF iterators of socks_iter.bpf.c write for every TCP and
 * UDP socket of the network namespace, and socks_iter.c reads: what a
 * sock_diag dump row gives the recorder, in the same terms (state and
 * timer as inet_diag reports them). Both sides compile this header, so it
 * holds fixed-width kernel types only.
 */
#ifndef CH_SOCKS_ITER_RECORD_H
#define CH_SOCKS_ITER_RECORD_H

#include <linux/types.h>

#define CH_SOCK_NO_TIMER 0xFFFFFFFFU /* timer_ms: no timer that ends the row */

struct ch_sock_record {
    __u64 cookie;   /* the socket cookie, as sock_diag's idiag_cookie */
    __u32 inode;    /* the socket's inode; 0 without a file (TIME_WAIT, requests) */
    __u32 uid;      /* as sock_diag's idiag_uid */
    __u8 local[16]; /* IPv4 in the first 4 bytes, network order */
    __u8 remote[16];
    __u32 bound_if;    /* the interface the socket is bound to, 0: none (idiag_if) */
    __u32 timer_ms;    /* what is left of a timer that may end the row, CH_SOCK_NO_TIMER: none */
    __u16 local_port;  /* host order */
    __u16 remote_port; /* host order */
    __u8 family;       /* AF_INET or AF_INET6 */
    __u8 state;        /* as inet_diag reports it: a TIME_WAIT entry's substate, SYN_RECV for a request */
    __u8 proto;        /* IPPROTO_TCP or IPPROTO_UDP */
    __u8 pad;
};

_Static_assert(sizeof(struct ch_sock_record) == 64, "the record has no padding to leak");

#endif
