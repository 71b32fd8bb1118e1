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
 */
#include "owners.h"

#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "owners.skel.h"
#include "owners_decode.h"

#define RING_BYTES (256 * 1024)          /* about 5,000 records */
#define WAKE_BYTES (RING_BYTES / 4)      /* woken before a sample when this much waits */
#define KERNEL_BTF "/sys/kernel/btf/vmlinux"
#define CAP_SYS_ADMIN_BIT 21
#define CAP_PERFMON_BIT 38
#define CAP_BPF_BIT 39

struct ch_owner_events {
    struct owners_bpf *skel;
    struct ring_buffer *ring;
    ch_owner_fact_fn fn;
    void *ctx;
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

/* The first warning libbpf gave while loading, one line, for the reason. */
static char libbpf_said[200];

static int keep_first_warning(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    if (level != LIBBPF_WARN || libbpf_said[0] != '\0')
        return 0;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    const char *text = strncmp(line, "libbpf: ", 8) == 0 ? line + 8 : line;
    size_t n = strcspn(text, "\n");
    snprintf(libbpf_said, sizeof libbpf_said, "%.*s", (int)n, text);
    return 0;
}

/* True when the effective capability set has that capability. */
static bool has_capability(int bit)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (f == NULL)
        return false;
    char line[256];
    unsigned long long caps = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "CapEff: %llx", &caps) == 1)
            break;
    fclose(f);
    return (caps >> bit) & 1;
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
    bool capable = has_capability(CAP_SYS_ADMIN_BIT) ||
                   (has_capability(CAP_BPF_BIT) && has_capability(CAP_PERFMON_BIT));
    if (locked_down())
        snprintf(why, whyn, "the kernel is locked down (confidentiality): BPF may not read kernel memory");
    else if (denied && geteuid() != 0)
        snprintf(why, whyn, "not running as root (loading BPF needs CAP_BPF and CAP_PERFMON)");
    else if (denied && !capable)
        snprintf(why, whyn, "running without CAP_BPF and CAP_PERFMON, which loading BPF needs");
    else if (libbpf_said[0] != '\0')
        snprintf(why, whyn, "the kernel refused the BPF program: %s (%s)", strerror(-err), libbpf_said);
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
    if (ch_owner_decode(data, size, e->hz, &fact) == 0) {
        e->fn(e->ctx, &fact);
        e->delivered++;
    }
    return 0;
}

/* Loads and attaches the program. Returns 0, or a negative errno. */
static int load(ch_owner_events *e)
{
    e->skel = owners_bpf__open();
    if (e->skel == NULL)
        return -errno;
    e->skel->rodata->netns_inum = own_netns();
    e->skel->rodata->wake_bytes = WAKE_BYTES;
    int err = bpf_map__set_max_entries(e->skel->maps.records, RING_BYTES);
    if (err == 0)
        err = owners_bpf__load(e->skel);
    if (err == 0)
        err = owners_bpf__attach(e->skel);
    if (err == 0) {
        e->ring = ring_buffer__new(bpf_map__fd(e->skel->maps.records), on_record, e, NULL);
        err = e->ring == NULL ? -errno : 0;
    }
    return err < 0 ? err : err > 0 ? -err : 0;
}

ch_owner_events *ch_owner_events_open(ch_owner_fact_fn fn, void *ctx, char *why, size_t whyn)
{
    if (access(KERNEL_BTF, R_OK) != 0) {
        snprintf(why, whyn, "the kernel has no BTF type information (%s: %s)", KERNEL_BTF, strerror(errno));
        return NULL;
    }
    if (geteuid() != 0 && !has_capability(CAP_SYS_ADMIN_BIT) &&
        !(has_capability(CAP_BPF_BIT) && has_capability(CAP_PERFMON_BIT))) {
        explain(-EPERM, why, whyn); /* the kernel would refuse: not asked */
        return NULL;
    }
    ch_owner_events *e = calloc(1, sizeof *e);
    if (e == NULL) {
        snprintf(why, whyn, "out of memory");
        return NULL;
    }
    e->fn = fn;
    e->ctx = ctx;
    e->hz = sysconf(_SC_CLK_TCK);
    if (e->hz <= 0)
        e->hz = 100; /* USER_HZ on every Linux architecture */
    libbpf_said[0] = '\0';
    libbpf_set_print(keep_first_warning);
    /* Fitting the program to the kernel reads its whole BTF (5 MB on 6.18)
     * into large blocks and frees them. glibc would then raise its mmap
     * threshold to their size for good, and a sample's growing rows (11 MB
     * at 100,000 sockets) would be copied on the heap instead of moved by
     * mremap: 3 to 5 MB more peak RSS. The threshold is fixed at glibc's
     * default first, and what the load freed is given back after. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    int err = load(e);
    malloc_trim(0);
    if (err != 0) {
        explain(err, why, whyn);
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
    owners_bpf__destroy(e->skel);
    free(e);
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
    if (e == NULL)
        return 0;
    return (int64_t)__atomic_load_n(&e->skel->bss->dropped, __ATOMIC_RELAXED);
}
