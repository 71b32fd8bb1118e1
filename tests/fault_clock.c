/*
 * Test shim, loaded with LD_PRELOAD: moves the wall clock of the real
 * connhist-record. clock_gettime(CLOCK_REALTIME) returns the true time plus
 * the offset, in milliseconds (may be negative), written in the file named
 * by CONNHIST_CLOCK_OFFSET_FILE; the test rewrites the file to make the
 * clock jump backwards or forwards. The monotonic clocks are untouched, as
 * they are when an administrator or NTP steps the real clock.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long offset_ms(void)
{
    const char *path = getenv("CONNHIST_CLOCK_OFFSET_FILE");
    if (path == NULL)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[32];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtoll(buf, NULL, 10);
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    int (*real)(clockid_t, struct timespec *) = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    if (rc != 0 || (id != CLOCK_REALTIME && id != CLOCK_REALTIME_COARSE))
        return rc;
    long long off = offset_ms();
    long long ns = (long long)ts->tv_nsec + off % 1000 * 1000000LL;
    long long sec = (long long)ts->tv_sec + off / 1000;
    while (ns < 0) {
        ns += 1000000000LL;
        sec--;
    }
    ts->tv_sec = (time_t)(sec + ns / 1000000000LL);
    ts->tv_nsec = (long)(ns % 1000000000LL);
    return 0;
}
