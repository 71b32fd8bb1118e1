/*
 * libFuzzer target: what users type for times, durations and integers
 * (common/timeutil.c), as both programs read it. Whatever is accepted must
 * be in range, and a time must survive formatting and parsing back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_text.h"
#include "timeutil.h"

#define NOW 1764000000000LL /* 2025-11-24T16:00:00Z: fixed, so runs repeat */

static void check_time(const char *s)
{
    int64_t t;
    if (ch_parse_time(s, NOW, &t) != 0)
        return;
    char text[CH_TIME_TEXT], again[CH_TIME_TEXT];
    ch_format_time(t, text);
    int64_t back;
    if (ch_parse_time(text, NOW, &back) != 0 || back != t)
        abort(); /* what we print must read back as the same instant */
    ch_format_time(back, again);
    if (strcmp(text, again) != 0)
        abort();
}

static void check_duration(const char *s)
{
    int64_t d;
    if (ch_parse_duration(s, &d) == 0 && d <= 0)
        abort();
}

static void check_int(const char *s)
{
    int64_t v;
    if (ch_parse_int(s, -5, 65535, &v) == 0 && (v < -5 || v > 65535))
        abort();
    if (ch_parse_int(s, INT64_MIN, INT64_MAX, &v) == 0 && s[0] == '\0')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstring(data, size);
    if (s == NULL)
        return 0;
    check_time(s);
    check_duration(s);
    check_int(s);
    free(s);
    return 0;
}
