/*
 * For the C tests of process attribution (Linux): loopback sockets, a
 * child process that hides a socket where a look-up that reads only what
 * changed cannot see it, and the clocks the look-up rations its full reads
 * by, under the test's control.
 */
#ifndef CH_TEST_HIDDEN_SOCKET_H
#define CH_TEST_HIDDEN_SOCKET_H

#include <stdint.h>
#include <sys/types.h>

/* The inode of descriptor fd, or 0. */
uint64_t inode_of(int fd);

/* A loopback socket bound to an ephemeral port (listening for TCP), or -1. */
int loopback_socket(int family, int type);

/*
 * The clocks of this test program (its clock_gettime stands in for the C
 * library's, and the recorder's objects are linked into it): every reading
 * of this thread's CPU time adds step_ns to it (0, the start: it stands
 * still, so reading every process costs nothing and is always allowed), and
 * the monotonic clock runs ahead by what clock_skip added. Other clocks are
 * the kernel's.
 */
void clock_cpu_step(int64_t step_ns);
void clock_skip(int64_t ns);

/*
 * A child holding a file and a UDP socket (first). On hider_swap it closes
 * the file and opens a second socket, which takes the file's descriptor
 * number: its descriptor count stays what it was, so only a full read of
 * the child finds the second socket. hider_start and hider_swap return 0,
 * or -1 (the test's checks say why).
 */
typedef struct {
    pid_t pid;
    int cmd, resp; /* pipes to and from the child */
    uint64_t first, second;
} hider;

int hider_start(hider *h);
int hider_swap(hider *h);
void hider_stop(hider *h);

#endif
