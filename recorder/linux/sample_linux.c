/*
 * Linux sampler: netlink NETLINK_SOCK_DIAG dumps (the interface iproute2's
 * ss uses) of TCP and UDP sockets, IPv4 and IPv6, in every state. Where the
 * kernel or a sandbox refuses netlink, /proc/net is read instead
 * (procnet.c).
 *
 * The sock_diag cookie identifies a socket for its whole life, and the
 * kernel carries it into the socket's TIME_WAIT entry, so it is the row's
 * identity across samples.
 */
#define _GNU_SOURCE
#include "sample.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "diag_parse.h"
#include "procnet.h"
#include "socks_iter.h"

#define RECV_BUF_SIZE (256 * 1024)
#define DUMP_RETRIES 5

struct ch_sampler {
    int fd;         /* netlink socket, or -1 when reading /proc/net */
    uint32_t seq;
    uint32_t states;  /* TCP states asked for: all, or none to probe */
    bool tcp_once;    /* TCP of both families in one dump (TCPDIAG_GETSOCK) */
    bool counters;    /* ask tcp_info (byte counters) with TCP rows */
    bool leave_out_tcp;   /* the next take dumps UDP only (ch_sampler_leave_out_tcp) */
    int64_t tcp_timer_ms; /* of the last TCP dump (ch_sampler_tcp_timer_ms) */
    char *buf;
    ch_socks_iter *iter; /* the BPF socket iterators, which replace the dumps where they load */
    const char *note; /* pending ch_sampler_next_note */
    char fallback_note[160];
    bool noted_intr, noted_overrun; /* each trouble is noted once per run */
    char iter_note[400];
};

/* Hands out a note on a trouble once; a note already pending wins, and
 * this one waits for the trouble to come back. */
static void note_once(ch_sampler *s, bool *noted, const char *note)
{
    if (!*noted && s->note == NULL) {
        s->note = note;
        *noted = true;
    }
}

static int netlink_open(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -1;
    int size = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    return fd;
}

