/*
 * The record the kernel half of the owner events (owners.bpf.c) writes into
 * its ring buffer and the user half (owners_decode.c) reads: one per socket
 * a process connected, accepted or bound. Both sides compile this header,
 * so it holds fixed-width kernel types only, and its size is checked on
 * both.
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

#endif
