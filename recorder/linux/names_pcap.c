/*
 * The DNS answers this machine receives (names.h), read from a packet
 * socket of the kernel's (AF_PACKET, SOCK_DGRAM: the packet from its IP
 * header on, whatever the link) bound to every interface, loopback
 * included. The kernel filters it to packets from port 53 with a program
 * libpcap compiles, and leaves out what the machine sends
 * (PACKET_IGNORE_OUTGOING, and the packet type checked again here), so a
 * loopback exchange, seen leaving and arriving, is read once.
 *
 * Why not libpcap's capture: on Linux it reads a ring the kernel maps into
 * the process, 2 MiB resident all the time the recorder runs (a ninth of
 * it at 100,000 sockets), and its blocks are handed over every 50 ms full
 * or not, so a thread kept from running for a few blocks' time lost
 * answers even when they only trickled in. The socket's queue costs memory
 * only while packets wait in it, and keeps them until the bound of
 * QUEUE_BYTES, however long the thread waits.
 *
 * A thread of connhist-record drains the queue (recvmmsg, BATCH packets a
 * call), then lets it fill for BATCH_PAUSE_MS before the next wait, so a
 * flood costs a wakeup per pause, not per packet; names_decode.c turns each
 * packet into facts, added to a bounded queue that counts identical facts
 * once; the recorder takes the queue at each sample (a swap of two buffers
 * under a lock) and its store writes them in the sample's transaction. The
 * thread never touches the database. What does not fit is dropped and
 * counted, with what the kernel dropped (PACKET_STATISTICS).
 */
#define _GNU_SOURCE
#include "names.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "answer_list.h"
#include "caps.h"
#include "names_decode.h"

#define QUEUE_CAP 4096             /* distinct answers kept between two samples, at most */
#define SLOTS (QUEUE_CAP * 2)      /* the index of the queue: open addressing, half full at most */
#define BATCH 16                   /* packets read by one recvmmsg */
#define PACKET_MAX 65535           /* bytes kept of a packet: the largest IP packet */
#define BATCH_PAUSE_MS 50          /* after a drain, the queue fills this long before the next */
/* The bound of the socket's queue (the kernel counts each packet at its
 * buffer's size, about 1 KiB for a small answer, and doubles what is
 * asked): 8 MiB of packets waiting, about 8,000 answers, 0.4 s of a
 * 20,000/s flood while the thread does not run. Only root (CAP_NET_ADMIN)
 * may ask beyond net.core.rmem_max; others get that. */
#define QUEUE_BYTES (4 * 1024 * 1024)
#define FILTER "(udp or tcp) and src port 53"
#define CAP_NET_RAW_BIT 13
#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23 /* linux/if_packet.h since Linux 4.20 */
#endif

struct ch_names {
    int fd;      /* the packet socket */
    int stop[2]; /* a pipe: written to stop the thread */
    pthread_t thread;
    bool running;
    uint8_t *buffers;          /* BATCH packets of PACKET_MAX bytes: pages touched as packets fill them */
    pthread_mutex_t lock;      /* guards everything below */
    ch_answer_list filling, taken; /* grown as a burst fills them (answer_list.h) */
    uint32_t slots[SLOTS];     /* index + 1 into filling; 0: empty */
    int64_t queue_drops;       /* answers that found the queue full (or no memory) */
    int64_t kernel_drops;      /* packets the socket's queue had no room for */
    char failed[160];
};

const char *ch_names_build(void)
{
    static char line[128];
    /* "libpcap version 1.10.3 (with TPACKET_V3)": its capture is not used, only the number says something */
    const char *v = pcap_lib_version(), *number = strstr(v, "version ");
    int len = number != NULL ? (int)strcspn(number += 8, " ") : (int)strlen(number = v);
    snprintf(line, sizeof line, "DNS names: packet socket, filter by libpcap %.*s, ldns %s", len, number,
             ldns_version());
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

/* When the kernel received a packet, ms UTC, from its SCM_TIMESTAMPNS;
 * the time it is read when the message carries none. */
static int64_t received_at(struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        }
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Reads what waits in the socket's queue, a batch at a time, until it is
 * empty. 0, or -1 when the socket failed (why in n->failed). */
static int drain(ch_names *n)
{
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_ll from[BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control[BATCH];
    memset(control, 0, sizeof control); /* only written by the kernel; cleared for cppcheck */
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){n->buffers + (size_t)i * PACKET_MAX, PACKET_MAX};
            msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                              .msg_namelen = sizeof from[i],
                                              .msg_iov = &iov[i],
                                              .msg_iovlen = 1,
                                              .msg_control = control[i].buf,
                                              .msg_controllen = sizeof control[i].buf};
        }
        int got = recvmmsg(n->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            pthread_mutex_lock(&n->lock);
            snprintf(n->failed, sizeof n->failed, "the DNS capture failed: %s", strerror(errno));
            pthread_mutex_unlock(&n->lock);
            return -1;
        }
        pthread_mutex_lock(&n->lock);
        for (int i = 0; i < got; i++) {
            if (from[i].sll_pkttype == PACKET_OUTGOING) /* where the kernel cannot leave them out */
                continue;
            int64_t at = received_at(&msgs[i].msg_hdr);
            ch_dns_decode_packet(iov[i].iov_base, msgs[i].msg_len, CH_LINK_RAW, at, queue_answer, n);
        }
        pthread_mutex_unlock(&n->lock);
        if (got < BATCH)
            return 0;
    }
}

