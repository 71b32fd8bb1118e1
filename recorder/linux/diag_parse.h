/*
 * Turning the kernel's netlink sock_diag replies into neutral socket rows.
 * Kept apart from the socket I/O in sample_linux.c so that it is a pure
 * function of the received bytes: the fuzz target (fuzz/) feeds it
 * arbitrary buffers, and nothing in it may trust a length the buffer gives.
 */
#ifndef CH_DIAG_PARSE_H
#define CH_DIAG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sample.h"

/* One dump in progress: what the caller asked for and what came back. */
typedef struct {
    uint32_t seq;      /* sequence number of the request; other replies are skipped */
    int tcp;           /* nonzero: rows are TCP, else UDP */
    bool interrupted;  /* a reply carried NLM_F_DUMP_INTR: redo the dump */
    int error;         /* with CH_DIAG_ERROR: the kernel's errno, or ENOMEM */
    /* TCP: the soonest end a row's timer announces, in ms from when the
     * kernel wrote the row: a TIME_WAIT entry's, a half-open request's next
     * SYN-ACK or end. Set it to UINT32_MAX (none) before the dump. */
    uint32_t soonest_timer_ms;
} ch_diag_dump;

/* What a row is made of, as sock_diag gives it (addresses in network
 * order, IPv4 in the first 4 bytes; ports in host order; states as
 * inet_diag reports them). */
typedef struct {
    bool tcp, v6;
    const uint8_t *src, *dst;
    uint16_t sport, dport;
    uint32_t bound_if; /* idiag_if: the interface the socket is bound to */
    uint8_t state;
    uint64_t cookie;
    uint32_t inode, uid;
} ch_diag_fields;

/* Fills a neutral row from them: the scope ids of link-local addresses, a
 * UDP socket without a peer as CH_ST_UNCONN. Dumps, destroy events and the
 * socket iterators (socks_iter.c) make their rows through it. */
void ch_diag_row(const ch_diag_fields *f, ch_sock *row);

enum { CH_DIAG_ERROR = -1, CH_DIAG_MORE = 0, CH_DIAG_DONE = 1 };

/*
 * Parses one received buffer of len bytes (buf aligned as recv() leaves it)
 * and appends a row to out for each socket message of the dump. Returns
 * CH_DIAG_DONE at the dump's NLMSG_DONE, CH_DIAG_MORE when more buffers
 * follow, CH_DIAG_ERROR when the kernel answered with an error or rows
 * could not be stored (d->error says which). Truncated or malformed
 * messages are skipped, never read past len.
 */
int ch_diag_parse(ch_diag_dump *d, const void *buf, size_t len, ch_sample *out);

/*
 * Parses one buffer of sock_diag destroy events (multicast, unsolicited)
 * and appends a row for each TCP or UDP socket destroyed, with its final
 * byte counters when the event carried tcp_info. Inode and uid are 0 in
 * these events. Returns 0, or -1 when out of memory.
 */
int ch_diag_parse_events(const void *buf, size_t len, ch_sample *out);

#endif
