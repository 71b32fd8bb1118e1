/*
 * The gone map: lifetimes in a ring of fixed capacity, put in order, the
 * oldest overwritten when it is full; found through an open-addressing
 * index of twice the capacity keyed by socket identity (linear probing,
 * deletion by shifting the probe run back, so no tombstones pile up).
 * The ring is allocated once and touched only as it fills.
 */
#include "gone_map.h"

#include <stdlib.h>

struct ch_gone_map {
    ch_gone *ring;     /* ident 0: a free or dropped place */
    size_t cap;
    size_t head;       /* where the next put goes */
    size_t count;
    uint32_t *index;   /* ring place + 1; 0: empty */
    size_t nindex;     /* a power of two, at least twice cap */
};

static size_t home_of(const ch_gone_map *m, uint64_t ident)
{
    uint64_t h = ident * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h ^ (h >> 29)) & (m->nindex - 1);
}

ch_gone_map *ch_gone_map_new(size_t cap)
{
    if (cap == 0 || cap >= UINT32_MAX / 2)
        return NULL;
    ch_gone_map *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->cap = cap;
    m->nindex = 2;
    while (m->nindex < cap * 2)
        m->nindex *= 2;
    m->ring = calloc(cap, sizeof *m->ring);
    m->index = calloc(m->nindex, sizeof *m->index);
    if (m->ring == NULL || m->index == NULL) {
        ch_gone_map_free(m);
        return NULL;
    }
    return m;
}

void ch_gone_map_free(ch_gone_map *m)
{
    if (m == NULL)
        return;
    free(m->ring);
    free(m->index);
    free(m);
}

/* The index slot holding ident, or the empty slot where it would go. */
static size_t slot_of(const ch_gone_map *m, uint64_t ident)
{
    size_t mask = m->nindex - 1;
    for (size_t i = home_of(m, ident);; i = (i + 1) & mask) {
        uint32_t v = m->index[i];
        if (v == 0 || m->ring[v - 1].ident == ident)
            return i;
    }
}

/* Empties index slot i, shifting later members of its probe run back. */
static void clear_slot(ch_gone_map *m, size_t i)
{
    size_t mask = m->nindex - 1;
    for (size_t j = (i + 1) & mask; m->index[j] != 0; j = (j + 1) & mask) {
        size_t home = home_of(m, m->ring[m->index[j] - 1].ident);
        /* Move j into the hole unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->index[i] = m->index[j];
            i = j;
        }
    }
    m->index[i] = 0;
}

ch_gone *ch_gone_map_find(ch_gone_map *m, uint64_t ident)
{
    if (m == NULL || ident == 0 || m->count == 0)
        return NULL;
    uint32_t v = m->index[slot_of(m, ident)];
    return v != 0 ? &m->ring[v - 1] : NULL;
}

void ch_gone_map_drop(ch_gone_map *m, uint64_t ident)
{
    if (ch_gone_map_find(m, ident) == NULL)
        return;
    size_t i = slot_of(m, ident);
    size_t place = m->index[i] - 1;
    clear_slot(m, i);
    m->ring[place].ident = 0;
    m->count--;
}

void ch_gone_map_put(ch_gone_map *m, const ch_gone *g)
{
    if (m == NULL || g->ident == 0)
        return;
    ch_gone *kept = ch_gone_map_find(m, g->ident);
    if (kept != NULL) {
        *kept = *g;
        return;
    }
    ch_gone *place = &m->ring[m->head];
    if (place->ident != 0) /* full: the oldest makes room */
        ch_gone_map_drop(m, place->ident);
    *place = *g;
    m->index[slot_of(m, g->ident)] = (uint32_t)(m->head + 1);
    m->head = (m->head + 1) % m->cap;
    m->count++;
}

size_t ch_gone_map_count(const ch_gone_map *m)
{
    return m != NULL ? m->count : 0;
}
