/* The BPF iterators' one object, loaded in a child (see iters.h). */
#define _GNU_SOURCE
#include "iters.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "bpf_child.h"
#include "iters.skel.h"

/* The links loaded and not taken yet; -1 where none. */
static int loaded[CH_NITERS] = {-1, -1, -1};

/* What the loading child is to load: set before it forks. */
static unsigned loading;

static struct bpf_program *program(struct iters_bpf *skel, ch_iter which)
{
    switch (which) {
    case CH_ITER_FILES: return skel->progs.socket_files;
    case CH_ITER_TCP: return skel->progs.socks_tcp;
    default: return skel->progs.socks_udp;
    }
}

/* The child's part (ch_bpf_load_in_child): loads the programs asked for,
 * attaches their iterators and hands over the links in ch_iter's order. */
static int load(int *fds, size_t n, char *why, size_t whyn)
{
    (void)n;
    struct iters_bpf *skel = iters_bpf__open();
    for (int i = 0; skel != NULL && i < CH_NITERS; i++)
        bpf_program__set_autoload(program(skel, (ch_iter)i), (loading & CH_ITER_BIT(i)) != 0);
    int rc = skel != NULL ? iters_bpf__load(skel) : -1;
    size_t k = 0;
    for (int i = 0; rc == 0 && i < CH_NITERS; i++) {
        if (!(loading & CH_ITER_BIT(i)))
            continue;
        struct bpf_link *link = bpf_program__attach_iter(program(skel, (ch_iter)i), NULL);
        if (link == NULL)
            rc = -1;
        else
            fds[k++] = bpf_link__fd(link);
    }
    if (skel == NULL || rc != 0) {
        const char *said = ch_bpf_libbpf_said();
        snprintf(why, whyn, "the kernel refused the BPF iterator%s: %s%s%s%s",
                 loading == CH_ITER_BIT(CH_ITER_FILES) ? "" : "s", strerror(errno), said[0] ? " (" : "", said,
                 said[0] ? ")" : "");
        return -1;
    }
    return 0; /* the child exits: what it loaded lives on in the links */
}

int ch_iters_load(unsigned want, char *why, size_t whyn)
{
    int fds[CH_NITERS];
    size_t n = 0;
    for (int i = 0; i < CH_NITERS; i++)
        n += (want & CH_ITER_BIT(i)) != 0;
    loading = want;
    if (ch_bpf_load_in_child(load, fds, n, why, whyn) != 0)
        return -1;
    size_t k = 0;
    for (int i = 0; i < CH_NITERS; i++) {
        if (!(want & CH_ITER_BIT(i)))
            continue;
        if (loaded[i] >= 0)
            close(loaded[i]);
        loaded[i] = fds[k++];
    }
    return 0;
}

int ch_iters_take(ch_iter which)
{
    if ((unsigned)which >= CH_NITERS)
        return -1;
    int link = loaded[which];
    loaded[which] = -1;
    return link;
}
