/*
 * The sockets of the network namespace read through BPF iterators over the
 * kernel's TCP and UDP tables (socks_iter.bpf.c) instead of a sock_diag
 * dump: the same walk of the tables, a 64-byte record a socket instead of
 * a netlink message with its attributes, so about a quarter less of the
 * kernel's time (bench/README.md, "A dump through BPF iterators"). The
 * netlink sampler (sample_linux.c) uses it where it loads, as root, and
 * dumps where it does not (socks_iter_none.c, or ch_socks_iter_open says
 * why not).
 */
#ifndef CH_SOCKS_ITER_H
#define CH_SOCKS_ITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sample.h"

typedef struct ch_socks_iter ch_socks_iter;

/* Loads the iterators: NULL, with the reason in why, when they cannot run
 * (built without BPF, not root, no BTF, the kernel refused them). With
 * only_with_files, only together with the holder pass's (procs_iter.h),
 * whose load reads the kernel's BTF anyway: for one sample, which does
 * not make up for a read of its own. */
ch_socks_iter *ch_socks_iter_open(bool only_with_files, char *why, size_t whyn);
void ch_socks_iter_close(ch_socks_iter *it);

/*
 * Appends a row to out for each TCP (tcp true) or UDP socket, as a dump
 * would, handing them to out's consume and prefetch hooks where set (see
 * ch_sample). Lowers *soonest_timer_ms to the soonest end a TCP row's timer
 * announces (as ch_diag_dump's). Returns 0, or -1 with the reason in err.
 */
int ch_socks_iter_take(ch_socks_iter *it, bool tcp, ch_sample *out, uint32_t *soonest_timer_ms, char *err, size_t errn);

#endif
