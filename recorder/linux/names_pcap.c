/*
 * The DNS answers this machine receives, read with libpcap (names.h): the
 * "any" device (every interface, loopback included), a kernel filter that
 * passes only packets from port 53 that arrive (so a loopback exchange, seen
 * leaving and arriving, is read once), TPACKET_V3 blocks of the kernel's
 * ring. Immediate mode is left off on purpose: libpcap then falls back to
 * TPACKET_V2 and wakes the thread for every packet, where V3 hands over a
 * block per CAPTURE_TIMEOUT_MS; the answers are needed by the next sample,
 * not sooner (a flood costs a wakeup per block, not per packet).
 *
 * A thread of connhist-record reads the ring, has names_decode.c turn each
 * packet into facts and adds them to a bounded queue, counting identical
 * facts once; the recorder takes the queue at each sample (a swap of two
 * buffers under a lock) and its store writes them in the sample's
 * transaction. The thread never touches the database. What does not fit
 * is dropped and counted, with what the kernel dropped.
 */
#define _GNU_SOURCE
#include "names.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "answer_list.h"
#include "caps.h"
#include "names_decode.h"

#define QUEUE_CAP 4096             /* distinct answers kept between two samples, at most */
#define SLOTS (QUEUE_CAP * 2)      /* the index of the queue: open addressing, half full at most */
#define CAPTURE_TIMEOUT_MS 50      /* a block of the ring is handed over at most this late */
/* The kernel's ring, resident all the time the recorder runs: libpcap
 * cuts it into blocks of 256 KiB (its largest snapshot length, whatever
 * the one asked), each handed over when full or CAPTURE_TIMEOUT_MS after
 * it began filling, so 8 blocks hold about 8,000 answers, or 0.4 s of a
 * thread that does not get to run while answers trickle in, before the
 * kernel drops packets (counted). 4 MiB was a sixth of the recorder's
 * memory at 100,000 sockets. */
#define RING_BYTES (2 * 1024 * 1024)
#define SNAPLEN 65535
#define FILTER "(udp or tcp) and src port 53 and inbound"
#define CAP_NET_RAW_BIT 13

struct ch_names {
    pcap_t *pcap;
    int link;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;      /* guards everything below */
    ch_answer_list filling, taken; /* grown as a burst fills them (answer_list.h) */
    uint32_t slots[SLOTS];     /* index + 1 into filling; 0: empty */
    int64_t queue_drops;       /* answers that found the queue full (or no memory) */
    int64_t kernel_drops;      /* packets the ring had no room for (pcap_stats) */
    char failed[PCAP_ERRBUF_SIZE + 64];
};

const char *ch_names_build(void)
{
    static char line[128];
    snprintf(line, sizeof line, "DNS names: libpcap capture, ldns %s (%s)", ldns_version(), pcap_lib_version());
    return line;
}

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* The hash of what makes two facts the same answer (not when, not the
 * client's port). */
static uint64_t answer_hash(const ch_dns_answer *a)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = mix(h, &a->type, sizeof a->type);
    h = mix(h, &a->addr, sizeof a->addr);
    h = mix(h, &a->resolver, sizeof a->resolver);
    h = mix(h, &a->client, sizeof a->client);
    h = mix(h, a->qname, strlen(a->qname));
    h = mix(h, a->rname, strlen(a->rname));
    return mix(h, a->target, strlen(a->target));
}

static bool same_answer(const ch_dns_answer *x, const ch_dns_answer *y)
{
    return x->type == y->type && memcmp(&x->addr, &y->addr, sizeof x->addr) == 0 &&
           memcmp(&x->resolver, &y->resolver, sizeof x->resolver) == 0 &&
           memcmp(&x->client, &y->client, sizeof x->client) == 0 && strcmp(x->qname, y->qname) == 0 &&
           strcmp(x->rname, y->rname) == 0 && strcmp(x->target, y->target) == 0;
}

/* Adds a fact to the queue (the thread, under the lock): a repeat of one
 * already there is counted in it, a new one takes a place or is dropped. */
static void queue_answer(void *ctx, const ch_dns_answer *a)
{
    ch_names *n = ctx;
    size_t j = answer_hash(a) & (SLOTS - 1);
    for (; n->slots[j] != 0; j = (j + 1) & (SLOTS - 1)) {
        ch_dns_answer *had = &n->filling.items[n->slots[j] - 1];
        if (same_answer(had, a)) {
            had->count++;
            had->last_at = a->at;
            if (a->ttl > had->ttl) /* a cache counts down: the longest is the freshest */
                had->ttl = a->ttl;
            return;
        }
    }
    if (ch_answer_list_room(&n->filling, 1, QUEUE_CAP) == 0) {
        n->queue_drops++;
        return;
    }
    n->filling.items[n->filling.count] = *a;
    n->slots[j] = (uint32_t)++n->filling.count;
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    ch_names *n = (ch_names *)user;
    int64_t at = (int64_t)h->ts.tv_sec * 1000 + h->ts.tv_usec / 1000;
    pthread_mutex_lock(&n->lock);
    ch_dns_decode_packet(bytes, h->caplen, n->link, at, queue_answer, n);
    pthread_mutex_unlock(&n->lock);
}

