/*
 * Windows has no announcement of destroyed sockets (the IP Helper tables
 * are polled only): the recorder samples, and ch_closes_open says why.
 */
#include "closes.h"

#include <stdio.h>

ch_closes *ch_closes_open(char *err, size_t errn)
{
    snprintf(err, errn, "Windows does not announce closed sockets: connections shorter than the interval may be missed");
    return NULL;
}

void ch_closes_close(ch_closes *w)
{
    (void)w;
}

void ch_closes_set_absorb(ch_closes *w, ch_closes_absorb_fn absorb, void *ctx)
{
    (void)w, (void)absorb, (void)ctx;
}

void ch_closes_wait(ch_closes *w, int64_t ms)
{
    (void)w, (void)ms;
}

void ch_closes_wait_also(ch_closes *w, int handle, void (*ready)(void *ctx), void *ctx)
{
    (void)w, (void)handle, (void)ready, (void)ctx;
}

const ch_closed *ch_closes_closed(const ch_closes *w, size_t *n)
{
    (void)w;
    *n = 0;
    return NULL;
}

void ch_closes_clear(ch_closes *w)
{
    (void)w;
}

int ch_closes_take_overrun(ch_closes *w)
{
    (void)w;
    return 0;
}

int64_t ch_closes_overruns(const ch_closes *w)
{
    (void)w;
    return 0;
}
