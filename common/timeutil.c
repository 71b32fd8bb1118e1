/*
 * Time helpers shared by the recorder and the query tool. Everything is UTC;
 * the local time zone of the machine never enters the database.
 */
#include "timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ch_now_ms and ch_mono_ms read the system's clocks: see platform_*.c. */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * well-known civil-date algorithm, written out here from its description). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Writes v (0 <= v < 10^n) as exactly n decimal digits, without a NUL. */
static void put_digits(char *out, int n, int v)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void ch_format_time(int64_t ms, char *out)
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int msec = (int)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) { /* wider or signed years: rare enough for printf */
        snprintf(out, CH_TIME_TEXT, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
                 (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), msec);
        return;
    }
    /* The same text digit by digit: the query tool prints several times per
     * lifetime, millions of lifetimes per report. */
    memcpy(out, "0000-00-00T00:00:00.000Z", sizeof "0000-00-00T00:00:00.000Z");
    put_digits(out, 4, (int)y);
    put_digits(out + 5, 2, m);
    put_digits(out + 8, 2, d);
    put_digits(out + 11, 2, (int)(rem / 3600));
    put_digits(out + 14, 2, (int)(rem / 60 % 60));
    put_digits(out + 17, 2, (int)(rem % 60));
    put_digits(out + 20, 3, msec);
}

/* Reads exactly n digits at *p into *val. */
static int digits(const char **p, int n, int *val)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *val = v;
    return 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : mdays[m - 1];
}

static int parse_rfc3339(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, msec = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    int64_t offset_s = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec))
                return -1;
            if (*p == '.') {
                p++;
                int n = 0, scale = 100;
                while (isdigit((unsigned char)*p)) {
                    if (n < 3)
                        msec += (*p - '0') * scale;
                    scale /= 10;
                    n++;
                    p++;
                }
                if (n == 0)
                    return -1;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
                return -1;
            offset_s = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p != '\0')
        return -1;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    *out = secs * 1000 + msec;
    return 0;
}

int ch_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int ch_parse_duration(const char *s, int64_t *out_ms)
{
    if (s == NULL || *s == '\0')
        return -1;
    int64_t total = 0;
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return -1;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > INT64_MAX / 10 - 10)
                return -1;
            n = n * 10 + (*p++ - '0');
        }
        int64_t unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60000;
            p++;
        } else if (*p == 'h') {
            unit = 3600000;
            p++;
        } else if (*p == 'd') {
            unit = 86400000;
            p++;
        } else if (*p == 'w') {
            unit = 7 * 86400000LL;
            p++;
        } else if (*p == '\0' && p != s && total == 0) {
            unit = 1000; /* a bare number is seconds */
        } else {
            return -1;
        }
        if (n > (INT64_MAX / 4 - total) / unit)
            return -1;
        total += n * unit;
    }
    if (total <= 0)
        return -1;
    *out_ms = total;
    return 0;
}

static int parse_time_any(const char *s, int64_t now_ms, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    if (strcmp(s, "now") == 0) {
        *out = now_ms;
        return 0;
    }
    if (*s == '-') {
        int64_t d;
        if (ch_parse_duration(s + 1, &d) != 0 || s[1] == '\0' || !isalpha((unsigned char)s[strlen(s) - 1]))
            return -1;
        *out = now_ms - d;
        return 0;
    }
    const char *num = *s == '@' ? s + 1 : s;
    int64_t v;
    if (ch_parse_int(num, 0, 253402300799LL, &v) == 0) { /* up to year 9999 */
        *out = v * 1000;
        return 0;
    }
    if (*s == '@')
        return -1;
    if (parse_rfc3339(s, out) == 0)
        return 0;
    /* "30m", "2h": a duration ago, but only with an explicit unit. */
    if (isalpha((unsigned char)s[strlen(s) - 1]) && ch_parse_duration(s, &v) == 0) {
        *out = now_ms - v;
        return 0;
    }
    return -1;
}

/* The years RFC 3339 can write (0000-9999): what we print must read back. */
#define FIRST_MS (-62167219200000LL) /* 0000-01-01T00:00:00.000Z */
#define LAST_MS 253402300799999LL    /* 9999-12-31T23:59:59.999Z */

int ch_parse_time(const char *s, int64_t now_ms, int64_t *out)
{
    int64_t t;
    if (parse_time_any(s, now_ms, &t) != 0 || t < FIRST_MS || t > LAST_MS)
        return -1;
    *out = t;
    return 0;
}
