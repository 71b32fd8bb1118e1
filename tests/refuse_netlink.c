/*
 * Test shim, loaded with LD_PRELOAD: refuses netlink sockets as a locked
 * down sandbox or seccomp policy would (EACCES), so the recorder's
 * automatic fallback to /proc/net can be tested with the real binary.
 *
 * With CONNHIST_REFUSE_TCPDIAG set it refuses only the original inet_diag
 * request (TCPDIAG_GETSOCK, TCP of both families in one dump), as a kernel
 * without it would: the request goes to the kernel with a message type it
 * does not know, and the kernel answers with its own error. Each request
 * so refused appends a line "tcpdiag" to the file CONNHIST_REFUSE_TCPDIAG
 * names, so a test can prove it happened.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>

int socket(int domain, int type, int protocol)
{
    if (domain == AF_NETLINK && getenv("CONNHIST_REFUSE_TCPDIAG") == NULL) {
        errno = EACCES;
        return -1;
    }
    int (*real)(int, int, int) = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
    return real(domain, type, protocol);
}

static void note_refused(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    (void)!write(fd, "tcpdiag\n", 8);
    close(fd);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
    ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *, socklen_t) =
        (ssize_t (*)(int, const void *, size_t, int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "sendto");
    const char *log = getenv("CONNHIST_REFUSE_TCPDIAG");
    struct nlmsghdr h;
    char copy[256];
    if (log == NULL || len < sizeof h || len > sizeof copy || to == NULL || to->sa_family != AF_NETLINK)
        return real(fd, buf, len, flags, to, tolen);
    memcpy(&h, buf, sizeof h);
    if (h.nlmsg_type != TCPDIAG_GETSOCK)
        return real(fd, buf, len, flags, to, tolen);
    h.nlmsg_type = 0x7ff; /* no sock_diag message: the kernel answers EINVAL */
    memcpy(copy, buf, len);
    memcpy(copy, &h, sizeof h);
    note_refused(log);
    return real(fd, copy, len, flags, to, tolen);
}
