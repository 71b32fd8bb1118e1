/*
 * The record the BPF iterator of procs_iter.bpf.c writes for every open
 * file of every process, and procs_iter.c reads: which process, which
 * descriptor, and the socket's inode when the file is a socket. Both sides
 * compile this header, so it holds fixed-width kernel types only.
 */
#ifndef CH_PROCS_ITER_RECORD_H
#define CH_PROCS_ITER_RECORD_H

#include <linux/types.h>

struct ch_file_record {
    __u64 start_ns; /* the process's start_boottime: ns since boot, as /proc/PID/stat's starttime */
    __u64 inode;    /* the socket's inode, as "socket:[INODE]" names it; 0: not a socket */
    __u32 tgid;     /* the process (thread group) in the initial pid namespace */
    __u32 fd;       /* the descriptor */
};

_Static_assert(sizeof(struct ch_file_record) == 24, "the record has no padding to leak");

#endif
