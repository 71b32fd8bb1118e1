/*
 * Decoding the owner records of owners.bpf.c (see owners_decode.h).
 */
#include "owners_decode.h"

#include <string.h>
#include <sys/socket.h>

#include "owners_record.h"

#define NSEC_PER_SEC 1000000000ULL

uint64_t ch_ns_to_clock_ticks(uint64_t ns, long hz)
{
    if (hz <= 0)
        return 0;
    uint64_t h = (uint64_t)hz;
    if (NSEC_PER_SEC % h == 0) /* USER_HZ is 100 on every architecture Linux has */
        return ns / (NSEC_PER_SEC / h);
    if (h % 512 == 0)
        return ns * h / 512 / (NSEC_PER_SEC / 512);
    /* The kernel's general case, exact for 60, 90, 300...; like the
     * kernel's, it overflows after 65 years of uptime. */
    return ns * 9 / ((9 * NSEC_PER_SEC + h / 2) / h);
}

int ch_owner_decode(const void *data, size_t size, long hz, ch_owner_fact *out)
{
    struct ch_owner_record r;
    if (size != sizeof r)
        return -1;
    memcpy(&r, data, sizeof r);
    if (r.cookie == 0 || r.tgid == 0)
        return -1;
    *out = (ch_owner_fact){.ident = r.cookie, .pid = r.tgid, .start = ch_ns_to_clock_ticks(r.start_ns, hz),
                           .uid = r.uid};
    _Static_assert(sizeof out->name == sizeof r.comm, "names are the kernel's length");
    memcpy(out->name, r.comm, sizeof out->name);
    out->name[sizeof out->name - 1] = '\0';
    return 0;
}

static int decode_counters(const struct ch_close_record *r, ch_close_fact *out)
{
    if (r->cookie == 0 || r->bytes_acked > INT64_MAX || r->bytes_received > INT64_MAX)
        return -1;
    *out = (ch_close_fact){
        .ident = r->cookie, .bytes_sent = (int64_t)r->bytes_acked, .bytes_received = (int64_t)r->bytes_received};
    return 0;
}

int ch_close_decode(const void *data, size_t size, ch_close_fact *out)
{
    if (size == sizeof(struct ch_close_record)) {
        struct ch_close_record r;
        memcpy(&r, data, sizeof r);
        return decode_counters(&r, out);
    }
    struct ch_close_addrs_record r;
    if (size != sizeof r)
        return -1;
    memcpy(&r, data, sizeof r);
    if (decode_counters(&r.counters, out) != 0)
        return -1;
    int family = r.family == AF_INET ? 4 : r.family == AF_INET6 ? 6 : 0;
    if (family == 0)
        return 0; /* the counters only */
    out->has_addrs = true;
    out->local_port = r.local_port;
    out->remote_port = r.remote_port;
    out->local = (ch_addr){.family = (uint8_t)family};
    out->remote = (ch_addr){.family = (uint8_t)family};
    memcpy(out->local.bytes, r.local, family == 4 ? 4 : 16);
    memcpy(out->remote.bytes, r.remote, family == 4 ? 4 : 16);
    return 0;
}
