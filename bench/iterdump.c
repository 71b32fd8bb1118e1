/*
 * iterdump: what bench/rawdump.c measures, through BPF iterators instead of
 * sock_diag. Reads every TCP and UDP socket (IPv4 and IPv6) as the compact
 * records of iterdump.bpf.c and does nothing with them but count them: the
 * floor of a sampler built on the iterators (root only), to set beside
 * rawdump's floor of any sock_diag sampler (issue 17, item 3).
 *
 *   iterdump [REPEATS [PAUSE_MS]]
 *   iterdump --print
 *
 * prints one line as rawdump does: "sockets N wall_ms MEDIAN cpu_ms MEAN
 * repeats R requests 2" (two iterators read); with --print, one line per
 * socket instead, to check the records against `ss -tuanpe`. Built and run
 * by bench/iter_ab.sh.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dump_clock.h"
#include "iterdump.skel.h"
#include "iterdump_record.h"

#define READ_BYTES (64 * 1024)

/* Prints the n records in buf, one line each. */
static void print_records(const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct iterdump_record r;
        memcpy(&r, buf + i * sizeof r, sizeof r);
        char local[INET6_ADDRSTRLEN], remote[INET6_ADDRSTRLEN];
        int af = r.family == 2 ? AF_INET : AF_INET6;
        inet_ntop(af, r.local, local, sizeof local);
        inet_ntop(af, r.remote, remote, sizeof remote);
        printf("%s state %u %s:%u %s:%u scope %u uid %u inode %llu cookie %llu timer %lld\n",
               r.proto == 6 ? "tcp" : "udp", r.state, local, r.local_port, remote, r.remote_port, r.scope, r.uid,
               (unsigned long long)r.inode, (unsigned long long)r.cookie, (long long)r.timer_jiffies);
    }
}

/* Reads one pass of the iterator behind link, printing its records when
 * print is set; returns their number or -1. */
static long read_pass(struct bpf_link *link, char *buf, int print)
{
    int fd = bpf_iter_create(bpf_link__fd(link));
    if (fd < 0)
        return -1;
    long bytes = 0;
    for (;;) {
        ssize_t got = read(fd, buf, READ_BYTES);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            close(fd);
            return got < 0 ? -1 : bytes / (long)sizeof(struct iterdump_record);
        }
        if (print) /* records never straddle reads: the kernel writes whole ones */
            print_records(buf, (size_t)got / sizeof(struct iterdump_record));
        bytes += got;
    }
}

/* Parses argument i as an integer in [lo, hi], or exits naming it. */
static int int_arg(int argc, char **argv, int i, int dflt, int lo, int hi, const char *what)
{
    if (argc <= i)
        return dflt;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*argv[i] == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "iterdump: %s '%s' is not valid (expected %d to %d)\n", what, argv[i], lo, hi);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    int print = argc == 2 && strcmp(argv[1], "--print") == 0;
    int repeats = print ? 1 : int_arg(argc, argv, 1, 5, 1, 10000, "repeats");
    int pause_ms = print ? 0 : int_arg(argc, argv, 2, 0, 0, 60000, "pause (milliseconds)");
    struct iterdump_bpf *skel = iterdump_bpf__open_and_load();
    struct bpf_link *tcp = skel ? bpf_program__attach_iter(skel->progs.dump_tcp, NULL) : NULL;
    struct bpf_link *udp = skel ? bpf_program__attach_iter(skel->progs.dump_udp, NULL) : NULL;
    char *buf = malloc(READ_BYTES);
    double *walls = calloc((size_t)repeats, sizeof *walls);
    if (tcp == NULL || udp == NULL || buf == NULL || walls == NULL) {
        fprintf(stderr, "iterdump: cannot load the BPF iterators (root, Linux 5.9 or later): %s\n", strerror(errno));
        return 1;
    }
    long sockets = 0;
    double cpu0 = cpu_ms();
    for (int r = 0; r < repeats; r++) {
        if (pause_ms > 0)
            nanosleep(&(struct timespec){pause_ms / 1000, pause_ms % 1000 * 1000000L}, NULL);
        double t0 = now_ms();
        long t = read_pass(tcp, buf, print), u = read_pass(udp, buf, print);
        walls[r] = now_ms() - t0;
        if (t < 0 || u < 0) {
            perror("iterdump: reading an iterator");
            return 1;
        }
        sockets = t + u;
    }
    double cpu = (cpu_ms() - cpu0) / repeats;
    if (print)
        return 0;
    printf("sockets %ld wall_ms %.3f cpu_ms %.3f repeats %d requests 2\n", sockets, median_ms(walls, repeats), cpu,
           repeats);
    free(walls);
    free(buf);
    bpf_link__destroy(udp);
    bpf_link__destroy(tcp);
    iterdump_bpf__destroy(skel);
    return 0;
}