static int send_request(ch_sampler *s, const void *msg, size_t len)
{
    struct sockaddr_nl to = {.nl_family = AF_NETLINK};
    for (;;) {
        ssize_t n = sendto(s->fd, msg, len, 0, (struct sockaddr *)&to, sizeof to);
        if (n == (ssize_t)len)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

/*
 * Asks for one dump: of (family, protocol), or with family AF_UNSPEC of
 * TCP over both families through the original inet_diag request
 * (TCPDIAG_GETSOCK), which the kernel answers with one walk of its TCP
 * tables where two SOCK_DIAG_BY_FAMILY requests walk them twice, each
 * skipping the other family's sockets: half the cost of an idle machine's
 * dump, whose walk of the mostly empty table is most of it.
 */
static int send_dump_request(ch_sampler *s, int family, int protocol)
{
    /* tcp_info for the byte counters: about 250 bytes more per TCP socket
     * in the reply (the rows alone are about 100), and the kernel locks
     * each socket to fill it in. */
    uint8_t ext = protocol == IPPROTO_TCP && s->counters ? 1U << (INET_DIAG_INFO - 1) : 0;
    bool tcp_once = family == AF_UNSPEC;
    struct {
        struct nlmsghdr nlh;
        union {
            struct inet_diag_req once; /* TCPDIAG_GETSOCK: TCP of both families */
            struct inet_diag_req_v2 by_family;
        } req;
    } msg;
    memset(&msg, 0, sizeof msg);
    uint32_t len = NLMSG_LENGTH(tcp_once ? sizeof msg.req.once : sizeof msg.req.by_family);
    msg.nlh = (struct nlmsghdr){.nlmsg_len = len, .nlmsg_type = tcp_once ? TCPDIAG_GETSOCK : SOCK_DIAG_BY_FAMILY,
                                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = ++s->seq};
    if (tcp_once) {
        msg.req.once.idiag_states = s->states;
        msg.req.once.idiag_ext = ext;
    } else {
        msg.req.by_family.sdiag_family = (uint8_t)family;
        msg.req.by_family.sdiag_protocol = (uint8_t)protocol;
        msg.req.by_family.idiag_states = s->states; /* every state, TIME_WAIT and LISTEN included */
        msg.req.by_family.idiag_ext = ext;
    }
    return send_request(s, &msg, len);
}

/*
 * Reads one dump's replies into out. Returns 0 when complete, 1 when the
 * kernel flagged the dump as interrupted (to be redone), 2 when the receive
 * buffer overran (messages were lost: resynchronise), -1 on error.
 */
static int receive_dump(ch_sampler *s, int protocol, ch_sample *out, char *err, size_t errn)
{
    ch_diag_dump d = {.seq = s->seq, .tcp = protocol == IPPROTO_TCP, .soonest_timer_ms = UINT32_MAX};
    for (;;) {
        ssize_t n = recv(s->fd, s->buf, RECV_BUF_SIZE, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOBUFS)
                return 2;
            snprintf(err, errn, "netlink receive: %s", strerror(errno));
            return -1;
        }
        int rc = ch_diag_parse(&d, s->buf, (size_t)n, out);
        if (rc == CH_DIAG_DONE) {
            if (d.tcp && d.soonest_timer_ms != UINT32_MAX &&
                (s->tcp_timer_ms < 0 || d.soonest_timer_ms < s->tcp_timer_ms))
                s->tcp_timer_ms = d.soonest_timer_ms;
            return d.interrupted ? 1 : 0;
        }
        if (rc == CH_DIAG_ERROR) {
            if (d.error == ENOMEM)
                snprintf(err, errn, "out of memory for socket rows");
            else
                snprintf(err, errn, "netlink dump refused: %s", strerror(d.error));
            errno = d.error;
            return -1;
        }
    }
}

/*
 * After an overrun the kernel may still be sending the lost dump, and
 * refuses a new one on the same socket (EBUSY) until it is drained: start
 * over on a fresh socket. When none can be opened the old one is kept; the
 * stale replies are skipped by their sequence number.
 */
static void netlink_reopen(ch_sampler *s)
{
    int fd = netlink_open();
    if (fd < 0)
        return;
    close(s->fd);
    s->fd = fd;
}

static int netlink_take(ch_sampler *s, ch_sample *out, char *err, size_t errn)
{
    typedef struct {
        int family, protocol;
    } dump_kind;
    static const dump_kind by_family[] = {
        {AF_INET, IPPROTO_TCP}, {AF_INET6, IPPROTO_TCP}, {AF_INET, IPPROTO_UDP}, {AF_INET6, IPPROTO_UDP},
    }, tcp_once[] = {
        {AF_UNSPEC, IPPROTO_TCP}, {AF_INET, IPPROTO_UDP}, {AF_INET6, IPPROTO_UDP},
    };
    const dump_kind *dumps = s->tcp_once ? tcp_once : by_family;
    size_t ndumps = s->tcp_once ? sizeof tcp_once / sizeof tcp_once[0] : sizeof by_family / sizeof by_family[0];
    int resyncs = 0;
    size_t first = 0;
    if (s->leave_out_tcp)
        first = s->tcp_once ? 1 : 2; /* the UDP dumps come after the TCP ones */
    else
        s->tcp_timer_ms = -1;
    for (size_t i = first; i < ndumps; i++) {
        size_t mark = out->count, consumed = out->consumed;
        int rc = 1;
        for (int attempt = 0; rc == 1 && attempt < DUMP_RETRIES; attempt++) {
            out->count = mark;
            out->consumed = consumed;
            if (send_dump_request(s, dumps[i].family, dumps[i].protocol) != 0) {
                snprintf(err, errn, "netlink request: %s", strerror(errno));
                return -1;
            }
            rc = receive_dump(s, dumps[i].protocol, out, err, errn);
            if (rc == 1)
                note_once(s, &s->noted_intr, "netlink dump interrupted by a change of the socket table: redone");
        }
        if (rc == 2) {
            /* Rows were lost: a partial sample would close live sockets.
             * Resynchronise: every dump again, from a fresh socket. */
            note_once(s, &s->noted_overrun, "netlink receive buffer overrun: resynchronised with a full dump");
            if (++resyncs > DUMP_RETRIES) {
                snprintf(err, errn, "netlink receive buffer kept overrunning (%d resyncs)", DUMP_RETRIES);
                return -1;
            }
            netlink_reopen(s);
            out->count = 0;
            out->consumed = 0;
            i = first - 1;
            continue;
        }
        /* IPv6 may be absent from the kernel: an empty answer, not a failure. */
        if (rc < 0 && dumps[i].family == AF_INET6 && (errno == ENOENT || errno == EAFNOSUPPORT)) {
            out->count = mark;
            continue;
        }
        if (rc != 0) {
            if (rc == 1)
                snprintf(err, errn, "netlink dump kept being interrupted (%d tries)", DUMP_RETRIES);
            return -1;
        }
    }
    return 0;
}

/* Errors that mean sock_diag is not allowed or not there, as opposed to a
 * dump that failed this time (an overrun, a dump interrupted again and again). */
static bool is_refusal(int e)
{
    return e == EPERM || e == EACCES || e == EPROTONOSUPPORT || e == EAFNOSUPPORT || e == ENOENT ||
           e == EOPNOTSUPP || e == EINVAL;
}

/* One probe: the dumps, asking for no state at all, so the kernel answers
 * each at once with no rows: it costs neither a walk of the socket tables
 * nor memory for them. */
static int probe_once(ch_sampler *s, char *err, size_t errn)
{
    ch_sample probe = {0};
    int rc = netlink_take(s, &probe, err, errn);
    int saved = errno;
    ch_sample_free(&probe);
    errno = saved;
    return rc;
}

/* Proves the kernel answers before relying on it: a refusal ends the proof
 * at once, a transient failure is tried again. Returns 0, or -1 (errno
 * set). */
static int probe_netlink(ch_sampler *s, char *err, size_t errn)
{
    s->states = 0;
    /* The one TCP dump of both families first; a kernel built without the
     * original request (or a filter that allows only the newer one)
     * refuses it, and is asked family by family. */
    s->tcp_once = true;
    int rc = probe_once(s, err, errn);
    if (rc != 0)
        s->tcp_once = false;
    for (int attempt = 0; rc != 0 && attempt < 3; attempt++) {
        rc = probe_once(s, err, errn);
        if (rc != 0 && is_refusal(errno))
            break;
    }
    s->states = ~0U;
    return rc;
}

ch_sampler *ch_sampler_open(const char *force, bool one_sample, char *err, size_t errn)
{
    ch_sampler *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errn, "out of memory");
        return NULL;
    }
    s->fd = -1;
    s->states = ~0U;
    s->tcp_timer_ms = -1;
    s->counters = true;
    if (force == NULL || strcmp(force, "netlink") == 0) {
        s->buf = malloc(RECV_BUF_SIZE);
        s->fd = s->buf ? netlink_open() : -1;
        if (s->fd >= 0 && probe_netlink(s, err, errn) != 0) {
            int saved = errno;
            close(s->fd);
            s->fd = -1;
            errno = saved;
        }
        if (s->fd < 0 && force == NULL) {
            snprintf(s->fallback_note, sizeof s->fallback_note, "netlink sock_diag %s (%s): sampled /proc/net",
                     is_refusal(errno) ? "refused" : "kept failing", strerror(errno));
            s->note = s->fallback_note;
        }
        if (s->fd < 0 && force != NULL) {
            snprintf(err, errn, "netlink sock_diag is not available: %s", strerror(errno));
            ch_sampler_close(s);
            return NULL;
        }
        /* Loading them reads the kernel's BTF (in a child): about 60 ms
         * of CPU, where they save about a quarter of each dump. One
         * sample saves less, so it uses them only when the holder pass's
         * load reads the BTF anyway (socks_iter.h). */
        if (s->fd >= 0 && force == NULL) {
            char why[300];
            s->iter = ch_socks_iter_open(one_sample, why, sizeof why); /* NULL: dumps, which do the same */
        }
    } else if (strcmp(force, "procfs") != 0) {
        snprintf(err, errn, "unknown sampler '%s' (expected netlink or procfs)", force);
        ch_sampler_close(s);
        return NULL;
    }
    return s;
}

