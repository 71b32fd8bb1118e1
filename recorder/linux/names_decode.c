/*
 * Captured packets to DNS answer facts (see names_decode.h). The headers
 * before the DNS message are fixed layouts read with explicit bounds; the
 * message, with its name compression, is ldns's to parse.
 */
#include "names_decode.h"

#include <ctype.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#define DNS_PORT 53
#define MAX_CHAIN 16 /* names on a CNAME chain followed; resolvers stop well before */

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* The name of rdf as lower-case text without the final dot ("" for the
 * root). -1 when it is not a name or too long to keep. */
static int name_text(const ldns_rdf *rdf, char *out)
{
    if (rdf == NULL || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME)
        return -1;
    char *text = ldns_rdf2str(rdf);
    if (text == NULL)
        return -1;
    size_t n = strlen(text);
    if (n > 0 && text[n - 1] == '.')
        n--;
    int rc = -1;
    if (n < CH_DNS_NAME_MAX) {
        for (size_t i = 0; i < n; i++)
            out[i] = (char)tolower((unsigned char)text[i]);
        out[n] = '\0';
        rc = 0;
    }
    free(text);
    return rc;
}

static bool on_chain(ldns_rdf *const *chain, int n, const ldns_rdf *name)
{
    for (int i = 0; i < n; i++)
        if (ldns_dname_compare(chain[i], name) == 0)
            return true;
    return false;
}

/* The names from qname along the answer's CNAME records, qname first. */
static int follow_chain(const ldns_rr_list *answers, ldns_rdf *qname, ldns_rdf **chain)
{
    int n = 0;
    chain[n++] = qname;
    size_t count = ldns_rr_list_rr_count(answers);
    for (bool grew = true; grew && n < MAX_CHAIN;) {
        grew = false;
        for (size_t i = 0; i < count && n < MAX_CHAIN; i++) {
            const ldns_rr *rr = ldns_rr_list_rr(answers, i);
            ldns_rdf *target = ldns_rr_rd_count(rr) == 1 ? ldns_rr_rdf(rr, 0) : NULL;
            if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME || target == NULL ||
                ldns_rdf_get_type(target) != LDNS_RDF_TYPE_DNAME)
                continue;
            if (on_chain(chain, n, ldns_rr_owner(rr)) && !on_chain(chain, n, target)) {
                chain[n++] = target;
                grew = true;
            }
        }
    }
    return n;
}

/* Fills the record's part of a from rr; -1 when it is not one we keep. */
static int record_fact(const ldns_rr *rr, ch_dns_answer *a)
{
    ldns_rr_type type = ldns_rr_get_type(rr);
    const ldns_rdf *rd = ldns_rr_rd_count(rr) == 1 ? ldns_rr_rdf(rr, 0) : NULL;
    if (rd == NULL || ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN || name_text(ldns_rr_owner(rr), a->rname) != 0)
        return -1;
    memset(&a->addr, 0, sizeof a->addr);
    a->target[0] = '\0';
    a->ttl = ldns_rr_ttl(rr);
    if (type == LDNS_RR_TYPE_A && ldns_rdf_size(rd) == 4) {
        a->type = CH_DNS_A;
        a->addr.family = 4;
        memcpy(a->addr.bytes, ldns_rdf_data(rd), 4);
    } else if (type == LDNS_RR_TYPE_AAAA && ldns_rdf_size(rd) == 16) {
        a->type = CH_DNS_AAAA;
        a->addr.family = 6;
        memcpy(a->addr.bytes, ldns_rdf_data(rd), 16);
    } else if (type == LDNS_RR_TYPE_CNAME && name_text(rd, a->target) == 0) {
        a->type = CH_DNS_CNAME;
    } else {
        return -1;
    }
    return 0;
}

enum ch_dns_decoded ch_dns_decode_message(const uint8_t *msg, size_t len, const ch_dns_answer *base,
                                          ch_dns_answer_fn fn, void *ctx)
{
    ldns_pkt *pkt = NULL;
    if (ldns_wire2pkt(&pkt, msg, len) != LDNS_STATUS_OK)
        return CH_DNS_MALFORMED;
    enum ch_dns_decoded rc = CH_DNS_NOT_RESPONSE;
    const ldns_rr_list *question = ldns_pkt_question(pkt), *answers = ldns_pkt_answer(pkt);
    ch_dns_answer a = *base;
    if (ldns_pkt_qr(pkt) && question != NULL && ldns_rr_list_rr_count(question) >= 1) {
        rc = CH_DNS_ANSWERS;
        ldns_rdf *qname = ldns_rr_owner(ldns_rr_list_rr(question, 0));
        a.qtype = (uint16_t)ldns_rr_get_type(ldns_rr_list_rr(question, 0));
        if (answers != NULL && ldns_pkt_get_rcode(pkt) == LDNS_RCODE_NOERROR && name_text(qname, a.qname) == 0) {
            ldns_rdf *chain[MAX_CHAIN];
            int n = follow_chain(answers, qname, chain);
            for (size_t i = 0; i < ldns_rr_list_rr_count(answers); i++) {
                const ldns_rr *rr = ldns_rr_list_rr(answers, i);
                if (on_chain(chain, n, ldns_rr_owner(rr)) && record_fact(rr, &a) == 0)
                    fn(ctx, &a);
            }
        }
    }
    ldns_pkt_free(pkt);
    return rc;
}

