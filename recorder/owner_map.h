/*
 * Owner facts waiting for their lifetime: a socket's fact (owners.h) is
 * read before any sample or announcement shows the socket, and kept here,
 * by socket identity, until the tracker opens the socket's lifetime and
 * takes it. A fact whose socket never shows up (its announcement was lost,
 * it lived in a state no dump reports) would stay forever, so the map has a
 * fixed capacity: when full, the least recently put fact makes room, and
 * that eviction is counted (the run says so). Memory grows with use, up to
 * the capacity (about 60 bytes a fact), and never beyond.
 */
#ifndef CH_OWNER_MAP_H
#define CH_OWNER_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "owners.h"

/* Enough for 16,384 sockets opened between two samples (a busy server at
 * 10,000 connections a second and a 1 s interval), at most 1 MiB. */
#define CH_OWNER_MAP_CAP 16384

typedef struct ch_owner_map ch_owner_map;

/* A map for at most cap facts (cap >= 1), or NULL when out of memory. */
ch_owner_map *ch_owner_map_new(size_t cap);
void ch_owner_map_free(ch_owner_map *m);

/* Keeps the fact for its socket. A socket that has one already keeps its
 * first (the process that acted first), which counts as just put. When
 * the map is full, the fact put least recently is evicted first. */
void ch_owner_map_put(ch_owner_map *m, const ch_owner_fact *fact);

/* Takes the fact of the socket ident out of the map into *out. Returns
 * false when there is none. */
bool ch_owner_map_take(ch_owner_map *m, uint64_t ident, ch_owner_fact *out);

/* Facts in the map. */
size_t ch_owner_map_count(const ch_owner_map *m);

/* Facts evicted unused since the map was made. */
int64_t ch_owner_map_evicted(const ch_owner_map *m);

#endif