const char *ch_sampler_name(const ch_sampler *s)
{
    if (s->iter != NULL)
        return "bpf_iter";
    return s->fd >= 0 ? "netlink" : "procfs";
}

void ch_sampler_byte_counters(ch_sampler *s, bool in_samples)
{
    s->counters = in_samples;
}

bool ch_sampler_ident_is_stable(const ch_sampler *s)
{
    return s->fd >= 0; /* cookies; /proc/net rows carry only inodes */
}

const char *ch_sampler_next_note(ch_sampler *s)
{
    const char *note = s->note;
    s->note = NULL;
    return note;
}

bool ch_sampler_leave_out_tcp(ch_sampler *s, bool leave_out)
{
    s->leave_out_tcp = leave_out && s->fd >= 0 && s->states == ~0U;
    return s->leave_out_tcp;
}

int64_t ch_sampler_tcp_timer_ms(const ch_sampler *s)
{
    return s->fd >= 0 ? s->tcp_timer_ms : -1;
}

/* The tables through the BPF iterators: TCP (unless left out), then UDP.
 * Returns 0, or -1 with the reason in err. */
static int iter_take(ch_sampler *s, ch_sample *out, char *err, size_t errn)
{
    uint32_t soonest = UINT32_MAX;
    if (!s->leave_out_tcp && ch_socks_iter_take(s->iter, true, out, &soonest, err, errn) != 0)
        return -1;
    if (ch_socks_iter_take(s->iter, false, out, &soonest, err, errn) != 0)
        return -1;
    if (!s->leave_out_tcp)
        s->tcp_timer_ms = soonest != UINT32_MAX ? (int64_t)soonest : -1;
    return 0;
}

int ch_sampler_take(ch_sampler *s, ch_sample *out, char *err, size_t errn)
{
    ch_sample_clear(out);
    if (s->iter != NULL) {
        int rc = iter_take(s, out, err, errn);
        if (rc == 0) {
            s->leave_out_tcp = false;
            return 0;
        }
        /* Dumped through sock_diag from now on, which the iterators only
         * replaced; said once. */
        snprintf(s->iter_note, sizeof s->iter_note, "BPF socket iterators failed (%s): dumped through sock_diag", err);
        s->note = s->iter_note;
        ch_socks_iter_close(s->iter);
        s->iter = NULL;
        ch_sample_clear(out);
    }
    if (s->fd >= 0) {
        int rc = netlink_take(s, out, err, errn);
        s->leave_out_tcp = false; /* for one take */
        return rc;
    }
    return ch_procnet_read("/proc/net", out, err, errn);
}

void ch_sampler_close(ch_sampler *s)
{
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    ch_socks_iter_close(s->iter);
    free(s->buf);
    free(s);
}
