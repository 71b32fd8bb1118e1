/*
 * From a captured packet to DNS answer facts (names.h): the link, IP and
 * UDP/TCP headers are stepped over here (bounds checked, nothing trusted),
 * the DNS message itself is parsed by ldns. Pure: no capture, no clock, so
 * the unit tests and the fuzzer (fuzz/fuzz_dns.c) drive it with any bytes.
 */
#ifndef CH_NAMES_DECODE_H
#define CH_NAMES_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "names.h"

/* Link types, with libpcap's DLT numbers (pcap/dlt.h). */
enum {
    CH_LINK_ETHERNET = 1,
    CH_LINK_RAW = 12,      /* raw IP (DLT_RAW on Linux; 14 on some systems) */
    CH_LINK_SLL = 113,     /* Linux "any" device, version 1 */
    CH_LINK_IPV4 = 228,
    CH_LINK_IPV6 = 229,
    CH_LINK_SLL2 = 276,    /* Linux "any" device, version 2 */
};

typedef void (*ch_dns_answer_fn)(void *ctx, const ch_dns_answer *a);

/* What one packet was, for the capture's counters. */
enum ch_dns_decoded {
    CH_DNS_ANSWERS,       /* a DNS response: fn was called for each address or alias on its chain (maybe none) */
    CH_DNS_NOT_RESPONSE,  /* not a DNS response from port 53 (a query, another protocol, a fragment) */
    CH_DNS_MALFORMED,     /* looked like one but ldns (or the headers) refused it */
};

/*
 * Decodes one packet of link type link captured at time at (ms UTC) and
 * calls fn for every A, AAAA and CNAME record of its answer section that
 * lies on the chain from the name asked (a record for another name is not
 * the client's answer and is left out). TCP: each complete message inside
 * the segment (a message split over segments is not reassembled and counts
 * as malformed).
 */
enum ch_dns_decoded ch_dns_decode_packet(const uint8_t *pkt, size_t len, int link, int64_t at,
                                         ch_dns_answer_fn fn, void *ctx);

/*
 * Decodes one DNS message (no transport header) with the transport facts of
 * base (at, proto, resolver, client, client_port) and calls fn likewise.
 */
enum ch_dns_decoded ch_dns_decode_message(const uint8_t *msg, size_t len, const ch_dns_answer *base,
                                          ch_dns_answer_fn fn, void *ctx);

#endif
