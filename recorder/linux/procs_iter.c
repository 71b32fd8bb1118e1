/*
 * The socket holder pass on Linux (procs_iter.h): the BPF iterator of
 * procs_iter.bpf.c, loaded through its generated skeleton, walks every
 * open file of every process in the kernel and writes a record for each;
 * this file reads the records and hands them over a process at a time.
 * One read of the iterator replaces a readlink (and its dentry look-ups)
 * per descriptor of the machine: at 100,000 sockets, most of the first
 * tick's time in the kernel.
 *
 * As the owner events (owners_bpf.c) do, a short-lived child process loads
 * the program, so the 13 MB the kernel's BTF takes to read are never the
 * recorder's; it hands over the iterator's link, which is all a pass
 * needs (bpf_iter_create, then read). The program is linked with the
 * socket iterators' (iters.h), which load it with theirs where they run;
 * not with owners.bpf.c's: it is wanted where the owner events are not
 * (with --once, --events off, the procfs sampler), and either can be
 * refused without the other.
 */
#define _GNU_SOURCE
#include "procs_iter.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "bpf_child.h"
#include "iters.h"
#include "owners_decode.h"
#include "procs_iter_record.h"

#define PROC_PID_INIT_INO 0xEFFFFFFCU /* the initial pid namespace's inode (include/linux/proc_ns.h) */
#define READ_RECORDS 1024             /* records asked for by one read() */

struct ch_sockfiles {
    int link; /* the iterator's link: every pass starts from it */
    long hz;
    /* The process being gathered, and its sockets so far. */
    ch_task_sockets task;
    int32_t *fds;
    uint64_t *inodes;
    size_t cap;
    struct ch_file_record buf[READ_RECORDS];
};

bool ch_sockfiles_can_run(char *why, size_t whyn)
{
    const char *env = getenv("CONNHIST_PROCS_SOURCE");
    struct stat st;
    if (env != NULL && strcmp(env, "proc") == 0)
        snprintf(why, whyn, "CONNHIST_PROCS_SOURCE=proc");
    else if (!ch_bpf_may_load(why, whyn))
        return false;
    else if (stat("/proc/self/ns/pid", &st) != 0 || st.st_ino != PROC_PID_INIT_INO)
        snprintf(why, whyn, "not in the initial pid namespace (the kernel names processes by their pids there)");
    else
        return true;
    return false;
}

ch_sockfiles *ch_sockfiles_open(char *why, size_t whyn)
{
    if (!ch_sockfiles_can_run(why, whyn))
        return NULL;
    ch_sockfiles *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(why, whyn, "out of memory");
        return NULL;
    }
    s->hz = sysconf(_SC_CLK_TCK);
    if (s->hz <= 0)
        s->hz = 100; /* USER_HZ on every Linux architecture */
    s->link = ch_iters_take(CH_ITER_FILES); /* loaded with the sampler's */
    if (s->link < 0 && ch_iters_load(CH_ITER_BIT(CH_ITER_FILES), why, whyn) == 0)
        s->link = ch_iters_take(CH_ITER_FILES);
    if (s->link < 0) {
        free(s);
        return NULL;
    }
    return s;
}

void ch_sockfiles_close(ch_sockfiles *s)
{
    if (s == NULL)
        return;
    close(s->link);
    free(s->fds);
    free(s->inodes);
    free(s);
}

/* Adds a socket to the process being gathered. Returns 0, or -1 when out
 * of memory. */
static int add_socket(ch_sockfiles *s, int32_t fd, uint64_t inode)
{
    if (s->task.nsockets == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        int32_t *fds = realloc(s->fds, cap * sizeof *fds);
        if (fds != NULL)
            s->fds = fds;
        uint64_t *inodes = fds != NULL ? realloc(s->inodes, cap * sizeof *inodes) : NULL;
        if (inodes == NULL)
            return -1;
        s->inodes = inodes;
        s->cap = cap;
    }
    s->fds[s->task.nsockets] = fd;
    s->inodes[s->task.nsockets++] = inode;
    return 0;
}

/* Hands the process gathered so far to fn. Returns what fn returned. */
static int give(ch_sockfiles *s, ch_task_sockets_fn fn, void *ctx)
{
    if (s->task.pid == 0)
        return 0;
    s->task.fds = s->fds;
    s->task.inodes = s->inodes;
    int rc = fn(ctx, &s->task);
    s->task = (ch_task_sockets){0};
    return rc;
}

/* Takes one record in. Returns 0, 1 when fn stopped the pass, -1 when out
 * of memory. */
static int take(ch_sockfiles *s, const struct ch_file_record *r, ch_task_sockets_fn fn, void *ctx)
{
    if (r->tgid != s->task.pid) {
        if (give(s, fn, ctx) != 0)
            return 1;
        s->task.pid = r->tgid;
        s->task.start_ticks = ch_ns_to_clock_ticks(r->start_ns, s->hz);
    }
    s->task.nfd++;
    return r->inode != 0 ? add_socket(s, (int32_t)r->fd, r->inode) : 0;
}

/* A pass's records as they come (ch_bpf_iter_read). */
typedef struct {
    ch_sockfiles *s;
    ch_task_sockets_fn fn;
    void *ctx;
} pass;

static int take_records(void *ctx, const void *records, size_t n)
{
    pass *p = ctx;
    const struct ch_file_record *r = records;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = take(p->s, &r[i], p->fn, p->ctx);
    return rc;
}

int ch_sockfiles_read(ch_sockfiles *s, ch_task_sockets_fn fn, void *ctx)
{
    if (s == NULL || fn == NULL)
        return -1;
    s->task = (ch_task_sockets){0};
    pass p = {s, fn, ctx};
    int rc = ch_bpf_iter_read(s->link, s->buf, sizeof s->buf, sizeof s->buf[0], take_records, &p);
    if (rc == 0)
        rc = give(s, fn, ctx) != 0;
    s->task = (ch_task_sockets){0};
    /* Given back before the first sample is written, the recorder's
     * peak: a process may hold 10,000 sockets. */
    free(s->fds);
    free(s->inodes);
    s->fds = NULL;
    s->inodes = NULL;
    s->cap = 0;
    return rc;
}
