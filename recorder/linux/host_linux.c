/*
 * Host facts on Linux: uname, the kernel's random boot_id, /proc/PID/comm.
 */
#define _GNU_SOURCE
#include "host.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "timeutil.h"

static volatile sig_atomic_t stop_signal;

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

/*
 * The pid runs connhist-record when one of its arguments is a program of
 * that name: argv[0] normally, a later one under a wrapper such as valgrind
 * (whose comm is its own). A pid reused by an unrelated process does not match.
 */
bool ch_host_recorder_alive(int64_t pid)
{
    if (pid <= 0 || pid == getpid())
        return false;
    char path[64], args[4096];
    snprintf(path, sizeof path, "/proc/%lld/cmdline", (long long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, args, sizeof args - 1);
    close(fd);
    if (n <= 0)
        return false;
    args[n] = '\0';
    for (char *a = args; a < args + n; a += strlen(a) + 1) {
        const char *base = strrchr(a, '/');
        if (strcmp(base ? base + 1 : a, "connhist-record") == 0)
            return true;
    }
    return false;
}

int64_t ch_host_pid(void)
{
    return getpid();
}

int64_t ch_host_uid(void)
{
    return (int64_t)geteuid();
}

void ch_host_private_files(void)
{
    umask(077); /* the database, its -wal and -shm, and new directories */
}

void ch_host_return_freed_memory(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

static void on_signal(int sig)
{
    stop_signal = sig;
}

void ch_host_catch_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a signal ends the sleep */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool ch_host_stop_requested(void)
{
    return stop_signal != 0;
}

void ch_host_stop_done(void)
{
}

void ch_host_sleep_ms(int64_t ms)
{
    /* A signal cuts a nanosleep short (EINTR) only when it arrives during
     * it: the flag is checked again every STOP_CHECK_MS. */
    int64_t end = ch_mono_ms() + ms;
    for (int64_t left = ms; left > 0 && !stop_signal; left = end - ch_mono_ms()) {
        int64_t part = left < STOP_CHECK_MS ? left : STOP_CHECK_MS;
        struct timespec ts = {part / 1000, (part % 1000) * 1000000};
        if (nanosleep(&ts, NULL) != 0)
            return;
    }
}
