/*
 * The addresses of TCP sockets that linger 0 s (see cleared_addrs.h): an
 * array sorted by identity when first searched after a put, searched by
 * bisection.
 */
#include "cleared_addrs.h"

#include <stdlib.h>

/* Facts a map keeps room for once aged: a steady interval's, not a burst's. */
#define CLEARED_KEPT 1024

typedef struct {
    ch_close_fact fact;
    bool old; /* put before the last ch_cleared_addrs_age */
} kept;

struct ch_cleared_addrs {
    kept *items;
    size_t count, cap;
    bool sorted;
};

ch_cleared_addrs *ch_cleared_addrs_new(void)
{
    return calloc(1, sizeof(ch_cleared_addrs));
}

void ch_cleared_addrs_free(ch_cleared_addrs *m)
{
    if (m == NULL)
        return;
    free(m->items);
    free(m);
}

void ch_cleared_addrs_put(ch_cleared_addrs *m, const ch_close_fact *f)
{
    if (m == NULL || !f->has_addrs || f->ident == 0)
        return;
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        kept *items = realloc(m->items, cap * sizeof *items);
        if (items == NULL)
            return;
        m->items = items;
        m->cap = cap;
    }
    m->items[m->count++] = (kept){.fact = *f};
    m->sorted = false;
}

static int cmp_ident(const void *a, const void *b)
{
    uint64_t x = ((const kept *)a)->fact.ident, y = ((const kept *)b)->fact.ident;
    return (x > y) - (x < y);
}

/* The latest fact put for ident, or NULL. */
static const ch_close_fact *find(ch_cleared_addrs *m, uint64_t ident)
{
    if (!m->sorted) {
        qsort(m->items, m->count, sizeof *m->items, cmp_ident);
        m->sorted = true;
    }
    size_t lo = 0, hi = m->count; /* the first with ident or a greater one */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->items[mid].fact.ident < ident)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->count && m->items[lo].fact.ident == ident ? &m->items[lo].fact : NULL;
}

bool ch_cleared_addrs_restore(ch_cleared_addrs *m, ch_sock *s)
{
    if (m == NULL || m->count == 0 || s->proto != CH_TCP || s->remote_port != 0 || s->ident == 0)
        return false;
    const ch_close_fact *f = find(m, s->ident);
    if (f == NULL || f->local.family != s->local.family)
        return false;
    s->local = f->local;
    s->local_port = f->local_port;
    s->remote = f->remote;
    s->remote_port = f->remote_port;
    return true;
}

void ch_cleared_addrs_age(ch_cleared_addrs *m)
{
    if (m == NULL)
        return;
    size_t n = 0;
    for (size_t i = 0; i < m->count; i++)
        if (!m->items[i].old) {
            m->items[n] = m->items[i];
            m->items[n++].old = true;
        }
    m->count = n; /* still sorted, if it was */
    if (n == 0 && m->cap > CLEARED_KEPT) {
        free(m->items);
        m->items = NULL;
        m->cap = 0;
    }
}
