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

enum sock_flags {
    SOCK_LINGER = 4, /* the kernel's value is relocated (bpf_core_enum_value) */
};

struct in6_addr {
    __u8 s6_addr[16];
};

/* The kernel nests the addresses and ports in unnamed unions and structs:
 * CO-RE finds a field by its name through them. */
struct sock_common {
    possible_net_t skc_net;
    __u32 skc_daddr; /* IPv4, network order */
    __u32 skc_rcv_saddr;
    __u16 skc_dport; /* network order */
    unsigned short skc_family;
    unsigned long skc_flags; /* enum sock_flags bits */
    struct in6_addr skc_v6_daddr;
    struct in6_addr skc_v6_rcv_saddr;
};

struct sock {
    struct sock_common __sk_common;
    __u16 sk_protocol;
    __u8 sk_kern_sock : 1; /* a socket of the kernel's own (NFS, SMB), not of a process */
    long sk_lingertime;
};

/* Read through a cast of a struct sock *. The local port: skc_num is
 * already 0 when the tracepoint reports a move to CLOSE (inet_put_port). */
struct inet_sock {
    __u16 inet_sport; /* network order */
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
