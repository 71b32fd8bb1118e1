/*
 * The recorder's BPF iterators, loaded together: the socket holder pass
 * (procs_iter.bpf.c, over every process's files) and the socket iterator
 * sampler (socks_iter.bpf.c, over the TCP and UDP tables) are linked into
 * one object, so that one loading child (bpf_child.h) reads the kernel's
 * BTF once for all of them: each load of an object reads it whole, about
 * 60 ms of CPU, as much as the iterators save over a dump in one sample.
 * The sampler, which opens first, loads the holders' iterator with its
 * own where the holder pass will want it; the pass takes its link here
 * then, and loads its own otherwise.
 */
#ifndef CH_ITERS_H
#define CH_ITERS_H

#include <stddef.h>

typedef enum { CH_ITER_FILES, CH_ITER_TCP, CH_ITER_UDP, CH_NITERS } ch_iter;

#define CH_ITER_BIT(which) (1u << (which))

/* Loads the iterators of want (CH_ITER_BIT of each) in one child and keeps
 * their links for ch_iters_take, in place of any not taken before. Returns
 * 0, or -1 with the reason in why. */
int ch_iters_load(unsigned want, char *why, size_t whyn);

/* The link of an iterator ch_iters_load loaded, the caller's to close from
 * now on, or -1 when there is none. */
int ch_iters_take(ch_iter which);

#endif