/* Adds the packets the kernel dropped since the last call (reading the
 * socket's statistics sets them back to 0). */
static void count_kernel_drops(ch_names *n)
{
    struct tpacket_stats st;
    socklen_t len = sizeof st;
    if (getsockopt(n->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0)
        return;
    pthread_mutex_lock(&n->lock);
    n->kernel_drops += st.tp_drops;
    pthread_mutex_unlock(&n->lock);
}

/* True when the recorder asked the thread to stop, waiting at most ms
 * for it (-1: as long as it takes for that or a packet). */
static bool stop_asked(ch_names *n, int ms, bool or_packet)
{
    struct pollfd p[2] = {{.fd = n->stop[0], .events = POLLIN}, {.fd = n->fd, .events = POLLIN}};
    int rc;
    do
        rc = poll(p, or_packet ? 2 : 1, ms);
    while (rc < 0 && errno == EINTR);
    return rc > 0 && (p[0].revents & POLLIN);
}

/* The thread: waits for packets, drains them, pauses, until stopped or
 * the socket fails. */
static void *capture(void *arg)
{
    ch_names *n = arg;
    while (!stop_asked(n, -1, true)) {
        int rc = drain(n);
        count_kernel_drops(n);
        if (rc != 0 || stop_asked(n, BATCH_PAUSE_MS, false))
            break;
    }
    return NULL;
}

/* The kernel's filter: libpcap compiles FILTER for packets that begin with
 * their IP header (DLT_RAW), as a SOCK_DGRAM packet socket gives them. */
static int attach_filter(ch_names *n, char *why, size_t whyn)
{
    pcap_t *dead = pcap_open_dead(DLT_RAW, PACKET_MAX);
    if (dead == NULL) {
        snprintf(why, whyn, "out of memory");
        return -1;
    }
    struct bpf_program prog;
    if (pcap_compile(dead, &prog, FILTER, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(why, whyn, "cannot compile the DNS filter \"%s\": %s", FILTER, pcap_geterr(dead));
        pcap_close(dead);
        return -1;
    }
    /* struct bpf_insn and struct sock_filter are the same classic BPF instruction */
    struct sock_fprog fprog = {.len = (unsigned short)prog.bf_len, .filter = (struct sock_filter *)prog.bf_insns};
    int rc = setsockopt(n->fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog);
    if (rc != 0)
        snprintf(why, whyn, "cannot filter the capture to DNS: %s", strerror(errno));
    pcap_freecode(&prog);
    pcap_close(dead);
    return rc;
}

/* Opens the packet socket: filtered before it is bound, so no unfiltered
 * packet ever waits in it. 0, or -1 with why. */
static int open_socket(ch_names *n, char *why, size_t whyn)
{
    n->fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0); /* protocol 0: nothing arrives yet */
    if (n->fd < 0) {
        if (errno == EPERM || errno == EACCES)
            snprintf(why, whyn, "no permission to capture packets (needs root or CAP_NET_RAW): %s", strerror(errno));
        else
            snprintf(why, whyn, "cannot open a packet socket: %s", strerror(errno));
        return -1;
    }
    if (attach_filter(n, why, whyn) != 0)
        return -1;
    int one = 1, bytes = QUEUE_BYTES;
    if (setsockopt(n->fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
        setsockopt(n->fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);      /* up to net.core.rmem_max */
    setsockopt(n->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one); /* else left out in drain */
    if (setsockopt(n->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) {
        snprintf(why, whyn, "cannot have the capture's packets timed: %s", strerror(errno));
        return -1;
    }
    struct sockaddr_ll all = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = 0};
    if (bind(n->fd, (struct sockaddr *)&all, sizeof all) != 0) {
        snprintf(why, whyn, "cannot start the capture: %s", strerror(errno));
        return -1;
    }
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
        return NULL;
    }
    n->fd = n->stop[0] = n->stop[1] = -1;
    pthread_mutex_init(&n->lock, NULL);
    n->buffers = malloc((size_t)BATCH * PACKET_MAX);
    if (n->buffers == NULL || pipe2(n->stop, O_CLOEXEC) != 0) {
        snprintf(why, whyn, "out of memory");
        ch_names_close(n);
        return NULL;
    }
    if (open_socket(n, why, whyn) != 0) {
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
        char stop = 1;
        while (write(n->stop[1], &stop, 1) < 0 && errno == EINTR)
            ;
        pthread_join(n->thread, NULL);
    }
    pthread_mutex_destroy(&n->lock);
    for (int i = 0; i < 2; i++)
        if (n->stop[i] >= 0)
            close(n->stop[i]);
    if (n->fd >= 0)
        close(n->fd);
    free(n->buffers);
    ch_answer_list_free(&n->filling);
    ch_answer_list_free(&n->taken);
    free(n);
}

void ch_names_settle(ch_names *n)
{
    (void)n;
    /* Two pauses: what arrived waits at most one pause to be drained, and
     * the drain has ended. A signal (the stop itself) does not cut it short. */
    struct timespec left = {0, 2 * BATCH_PAUSE_MS * 1000000L};
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
