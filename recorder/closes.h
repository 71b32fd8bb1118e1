/*
 * Sockets that close between samples. Where the OS announces each socket
 * it destroys (Linux: the sock_diag destroy multicast groups, what `ss -E`
 * listens to), the recorder learns the exact close time of the sockets it
 * tracks and sees the ones that opened and closed between two samples.
 * Where it does not (Windows), ch_closes_open says so and the recorder
 * samples only.
 *
 * The watch collects the closes it reads, each stamped with the wall-clock
 * time it was read, until the caller takes them with the next sample. A
 * lost announcement (the OS's queue overran) is never silent: it is
 * counted, and the caller resynchronises with a full sample at once.
 * closes_linux.c and closes_windows.c implement it.
 */
#ifndef CH_CLOSES_H
#define CH_CLOSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sample.h"

/* One socket the OS destroyed: its last addresses, state, identity and
 * final byte counters (inode, uid and owner are not reported). */
typedef struct {
    ch_sock sock;
    int64_t at; /* wall-clock ms UTC when the announcement was read */
} ch_closed;

typedef struct ch_closes ch_closes;

/* Starts listening. Returns NULL with the reason in err when the OS has no
 * such announcements or refuses them. */
ch_closes *ch_closes_open(char *err, size_t errn);
void ch_closes_close(ch_closes *w);

/*
 * Lets the caller take announcements as they are read: absorb(ctx, s, at)
 * returns true when it took that one (a socket it already knows), which is
 * then not collected, so a mass close of known sockets holds no copies.
 */
typedef bool (*ch_closes_absorb_fn)(void *ctx, const ch_sock *s, int64_t at);
void ch_closes_set_absorb(ch_closes *w, ch_closes_absorb_fn absorb, void *ctx);

/*
 * Waits up to ms milliseconds, reading announcements as they come so their
 * times are exact. Returns early when a stop is requested (a signal) or an
 * overrun calls for a resync (see ch_closes_take_overrun). ms <= 0 only reads
 * what is already there.
 */
void ch_closes_wait(ch_closes *w, int64_t ms);

/*
 * Another source to read while waiting (the owner events, owners.h):
 * whenever its handle is ready (Linux: a file descriptor to poll), the wait
 * calls ready(ctx), which reads it. One at most; handle -1 for none.
 */
void ch_closes_wait_also(ch_closes *w, int handle, void (*ready)(void *ctx), void *ctx);

/* The closes collected so far, oldest first; *n receives their count.
 * Valid until ch_closes_clear or the next wait. */
const ch_closed *ch_closes_closed(const ch_closes *w, size_t *n);

/* Forgets the collected closes (after the tracker took them), and gives
 * back the room of a burst of them. */
void ch_closes_clear(ch_closes *w);

/* True once after an overrun was detected: announcements were lost, so the
 * caller takes a full sample now. */
int ch_closes_take_overrun(ch_closes *w);

/* Overruns detected since the watch was opened. */
int64_t ch_closes_overruns(const ch_closes *w);

#endif
