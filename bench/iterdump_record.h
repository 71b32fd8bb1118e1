/*
 * One socket as bench/iterdump.bpf.c writes it and bench/iterdump.c reads
 * it: 72 bytes, where a sock_diag reply carries about 150 for the same
 * socket (its message, then attributes the recorder does not read).
 */
#ifndef CONNHIST_ITERDUMP_RECORD_H
#define CONNHIST_ITERDUMP_RECORD_H

struct iterdump_record {
    __u64 cookie;
    __u64 inode;
    __u64 timer_jiffies; /* a TIME_WAIT entry's time left, in jiffies */
    __u8 local[16];      /* IPv4 in the first 4 bytes */
    __u8 remote[16];
    __u32 uid;
    __u32 scope; /* the bound interface, 0 when none */
    __u16 local_port;
    __u16 remote_port;
    __u8 family;
    __u8 state;
    __u8 proto;
    __u8 pad;
};

#endif
