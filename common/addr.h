/*
 * IP addresses as connhist stores them: canonical text that a person can
 * type into a WHERE clause ('10.0.0.5', '2001:db8::1'), and prefix matching
 * for the query tool's --remote ADDR/PREFIX filter.
 */
#ifndef CH_ADDR_H
#define CH_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t family;      /* 4 or 6 */
    uint8_t bytes[16];   /* network byte order; 4 bytes used for IPv4 */
} ch_addr;

/* Longest canonical text, with its NUL (INET6_ADDRSTRLEN). */
#define CH_ADDR_TEXT 46

/* Canonical text of a: dotted quad, or RFC 5952 IPv6. */
void ch_addr_format(const ch_addr *a, char *out);

/* Parses an IPv4 or IPv6 address (no brackets, no zone). 0 or -1. */
int ch_addr_parse(const char *s, ch_addr *out);

/*
 * Parses "ADDR" or "ADDR/LEN" (LEN 0..32 for IPv4, 0..128 for IPv6). A bare
 * address gets the full length. 0 or -1.
 */
int ch_prefix_parse(const char *s, ch_addr *net, int *len);

/*
 * True when a lies inside net/len. An IPv4-mapped IPv6 address
 * (::ffff:10.0.0.5, as dual-stack sockets report IPv4 peers) matches IPv4
 * prefixes too.
 */
bool ch_addr_in_prefix(const ch_addr *a, const ch_addr *net, int len);

/* True for the all-zero address of its family (0.0.0.0, ::). */
bool ch_addr_is_any(const ch_addr *a);

#endif
