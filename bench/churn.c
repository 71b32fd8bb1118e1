/*
 * connhist-churn: the short-connection workload of bench/owners.py's cost
 * phase, in C so that one process can make 10,000 connections a second.
 *
 *     connhist-churn RATE SECONDS
 *
 * Listens on 127.0.0.1 and ::1 (four ports each: a client port can serve
 * one connection per destination while its TIME_WAIT lasts), then for
 * SECONDS makes connections in turn to each: connect, accept, one byte each
 * way, the client closes first (its end goes to TIME_WAIT), the server
 * end after it. RATE connections a second at most (0: back to back).
 * Prints "CONNECTIONS SECONDS" (what it made, how long it took).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PORTS_PER_FAMILY 4

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A listener on the loopback address of a family; its address in *addr. */
static int listen_on(int family, struct sockaddr_storage *addr, socklen_t *len)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(addr, 0, sizeof *addr);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)addr;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)addr;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        *len = sizeof *a;
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)addr, *len) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)addr, len) != 0) {
        perror("connhist-churn: listen");
        exit(1);
    }
    return fd;
}

/* One connection to the listener l at addr. Returns 0, or -1. */
static int one_connection(int l, const struct sockaddr_storage *addr, socklen_t len)
{
    int c = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (const struct sockaddr *)addr, len) != 0) {
        if (c >= 0)
            close(c);
        return -1;
    }
    int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    char b = 'x';
    int ok = a >= 0 && write(c, &b, 1) == 1 && read(a, &b, 1) == 1 && write(a, &b, 1) == 1 && read(c, &b, 1) == 1;
    close(c);
    if (a >= 0)
        close(a);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: connhist-churn RATE SECONDS\n");
        return 2;
    }
    double rate = atof(argv[1]), seconds = atof(argv[2]);
    if (rate < 0 || seconds <= 0) {
        fprintf(stderr, "connhist-churn: RATE must be >= 0 and SECONDS > 0, got %s %s\n", argv[1], argv[2]);
        return 2;
    }
    int n = 2 * PORTS_PER_FAMILY, l[2 * PORTS_PER_FAMILY];
    struct sockaddr_storage addr[2 * PORTS_PER_FAMILY];
    socklen_t len[2 * PORTS_PER_FAMILY];
    for (int i = 0; i < n; i++)
        l[i] = listen_on(i % 2 ? AF_INET6 : AF_INET, &addr[i], &len[i]);
    double start = now_s(), end = start + seconds;
    long made = 0, failed = 0;
    for (long i = 0;; i++) {
        double t = now_s();
        if (t >= end)
            break;
        if (rate > 0) {
            double due = start + (double)i / rate;
            if (due > t) {
                struct timespec ts = {(time_t)(due - t), (long)((due - t - (double)(time_t)(due - t)) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
        if (one_connection(l[i % n], &addr[i % n], len[i % n]) == 0)
            made++;
        else
            failed++;
    }
    printf("%ld %.3f %ld\n", made, now_s() - start, failed);
    return 0;
}
