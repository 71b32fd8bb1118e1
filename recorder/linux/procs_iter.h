/*
 * The sockets every process holds, read in one pass from the kernel (a BPF
 * iterator over the processes' files, procs_iter.c) instead of a readlink
 * of every /proc/PID/fd/N. procs_linux.c uses it where a look-up reads
 * processes whole, and /proc where it is not there (procs_iter_none.c, or
 * ch_sockfiles_open says why not).
 */
#ifndef CH_PROCS_ITER_H
#define CH_PROCS_ITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One process as the pass found it: its descriptors' count and, of those
 * that are sockets, the descriptor and inode (the arrays are the pass's,
 * valid during the call only). */
typedef struct {
    int64_t pid;
    uint64_t start_ticks; /* as /proc/PID/stat's starttime (clock ticks since boot) */
    int64_t nfd;          /* open descriptors */
    size_t nsockets;
    const int32_t *fds;
    const uint64_t *inodes;
} ch_task_sockets;

/* Called once per process that has a descriptor open, in ascending pid
 * order. Returns 0 to go on, anything else to stop the pass. */
typedef int (*ch_task_sockets_fn)(void *ctx, const ch_task_sockets *t);

typedef struct ch_sockfiles ch_sockfiles;

/* Whether the pass can run here as far as can be told before loading its
 * program; else false with the reason in why. */
bool ch_sockfiles_can_run(char *why, size_t whyn);

/*
 * Prepares the pass: NULL, with the reason in why, when it cannot run
 * (built without BPF, not root, no BTF, not in the initial pid namespace,
 * the kernel refused the program, or CONNHIST_PROCS_SOURCE=proc, a switch
 * for tests that compare the two ways).
 */
ch_sockfiles *ch_sockfiles_open(char *why, size_t whyn);
void ch_sockfiles_close(ch_sockfiles *s);

/* One pass over every process. Returns 0 when every process was passed
 * to fn, 1 when fn stopped it, -1 when the kernel's answer broke off (the
 * processes after the last one given were not seen). */
int ch_sockfiles_read(ch_sockfiles *s, ch_task_sockets_fn fn, void *ctx);

#endif
