/* Loading a BPF program in a child process (see bpf_child.h). */
#define _GNU_SOURCE
#include "bpf_child.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "caps.h"

#define KERNEL_BTF "/sys/kernel/btf/vmlinux"
#define CAP_SYS_ADMIN_BIT 21
#define CAP_PERFMON_BIT 38
#define CAP_BPF_BIT 39
#define MAX_FDS 8
#define WHY_MAX 512

bool ch_bpf_may_load(char *why, size_t whyn)
{
    if (access(KERNEL_BTF, R_OK) != 0)
        snprintf(why, whyn, "the kernel has no BTF type information (%s: %s)", KERNEL_BTF, strerror(errno));
    else if (geteuid() != 0 && !ch_has_capability(CAP_SYS_ADMIN_BIT) &&
             !(ch_has_capability(CAP_BPF_BIT) && ch_has_capability(CAP_PERFMON_BIT)))
        snprintf(why, whyn, "not running as root (loading BPF needs CAP_BPF and CAP_PERFMON)");
    else
        return true;
    return false;
}

/* The first warning libbpf gave in the loading child, for the reason. */
static char libbpf_said[200];

const char *ch_bpf_libbpf_said(void)
{
    return libbpf_said;
}

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

/* The child: loads, then sends the descriptors (or one line saying why
 * not) over sock, and exits. */
static void load_and_hand_over(ch_bpf_loader load, size_t n, int sock)
{
    char why[WHY_MAX] = "";
    int fds[MAX_FDS];
    libbpf_set_print(keep_first_warning);
    int rc = load(fds, n, why, sizeof why);
    struct msghdr msg = {0};
    char control[CMSG_SPACE(sizeof fds)];
    if (rc == 0) {
        memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    }
    struct iovec iov = {.iov_base = why, .iov_len = strlen(why) + 1};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
    _exit(rc != 0);
}

int ch_bpf_load_in_child(ch_bpf_loader load, int *fds, size_t n, char *why, size_t whyn)
{
    if (n == 0 || n > MAX_FDS) {
        snprintf(why, whyn, "cannot hand %zu BPF descriptors over", n);
        return -1;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(why, whyn, "cannot hand the BPF program over: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        close(sv[0]);
        load_and_hand_over(load, n, sv[1]);
    }
    close(sv[1]);
    if (child < 0) {
        snprintf(why, whyn, "cannot start the process that loads the BPF program: %s", strerror(errno));
        close(sv[0]);
        return -1;
    }
    char said[WHY_MAX] = "";
    char control[CMSG_SPACE(MAX_FDS * sizeof(int))];
    struct iovec iov = {.iov_base = said, .iov_len = sizeof said - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t got;
    while ((got = recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    close(sv[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    struct cmsghdr *c = got > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (c != NULL && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(n * sizeof(int))) {
        memcpy(fds, CMSG_DATA(c), n * sizeof(int));
        return 0;
    }
    if (c != NULL && c->cmsg_type == SCM_RIGHTS) { /* not the count asked: close what came */
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k && i < MAX_FDS; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
            close(fd);
        }
    }
    if (got > 0 && said[0] != '\0')
        snprintf(why, whyn, "%s", said);
    else
        snprintf(why, whyn, "the process loading the BPF program ended without a word (status %d)", status);
    return -1;
}

int ch_bpf_iter_read(int link, void *buf, size_t bufsize, size_t record_size, ch_bpf_records_fn fn, void *ctx)
{
    int fd = bpf_iter_create(link);
    if (fd < 0)
        return -1;
    size_t have = 0; /* bytes of a record cut short by the last read */
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, (char *)buf + have, bufsize - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -1;
            break;
        }
        if (n == 0) {
            if (have != 0) {
                errno = EPROTO;
                rc = -1;
            }
            break;
        }
        have += (size_t)n;
        size_t whole = have / record_size;
        if ((rc = fn(ctx, buf, whole)) != 0)
            break;
        have -= whole * record_size;
        memmove(buf, (char *)buf + whole * record_size, have);
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}
