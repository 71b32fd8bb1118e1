/*
 * Owners from kernel events: the facts an event source in the kernel
 * reports as processes act on their sockets (Linux, as root: a BPF program
 * on socket tracepoints, linux/owners.bpf.c), so that a socket that opens
 * and closes between two samples, which /proc never showed in any
 * process's descriptors, still names its process.
 *
 * A fact says: this process acted on this socket (connected it, read or
 * wrote it, closed it), first of all processes. It names the socket by the
 * identity the sampler reports (the sock_diag cookie) and the process by
 * pid and exact start time, the identity procs.h gives a process, so a
 * fact joins lifetimes by cookie and processes by (pid, start): never by
 * nearness in time or addresses.
 *
 * The source only reads and delivers; the tracker decides (owner_map.h
 * keeps the facts until a lifetime takes them). Where there is no source
 * (not root, no BTF, kernel lockdown, old kernel, built without libbpf,
 * Windows), ch_owner_events_open says why, in one line for the run's notes.
 * linux/owners_bpf.c, linux/owners_none.c and windows/owners_windows.c
 * implement it.
 */
#ifndef CH_OWNERS_H
#define CH_OWNERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define CH_OWNER_NAME_MAX 16 /* a process name as the kernel keeps it, NUL included */

typedef struct {
    uint64_t ident;  /* the socket: ch_sock.ident of the sampler (the cookie); never 0 */
    int64_t pid;
    uint64_t start;  /* when the process started, exactly, in the unit procs.h keys
                      * processes by (Linux: clock ticks since boot, /proc/PID/stat) */
    int64_t uid;     /* its real user id; -1 when unknown */
    char name[CH_OWNER_NAME_MAX]; /* its name then, NUL-terminated; "" when unknown */
} ch_owner_fact;

/* A TCP connection's end (Linux: its socket entered CLOSE): its final byte
 * counters, the ones its destroy announcement carries (closes.h), had even
 * when that announcement is lost or late; and for a socket that lingers
 * 0 s its addresses, which the kernel clears before it announces it. */
typedef struct {
    uint64_t ident;         /* the socket: ch_sock.ident of the sampler; never 0 */
    int64_t bytes_sent;     /* sent and acknowledged, as ch_sock.bytes_sent */
    int64_t bytes_received;
    bool has_addrs; /* false: the four below are not known */
    uint16_t local_port;
    uint16_t remote_port;
    ch_addr local;
    ch_addr remote;
} ch_close_fact;

typedef struct ch_owner_events ch_owner_events;

/* Called with each fact as the source reads it. */
typedef void (*ch_owner_fact_fn)(void *ctx, const ch_owner_fact *fact);

/* Called with each close fact as the source reads it. */
typedef void (*ch_close_fact_fn)(void *ctx, const ch_close_fact *fact);

/* What this build has, in one line for --version. */
const char *ch_owner_events_build(void);

/* Starts the source. Returns NULL with the reason it is not available in
 * why (one line, no trailing period). */
ch_owner_events *ch_owner_events_open(ch_owner_fact_fn fn, void *ctx, char *why, size_t whyn);
void ch_owner_events_close(ch_owner_events *e);

/* Where the close facts go (none until set). */
void ch_owner_events_on_close(ch_owner_events *e, ch_close_fact_fn fn, void *ctx);

/* A handle that becomes ready when the source wants to be read before the
 * next sample (its buffer is filling up; Linux: a file descriptor to
 * poll), or -1. Reading it is ch_owner_events_read. */
int ch_owner_events_handle(const ch_owner_events *e);

/* Delivers every fact waiting, oldest first. Returns how many. */
size_t ch_owner_events_read(ch_owner_events *e);

/* Facts the source lost since it was opened: its buffer was full because
 * the recorder read too late. */
int64_t ch_owner_events_lost(const ch_owner_events *e);

/*
 * How many times the TCP tables of the recorder's namespace moved since the
 * source was opened (Linux: a TCP socket changed state, or a half-open
 * connection's SYN-ACK was sent again), into *moves. While the count
 * stands still, a new dump of the TCP tables finds the same sockets in the
 * same states as the last, but for the ends of the TIME_WAIT entries and
 * half-open requests the dump reports timers for. Returns false when the
 * source cannot tell (none, or the count could not be read).
 */
bool ch_owner_events_tcp_moves(const ch_owner_events *e, uint64_t *moves);

#endif
