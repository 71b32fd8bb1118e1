/*
 * The owner map: facts in a fixed array of slots, on a list from least to
 * most recently put (indices, not pointers), found through an
 * open-addressing index of twice the capacity keyed by socket identity.
 * Free slots are handed out from the front of the array, so the pages a
 * quiet machine never needs are never touched.
 */
#include "owner_map.h"

#include <stdlib.h>

#define NONE UINT32_MAX

typedef struct {
    ch_owner_fact fact;
    uint32_t older, newer; /* the recency list; NONE at its ends */
} slot;

struct ch_owner_map {
    slot *slots;
    size_t cap;        /* slots */
    size_t used;       /* slots handed out at least once */
    uint32_t free;     /* a slot given back, chained through newer; NONE: none */
    uint32_t oldest, newest;
    size_t count;
    uint32_t *index;   /* slot + 1; 0: empty */
    size_t nindex;     /* a power of two, at least twice cap */
    int64_t evicted;
};

static size_t home_of(const ch_owner_map *m, uint64_t ident)
{
    uint64_t h = ident * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h ^ (h >> 29)) & (m->nindex - 1);
}

ch_owner_map *ch_owner_map_new(size_t cap)
{
    if (cap == 0 || cap >= NONE / 2)
        return NULL;
    ch_owner_map *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->cap = cap;
    m->nindex = 2;
    while (m->nindex < cap * 2)
        m->nindex *= 2;
    m->slots = calloc(cap, sizeof *m->slots);
    m->index = calloc(m->nindex, sizeof *m->index);
    if (m->slots == NULL || m->index == NULL) {
        ch_owner_map_free(m);
        return NULL;
    }
    m->free = m->oldest = m->newest = NONE;
    return m;
}

void ch_owner_map_free(ch_owner_map *m)
{
    if (m == NULL)
        return;
    free(m->slots);
    free(m->index);
    free(m);
}

/* The index position holding ident, or the empty one where it would go. */
static size_t find(const ch_owner_map *m, uint64_t ident)
{
    size_t mask = m->nindex - 1;
    for (size_t i = home_of(m, ident);; i = (i + 1) & mask) {
        uint32_t v = m->index[i];
        if (v == 0 || m->slots[v - 1].fact.ident == ident)
            return i;
    }
}

/* Empties index position i, moving later members of its probe run back. */
static void unindex(ch_owner_map *m, size_t i)
{
    size_t mask = m->nindex - 1;
    for (size_t j = (i + 1) & mask; m->index[j] != 0; j = (j + 1) & mask) {
        size_t home = home_of(m, m->slots[m->index[j] - 1].fact.ident);
        /* Move j into the hole unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->index[i] = m->index[j];
            i = j;
        }
    }
    m->index[i] = 0;
}

static void unlink_slot(ch_owner_map *m, uint32_t s)
{
    slot *x = &m->slots[s];
    if (x->older != NONE)
        m->slots[x->older].newer = x->newer;
    else
        m->oldest = x->newer;
    if (x->newer != NONE)
        m->slots[x->newer].older = x->older;
    else
        m->newest = x->older;
}

static void link_newest(ch_owner_map *m, uint32_t s)
{
    m->slots[s].older = m->newest;
    m->slots[s].newer = NONE;
    if (m->newest != NONE)
        m->slots[m->newest].newer = s;
    else
        m->oldest = s;
    m->newest = s;
}

/* Takes slot s out of the map and gives it back. */
static void drop(ch_owner_map *m, uint32_t s)
{
    unindex(m, find(m, m->slots[s].fact.ident));
    unlink_slot(m, s);
    m->slots[s].newer = m->free;
    m->free = s;
    m->count--;
}

/* A free slot: one given back, else a fresh one, else the oldest fact's. */
static uint32_t take_slot(ch_owner_map *m)
{
    if (m->free == NONE && m->used < m->cap)
        return (uint32_t)m->used++;
    if (m->free == NONE) {
        drop(m, m->oldest);
        m->evicted++;
    }
    uint32_t s = m->free;
    m->free = m->slots[s].newer;
    return s;
}

void ch_owner_map_put(ch_owner_map *m, const ch_owner_fact *fact)
{
    if (m == NULL || fact->ident == 0)
        return;
    size_t i = find(m, fact->ident);
    if (m->index[i] != 0) { /* the first fact stays; it is recent again */
        uint32_t s = m->index[i] - 1;
        unlink_slot(m, s);
        link_newest(m, s);
        return;
    }
    uint32_t s = take_slot(m);
    m->slots[s].fact = *fact;
    link_newest(m, s);
    m->index[find(m, fact->ident)] = s + 1; /* after any eviction moved the index */
    m->count++;
}

bool ch_owner_map_take(ch_owner_map *m, uint64_t ident, ch_owner_fact *out)
{
    if (m == NULL || m->count == 0 || ident == 0)
        return false;
    uint32_t v = m->index[find(m, ident)];
    if (v == 0)
        return false;
    *out = m->slots[v - 1].fact;
    drop(m, v - 1);
    return true;
}

size_t ch_owner_map_count(const ch_owner_map *m)
{
    return m ? m->count : 0;
}

int64_t ch_owner_map_evicted(const ch_owner_map *m)
{
    return m ? m->evicted : 0;
}
