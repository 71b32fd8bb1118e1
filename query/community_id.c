/*
 * Community ID v1 (see community_id.h). The hashed bytes, all in network
 * byte order: the seed (2 bytes), the source address, the destination
 * address, the protocol (1 byte), a zero byte, the source port and the
 * destination port (2 bytes each). The endpoints are ordered first, the
 * smaller (address, then port) as the source, so that both directions of
 * a flow hash alike. The digest is written in base64 with padding after
 * the version prefix "1:".
 */
#include "community_id.h"

#include <string.h>

#include "sha1.h"

/* Whether (a, a_port) comes before (b, b_port): smaller address bytes, or
 * the same address and a smaller port. */
static int ordered(const uint8_t *a, uint16_t a_port, const uint8_t *b, uint16_t b_port, size_t len)
{
    int c = memcmp(a, b, len);
    return c < 0 || (c == 0 && a_port < b_port);
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)(v & 0xff);
}

/* Base64 (RFC 4648, with '=' padding) of the n bytes at in; out holds
 * 4 * ((n + 2) / 3) + 1 bytes. */
static void base64(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = digits[v >> 18];
        *out++ = digits[(v >> 12) & 63];
        *out++ = digits[(v >> 6) & 63];
        *out++ = digits[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *out++ = digits[v >> 18];
        *out++ = digits[(v >> 12) & 63];
        *out++ = i + 1 < n ? digits[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    *out = '\0';
}

int community_id_v1(uint16_t seed, uint8_t proto, const ch_addr *a, uint16_t a_port, const ch_addr *b,
                    uint16_t b_port, char out[COMMUNITY_ID_TEXT])
{
    if (a->family != b->family || (a->family != 4 && a->family != 6))
        return -1;
    size_t len = a->family == 4 ? 4 : 16;
    if (!ordered(a->bytes, a_port, b->bytes, b_port, len)) {
        const ch_addr *t = a;
        a = b;
        b = t;
        uint16_t p = a_port;
        a_port = b_port;
        b_port = p;
    }
    uint8_t buf[2 + 16 + 16 + 2 + 4], *p = buf;
    put_be16(p, seed);
    p += 2;
    memcpy(p, a->bytes, len);
    p += len;
    memcpy(p, b->bytes, len);
    p += len;
    *p++ = proto;
    *p++ = 0;
    put_be16(p, a_port);
    put_be16(p + 2, b_port);
    p += 4;
    uint8_t digest[SHA1_DIGEST_SIZE];
    if (sha1_digest(buf, (size_t)(p - buf), digest) != 0)
        return -1;
    out[0] = '1';
    out[1] = ':';
    base64(digest, sizeof digest, out + 2);
    return 0;
}
