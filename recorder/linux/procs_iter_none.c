/*
 * The socket holder pass where connhist-record is built without BPF
 * (procs_iter.h): never available, so every look-up reads /proc.
 */
#include "procs_iter.h"

#include <stdio.h>

bool ch_sockfiles_can_run(char *why, size_t whyn)
{
    snprintf(why, whyn, "this connhist-record was built without BPF");
    return false;
}

ch_sockfiles *ch_sockfiles_open(char *why, size_t whyn)
{
    snprintf(why, whyn, "this connhist-record was built without BPF");
    return NULL;
}

void ch_sockfiles_close(ch_sockfiles *s)
{
    (void)s;
}

int ch_sockfiles_read(ch_sockfiles *s, ch_task_sockets_fn fn, void *ctx)
{
    (void)s;
    (void)fn;
    (void)ctx;
    return -1;
}
