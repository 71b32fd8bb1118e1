/*
 * Test shim, loaded with LD_PRELOAD: injects netlink receive faults into the
 * real connhist-record, so its handling of a troubled kernel can be tested
 * with the real binary and real sock_diag dumps.
 *
 * CONNHIST_FAULT_NETLINK="eintr=N,intr=M,enobufs=K" makes every Nth receive
 * on a netlink socket fail with EINTR (nothing consumed); and the first
 * receive after every Mth dump request return its messages flagged
 * NLM_F_DUMP_INTR (the kernel's "the table changed during the dump"), and
 * after every Kth lose what it read and fail with ENOBUFS, as a receive
 * buffer overrun does. Counting requests, not receives, hits each dump at
 * most once however large the socket table. 0 or absent: never. Each injected fault
 * is appended as one line ("eintr", "intr", "enobufs") to the file named by
 * CONNHIST_FAULT_LOG, when set, so a test can prove the faults happened.
 *
 * "stall_tcp=MS" holds each TCP dump request MS milliseconds before sending
 * it, noting "stall" before and "sent" after: a dump that takes long, during
 * which a test closes a socket the dump has not reached.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>

static unsigned long calls, requests;
static int pending_intr, pending_enobufs;

/* The period of fault `name` in CONNHIST_FAULT_NETLINK, 0 when absent. */
static unsigned long period(const char *name)
{
    const char *spec = getenv("CONNHIST_FAULT_NETLINK");
    size_t len = strlen(name);
    for (const char *p = spec; p != NULL && *p != '\0'; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, len) == 0 && p[len] == '=')
            return strtoul(p + len + 1, NULL, 10);
    return 0;
}

static int is_netlink(int fd)
{
    int domain = 0;
    socklen_t len = sizeof domain;
    return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_NETLINK;
}

static void note(const char *what)
{
    const char *path = getenv("CONNHIST_FAULT_LOG");
    if (path == NULL)
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char line[32];
    size_t n = strlen(what);
    memcpy(line, what, n);
    line[n] = '\n';
    (void)!write(fd, line, n + 1);
    close(fd);
}

static int due(const char *name, unsigned long count)
{
    unsigned long n = period(name);
    return n > 0 && count % n == 0;
}

/* True for a request to dump TCP sockets: the old TCPDIAG_GETSOCK, or
 * SOCK_DIAG_BY_FAMILY for IPPROTO_TCP. */
static int is_tcp_dump(const void *buf, size_t len)
{
    const struct nlmsghdr *h = buf;
    if (len < NLMSG_LENGTH(sizeof(struct inet_diag_req_v2)) || !(h->nlmsg_flags & NLM_F_DUMP))
        return 0;
    if (h->nlmsg_type == TCPDIAG_GETSOCK)
        return 1;
    const struct inet_diag_req_v2 *req = NLMSG_DATA(h);
    return h->nlmsg_type == SOCK_DIAG_BY_FAMILY && req->sdiag_protocol == IPPROTO_TCP;
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
    ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *, socklen_t) =
        (ssize_t (*)(int, const void *, size_t, int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "sendto");
    if (!is_netlink(fd))
        return real(fd, buf, len, flags, to, tolen);
    requests++;
    pending_intr |= due("intr", requests);
    pending_enobufs |= due("enobufs", requests);
    unsigned long stall = period("stall_tcp");
    if (stall == 0 || !is_tcp_dump(buf, len))
        return real(fd, buf, len, flags, to, tolen);
    note("stall");
    struct timespec ts = {.tv_sec = (time_t)(stall / 1000), .tv_nsec = (long)(stall % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    ssize_t n = real(fd, buf, len, flags, to, tolen);
    note("sent");
    return n;
}

/* Flags every message of a received buffer as part of an interrupted dump. */
static void flag_interrupted(void *buf, ssize_t n)
{
    size_t left = (size_t)n;
    for (struct nlmsghdr *h = buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left))
        h->nlmsg_flags |= NLM_F_DUMP_INTR;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    ssize_t (*real)(int, void *, size_t, int) = (ssize_t (*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
    if (!is_netlink(fd))
        return real(fd, buf, len, flags);
    calls++;
    if (due("eintr", calls)) {
        note("eintr");
        errno = EINTR;
        return -1;
    }
    ssize_t n = real(fd, buf, len, flags);
    if (n <= 0)
        return n;
    if (pending_enobufs) {
        pending_enobufs = 0;
        note("enobufs");
        errno = ENOBUFS;
        return -1;
    }
    if (pending_intr) {
        pending_intr = 0;
        note("intr");
        flag_interrupted(buf, n);
    }
    return n;
}
