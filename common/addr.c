/*
 * Address text and prefix matching. The platform's inet_ntop/inet_pton
 * (platform.h) give the canonical forms.
 */
#include "addr.h"

#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "timeutil.h"

void ch_addr_format(const ch_addr *a, char *out)
{
    if (ch_platform_ntop(a->family, a->bytes, out, CH_ADDR_TEXT) != 0)
        strcpy(out, "?");
}

int ch_addr_parse(const char *s, ch_addr *out)
{
    memset(out, 0, sizeof *out);
    if (s == NULL)
        return -1;
    if (strchr(s, ':') != NULL) {
        out->family = 6;
        return ch_platform_pton(6, s, out->bytes);
    }
    out->family = 4;
    return ch_platform_pton(4, s, out->bytes);
}

int ch_prefix_parse(const char *s, ch_addr *net, int *len)
{
    if (s == NULL || strlen(s) >= 64)
        return -1;
    char buf[64];
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    if (slash != NULL)
        *slash = '\0';
    if (ch_addr_parse(buf, net) != 0)
        return -1;
    int max = net->family == 6 ? 128 : 32;
    if (slash == NULL) {
        *len = max;
        return 0;
    }
    int64_t v;
    if (ch_parse_int(slash + 1, 0, max, &v) != 0)
        return -1;
    *len = (int)v;
    return 0;
}

static bool bits_equal(const uint8_t *a, const uint8_t *b, int len)
{
    int whole = len / 8, rest = len % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool ch_addr_in_prefix(const ch_addr *a, const ch_addr *net, int len)
{
    if (a->family == net->family)
        return bits_equal(a->bytes, net->bytes, len);
    if (a->family == 6 && net->family == 4 && memcmp(a->bytes, v4_mapped_prefix, 12) == 0)
        return bits_equal(a->bytes + 12, net->bytes, len);
    return false;
}

bool ch_addr_is_any(const ch_addr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->bytes, zero, a->family == 6 ? 16 : 4) == 0;
}
