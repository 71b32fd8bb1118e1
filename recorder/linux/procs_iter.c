/*
 * The socket holder pass on Linux (procs_iter.h): the BPF iterator of
 * procs_iter.bpf.c, loaded through its generated skeleton, walks every
 * open file of every process in the kernel and writes a record for each;
 * this file reads the records and hands them over a process at a time.
 * One read of the iterator replaces a readlink (and its dentry look-ups)
 * per descriptor of the machine: at 100,000 sockets, most of the first
 * tick's time in the kernel.
 *
 * As the owner events (owners_bpf.c) do, a short-lived child process loads
 * the program, so the 13 MB the kernel's BTF takes to read are never the
 * recorder's; it hands over the iterator's link, which is all a pass
 * needs (bpf_iter_create, then read). A program of its own rather than a
 * part of owners.bpf.c: it is wanted where the owner events are not (with
 * --once, --events off, the procfs sampler), and either can be refused
 * without the other.
 */
#define _GNU_SOURCE
#include "procs_iter.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "caps.h"
#include "owners_decode.h"
#include "procs_iter.skel.h"
#include "procs_iter_record.h"

#define KERNEL_BTF "/sys/kernel/btf/vmlinux"
#define PROC_PID_INIT_INO 0xEFFFFFFCU /* the initial pid namespace's inode (include/linux/proc_ns.h) */
#define CAP_SYS_ADMIN_BIT 21
#define CAP_PERFMON_BIT 38
#define CAP_BPF_BIT 39
#define READ_RECORDS 1024 /* records asked for by one read() */
#define WHY_MAX 300

struct ch_sockfiles {
    int link; /* the iterator's link: every pass starts from it */
    long hz;
    /* The process being gathered, and its sockets so far. */
    ch_task_sockets task;
    int32_t *fds;
    uint64_t *inodes;
    size_t cap;
    struct ch_file_record buf[READ_RECORDS];
};

/* The first warning libbpf gave in the loading child, for the reason. */
static char libbpf_said[200];

static int keep_first_warning(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    if (level != LIBBPF_WARN || libbpf_said[0] != '\0')
        return 0;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    const char *text = strncmp(line, "libbpf: ", 8) == 0 ? line + 8 : line;
    snprintf(libbpf_said, sizeof libbpf_said, "%.*s", (int)strcspn(text, "\n"), text);
    return 0;
}

/* The child: loads the program, attaches the iterator and sends its link
 * (or one line saying why not) over sock, then exits. */
static void load_and_hand_over(int sock)
{
    char why[WHY_MAX] = "";
    libbpf_set_print(keep_first_warning);
    struct procs_iter_bpf *skel = procs_iter_bpf__open_and_load();
    struct bpf_link *link = skel ? bpf_program__attach_iter(skel->progs.socket_files, NULL) : NULL;
    struct msghdr msg = {0};
    char control[CMSG_SPACE(sizeof(int))];
    if (link == NULL) {
        int err = errno;
        snprintf(why, sizeof why, "the kernel refused the BPF iterator: %s%s%s%s", strerror(err),
                 libbpf_said[0] ? " (" : "", libbpf_said, libbpf_said[0] ? ")" : "");
    } else {
        int fd = bpf_link__fd(link);
        memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof fd);
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    struct iovec iov = {.iov_base = why, .iov_len = strlen(why) + 1};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
    _exit(link == NULL);
}

/* Loads the iterator in a child process. Returns its link, or -1 with the
 * reason in why. */
