/*
 * Test shim, loaded with LD_PRELOAD: refuses netlink sockets as a locked
 * down sandbox or seccomp policy would (EACCES), so the recorder's
 * automatic fallback to /proc/net can be tested with the real binary.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>

int socket(int domain, int type, int protocol)
{
    if (domain == AF_NETLINK) {
        errno = EACCES;
        return -1;
    }
    int (*real)(int, int, int) = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
    return real(domain, type, protocol);
}
