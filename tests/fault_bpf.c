/*
 * Test shim, loaded with LD_PRELOAD: makes the kernel refuse BPF iterators
 * to the real connhist-record from some point on, so that its fall back
 * from the BPF socket iterators to sock_diag dumps can be tested.
 *
 * CONNHIST_FAULT_ITER_CREATE=N makes every BPF_ITER_CREATE from the Nth on
 * fail with EIO (libbpf's bpf_iter_create goes through syscall(2)); each
 * refusal is appended as a line "iter_create" to CONNHIST_FAULT_LOG when
 * set. Every other call goes through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/bpf.h>

static long calls;

static void note(const char *what)
{
    const char *path = getenv("CONNHIST_FAULT_LOG");
    if (path == NULL)
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    size_t n = strlen(what);
    if (write(fd, what, n) == (ssize_t)n)
        (void)write(fd, "\n", 1);
    close(fd);
}

long syscall(long number, ...)
{
    static long (*real)(long, ...);
    if (real == NULL)
        real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_bpf && a[0] == BPF_ITER_CREATE) {
        const char *env = getenv("CONNHIST_FAULT_ITER_CREATE");
        long from = env != NULL ? atol(env) : 0;
        if (from > 0 && ++calls >= from) {
            note("iter_create");
            errno = EIO;
            return -1;
        }
    }
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
