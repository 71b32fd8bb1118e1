/*
 * The neutral socket row every sampler produces, and the sampler interface.
 * Nothing above this layer (tracker, store) sees an operating system type.
 */
#ifndef CH_SAMPLE_H
#define CH_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

enum ch_proto { CH_TCP = 1, CH_UDP = 2 };

/*
 * Socket states, named as the tables and JSON show them. TCP states follow
 * the kernel's numbering; UDP sockets are UNCONN (bound, no peer) or
 * ESTABLISHED (connect()ed).
 */
enum ch_state {
    CH_ST_UNKNOWN = 0,
    CH_ST_ESTABLISHED = 1,
    CH_ST_SYN_SENT,
    CH_ST_SYN_RECV,
    CH_ST_FIN_WAIT1,
    CH_ST_FIN_WAIT2,
    CH_ST_TIME_WAIT,
    CH_ST_CLOSE,
    CH_ST_CLOSE_WAIT,
    CH_ST_LAST_ACK,
    CH_ST_LISTEN,
    CH_ST_CLOSING,
    CH_ST_NEW_SYN_RECV,
    CH_ST_UNCONN,
    CH_ST_COUNT
};

/* "ESTABLISHED", "LISTEN", ...; "UNKNOWN" for out-of-range values. */
const char *ch_state_name(int state);

/* The state of that name, or CH_ST_UNKNOWN. */
int ch_state_from_name(const char *name);

/* A module that owns sockets (Windows: a service hosted by svchost.exe, or
 * a program), as the sampler interns it. */
typedef struct {
    const char *name; /* NULL when unknown */
    const char *path; /* its file; NULL when unknown */
} ch_module;

/*
 * CH_SOCK_OS_FIELDS: the row has the fields only some OS reports with a
 * socket (Windows: the owning pid, offload state, creation time and
 * module). The build sets it for every object where they are needed
 * (CMakeLists.txt: Windows, and the fuzz build, which runs the Windows
 * sampler's pure half). Elsewhere they are left out of the row, which is 80
 * bytes instead of 104, and of the sample's packed rows, and read through
 * the ch_sock_ functions below as "not reported".
 */
#ifndef CH_SOCK_OS_FIELDS
#define CH_SOCK_OS_FIELDS 0
#endif

/* (uid_t)-1, which the kernel never gives a user (INVALID_UID). */
#define CH_UID_UNKNOWN UINT32_MAX

typedef struct {
    uint8_t proto;        /* enum ch_proto */
    uint8_t state;        /* enum ch_state */
    uint16_t local_port;  /* host byte order */
    uint16_t remote_port; /* host byte order; 0 with an any remote address */
    ch_addr local;
    ch_addr remote;       /* all zero for listeners and unconnected UDP */
    /* Extras some platforms report (Windows); zero/NULL/-1 elsewhere. The
     * 32-bit ones sit here, next to the addresses, to keep the row small. */
    uint32_t local_scope; /* IPv6 scope (interface) id; 0 when none */
    uint32_t remote_scope;
#if CH_SOCK_OS_FIELDS
    uint32_t pid;         /* owning pid as the OS reports it with the row; 0 when not reported */
    int8_t offload;       /* enum ch_offload; -1 when unknown (ch_sample_add sets -1) */
#endif
    uint64_t ident;       /* identity across samples (sock_diag cookie); 0 = none */
    /* 32-bit, as the kernel has them (socket inodes come from get_next_ino(),
     * an unsigned int; uid_t), so the row is 80 bytes, not 88. */
    uint32_t inode; /* socket inode; 0 when the kernel gave none (TIME_WAIT) */
    uint32_t uid;   /* socket owner uid; CH_UID_UNKNOWN when unknown */
#if CH_SOCK_OS_FIELDS
    int64_t created;      /* when the OS created the socket, ms UTC; 0 when not reported */
    const ch_module *module; /* owner module; NULL when unknown; the sampler's, valid until it is closed */
#endif
    /* TCP byte counters (Linux tcp_info: bytes acked by the peer, bytes
     * received; Windows extended statistics); -1 when not reported (UDP,
     * /proc/net, Windows without the statistics). */
    int64_t bytes_sent;
    int64_t bytes_received;
} ch_sock;

/* The row as the samplers fill it and the tracker reads it (a sample keeps
 * its rows packed). */
_Static_assert(sizeof(ch_sock) <= (CH_SOCK_OS_FIELDS ? 104 : 80), "a sample row stays small");

/* The fields only Windows reports, as "not reported" elsewhere. */
static inline uint32_t ch_sock_pid(const ch_sock *s)
{
#if CH_SOCK_OS_FIELDS
    return s->pid;
#else
    (void)s;
    return 0;
#endif
}

static inline int ch_sock_offload(const ch_sock *s)
{
#if CH_SOCK_OS_FIELDS
    return s->offload;
#else
    (void)s;
    return -1;
#endif
}

static inline int64_t ch_sock_created(const ch_sock *s)
{
#if CH_SOCK_OS_FIELDS
    return s->created;
#else
    (void)s;
    return 0;
#endif
}

static inline const ch_module *ch_sock_module(const ch_sock *s)
{
#if CH_SOCK_OS_FIELDS
    return s->module;
#else
    (void)s;
    return NULL;
#endif
}

/* TCP connection offload states (Windows TCP_CONNECTION_OFFLOAD_STATE). */
enum ch_offload { CH_OFFLOAD_IN_HOST, CH_OFFLOAD_OFFLOADING, CH_OFFLOAD_OFFLOADED, CH_OFFLOAD_UPLOADING };

