/*
 * The one-file recorder (CONNHIST_STATIC_DEPS) links Debian's libpcap.a,
 * which brings libdbus-1.a for its D-Bus capture source. libdbus's server
 * side can take listening sockets handed over by systemd (sd_listen_fds,
 * sd_is_socket, from libsystemd), which Debian ships as a shared library
 * only. connhist never runs a D-Bus server, nor captures on D-Bus: it opens
 * network interfaces. These two answer as libsystemd does for a process
 * that systemd handed no sockets, so that the recorder needs no
 * libsystemd.so on the machine it is copied to.
 */

/* Sockets passed by systemd: none. */
int sd_listen_fds(int unset_environment);
int sd_listen_fds(int unset_environment)
{
    (void)unset_environment;
    return 0;
}

/* Whether fd is a socket of that kind: never asked, since no fd is passed. */
int sd_is_socket(int fd, int family, int type, int listening);
int sd_is_socket(int fd, int family, int type, int listening)
{
    (void)fd;
    (void)family;
    (void)type;
    (void)listening;
    return 0;
}
