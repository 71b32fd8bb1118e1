/*
 * The neutral sample: a growable array of socket rows, and state names.
 */
#include "sample.h"

#include <stdlib.h>
#include <string.h>

static const char *const state_names[CH_ST_COUNT] = {
    [CH_ST_UNKNOWN] = "UNKNOWN",       [CH_ST_ESTABLISHED] = "ESTABLISHED",
    [CH_ST_SYN_SENT] = "SYN_SENT",     [CH_ST_SYN_RECV] = "SYN_RECV",
    [CH_ST_FIN_WAIT1] = "FIN_WAIT1",   [CH_ST_FIN_WAIT2] = "FIN_WAIT2",
    [CH_ST_TIME_WAIT] = "TIME_WAIT",   [CH_ST_CLOSE] = "CLOSE",
    [CH_ST_CLOSE_WAIT] = "CLOSE_WAIT", [CH_ST_LAST_ACK] = "LAST_ACK",
    [CH_ST_LISTEN] = "LISTEN",         [CH_ST_CLOSING] = "CLOSING",
    [CH_ST_NEW_SYN_RECV] = "NEW_SYN_RECV", [CH_ST_UNCONN] = "UNCONN",
};

const char *ch_state_name(int state)
{
    if (state < 0 || state >= CH_ST_COUNT)
        return "UNKNOWN";
    return state_names[state];
}

int ch_state_from_name(const char *name)
{
    for (int i = 1; i < CH_ST_COUNT; i++)
        if (strcmp(state_names[i], name) == 0)
            return i;
    return CH_ST_UNKNOWN;
}

const char *ch_offload_name(int offload)
{
    static const char *const names[] = {"in_host", "offloading", "offloaded", "uploading"};
    if (offload < 0 || offload >= (int)(sizeof names / sizeof names[0]))
        return NULL;
    return names[offload];
}

ch_sock *ch_sample_add(ch_sample *s)
{
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        ch_sock *rows = realloc(s->rows, cap * sizeof *rows);
        if (rows == NULL)
            return NULL;
        s->rows = rows;
        s->cap = cap;
    }
    ch_sock *row = &s->rows[s->count++];
    memset(row, 0, sizeof *row);
#if CH_SOCK_OS_FIELDS
    row->offload = -1;
#endif
    row->bytes_sent = row->bytes_received = -1;
    return row;
}

void ch_sample_clear(ch_sample *s)
{
    s->count = 0;
    s->consumed = 0;
}

void ch_sample_trim(ch_sample *s)
{
    size_t keep = s->count * 2 > 1024 ? s->count * 2 : 1024;
    if (s->cap < 4 * keep)
        return;
    ch_sock *rows = realloc(s->rows, keep * sizeof *rows);
    if (rows == NULL)
        return; /* keeping more is not wrong */
    s->rows = rows;
    s->cap = keep;
}

void ch_sample_truncate(ch_sample *s, size_t n)
{
    if (n >= s->count)
        return;
    s->count = n;
    size_t keep = n > 1024 ? n : 1024;
    if (keep >= s->cap)
        return;
    ch_sock *rows = realloc(s->rows, keep * sizeof *rows);
    if (rows == NULL)
        return; /* keeping more is not wrong */
    s->rows = rows;
    s->cap = keep;
}

void ch_sample_free(ch_sample *s)
{
    free(s->rows);
    s->rows = NULL;
    s->count = s->cap = s->consumed = 0; /* the consume hook stays */
}

bool ch_sock_has_remote(const ch_sock *s)
{
    return s->remote_port != 0 || !ch_addr_is_any(&s->remote);
}
