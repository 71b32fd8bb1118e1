/*
 * The pure half of the owner events' user side: a ring-buffer record of
 * owners.bpf.c turned into a neutral fact (owners.h). Kept apart from the
 * loader so that it can be tested without a kernel that loads BPF.
 */
#ifndef CH_OWNERS_DECODE_H
#define CH_OWNERS_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "owners.h"

/*
 * A time since boot in nanoseconds as clock ticks of hz a second, exactly
 * as the kernel converts a task's start_boottime for field 22 of
 * /proc/PID/stat (nsec_to_clock_t): truncated, never rounded, so the start
 * a record gives is the very value a scan of /proc reads for that process.
 */
uint64_t ch_ns_to_clock_ticks(uint64_t ns, long hz);

/* Decodes one record of size bytes. Returns 0, or -1 when it is not a
 * record of this build (wrong size, no cookie, no process). */
int ch_owner_decode(const void *data, size_t size, long hz, ch_owner_fact *out);

/* Decodes one close record of size bytes, with its addresses or without.
 * Returns 0, or -1 when it is not one (wrong size, no cookie). */
int ch_close_decode(const void *data, size_t size, ch_close_fact *out);

#endif
