/*
 * Host facts on Linux: uname, the kernel's random boot_id, /proc/PID/comm.
 */
#define _GNU_SOURCE
#include "host.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Reads a small file into out without its trailing newline. */
static int read_line(const char *path, char *out, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, out, n - 1);
    close(fd);
    if (got <= 0)
        return -1;
    out[got] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

void ch_host_name(char *out, size_t n)
{
    if (gethostname(out, n) != 0 || out[0] == '\0')
        snprintf(out, n, "unknown");
    out[n - 1] = '\0';
}

void ch_host_os(char *out, size_t n)
{
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(out, n, "%s %s", u.sysname, u.release);
    else
        snprintf(out, n, "Linux");
}

int ch_host_boot_id(char *out, size_t n)
{
    return read_line("/proc/sys/kernel/random/boot_id", out, n);
}

bool ch_host_recorder_alive(int64_t pid)
{
    if (pid <= 0 || pid == getpid())
        return false;
    char path[64], comm[64];
    snprintf(path, sizeof path, "/proc/%lld/comm", (long long)pid);
    return read_line(path, comm, sizeof comm) == 0 && strcmp(comm, "connhist-record") == 0;
}
