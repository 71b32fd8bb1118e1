/*
 * The addresses of TCP sockets that linger 0 s, by socket identity (the
 * cookie), kept for their destroy announcements.
 *
 * A process that set SO_LINGER to 0 s and closes the socket resets the
 * connection, and the kernel then clears the socket's remote port and
 * local address (Linux tcp_disconnect) before it announces it destroyed
 * (closes.h). A socket no sample saw (a connection shorter than the
 * interval) is known only from that announcement: its lifetime would show
 * a remote port 0 and the local address 0.0.0.0. The kernel events
 * (owners.h) give the addresses as they were when the connection entered
 * CLOSE, before the clearing; this map holds them until the announcement
 * is taken, which comes with them or at the next sample.
 */
#ifndef CH_CLEARED_ADDRS_H
#define CH_CLEARED_ADDRS_H

#include <stdbool.h>
#include <stddef.h>

#include "owners.h"
#include "sample.h"

typedef struct ch_cleared_addrs ch_cleared_addrs;

/* An empty map, or NULL when out of memory. */
ch_cleared_addrs *ch_cleared_addrs_new(void);
void ch_cleared_addrs_free(ch_cleared_addrs *m);

/* Keeps the addresses of a close fact that has them (has_addrs); others
 * are ignored. Out of memory, they are not kept. */
void ch_cleared_addrs_put(ch_cleared_addrs *m, const ch_close_fact *f);

/* When s is an announced TCP socket whose remote port the kernel cleared
 * and the map has its addresses: gives them back to s. True when it did. */
bool ch_cleared_addrs_restore(ch_cleared_addrs *m, ch_sock *s);

/* At each sample, after its announcements were taken: forgets what was
 * put before the previous call (its announcement was lost, or it was
 * not needed), and gives back a burst's room. */
void ch_cleared_addrs_age(ch_cleared_addrs *m);

#endif