static int load_in_child(char *why, size_t whyn)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(why, whyn, "cannot hand the BPF iterator over: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        close(sv[0]);
        load_and_hand_over(sv[1]);
    }
    close(sv[1]);
    if (child < 0) {
        snprintf(why, whyn, "cannot start the process that loads the BPF iterator: %s", strerror(errno));
        close(sv[0]);
        return -1;
    }
    char said[WHY_MAX] = "";
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = said, .iov_len = sizeof said - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n;
    while ((n = recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    close(sv[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (c != NULL && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
        int fd;
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
        return fd;
    }
    if (n > 0 && said[0] != '\0')
        snprintf(why, whyn, "%s", said);
    else
        snprintf(why, whyn, "the process loading the BPF iterator ended without a word (status %d)", status);
    return -1;
}

/* Why the pass cannot run here before trying, or NULL. */
static const char *cannot_run(char *why, size_t whyn)
{
    const char *env = getenv("CONNHIST_PROCS_SOURCE");
    struct stat st;
    if (env != NULL && strcmp(env, "proc") == 0)
        snprintf(why, whyn, "CONNHIST_PROCS_SOURCE=proc");
    else if (access(KERNEL_BTF, R_OK) != 0)
        snprintf(why, whyn, "the kernel has no BTF type information (%s: %s)", KERNEL_BTF, strerror(errno));
    else if (geteuid() != 0 && !ch_has_capability(CAP_SYS_ADMIN_BIT) &&
             !(ch_has_capability(CAP_BPF_BIT) && ch_has_capability(CAP_PERFMON_BIT)))
        snprintf(why, whyn, "not running as root (loading BPF needs CAP_BPF and CAP_PERFMON)");
    else if (stat("/proc/self/ns/pid", &st) != 0 || st.st_ino != PROC_PID_INIT_INO)
        snprintf(why, whyn, "not in the initial pid namespace (the kernel names processes by their pids there)");
    else
        return NULL;
    return why;
}

ch_sockfiles *ch_sockfiles_open(char *why, size_t whyn)
{
    if (cannot_run(why, whyn) != NULL)
        return NULL;
    ch_sockfiles *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(why, whyn, "out of memory");
        return NULL;
    }
    s->hz = sysconf(_SC_CLK_TCK);
    if (s->hz <= 0)
        s->hz = 100; /* USER_HZ on every Linux architecture */
    s->link = load_in_child(why, whyn);
    if (s->link < 0) {
        free(s);
        return NULL;
    }
    return s;
}

void ch_sockfiles_close(ch_sockfiles *s)
{
    if (s == NULL)
        return;
    close(s->link);
    free(s->fds);
    free(s->inodes);
    free(s);
}

/* Adds a socket to the process being gathered. Returns 0, or -1 when out
 * of memory. */
static int add_socket(ch_sockfiles *s, int32_t fd, uint64_t inode)
{
    if (s->task.nsockets == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        int32_t *fds = realloc(s->fds, cap * sizeof *fds);
        if (fds != NULL)
            s->fds = fds;
        uint64_t *inodes = fds != NULL ? realloc(s->inodes, cap * sizeof *inodes) : NULL;
        if (inodes == NULL)
            return -1;
        s->inodes = inodes;
        s->cap = cap;
    }
    s->fds[s->task.nsockets] = fd;
    s->inodes[s->task.nsockets++] = inode;
    return 0;
}

/* Hands the process gathered so far to fn. Returns what fn returned. */
static int give(ch_sockfiles *s, ch_task_sockets_fn fn, void *ctx)
{
    if (s->task.pid == 0)
        return 0;
    s->task.fds = s->fds;
    s->task.inodes = s->inodes;
    int rc = fn(ctx, &s->task);
    s->task = (ch_task_sockets){0};
    return rc;
}

/* Takes one record in. Returns 0, 1 when fn stopped the pass, -1 when out
 * of memory. */
static int take(ch_sockfiles *s, const struct ch_file_record *r, ch_task_sockets_fn fn, void *ctx)
{
    if (r->tgid != s->task.pid) {
        if (give(s, fn, ctx) != 0)
            return 1;
        s->task.pid = r->tgid;
        s->task.start_ticks = ch_ns_to_clock_ticks(r->start_ns, s->hz);
    }
    s->task.nfd++;
    return r->inode != 0 ? add_socket(s, (int32_t)r->fd, r->inode) : 0;
}

int ch_sockfiles_read(ch_sockfiles *s, ch_task_sockets_fn fn, void *ctx)
{
    if (s == NULL || fn == NULL)
        return -1;
    int fd = bpf_iter_create(s->link);
    if (fd < 0)
        return -1;
    s->task = (ch_task_sockets){0};
    size_t have = 0; /* bytes of a record cut short by the last read */
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, (char *)s->buf + have, sizeof s->buf - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 || have != 0 ? -1 : 0;
            break;
        }
        have += (size_t)n;
        size_t whole = have / sizeof s->buf[0];
        for (size_t i = 0; rc == 0 && i < whole; i++)
            rc = take(s, &s->buf[i], fn, ctx);
        if (rc != 0)
            break;
        have -= whole * sizeof s->buf[0];
        memmove(s->buf, s->buf + whole, have);
    }
    close(fd);
    if (rc == 0)
        rc = give(s, fn, ctx) != 0;
    s->task = (ch_task_sockets){0};
    /* Given back before the first sample is written, the recorder's
     * peak: a process may hold 10,000 sockets. */
    free(s->fds);
    free(s->inodes);
    s->fds = NULL;
    s->inodes = NULL;
    s->cap = 0;
    return rc;
}
