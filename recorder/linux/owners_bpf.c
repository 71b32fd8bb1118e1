/*
 * The user half of the owner events on Linux (owners.h): loads the BPF
 * program of owners.bpf.c through its generated skeleton, points it at the
 * recorder's network namespace, and reads its ring buffer, turning each
 * record into a fact (owners_decode.c).
 *
 * The program is compiled once, against field names only (CO-RE, see
 * owners_kernel.h); libbpf fits it to the running kernel from the
 * kernel's BTF when it loads it. Whatever stops it (not root, no BTF,
 * lockdown, a kernel without the tracepoints, a verifier refusal) is said
 * in one line, and the recorder goes on without it. libbpf's own messages
 * are kept from stderr: the first warning becomes part of that line.
 *
 * The loading is done by a short-lived child process (load_in_child), which
 * hands the descriptors over, so the memory it takes is never the
 * recorder's; the recorder holds them, and the program is detached when it
 * closes them or exits.
 */
#define _GNU_SOURCE
#include "owners.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_child.h"
#include "caps.h"
#include "owners.skel.h"
#include "owners_decode.h"

#define RING_BYTES (256 * 1024)          /* about 5,000 records */
#define WAKE_BYTES (RING_BYTES / 4)      /* woken before a sample when this much waits */
#define KERNEL_BTF "/sys/kernel/btf/vmlinux"
#define CAP_SYS_ADMIN_BIT 21
#define CAP_PERFMON_BIT 38
#define CAP_BPF_BIT 39

/* The descriptors the loading child hands over: they keep the program
 * attached and its maps alive. */
enum { FD_RING, FD_BSS, FD_LINK_STATE, FD_LINK_SYNACK, FD_LINK_SEND, FD_LINK_RECV, NFDS };

struct ch_owner_events {
    int fds[NFDS];       /* -1: not held */
    struct ring_buffer *ring;
    ch_owner_fact_fn fn;
    void *ctx;
    ch_close_fact_fn close_fn; /* NULL: close facts are dropped */
    void *close_ctx;
    long hz;
    size_t delivered; /* by the read in progress */
};

const char *ch_owner_events_build(void)
{
    static char line[64];
    snprintf(line, sizeof line, "socket owner events: BPF (libbpf %d.%d)", LIBBPF_MAJOR_VERSION,
             LIBBPF_MINOR_VERSION);
    return line;
}

/* True when the kernel is locked down against reading its memory. */
static bool locked_down(void)
{
    char buf[128] = "";
    FILE *f = fopen("/sys/kernel/security/lockdown", "re");
    if (f == NULL)
        return false;
    bool yes = fgets(buf, sizeof buf, f) != NULL && strstr(buf, "[confidentiality]") != NULL;
    fclose(f);
    return yes;
}

/* Why loading failed with err (a negative errno), in one line. */
static void explain(int err, char *why, size_t whyn)
{
    bool denied = err == -EPERM || err == -EACCES;
    bool capable = ch_has_capability(CAP_SYS_ADMIN_BIT) ||
                   (ch_has_capability(CAP_BPF_BIT) && ch_has_capability(CAP_PERFMON_BIT));
    if (locked_down())
        snprintf(why, whyn, "the kernel is locked down (confidentiality): BPF may not read kernel memory");
    else if (denied && geteuid() != 0)
        snprintf(why, whyn, "not running as root (loading BPF needs CAP_BPF and CAP_PERFMON)");
    else if (denied && !capable)
        snprintf(why, whyn, "running without CAP_BPF and CAP_PERFMON, which loading BPF needs");
    else if (ch_bpf_libbpf_said()[0] != '\0')
        snprintf(why, whyn, "the kernel refused the BPF program: %s (%s)", strerror(-err), ch_bpf_libbpf_said());
    else
        snprintf(why, whyn, "the kernel refused the BPF program: %s", strerror(-err));
}

/* The recorder's network namespace: sockets of others are not sampled,
 * so the kernel need not report them. 0 when unknown (all are). */
static unsigned int own_netns(void)
{
    struct stat st;
    return stat("/proc/self/ns/net", &st) == 0 ? (unsigned int)st.st_ino : 0;
}

static int on_record(void *ctx, void *data, size_t size)
{
    ch_owner_events *e = ctx;
    ch_owner_fact fact;
    ch_close_fact closed;
    if (ch_owner_decode(data, size, e->hz, &fact) == 0) {
        e->fn(e->ctx, &fact);
        e->delivered++;
    } else if (e->close_fn != NULL && ch_close_decode(data, size, &closed) == 0) {
        e->close_fn(e->close_ctx, &closed);
        e->delivered++;
    }
    return 0;
}

