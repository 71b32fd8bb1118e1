/*
 * libFuzzer target: what users type for times, durations and integers
 * (common/timeutil.c), as both programs read it. Whatever is accepted must
 * be in range, a time must survive formatting and parsing back, a duration
 * must read the same written back in ms or in seconds and, with a minus, as
 * a time ago; a plain number of seconds must match a reading done the plain
 * way (reference_seconds), finer than a millisecond included.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_text.h"
#include "timeutil.h"

#define NOW 1764000000000LL /* 2025-11-24T16:00:00Z: fixed, so runs repeat */
#define LAST_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z, the last time there is */

static void check_time(const char *s)
{
    int64_t t;
    int rc = ch_parse_time(s, NOW, &t);
    if (rc != 0 && rc != CH_PARSE_FORM && rc != CH_PARSE_FINE && rc != CH_PARSE_YEARS)
        abort(); /* too large for a time is outside the years */
    if (rc != 0)
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

/*
 * What a bare number of seconds must give, worked out the plain way: digits,
 * one point with a digit on each side, and no non-zero digit past the third
 * place (else CH_PARSE_FINE). Returns 1 and sets *ms, 0 for a value that is
 * well formed but not whole, -1 for one not of the form or too long to say.
 */
static int reference_seconds(const char *s, int64_t *ms)
{
    size_t n = strlen(s), point = strcspn(s, ".");
    if (n == 0 || n > 40 || point == 0 || point > 15 || point + 1 == n || strspn(s, "0123456789.") != n)
        return -1; /* up to 15 digits of seconds: 10^18 ms fits in 64 bits */
    if (point < n && strchr(s + point + 1, '.') != NULL)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < point; i++)
        v = v * 10 + (s[i] - '0');
    for (size_t i = 1; i <= 3; i++)
        v = v * 10 + (point + i < n ? s[point + i] - '0' : 0);
    for (size_t i = point + 4; i < n; i++) {
        if (s[i] != '0')
            return 0;
    }
    *ms = v;
    return 1;
}

static void check_duration(const char *s)
{
    int64_t d;
    int rc = ch_parse_duration(s, &d);
    if (rc != 0 && rc != CH_PARSE_FORM && rc != CH_PARSE_FINE && rc != CH_PARSE_LARGE)
        abort();
    int64_t want;
    int ref = reference_seconds(s, &want);
    if (ref == 1 && (rc != 0 || d != want))
        abort(); /* a plain number of seconds, read wrong */
    int64_t t;
    int trc = ch_parse_time(s, NOW, &t);
    if (ref == 1 && (want <= LAST_MS ? trc != 0 || t != want : trc != CH_PARSE_YEARS))
        abort(); /* as a time, the same number is epoch seconds */
    if (ref == 0 && rc != CH_PARSE_FINE)
        abort(); /* a digit past the millisecond, not refused as such */
    if (rc != 0)
        return;
    if (d < 0 || d > CH_DURATION_MAX)
        abort();
    /* What it means, written back in milliseconds and in seconds, reads the same. */
    char text[48];
    int64_t back;
    snprintf(text, sizeof text, "%lldms", (long long)d);
    if (ch_parse_duration(text, &back) != 0 || back != d)
        abort();
    snprintf(text, sizeof text, "%lld.%03lld", (long long)(d / 1000), (long long)(d % 1000));
    if (ch_parse_duration(text, &back) != 0 || back != d)
        abort();
    /* The same text with a minus is that long before now, for the query tool:
     * one syntax in both programs (a bare number is an epoch second there). */
    size_t n = strlen(s);
    if (n == 0 || n > 200 || (s[n - 1] >= '0' && s[n - 1] <= '9'))
        return;
    char ago[204] = "-";
    memcpy(ago + 1, s, n + 1);
    rc = ch_parse_time(ago, NOW, &t);
    if (rc == 0 ? t != NOW - d : rc != CH_PARSE_YEARS)
        abort();
    /* A number after the last unit has no unit of its own: "1h30" is refused. */
    ago[n + 1] = '5';
    ago[n + 2] = '\0';
    if (ch_parse_duration(ago + 1, &back) == 0)
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
