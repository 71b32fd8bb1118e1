/*
 * A build without owner events: Windows (the IP Helper tables name the
 * owning pid of every socket they list, and what opens and closes between
 * two samples is not seen at all), or Linux without libbpf (CMake found no
 * libbpf, bpftool or clang able to target BPF). The recorder samples as
 * before, and the run's notes say why short-lived sockets have no owner.
 * CMake gives the reason as CH_OWNERS_NONE_WHY and what --version says as
 * CH_OWNERS_NONE_BUILD.
 */
#include "owners.h"

#include <stdio.h>

const char *ch_owner_events_build(void)
{
    return "socket owner events: " CH_OWNERS_NONE_BUILD;
}

ch_owner_events *ch_owner_events_open(ch_owner_fact_fn fn, void *ctx, char *why, size_t whyn)
{
    (void)fn, (void)ctx;
    snprintf(why, whyn, "%s", CH_OWNERS_NONE_WHY);
    return NULL;
}

void ch_owner_events_close(ch_owner_events *e)
{
    (void)e;
}

void ch_owner_events_on_close(ch_owner_events *e, ch_close_fact_fn fn, void *ctx)
{
    (void)e, (void)fn, (void)ctx;
}

int ch_owner_events_handle(const ch_owner_events *e)
{
    (void)e;
    return -1;
}

size_t ch_owner_events_read(ch_owner_events *e)
{
    (void)e;
    return 0;
}

int64_t ch_owner_events_lost(const ch_owner_events *e)
{
    (void)e;
    return 0;
}

bool ch_owner_events_tcp_moves(const ch_owner_events *e, uint64_t *moves)
{
    (void)e, (void)moves;
    return false;
}