/* The transport part of a response: where the DNS message starts. */
typedef struct {
    const uint8_t *payload;
    size_t len;
    uint8_t proto;
} transport;

/* Steps over a UDP or TCP header from port 53 into t. -1: not one. */
static int read_transport(const uint8_t *p, size_t len, uint8_t proto, ch_dns_answer *a, transport *t)
{
    size_t header;
    if (proto == 17 && len >= 8) {
        size_t udp_len = be16(p + 4);
        if (udp_len < 8 || udp_len > len)
            return -1;
        header = 8;
        len = udp_len;
    } else if (proto == 6 && len >= 20) {
        header = (size_t)(p[12] >> 4) * 4;
        if (header < 20 || header > len)
            return -1;
    } else {
        return -1;
    }
    if (be16(p) != DNS_PORT)
        return -1;
    a->client_port = be16(p + 2);
    a->proto = proto;
    *t = (transport){p + header, len - header, proto};
    return 0;
}

/* Steps over an IPv4 or IPv6 header (no fragments, no IPv6 extension
 * headers) into t, with the addresses in a. -1: not a packet we read. */
static int read_ip(const uint8_t *p, size_t len, ch_dns_answer *a, transport *t)
{
    if (len >= 20 && p[0] >> 4 == 4) {
        size_t ihl = (size_t)(p[0] & 15) * 4, total = be16(p + 2);
        bool fragment = (be16(p + 6) & 0x3fff) != 0; /* more fragments, or an offset */
        if (ihl < 20 || total < ihl || total > len || fragment)
            return -1;
        a->resolver.family = a->client.family = 4;
        memcpy(a->resolver.bytes, p + 12, 4);
        memcpy(a->client.bytes, p + 16, 4);
        return read_transport(p + ihl, total - ihl, p[9], a, t);
    }
    if (len >= 40 && p[0] >> 4 == 6) {
        size_t payload = be16(p + 4);
        if (40 + payload > len)
            return -1;
        a->resolver.family = a->client.family = 6;
        memcpy(a->resolver.bytes, p + 8, 16);
        memcpy(a->client.bytes, p + 24, 16);
        return read_transport(p + 40, payload, p[6], a, t);
    }
    return -1;
}

/* Where the IP packet starts after the link header; -1 when it is not IP. */
static long ip_offset(const uint8_t *p, size_t len, int link)
{
    switch (link) {
    case CH_LINK_RAW:
    case 14:
    case CH_LINK_IPV4:
    case CH_LINK_IPV6:
        return 0;
    case CH_LINK_ETHERNET:
        return len >= 14 && (be16(p + 12) == 0x0800 || be16(p + 12) == 0x86dd) ? 14 : -1;
    case CH_LINK_SLL:
        return len >= 16 && (be16(p + 14) == 0x0800 || be16(p + 14) == 0x86dd) ? 16 : -1;
    case CH_LINK_SLL2:
        return len >= 20 && (be16(p) == 0x0800 || be16(p) == 0x86dd) ? 20 : -1;
    default:
        return -1;
    }
}

/* Each complete length-prefixed message of a TCP segment. */
static enum ch_dns_decoded decode_tcp(const transport *t, const ch_dns_answer *base, ch_dns_answer_fn fn, void *ctx)
{
    if (t->len == 0)
        return CH_DNS_NOT_RESPONSE; /* a bare ACK, SYN or FIN */
    enum ch_dns_decoded rc = CH_DNS_MALFORMED;
    size_t at = 0;
    while (t->len - at >= 2) {
        size_t n = be16(t->payload + at);
        if (n == 0 || n > t->len - at - 2)
            return CH_DNS_MALFORMED; /* split over segments: not reassembled */
        enum ch_dns_decoded one = ch_dns_decode_message(t->payload + at + 2, n, base, fn, ctx);
        if (one != CH_DNS_ANSWERS)
            return one;
        rc = CH_DNS_ANSWERS;
        at += 2 + n;
    }
    return at == t->len ? rc : CH_DNS_MALFORMED;
}

enum ch_dns_decoded ch_dns_decode_packet(const uint8_t *pkt, size_t len, int link, int64_t at,
                                         ch_dns_answer_fn fn, void *ctx)
{
    long off = pkt != NULL ? ip_offset(pkt, len, link) : -1;
    ch_dns_answer base;
    memset(&base, 0, offsetof(ch_dns_answer, qname));
    base.qname[0] = base.rname[0] = base.target[0] = '\0';
    base.at = base.last_at = at;
    base.count = 1;
    transport t;
    if (off < 0 || read_ip(pkt + off, len - (size_t)off, &base, &t) != 0)
        return CH_DNS_NOT_RESPONSE;
    if (t.proto == 6)
        return decode_tcp(&t, &base, fn, ctx);
    return ch_dns_decode_message(t.payload, t.len, &base, fn, ctx);
}
