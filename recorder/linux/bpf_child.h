/*
 * Loading a BPF program in a short-lived child process, so that the 13 MB
 * the kernel's BTF takes to read are never the recorder's: the child
 * loads and attaches, then hands over the descriptors (links, maps) that
 * are all the recorder needs. Shared by the BPF iterators (procs_iter.c,
 * socks_iter.c).
 */
#ifndef CH_BPF_CHILD_H
#define CH_BPF_CHILD_H

#include <stdbool.h>
#include <stddef.h>

/* Whether this process may load BPF programs (the kernel's BTF is there,
 * root or CAP_SYS_ADMIN or CAP_BPF with CAP_PERFMON); else false with the
 * reason in why. */
bool ch_bpf_may_load(char *why, size_t whyn);

/* Run in the child: loads, and fills fds[0..n) with the descriptors to hand
 * over. Returns 0, or -1 with the reason in why (what libbpf said first is
 * added to it by ch_bpf_load_in_child). */
typedef int (*ch_bpf_loader)(int *fds, size_t n, char *why, size_t whyn);

/* Runs load in a child and receives its n descriptors into fds. Returns 0,
 * or -1 with the reason in why. */
int ch_bpf_load_in_child(ch_bpf_loader load, int *fds, size_t n, char *why, size_t whyn);

#endif