/* The thread: reads blocks until the recorder breaks the loop, or fails. */
static void *capture(void *arg)
{
    ch_names *n = arg;
    for (;;) {
        int rc = pcap_dispatch(n->pcap, -1, on_packet, (u_char *)n);
        struct pcap_stat ps;
        if (pcap_stats(n->pcap, &ps) == 0) {
            pthread_mutex_lock(&n->lock);
            n->kernel_drops = ps.ps_drop;
            pthread_mutex_unlock(&n->lock);
        }
        if (rc == PCAP_ERROR_BREAK)
            return NULL;
        if (rc < 0) {
            pthread_mutex_lock(&n->lock);
            snprintf(n->failed, sizeof n->failed, "the DNS capture failed: %s", pcap_geterr(n->pcap));
            pthread_mutex_unlock(&n->lock);
            return NULL;
        }
    }
}

/* Creates, activates and filters the capture. 0, or -1 with why. */
static int activate(ch_names *n, char *why, size_t whyn)
{
    char err[PCAP_ERRBUF_SIZE] = "";
    n->pcap = pcap_create("any", err);
    if (n->pcap == NULL) {
        snprintf(why, whyn, "cannot open the capture: %s", err);
        return -1;
    }
    pcap_set_snaplen(n->pcap, SNAPLEN);
    pcap_set_promisc(n->pcap, 0);
    pcap_set_timeout(n->pcap, CAPTURE_TIMEOUT_MS);
    pcap_set_buffer_size(n->pcap, RING_BYTES);
    int rc = pcap_activate(n->pcap);
    if (rc == PCAP_ERROR_PERM_DENIED) {
        snprintf(why, whyn, "no permission to capture packets (needs root or CAP_NET_RAW): %s", pcap_geterr(n->pcap));
        return -1;
    }
    if (rc < 0) {
        snprintf(why, whyn, "cannot start the capture: %s (%s)", pcap_statustostr(rc), pcap_geterr(n->pcap));
        return -1;
    }
    pcap_set_datalink(n->pcap, DLT_LINUX_SLL2); /* else it stays SLL: both are read */
    n->link = pcap_datalink(n->pcap);
    struct bpf_program prog;
    if (pcap_compile(n->pcap, &prog, FILTER, 1, PCAP_NETMASK_UNKNOWN) != 0 || pcap_setfilter(n->pcap, &prog) != 0) {
        snprintf(why, whyn, "cannot filter the capture to DNS: %s", pcap_geterr(n->pcap));
        return -1;
    }
    pcap_freecode(&prog);
    return 0;
}

ch_names *ch_names_open(char *why, size_t whyn)
{
    if (geteuid() != 0 && !ch_has_capability(CAP_NET_RAW_BIT)) {
        snprintf(why, whyn, "not running as root (capturing DNS answers needs CAP_NET_RAW)");
        return NULL;
    }
    ch_names *n = calloc(1, sizeof *n);
    if (n == NULL) {
        snprintf(why, whyn, "out of memory");
        ch_names_close(n);
        return NULL;
    }
    pthread_mutex_init(&n->lock, NULL);
    if (activate(n, why, whyn) != 0) {
        ch_names_close(n);
        return NULL;
    }
    /* The thread takes no signal: a stop request (SIGTERM, SIGINT) must cut
     * the main loop's wait short, which it does only in the thread that
     * handles it; delivered here, a recorder at --interval 1h went on
     * waiting for the hour. The thread inherits the mask it is created with. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&n->thread, NULL, capture, n);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(why, whyn, "cannot start the capture thread: %s", strerror(rc));
        ch_names_close(n);
        return NULL;
    }
    n->running = true;
    return n;
}

void ch_names_close(ch_names *n)
{
    if (n == NULL)
        return;
    if (n->running) {
        pcap_breakloop(n->pcap);
        pthread_join(n->thread, NULL);
        pthread_mutex_destroy(&n->lock);
    }
    if (n->pcap != NULL)
        pcap_close(n->pcap);
    ch_answer_list_free(&n->filling);
    ch_answer_list_free(&n->taken);
    free(n);
}

void ch_names_settle(ch_names *n)
{
    (void)n;
    /* Two block timeouts: the block in progress is handed over, and the
     * thread has read it. A signal (the stop itself) does not cut it short. */
    struct timespec left = {0, 2 * CAPTURE_TIMEOUT_MS * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

const ch_dns_answer *ch_names_take(ch_names *n, size_t *count)
{
    pthread_mutex_lock(&n->lock);
    /* The list taken last time is done with: it fills next. */
    ch_answer_list full = n->filling;
    n->filling = n->taken;
    ch_answer_list_empty(&n->filling);
    n->taken = full;
    memset(n->slots, 0, sizeof n->slots);
    pthread_mutex_unlock(&n->lock);
    *count = n->taken.count;
    return n->taken.items;
}

int64_t ch_names_dropped(const ch_names *n)
{
    if (n == NULL)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&n->lock);
    int64_t d = n->queue_drops + n->kernel_drops;
    pthread_mutex_unlock((pthread_mutex_t *)&n->lock);
    return d;
}

const char *ch_names_failed(const ch_names *n)
{
    if (n == NULL)
        return NULL;
    pthread_mutex_lock((pthread_mutex_t *)&n->lock);
    const char *f = n->failed[0] != '\0' ? n->failed : NULL;
    pthread_mutex_unlock((pthread_mutex_t *)&n->lock);
    return f;
}
