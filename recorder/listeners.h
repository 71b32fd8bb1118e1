/*
 * The TCP listeners the tracker knows, with their owners, for inferring
 * the owner of an accepted connection that no process was seen holding
 * (it opened and closed between two samples, or a sample found only its
 * TIME_WAIT entry) and no kernel event named: the owner of the listener on
 * its local port accepted it, or a child of that process did, so the owner
 * is given as inferred (CH_OWNER_LISTENER), never as seen.
 *
 * Honest or nothing: when more than one listener could have accepted the
 * connection and they do not all have the same known owner (SO_REUSEPORT
 * groups of several processes, a listener whose owner is unknown), there is
 * no inferred owner.
 */
#ifndef CH_LISTENERS_H
#define CH_LISTENERS_H

#include <stdint.h>

#include "procs.h"
#include "sample.h"

typedef struct ch_listeners ch_listeners;

ch_listeners *ch_listeners_new(void);
void ch_listeners_free(ch_listeners *l);

/* Adds the listener s, the socket of that lifetime, owned by owner (NULL
 * when unknown; a record of the attribution cache, valid while it lives).
 * Returns 0, or -1 when out of memory (the listener is then not known). */
int ch_listeners_add(ch_listeners *l, const ch_sock *s, int64_t lifetime_id, const ch_proc *owner);

/* Sets the owner of the listener of that lifetime (found later: a
 * listener an earlier run recorded). */
void ch_listeners_set_owner(ch_listeners *l, int64_t lifetime_id, const ch_proc *owner);

/* Forgets the listener of that lifetime (closed, or no longer listening). */
void ch_listeners_drop(ch_listeners *l, int64_t lifetime_id);

/* The owner of the listener that accepted the connection c (a TCP socket
 * with a peer), when exactly one owner is possible; else NULL. */
const ch_proc *ch_listeners_owner(const ch_listeners *l, const ch_sock *c);

#endif
