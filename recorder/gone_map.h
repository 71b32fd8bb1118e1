/*
 * Lifetimes closed without their socket's announcement, by socket
 * identity (the cookie), kept for the announcement that may come later.
 *
 * A sample finds a socket gone when it left the kernel's tables; the OS
 * announces it destroyed when its last reference goes. Mostly the two
 * come together (closes.h), but a connection reset by its peer, or one
 * whose connect failed, leaves the tables at once and stays held by its
 * process until that closes it: its announcement may come many samples
 * later. It is the same socket, so it joins the lifetime the samples
 * closed (with the kernel's final counters) instead of making a second
 * lifetime with the same cookie; likewise a kernel event naming the owner
 * of such a socket (owners.h) names the owner of that lifetime.
 *
 * A socket may be held for ever, so the map has a fixed capacity: when
 * full, the lifetime put longest ago makes room. An announcement that
 * comes after its lifetime was evicted makes a lifetime of its own
 * (seen_by "destroy_event_only"), as before. Memory grows with use, up
 * to the capacity (24 bytes an entry and 8 of index), and never beyond.
 * A mass close misses far more in one sample, and its announcements come
 * late (some lost): the tracker keeps those sockets themselves while the
 * announcements come (ch_tracker_hold_missing), so only the ones still
 * unannounced then come here.
 */
#ifndef CH_GONE_MAP_H
#define CH_GONE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Enough for the sockets found gone in a few samples of a busy server
 * (10,000 connections a second, nearly all announced on time), 512 KiB
 * at most. */
#define CH_GONE_MAP_CAP 16384

typedef struct {
    uint64_t ident;      /* the socket's identity; never 0 */
    int64_t lifetime_id; /* the lifetime the samples closed */
    bool owned;          /* that lifetime's owner is known (not only inferred) */
} ch_gone;

typedef struct ch_gone_map ch_gone_map;

/* A map for at most cap lifetimes (cap >= 1), or NULL when out of memory. */
ch_gone_map *ch_gone_map_new(size_t cap);
void ch_gone_map_free(ch_gone_map *m);

/* Keeps g (its ident not 0); one already kept for that ident is replaced.
 * When the map is full, the one put longest ago is dropped first. */
void ch_gone_map_put(ch_gone_map *m, const ch_gone *g);

/* The lifetime kept for ident, or NULL. It may be changed in place, and
 * stays valid until the map is next put to or taken from. */
ch_gone *ch_gone_map_find(ch_gone_map *m, uint64_t ident);

/* Forgets the lifetime kept for ident, if any. */
void ch_gone_map_drop(ch_gone_map *m, uint64_t ident);

/* Lifetimes in the map. */
size_t ch_gone_map_count(const ch_gone_map *m);

#endif
