/*
 * The kernel's own types that owners.bpf.c reads, declared by hand with
 * only the fields it reads. preserve_access_index makes clang record every
 * access by type and field name, and libbpf moves each one to where the
 * running kernel keeps that field when it loads the program (CO-RE, from
 * the kernel's BTF, /sys/kernel/btf/vmlinux). So the build needs neither
 * kernel headers nor the build machine's BTF, and one object runs on any
 * kernel that has these fields; on one that lacks a field the load fails
 * and the recorder goes on without owner events, saying why.
 *
 * Only the names matter (struct and field); the order and the missing
 * fields do not. Never include this beside a generated vmlinux.h.
 */
#ifndef CH_OWNERS_KERNEL_H
#define CH_OWNERS_KERNEL_H

#include <linux/types.h>

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct ns_common {
    unsigned int inum; /* what stat() of /proc/PID/ns/net gives as st_ino */
};

struct net {
    struct ns_common ns;
};

typedef struct {
    struct net *net;
} possible_net_t;

struct sock_common {
    possible_net_t skc_net;
};

struct sock {
    struct sock_common __sk_common;
    __u16 sk_protocol;
    __u8 sk_kern_sock : 1; /* a socket of the kernel's own (NFS, SMB), not of a process */
};

/* Read through a cast of a struct sock * of a TCP socket, as the kernel's
 * tcp_sk() does. */
struct tcp_sock {
    __u64 bytes_received;
    __u64 bytes_acked;
};

typedef struct {
    __u32 val;
} kuid_t;

struct cred {
    kuid_t uid;
};

struct task_struct {
    unsigned int flags;
    int tgid;
    struct task_struct *group_leader;
    __u64 start_boottime;
    const struct cred *real_cred;
    char comm[16];
};

#pragma clang attribute pop

#endif
