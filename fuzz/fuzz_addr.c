/*
 * libFuzzer target: addresses and prefixes as users type them for
 * --remote (common/addr.c). An accepted address must print in a canonical
 * form that parses back to the same bytes, and a prefix must contain its
 * own network address.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "fuzz_text.h"

static void check_addr(const char *s)
{
    ch_addr a, b;
    if (ch_addr_parse(s, &a) != 0)
        return;
    char text[CH_ADDR_TEXT];
    ch_addr_format(&a, text);
    if (ch_addr_parse(text, &b) != 0 || a.family != b.family || memcmp(a.bytes, b.bytes, 16) != 0)
        abort();
}

static void check_prefix(const char *s)
{
    ch_addr net;
    int len;
    if (ch_prefix_parse(s, &net, &len) != 0)
        return;
    if (len < 0 || len > (net.family == 6 ? 128 : 32))
        abort();
    if (!ch_addr_in_prefix(&net, &net, len))
        abort();
    (void)ch_addr_is_any(&net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstring(data, size);
    if (s == NULL)
        return 0;
    check_addr(s);
    check_prefix(s);
    free(s);
    return 0;
}