/* "in_host", "offloading", "offloaded", "uploading"; NULL when unknown. */
const char *ch_offload_name(int offload);

/*
 * One sample of the machine: its rows, kept packed (sample.c), since a
 * first sample holds one per socket of the machine. A row takes the bytes
 * its fields need: 32 for an IPv4 socket whose byte counters and scope ids
 * are not reported (against 80 for a ch_sock), 56 for an IPv6 one; a
 * ch_sock is what goes in and comes out. The row added last stays a
 * ch_sock (staged) until the next is added, so that the sampler can fill it
 * in place and a consumer can drop it.
 */
typedef struct {
    size_t count; /* rows; a sampler may lower it (drop the last row, or go back to a mark), never raise it */
    /* Optional, for samplers that can stream (Linux netlink): called with
     * each row as it is read; a row it returns true for was taken care of
     * and is not kept (counted in consumed), so a sample of a machine whose
     * sockets are already known holds only what is new. */
    bool (*consume)(void *ctx, const ch_sock *row);
    /* Optional, with consume: called with the identities of the next few
     * rows before they are consumed, so that what consume will look up is
     * fetched into the cache meanwhile (a hint; it changes nothing). */
    void (*prefetch)(void *ctx, const uint64_t *idents, size_t n);
    void *consume_ctx;
    size_t consumed;
    /* sample.c's own: rows [0, npacked) packed, row i from byte at[i] on
     * (the last up to packed_len); row npacked, when count is above it, in
     * staged */
    unsigned char *packed;
    size_t packed_len, packed_cap;
    uint32_t *at;
    size_t at_cap, npacked;
    ch_sock staged;
} ch_sample;

/* Appends a zeroed row (offload -1 where rows have one: unknown; byte
 * counters -1) and returns it to be filled; it stays valid until the
 * sample is next changed. NULL when out of memory. */
ch_sock *ch_sample_add(ch_sample *s);
/* Row i (i < count), as it was filled. */
ch_sock ch_sample_row(const ch_sample *s, size_t i);
/* Replaces row i (i < count) with row (Windows finishes rows after adding
 * them; tests change them between samples). Returns 0, or -1 when out of
 * memory (row i is then unchanged). */
int ch_sample_put(ch_sample *s, size_t i, const ch_sock *row);
/* The packed bytes row i takes (for tests and benchmarks). */
size_t ch_sample_row_bytes(const ch_sample *s, size_t i);
void ch_sample_clear(ch_sample *s);

/* Gives back the room an earlier, much larger sample left behind (a first
 * sample holds every socket of the machine; a streamed one after it only
 * the rows not consumed): capacity beyond twice this sample's rows, when it
 * uses under a quarter. */
void ch_sample_trim(ch_sample *s);
/* Drops the rows from n on and gives their memory back (what the
 * tracker took in from a first sample: see ch_tracker_settle). */
void ch_sample_truncate(ch_sample *s, size_t n);
void ch_sample_free(ch_sample *s);

/* True when the two rows have every field the same. */
bool ch_sock_same(const ch_sock *a, const ch_sock *b);

/* True when the row has a peer (not a listener, not unconnected UDP). */
bool ch_sock_has_remote(const ch_sock *s);

/*
 * A sampler: fills a sample with every TCP and UDP socket of the machine,
 * IPv4 and IPv6, all states. Returns 0, or -1 with a message in err.
 */
typedef struct ch_sampler ch_sampler;

/* Opens the best sampler available (on Linux: netlink, its dumps made
 * through BPF socket iterators where they load, else /proc/net).
 * force may name one ("netlink", "procfs") or be NULL. one_sample: only
 * one sample will be taken (--once), which what loading the iterators
 * costs would outweigh: dumps then. */
ch_sampler *ch_sampler_open(const char *force, bool one_sample, char *err, size_t errn);
const char *ch_sampler_name(const ch_sampler *s);

/* True when the sampler's idents identify a socket across runs, so the
 * store keeps them (netlink cookies, Windows identities); false when they
 * are inodes, which the store keeps anyway. */
bool ch_sampler_ident_is_stable(const ch_sampler *s);

/* Whether samples carry TCP byte counters (default: yes, where the
 * platform has them). The recorder turns them off where announcements of
 * closed sockets bring each connection's final counters (Linux: asking
 * every socket's tcp_info in each dump locks every socket and makes the
 * dump several times longer). */
void ch_sampler_byte_counters(ch_sampler *s, bool in_samples);

/*
 * Leaves the TCP tables out of the next sample (that one only), where the
 * sampler can: returns true when it will (Linux netlink), false when the
 * sample has them all the same. The recorder asks it when kernel events
 * say the TCP tables did not move since they were last dumped (owners.h),
 * so that a dump would find what the last one found.
 */
bool ch_sampler_leave_out_tcp(ch_sampler *s, bool leave_out);

/* Of the last sample with the TCP tables: in how many ms, from when that
 * sample began, the soonest timer it reported ends a TIME_WAIT entry or a
 * half-open request, or sends a SYN-ACK again (changes no event
 * announces); -1 when none, or where the sampler does not say. */
int64_t ch_sampler_tcp_timer_ms(const ch_sampler *s);

/* The next note on what the sampler could not do, each said once (the
 * recorder logs it and adds it to the run row); NULL when none is pending. */
const char *ch_sampler_next_note(ch_sampler *s);
int ch_sampler_take(ch_sampler *s, ch_sample *out, char *err, size_t errn);
void ch_sampler_close(ch_sampler *s);

#endif
