/*
 * rawdump: the floor of the benchmark. Dumps every TCP and UDP socket
 * (IPv4 and IPv6) and does nothing with the replies but count them, the
 * least any sock_diag sampler can do. It is what connhist-record's tick is
 * compared with, and it asks as the recorder does: TCP of both families in
 * one request (TCPDIAG_GETSOCK, one walk of the kernel's TCP tables), then
 * UDP per family; where the kernel refuses the one TCP request, TCP per
 * family too (four requests).
 *
 *   rawdump [REPEATS [PAUSE_MS]]
 *
 * prints one line: "sockets N wall_ms MEDIAN cpu_ms MEAN repeats R requests Q",
 * where MEDIAN is the median wall time of one full dump (all Q requests, 3
 * or 4) and MEAN the process CPU time (user + system) per dump.
 *
 * With PAUSE_MS the dumps are that far apart, as a recorder's ticks are: the
 * floor of an idle recorder at a 1 s interval is "rawdump 60 1000". Back to
 * back, the kernel walks a TCP hash table (2 MiB of buckets with 262,144
 * entries) that the previous dump left in the CPU's caches; a second later
 * it is cold again, and on an idle machine that walk is most of the dump.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dump_clock.h"

#define RECV_BUF (256 * 1024)

/* Sends one dump request for (family, protocol); returns 0 or -1. */
static int request(int fd, int family, int protocol)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = (unsigned char)family;
    msg.req.sdiag_protocol = (unsigned char)protocol;
    msg.req.idiag_states = ~0U;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    return sendto(fd, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0 ? -1 : 0;
}

/* Sends the one request for TCP of both families; returns 0 or -1. */
static int request_tcp_once(int fd)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req req;
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = TCPDIAG_GETSOCK;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.idiag_states = ~0U;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    return sendto(fd, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0 ? -1 : 0;
}

/* Reads replies until NLMSG_DONE; returns the number of sockets or -1. */
static long drain(int fd, char *buf)
{
    long n = 0;
    for (;;) {
        ssize_t got = recv(fd, buf, RECV_BUF, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)got); h = NLMSG_NEXT(h, got)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return n;
            if (h->nlmsg_type == NLMSG_ERROR)
                return -1;
            n++;
        }
    }
}

/* One full dump of the four tables (TCP in one request when tcp_once);
 * returns the socket count or -1. */
static long dump_all(int fd, char *buf, int tcp_once)
{
    static const int tables[4][2] = {
        {AF_INET, IPPROTO_TCP}, {AF_INET6, IPPROTO_TCP}, {AF_INET, IPPROTO_UDP}, {AF_INET6, IPPROTO_UDP}};
    long total = 0;
    if (tcp_once) {
        if (request_tcp_once(fd) != 0 || (total = drain(fd, buf)) < 0)
            return -1;
    }
    for (int i = tcp_once ? 2 : 0; i < 4; i++) {
        if (request(fd, tables[i][0], tables[i][1]) != 0)
            return -1;
        long n = drain(fd, buf);
        if (n < 0)
            return -1;
        total += n;
    }
    return total;
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 5;
    if (repeats < 1 || repeats > 10000) {
        fprintf(stderr, "rawdump: repeats '%s' is not valid (expected 1 to 10000)\n", argv[1]);
        return 2;
    }
    int pause_ms = argc > 2 ? atoi(argv[2]) : 0;
    if (pause_ms < 0 || pause_ms > 60000 || (argc > 2 && pause_ms == 0 && strcmp(argv[2], "0") != 0)) {
        fprintf(stderr, "rawdump: pause '%s' is not valid (expected milliseconds, 0 to 60000)\n", argv[2]);
        return 2;
    }
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    char *buf = malloc(RECV_BUF);
    if (fd < 0 || buf == NULL) {
        perror("rawdump: netlink socket");
        return 1;
    }
    int rcv = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    double *walls = calloc((size_t)repeats, sizeof *walls);
    int tcp_once = dump_all(fd, buf, 1) >= 0; /* refused: family by family */
    long sockets = 0;
    double cpu0 = cpu_ms();
    for (int r = 0; r < repeats; r++) {
        if (pause_ms > 0)
            nanosleep(&(struct timespec){pause_ms / 1000, pause_ms % 1000 * 1000000L}, NULL);
        double t0 = now_ms();
        sockets = dump_all(fd, buf, tcp_once);
        walls[r] = now_ms() - t0;
        if (sockets < 0) {
            perror("rawdump: sock_diag dump");
            return 1;
        }
    }
    double cpu = (cpu_ms() - cpu0) / repeats;
    printf("sockets %ld wall_ms %.3f cpu_ms %.3f repeats %d requests %d\n", sockets, median_ms(walls, repeats), cpu,
           repeats, tcp_once ? 3 : 4);
    free(walls);
    free(buf);
    close(fd);
    return 0;
}
