/*
 * Loading a BPF program in a short-lived child process, so that the 13 MB
 * the kernel's BTF takes to read are never the recorder's: the child
 * loads and attaches, then hands over the descriptors (links, maps) that
 * are all the recorder needs; and reading a BPF iterator. Shared by the
 * owner events (owners_bpf.c) and the iterators (procs_iter.c, socks_iter.c).
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
 * over. Returns 0, or -1 with the reason in why. */
typedef int (*ch_bpf_loader)(int *fds, size_t n, char *why, size_t whyn);

/* In the loader: the first warning libbpf gave while loading, one line
 * ("" when none), for the reason. */
const char *ch_bpf_libbpf_said(void);

/* Runs load in a child and receives its n descriptors into fds. Returns 0,
 * or -1 with the reason in why. */
int ch_bpf_load_in_child(ch_bpf_loader load, int *fds, size_t n, char *why, size_t whyn);

/* Takes n whole records at records; returns 0 to go on, else the pass stops. */
typedef int (*ch_bpf_records_fn)(void *ctx, const void *records, size_t n);

/*
 * One pass of the BPF iterator whose link is given: reads its records of
 * record_size bytes through buf (bufsize bytes, a multiple of record_size)
 * and hands them to fn as they come. Returns 0 when the pass ended, what
 * fn returned when it stopped it, -1 when the kernel's answer broke off
 * (errno set; EPROTO: it ended inside a record).
 */
int ch_bpf_iter_read(int link, void *buf, size_t bufsize, size_t record_size, ch_bpf_records_fn fn, void *ctx);

#endif
