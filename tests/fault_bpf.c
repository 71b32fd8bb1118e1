/*
 * Test shim, loaded with LD_PRELOAD: makes the kernel refuse BPF iterators
 * to the real connhist-record from some point on, so that its fall back
 * from the BPF socket iterators to sock_diag dumps can be tested.
 *
 * CONNHIST_FAULT_ITER_CREATE=N makes every BPF_ITER_CREATE from the Nth on
 * fail with EIO (libbpf's bpf_iter_create goes through syscall(2)); each
 * refusal is appended as a line "iter_create" to CONNHIST_FAULT_LOG when
 * set. Every other call goes through.
 *
 * CONNHIST_FAULT_PROG_LOAD=NAME makes the kernel refuse to load the BPF
 * program called NAME (BPF_PROG_LOAD, EPERM), appending "prog_load NAME".
 *
 * It also appends a line "kernel_btf" to CONNHIST_FAULT_LOG each time a
 * process opens the kernel's BTF (libbpf reads it whole with stdio at
 * every load of an object that needs it), to count the reads.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
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

/* Whether the program attr loads is the one to refuse (noted if so). */
static int refused_program(const union bpf_attr *attr)
{
    const char *name = getenv("CONNHIST_FAULT_PROG_LOAD");
    if (name == NULL || strncmp(attr->prog_name, name, sizeof attr->prog_name) != 0)
        return 0;
    char line[64];
    snprintf(line, sizeof line, "prog_load %.*s", (int)sizeof attr->prog_name, attr->prog_name);
    note(line);
    return 1;
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
    if (number == SYS_bpf && a[0] == BPF_PROG_LOAD && refused_program((const union bpf_attr *)a[1])) {
        errno = EPERM;
        return -1;
    }
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

/* libbpf opens the kernel's BTF with fopen (fopen64 where built with
 * 64-bit file offsets, the same function in glibc on 64-bit machines). */
static FILE *open_noted(const char *fn, const char *path, const char *mode)
{
    FILE *(*real)(const char *, const char *) = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, fn);
    if (path != NULL && strcmp(path, "/sys/kernel/btf/vmlinux") == 0)
        note("kernel_btf");
    return real(path, mode);
}

FILE *fopen(const char *path, const char *mode)
{
    return open_noted("fopen", path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
    return open_noted("fopen64", path, mode);
}