/* Loads and attaches the program. Returns 0, or a negative errno. */
static int load(struct owners_bpf **skel)
{
    *skel = owners_bpf__open();
    if (*skel == NULL)
        return -errno;
    (*skel)->rodata->netns_inum = own_netns();
    (*skel)->rodata->wake_bytes = WAKE_BYTES;
    (*skel)->rodata->close_limit = RING_BYTES / 2;
    int err = bpf_map__set_max_entries((*skel)->maps.records, RING_BYTES);
    if (err == 0)
        err = owners_bpf__load(*skel);
    if (err == 0)
        err = owners_bpf__attach(*skel);
    return err < 0 ? err : err > 0 ? -err : 0;
}

/*
 * The child's part (ch_bpf_load_in_child): fits the program to the kernel,
 * attaches it, and names the descriptors of its ring buffer, its counters
 * and its attachments, all the recorder needs. Fitting the program reads
 * the kernel's whole BTF (5 MB on 6.18; 13 MB of peak memory): in the
 * child, the recorder's own peak memory stays what it was.
 */
static int load_fds(int *fds, size_t n, char *why, size_t whyn)
{
    (void)n;
    struct owners_bpf *skel = NULL;
    int err = load(&skel);
    if (err != 0) {
        explain(err, why, whyn);
        return -1;
    }
    int got[NFDS] = {bpf_map__fd(skel->maps.records),        bpf_map__fd(skel->maps.bss),
                     bpf_link__fd(skel->links.on_tcp_state), bpf_link__fd(skel->links.on_synack_again),
                     bpf_link__fd(skel->links.on_send),      bpf_link__fd(skel->links.on_recv)};
    memcpy(fds, got, sizeof got);
    return 0;
}

ch_owner_events *ch_owner_events_open(ch_owner_fact_fn fn, void *ctx, char *why, size_t whyn)
{
    if (access(KERNEL_BTF, R_OK) != 0) {
        snprintf(why, whyn, "the kernel has no BTF type information (%s: %s)", KERNEL_BTF, strerror(errno));
        return NULL;
    }
    if (geteuid() != 0 && !ch_has_capability(CAP_SYS_ADMIN_BIT) &&
        !(ch_has_capability(CAP_BPF_BIT) && ch_has_capability(CAP_PERFMON_BIT))) {
        explain(-EPERM, why, whyn); /* the kernel would refuse: not asked */
        return NULL;
    }
    ch_owner_events *e = calloc(1, sizeof *e);
    if (e == NULL) {
        snprintf(why, whyn, "out of memory");
        return NULL;
    }
    for (int i = 0; i < NFDS; i++)
        e->fds[i] = -1;
    e->fn = fn;
    e->ctx = ctx;
    e->hz = sysconf(_SC_CLK_TCK);
    if (e->hz <= 0)
        e->hz = 100; /* USER_HZ on every Linux architecture */
    if (ch_bpf_load_in_child(load_fds, e->fds, NFDS, why, whyn) != 0) {
        ch_owner_events_close(e);
        return NULL;
    }
    e->ring = ring_buffer__new(e->fds[FD_RING], on_record, e, NULL);
    if (e->ring == NULL) {
        snprintf(why, whyn, "cannot map the BPF ring buffer: %s", strerror(errno));
        ch_owner_events_close(e);
        return NULL;
    }
    return e;
}

void ch_owner_events_close(ch_owner_events *e)
{
    if (e == NULL)
        return;
    ring_buffer__free(e->ring);
    for (int i = 0; i < NFDS; i++) /* the last reference: detached and freed */
        if (e->fds[i] >= 0)
            close(e->fds[i]);
    free(e);
}

void ch_owner_events_on_close(ch_owner_events *e, ch_close_fact_fn fn, void *ctx)
{
    if (e == NULL)
        return;
    e->close_fn = fn;
    e->close_ctx = ctx;
}

int ch_owner_events_handle(const ch_owner_events *e)
{
    return e != NULL && e->ring != NULL ? ring_buffer__epoll_fd(e->ring) : -1;
}

size_t ch_owner_events_read(ch_owner_events *e)
{
    if (e == NULL)
        return 0;
    e->delivered = 0;
    ring_buffer__consume(e->ring);
    return e->delivered;
}

int64_t ch_owner_events_lost(const ch_owner_events *e)
{
    struct owners_bpf__bss bss;
    int zero = 0;
    if (e == NULL || bpf_map_lookup_elem(e->fds[FD_BSS], &zero, &bss) != 0)
        return 0;
    return (int64_t)bss.dropped;
}

bool ch_owner_events_tcp_moves(const ch_owner_events *e, uint64_t *moves)
{
    struct owners_bpf__bss bss;
    int zero = 0;
    if (e == NULL || bpf_map_lookup_elem(e->fds[FD_BSS], &zero, &bss) != 0)
        return false;
    *moves = bss.tcp_moves;
    return true;
}
