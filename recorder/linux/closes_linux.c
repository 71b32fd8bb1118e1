/*
 * Linux: the sock_diag destroy multicast groups (TCP and UDP, IPv4 and
 * IPv6), the announcements `ss -E` prints. The kernel sends one message per
 * socket it frees: the inet_diag_msg (cookie, addresses, state; inode and
 * uid are 0 because no file refers to the socket any more), an
 * INET_DIAG_PROTOCOL attribute, and for TCP the final tcp_info. Listening
 * needs no capability.
 *
 * A TCP connection closed first by this side is freed when it enters
 * TIME_WAIT: its announcement comes then, and the TIME_WAIT entry that
 * follows keeps the cookie if a dump had already seen the socket. The
 * tracker sorts that out; this file only reads and stamps.
 *
 * The kernel drops announcements when the socket's receive queue is full
 * and reports it as ENOBUFS on the next read: counted here, and the caller
 * resynchronises with a full dump.
 */
#define _GNU_SOURCE
#include "closes.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "diag_parse.h"
#include "host.h"
#include "timeutil.h"

#define CLOSES_BUF_SIZE (64 * 1024)
/* Room for the announcements of a mass close of about 50,000 sockets while
 * the recorder samples and writes (a queued announcement takes about 1.3
 * KiB of the kernel's memory): charged only while they wait, so a bound
 * on what a busy or stopped recorder lets the kernel keep, not a cost. */
#define CLOSES_RCVBUF (64 * 1024 * 1024)
#define CLOSES_MAX_PENDING (1024 * 1024)  /* closes held while samples fail, at most */
#define CLOSES_KEPT 4096                  /* room kept once taken: an interval's, not a burst's */

struct ch_closes {
    int fd;
    char *buf;
    ch_sample scratch;       /* rows of one read */
    ch_closed *items;
    size_t count, cap;
    ch_closes_absorb_fn absorb; /* NULL: everything is collected */
    void *absorb_ctx;
    int64_t overruns;
    int overrun_pending;
    int also_fd;             /* another source to read while waiting; -1: none */
    void (*also_ready)(void *ctx);
    void *also_ctx;
};

/* The receive buffer: CONNHIST_EVENT_RCVBUF bytes when set (tests shrink it
 * to provoke overruns), else CLOSES_RCVBUF; forced past rmem_max when root. */
static void set_rcvbuf(int fd)
{
    int size = CLOSES_RCVBUF;
    const char *env = getenv("CONNHIST_EVENT_RCVBUF");
    if (env != NULL && atoi(env) > 0)
        size = atoi(env);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

static int subscribe(int fd, char *err, size_t errn)
{
    static const int groups[] = {SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET6_TCP_DESTROY, SKNLGRP_INET_UDP_DESTROY,
                                 SKNLGRP_INET6_UDP_DESTROY};
    struct sockaddr_nl me = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&me, sizeof me) != 0) {
        snprintf(err, errn, "cannot bind the sock_diag event socket: %s", strerror(errno));
        return -1;
    }
    int joined = 0;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        joined += setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i], sizeof groups[i]) == 0;
    if (joined == 0) { /* IPv6 may be missing; IPv4 alone is still worth it */
        snprintf(err, errn, "cannot join the sock_diag destroy groups: %s", strerror(errno));
        return -1;
    }
    return 0;
}

ch_closes *ch_closes_open(char *err, size_t errn)
{
    ch_closes *w = calloc(1, sizeof *w);
    if (w == NULL || (w->buf = malloc(CLOSES_BUF_SIZE)) == NULL) {
        snprintf(err, errn, "out of memory");
        free(w);
        return NULL;
    }
    w->also_fd = -1;
    w->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG);
    if (w->fd < 0) {
        snprintf(err, errn, "cannot open a sock_diag event socket: %s", strerror(errno));
        ch_closes_close(w);
        return NULL;
    }
    set_rcvbuf(w->fd);
    if (subscribe(w->fd, err, errn) != 0) {
        ch_closes_close(w);
        return NULL;
    }
    return w;
}

