/*
 * The socket iterator sampler's reading side (socks_iter.h): the programs
 * of socks_iter.bpf.c, loaded in a child process with the holder pass's
 * (iters.h), which hands over the iterators' links; each take creates an
 * iterator from one and reads its records, turned into rows as a dump's
 * are (diag_parse.h).
 */
#define _GNU_SOURCE
#include "socks_iter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf_child.h"
#include "diag_parse.h"
#include "iters.h"
#include "procs_iter.h"
#include "socks_iter_record.h"

#define READ_RECORDS 512 /* records asked for by one read(): 32 KiB */
#define AHEAD 128        /* rows whose identities are prefetched at a time (as diag_parse.c) */

enum { LINK_TCP, LINK_UDP, NLINKS };

struct ch_socks_iter {
    int links[NLINKS];
    struct ch_sock_record buf[READ_RECORDS];
};

/* Loads the iterators, the holders' too where the holder pass can run
 * (iters.h); with only_with_files, not at all where it cannot. Returns 0,
 * or -1 with the reason in why. */
static int load(bool only_with_files, char *why, size_t whyn)
{
    const unsigned socks = CH_ITER_BIT(CH_ITER_TCP) | CH_ITER_BIT(CH_ITER_UDP);
    char files_why[300];
    if (!ch_sockfiles_can_run(files_why, sizeof files_why)) {
        if (!only_with_files)
            return ch_iters_load(socks, why, whyn);
        snprintf(why, whyn, "one sample, and no BPF iterator over the processes' files to load them with (%s)",
                 files_why);
        return -1;
    }
    if (ch_iters_load(socks | CH_ITER_BIT(CH_ITER_FILES), why, whyn) == 0)
        return 0;
    /* One refused program sinks the others' load: without it, then (the
     * holder pass tries it again on its own and says why it failed). */
    return only_with_files ? -1 : ch_iters_load(socks, why, whyn);
}

ch_socks_iter *ch_socks_iter_open(bool only_with_files, char *why, size_t whyn)
{
    const char *env = getenv("CONNHIST_SOCKS_SOURCE");
    if (env != NULL && strcmp(env, "netlink") == 0) {
        snprintf(why, whyn, "CONNHIST_SOCKS_SOURCE=netlink");
        return NULL;
    }
    if (!ch_bpf_may_load(why, whyn))
        return NULL;
    ch_socks_iter *it = calloc(1, sizeof *it);
    if (it == NULL) {
        snprintf(why, whyn, "out of memory");
        return NULL;
    }
    if (load(only_with_files, why, whyn) != 0) {
        free(it);
        return NULL;
    }
    it->links[LINK_TCP] = ch_iters_take(CH_ITER_TCP);
    it->links[LINK_UDP] = ch_iters_take(CH_ITER_UDP);
    return it;
}

void ch_socks_iter_close(ch_socks_iter *it)
{
    if (it == NULL)
        return;
    for (int i = 0; i < NLINKS; i++)
        close(it->links[i]);
    free(it);
}

/* Adds one record's row to out, and hands it to out's consume hook.
 * Returns 0, or -1 when out of memory. */
static int take_record(const struct ch_sock_record *r, ch_sample *out, uint32_t *soonest)
{
    ch_sock *row = ch_sample_add(out);
    if (row == NULL)
        return -1;
    ch_diag_fields f = {
        .tcp = r->proto == 6,
        .v6 = r->family != 2,
        .src = r->local,
        .dst = r->remote,
        .sport = r->local_port,
        .dport = r->remote_port,
        .bound_if = r->bound_if,
        .state = r->state,
        .cookie = r->cookie,
        .inode = r->inode,
        .uid = r->uid,
    };
    ch_diag_row(&f, row);
    if (f.tcp && r->timer_ms < *soonest)
        *soonest = r->timer_ms;
    if (out->consume != NULL && out->consume(out->consume_ctx, row)) {
        out->count--; /* taken care of: the slot serves the next row */
        out->consumed++;
    }
    return 0;
}

/* A take's records as they come (ch_bpf_iter_read). */
typedef struct {
    ch_sample *out;
    uint32_t *soonest;
} take;

/* Takes n whole records, their identities prefetched AHEAD at a time.
 * Returns 0, or 1 when out of memory. */
static int take_records(void *ctx, const void *records, size_t n)
{
    take *t = ctx;
    const struct ch_sock_record *r = records;
    for (size_t at = 0; at < n; at += AHEAD) {
        size_t k = n - at < AHEAD ? n - at : AHEAD;
        if (t->out->prefetch != NULL && t->out->consume != NULL) {
            uint64_t ids[AHEAD];
            for (size_t i = 0; i < k; i++)
                ids[i] = r[at + i].cookie;
            t->out->prefetch(t->out->consume_ctx, ids, k);
        }
        for (size_t i = 0; i < k; i++)
            if (take_record(&r[at + i], t->out, t->soonest) != 0)
                return 1;
    }
    return 0;
}

int ch_socks_iter_take(ch_socks_iter *it, bool tcp, ch_sample *out, uint32_t *soonest_timer_ms, char *err, size_t errn)
{
    take t = {out, soonest_timer_ms};
    int rc = ch_bpf_iter_read(it->links[tcp ? LINK_TCP : LINK_UDP], it->buf, sizeof it->buf, sizeof it->buf[0],
                              take_records, &t);
    if (rc == 0)
        return 0;
    if (rc > 0)
        snprintf(err, errn, "out of memory for socket rows");
    else
        snprintf(err, errn, "BPF socket iterator: %s", strerror(errno));
    return -1;
}
