/*
 * The records the kernel half of the owner events (owners.bpf.c) writes into
 * its ring buffer and the user half (owners_decode.c) reads: an owner
 * record per socket a process connected, accepted or bound, and a close
 * record per TCP socket that enters CLOSE, with its final byte counters
 * (and its addresses when it lingers 0 s). They have different sizes,
 * which is how the reader tells them apart.
 * Both sides compile this header, so it holds fixed-width kernel types
 * only, and the sizes are checked on both.
 */
#ifndef CH_OWNERS_RECORD_H
#define CH_OWNERS_RECORD_H

#include <linux/types.h>

#define CH_OWNER_COMM_LEN 16 /* TASK_COMM_LEN: the kernel keeps 15 bytes and a NUL */

struct ch_owner_record {
    __u64 cookie;   /* the socket's cookie (sock_gen_cookie), the one sock_diag reports */
    __u64 start_ns; /* the thread group leader's start_boottime: ns since boot, suspend included */
    __u32 tgid;     /* the process (thread group) in the initial pid namespace */
    __u32 uid;      /* its real uid, as /proc/PID/status gives first on "Uid:" */
    char comm[CH_OWNER_COMM_LEN]; /* the leader's command name, as /proc/PID/stat gives it */
};

_Static_assert(sizeof(struct ch_owner_record) == 40, "the record has no padding to leak");

/* A TCP socket entering CLOSE (its connection is over: reset, closed, or
 * freed into a TIME_WAIT entry), with the counters tcp_info reports as
 * tcpi_bytes_acked and tcpi_bytes_received, final from then on. */
struct ch_close_record {
    __u64 cookie;
    __u64 bytes_acked;    /* tcp_sock.bytes_acked: sent and acknowledged, the SYN and FIN counted */
    __u64 bytes_received; /* tcp_sock.bytes_received, the peer's SYN and FIN counted */
};

_Static_assert(sizeof(struct ch_close_record) == 24, "the record has no padding to leak");
_Static_assert(sizeof(struct ch_close_record) != sizeof(struct ch_owner_record), "told apart by size");

/* The close record of a TCP socket that lingers 0 s (SO_LINGER), or that
 * no process acted on: closed by its process (or as its listener closes,
 * in that one's backlog), it is reset, and the kernel then clears its
 * remote port and its local address (tcp_disconnect) before it announces
 * it destroyed. So this one carries the addresses as they were when it
 * entered CLOSE. */
struct ch_close_addrs_record {
    struct ch_close_record counters;
    __u8 local[16]; /* network order; an IPv4 address in the first 4 bytes */
    __u8 remote[16];
    __u16 local_port; /* host order */
    __u16 remote_port;
    __u16 family; /* AF_INET or AF_INET6 */
    __u16 zero;
};

_Static_assert(sizeof(struct ch_close_addrs_record) == 64, "the record has no padding to leak");
_Static_assert(sizeof(struct ch_close_addrs_record) != sizeof(struct ch_owner_record), "told apart by size");

#endif