void ch_closes_close(ch_closes *w)
{
    if (w == NULL)
        return;
    if (w->fd >= 0)
        close(w->fd);
    free(w->buf);
    free(w->items);
    ch_sample_free(&w->scratch);
    free(w);
}

static void note_overrun(ch_closes *w)
{
    w->overruns++;
    w->overrun_pending = 1;
}

/* Keeps the rows of one read, stamped with when it was read. */
static void keep(ch_closes *w, int64_t at)
{
    for (size_t i = 0; i < w->scratch.count; i++) {
        ch_sock row = ch_sample_row(&w->scratch, i);
        if (w->absorb != NULL && w->absorb(w->absorb_ctx, &row, at))
            continue;
        if (w->count == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 256;
            ch_closed *items = cap <= CLOSES_MAX_PENDING ? realloc(w->items, cap * sizeof *items) : NULL;
            if (items == NULL) { /* dropped: as good as an overrun, and said so */
                note_overrun(w);
                return;
            }
            w->items = items;
            w->cap = cap;
        }
        w->items[w->count++] = (ch_closed){.sock = row, .at = at};
    }
}

/* Reads everything queued without blocking. */
static void drain(ch_closes *w)
{
    for (;;) {
        ssize_t n = recv(w->fd, w->buf, CLOSES_BUF_SIZE, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOBUFS) { /* announcements were dropped; the queue goes on */
                note_overrun(w);
                continue;
            }
            return; /* EAGAIN: nothing more for now */
        }
        int64_t at = ch_now_ms();
        ch_sample_clear(&w->scratch);
        if (ch_diag_parse_events(w->buf, (size_t)n, &w->scratch) != 0)
            note_overrun(w); /* out of memory: rows lost, resync */
        keep(w, at);
    }
}

void ch_closes_wait(ch_closes *w, int64_t ms)
{
    int64_t deadline = ch_mono_ms() + ms;
    drain(w);
    /* A stop request cuts a poll short only when it arrives during the
     * poll; one that arrives while announcements are read is seen at the
     * next turn, within STOP_CHECK_MS (at --interval 1h the recorder waited
     * out the hour). */
    while (!w->overrun_pending && !ch_host_stop_requested()) {
        int64_t left = deadline - ch_mono_ms();
        if (left <= 0)
            return;
        struct pollfd p[2] = {{.fd = w->fd, .events = POLLIN}, {.fd = w->also_fd, .events = POLLIN}};
        int rc = poll(p, w->also_fd >= 0 ? 2 : 1, left > STOP_CHECK_MS ? STOP_CHECK_MS : (int)left);
        if (rc < 0 && errno == EINTR)
            return; /* a signal: the caller checks for a stop */
        if (rc < 0)
            return;
        if (p[0].revents != 0)
            drain(w);
        if (w->also_fd >= 0 && p[1].revents != 0)
            w->also_ready(w->also_ctx);
    }
}

void ch_closes_set_absorb(ch_closes *w, ch_closes_absorb_fn absorb, void *ctx)
{
    w->absorb = absorb;
    w->absorb_ctx = ctx;
}

void ch_closes_wait_also(ch_closes *w, int handle, void (*ready)(void *ctx), void *ctx)
{
    w->also_fd = ready != NULL ? handle : -1;
    w->also_ready = ready;
    w->also_ctx = ctx;
}

const ch_closed *ch_closes_closed(const ch_closes *w, size_t *n)
{
    *n = w->count;
    return w->items;
}

void ch_closes_clear(ch_closes *w)
{
    w->count = 0;
    if (w->cap > CLOSES_KEPT) { /* a burst's room: back */
        free(w->items);
        w->items = NULL;
        w->cap = 0;
    }
}

int ch_closes_take_overrun(ch_closes *w)
{
    int pending = w->overrun_pending;
    w->overrun_pending = 0;
    return pending;
}

int64_t ch_closes_overruns(const ch_closes *w)
{
    return w->overruns;
}
