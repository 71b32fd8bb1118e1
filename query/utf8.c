/*
 * UTF-8 validation and repair (see utf8.h), per RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF.
 */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

size_t utf8_sequence(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min, cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, min = 0x80, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, min = 0x800, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Length of the valid sequence in the NUL-terminated text at p, or 0: a NUL
 * is no continuation byte, so the check never reads past the terminator. */
static size_t valid_length(const unsigned char *p)
{
    return utf8_sequence(p, 4);
}

char *utf8_repair(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = 0, bad = 0;
    while (p[len] != '\0') {
        size_t n = valid_length(p + len);
        bad += n == 0;
        len += n == 0 ? 1 : n;
    }
    if (bad == 0)
        return NULL;
    char *out = malloc(len + bad * 2 + 1); /* U+FFFD is 3 bytes for 1 */
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = valid_length(p + i);
        if (n == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, p + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    return out;
}
