/*
 * The socket iterators where connhist-record is built without BPF
 * (socks_iter.h): never available, so every sample is a sock_diag dump.
 */
#include "socks_iter.h"

#include <stdio.h>

ch_socks_iter *ch_socks_iter_open(bool only_with_files, char *why, size_t whyn)
{
    (void)only_with_files;
    snprintf(why, whyn, "this connhist-record was built without BPF");
    return NULL;
}

void ch_socks_iter_close(ch_socks_iter *it)
{
    (void)it;
}

int ch_socks_iter_take(ch_socks_iter *it, bool tcp, ch_sample *out, uint32_t *soonest_timer_ms, char *err, size_t errn)
{
    (void)it;
    (void)tcp;
    (void)out;
    (void)soonest_timer_ms;
    snprintf(err, errn, "this connhist-record was built without BPF");
    return -1;
}
