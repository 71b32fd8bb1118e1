/*
 * Loopback sockets, a child that hides a socket in a file's descriptor
 * number, and clocks the test controls (see hidden_socket.h).
 */
#define _GNU_SOURCE
#include "hidden_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t cpu_ns, cpu_step_ns, mono_skip_ns;

void clock_cpu_step(int64_t step_ns)
{
    cpu_step_ns = step_ns;
}

void clock_skip(int64_t ns)
{
    mono_skip_ns += ns;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    int64_t ns;
    if (id == CLOCK_THREAD_CPUTIME_ID) {
        ns = cpu_ns;
        cpu_ns += cpu_step_ns;
    } else {
        if (syscall(SYS_clock_gettime, id, ts) != 0)
            return -1;
        if (id != CLOCK_MONOTONIC)
            return 0;
        ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec + mono_skip_ns;
    }
    ts->tv_sec = (time_t)(ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
    return 0;
}

uint64_t inode_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

int loopback_socket(int family, int type)
{
    int fd = socket(family, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || (type == SOCK_STREAM && listen(fd, 8) != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The child: each socket's inode goes up resp (0 when something failed);
 * a byte on cmd swaps, the end of cmd ends it. */
static void hider_child(int cmd, int resp)
{
    int f = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    int a = loopback_socket(AF_INET, SOCK_DGRAM);
    uint64_t ia = f >= 0 && a >= 0 ? inode_of(a) : 0;
    char c;
    if (write(resp, &ia, sizeof ia) != sizeof ia || read(cmd, &c, 1) != 1)
        _exit(1);
    close(f);
    int b = loopback_socket(AF_INET, SOCK_DGRAM);
    uint64_t ib = b == f ? inode_of(b) : 0; /* the lowest free descriptor: the file's */
    if (write(resp, &ib, sizeof ib) != sizeof ib)
        _exit(1);
    while (read(cmd, &c, 1) < 0 && errno == EINTR)
        ;
    _exit(0);
}

int hider_start(hider *h)
{
    int cmd[2], resp[2];
    *h = (hider){.pid = -1, .cmd = -1, .resp = -1};
    if (pipe2(cmd, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(resp, O_CLOEXEC) != 0) {
        close(cmd[0]);
        close(cmd[1]);
        return -1;
    }
    h->pid = fork();
    if (h->pid == 0) {
        close(cmd[1]);
        close(resp[0]);
        hider_child(cmd[0], resp[1]);
    }
    close(cmd[0]);
    close(resp[1]);
    h->cmd = cmd[1];
    h->resp = resp[0];
    if (h->pid < 0 || read(h->resp, &h->first, sizeof h->first) != sizeof h->first)
        return -1;
    return h->first != 0 ? 0 : -1;
}

int hider_swap(hider *h)
{
    if (write(h->cmd, "x", 1) != 1 || read(h->resp, &h->second, sizeof h->second) != sizeof h->second)
        return -1;
    return h->second != 0 ? 0 : -1;
}

void hider_stop(hider *h)
{
    if (h->cmd >= 0)
        close(h->cmd);
    if (h->resp >= 0)
        close(h->resp);
    if (h->pid > 0)
        waitpid(h->pid, NULL, 0);
    *h = (hider){.pid = -1, .cmd = -1, .resp = -1};
}
