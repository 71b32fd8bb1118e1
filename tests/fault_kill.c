/*
 * Test shim, loaded with LD_PRELOAD: kills the real connhist-record (SIGKILL,
 * as the OOM killer or a power cut would stop it) just before its Nth write
 * to one file, so a test can leave a database in the state a crash at that
 * exact moment leaves it, for example with its schema half written.
 *
 * CONNHIST_KILL_AT_WRITE=PATH names the file (absolute, as /proc/self/fd
 * shows it); CONNHIST_KILL_AT_WRITE_COUNT=N picks the write (default 1).
 * Writes to other files, the -journal beside PATH included, go through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static unsigned long writes;

/* Dies before the Nth write to the watched file; fd is the file written. */
static void maybe_die(int fd)
{
    const char *watched = getenv("CONNHIST_KILL_AT_WRITE");
    if (watched == NULL || *watched == '\0')
        return;
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0)
        return;
    target[n] = '\0';
    if (strcmp(target, watched) != 0)
        return;
    const char *count = getenv("CONNHIST_KILL_AT_WRITE_COUNT");
    unsigned long nth = count != NULL ? strtoul(count, NULL, 10) : 1;
    if (++writes >= nth)
        raise(SIGKILL);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t offset)
{
    ssize_t (*real)(int, const void *, size_t, off64_t) =
        (ssize_t (*)(int, const void *, size_t, off64_t))dlsym(RTLD_NEXT, "pwrite64");
    maybe_die(fd);
    return real(fd, buf, len, offset);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset)
{
    ssize_t (*real)(int, const void *, size_t, off_t) =
        (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    maybe_die(fd);
    return real(fd, buf, len, offset);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    ssize_t (*real)(int, const void *, size_t) = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    maybe_die(fd);
    return real(fd, buf, len);
}
