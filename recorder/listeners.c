/*
 * The known listeners (listeners.h), kept sorted by port: a lookup is a
 * binary search for the port and a look at the few listeners on it. A
 * listener that closes is looked for from one end to the other, but
 * listeners close rarely.
 */
#include "listeners.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint16_t port;
    ch_addr local;          /* an any address listens on every address of its family */
    int64_t lifetime_id;
    const ch_proc *owner;   /* NULL: unknown */
} listener;

struct ch_listeners {
    listener *items;
    size_t count, cap;
};

ch_listeners *ch_listeners_new(void)
{
    return calloc(1, sizeof(ch_listeners));
}

void ch_listeners_free(ch_listeners *l)
{
    if (l == NULL)
        return;
    free(l->items);
    free(l);
}

/* The index of the first listener on a port not below port. */
static size_t first_at(const ch_listeners *l, uint16_t port)
{
    size_t lo = 0, hi = l->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->items[mid].port < port)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int ch_listeners_add(ch_listeners *l, const ch_sock *s, int64_t lifetime_id, const ch_proc *owner)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        listener *items = realloc(l->items, cap * sizeof *items);
        if (items == NULL)
            return -1;
        l->items = items;
        l->cap = cap;
    }
    size_t at = first_at(l, s->local_port);
    memmove(&l->items[at + 1], &l->items[at], (l->count - at) * sizeof *l->items);
    l->items[at] = (listener){.port = s->local_port, .local = s->local, .lifetime_id = lifetime_id, .owner = owner};
    l->count++;
    return 0;
}

void ch_listeners_set_owner(ch_listeners *l, int64_t lifetime_id, const ch_proc *owner)
{
    for (size_t i = 0; i < l->count; i++)
        if (l->items[i].lifetime_id == lifetime_id)
            l->items[i].owner = owner;
}

void ch_listeners_drop(ch_listeners *l, int64_t lifetime_id)
{
    for (size_t i = 0; i < l->count; i++) {
        if (l->items[i].lifetime_id == lifetime_id) {
            memmove(&l->items[i], &l->items[i + 1], (l->count - i - 1) * sizeof *l->items);
            l->count--;
            return;
        }
    }
}

static bool is_any(const ch_addr *a)
{
    static const unsigned char zero[16];
    return memcmp(a->bytes, zero, a->family == 6 ? 16 : 4) == 0;
}

/* True when a listener on address `on` accepts connections to local: the
 * same address, or the any address of local's family (an IPv4 client of a
 * dual-stack :: listener is an IPv6 connection to ::ffff:a.b.c.d). */
static bool accepts(const ch_addr *on, const ch_addr *local)
{
    if (on->family != local->family)
        return false;
    return is_any(on) || memcmp(on->bytes, local->bytes, on->family == 6 ? 16 : 4) == 0;
}

const ch_proc *ch_listeners_owner(const ch_listeners *l, const ch_sock *c)
{
    if (l == NULL || c->proto != CH_TCP || !ch_sock_has_remote(c) || c->remote_port == 0)
        return NULL;
    const ch_proc *owner = NULL;
    for (size_t i = first_at(l, c->local_port); i < l->count && l->items[i].port == c->local_port; i++) {
        const listener *it = &l->items[i];
        if (!accepts(&it->local, &c->local))
            continue;
        if (it->owner == NULL || (owner != NULL && owner != it->owner))
            return NULL; /* could be another process's: no owner rather than a guess */
        owner = it->owner;
    }
    return owner;
}
