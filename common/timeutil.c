/*
 * Time helpers shared by the recorder and the query tool. Everything is UTC;
 * the local time zone of the machine never enters the database.
 */
#include "timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
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

/* The date of the day ch_format_time printed last, per thread: the times of
 * one report mostly fall on a few days, and the civil date is the costly
 * part of the text. */
static _Thread_local int64_t last_day = INT64_MIN;
static _Thread_local char last_date[sizeof "0000-00-00"];

void ch_format_time(int64_t ms, char *out)
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int msec = (int)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int rem = (int)(secs - days * 86400);
    if (days != last_day) {
        int64_t y;
        int m, d;
        civil_from_days(days, &y, &m, &d);
        if (y < 0 || y > 9999) { /* wider or signed years: rare enough for printf */
            snprintf(out, CH_TIME_TEXT, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d, rem / 3600,
                     rem / 60 % 60, rem % 60, msec);
            return;
        }
        memcpy(last_date, "0000-00-00", sizeof last_date);
        put_digits(last_date, 4, (int)y);
        put_digits(last_date + 5, 2, m);
        put_digits(last_date + 8, 2, d);
        last_day = days;
    }
    /* The rest digit by digit: the query tool prints several times per
     * lifetime, millions of lifetimes per report. */
    memcpy(out, last_date, 10);
    memcpy(out + 10, "T00:00:00.000Z", sizeof "T00:00:00.000Z");
    put_digits(out + 11, 2, rem / 3600);
    put_digits(out + 14, 2, rem / 60 % 60);
    put_digits(out + 17, 2, rem % 60);
    put_digits(out + 20, 3, msec);
}

/* '0'-'9' only: isdigit() may take other digits in some locales. */
static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads exactly n digits at *p into *val. */
static int digits(const char **p, int n, int *val)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i]))
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

/* Reads ".DIGITS" of seconds at *p into *msec; CH_PARSE_FINE when a digit
 * past the third is not 0 (the syntax is still read to its end). */
static int read_second_fraction(const char **p, int *msec)
{
    const char *q = *p + 1;
    int n = 0, scale = 100, fine = 0;
    for (; is_digit(*q); q++, n++) {
        if (n < 3)
            *msec += (*q - '0') * scale;
        else if (*q != '0')
            fine = 1;
        scale /= 10;
    }
    if (n == 0)
        return CH_PARSE_FORM;
    *p = q;
    return fine ? CH_PARSE_FINE : 0;
}

static int parse_rfc3339(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, msec = 0, fine = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return CH_PARSE_FORM;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return CH_PARSE_FORM;
    int64_t offset_s = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
            return CH_PARSE_FORM;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec))
                return CH_PARSE_FORM;
            if (*p == '.' && (fine = read_second_fraction(&p, &msec)) == CH_PARSE_FORM)
                return CH_PARSE_FORM;
        }
        if (h > 23 || mi > 59 || sec > 60)
            return CH_PARSE_FORM;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
                return CH_PARSE_FORM;
            offset_s = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p != '\0')
        return CH_PARSE_FORM;
    if (fine)
        return fine;
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

const char *ch_parse_problem(int rc, const char *not_form)
{
    switch (rc) {
    case CH_PARSE_FINE:
        return "is finer than a millisecond";
    case CH_PARSE_LARGE:
        return "is too large";
    case CH_PARSE_YEARS:
        return "is outside the years 0000-9999";
    default:
        return not_form;
    }
}

/*
 * How many places of a fraction can matter. The longest unit, a week, is
 * 604800000 ms = 2^10 * 3^3 * 5^5 * 7 (a day has the same 2^10 and 5^5):
 * a fraction whose last non-zero digit lies past the tenth place is never a
 * whole number of milliseconds in any unit. Up to there the exact test in
 * decimal_to_ms decides, in 64 bits: 10^10 * 604800000 < INT64_MAX.
 */
#define MAX_PLACES 10

/* A number as typed, read without strtod (so LC_NUMERIC never matters). */
typedef struct {
    int64_t whole;   /* the digits before the point */
    int64_t frac;    /* the fraction without its trailing zeros, as an integer */
    int places;      /* how many places frac takes: "0.250" is 25 in 2 places */
    int point;       /* a point was written ("1.0" as well as "1.5") */
    int problem;     /* CH_PARSE_LARGE or CH_PARSE_FINE, found while reading */
} decimal;

/* Reads DIGITS or DIGITS.DIGITS at *p and moves *p past it; CH_PARSE_FORM
 * when there is no such number there. A value problem (too many digits) is
 * left in d->problem so the caller can first check the rest of the form. */
static int read_decimal(const char **p, decimal *d)
{
    const char *q = *p;
    memset(d, 0, sizeof *d);
    if (!is_digit(*q))
        return CH_PARSE_FORM;
    for (; is_digit(*q); q++) {
        if (d->whole > (INT64_MAX - (*q - '0')) / 10)
            d->problem = CH_PARSE_LARGE;
        else
            d->whole = d->whole * 10 + (*q - '0');
    }
    if (*q == '.') {
        d->point = 1;
        if (!is_digit(*++q))
            return CH_PARSE_FORM;
        int64_t acc = 0;
        for (int n = 1; is_digit(*q); q++, n++) {
            if (*q == '0')
                continue;
            if (n > MAX_PLACES) {
                d->problem = d->problem ? d->problem : CH_PARSE_FINE;
                continue;
            }
            for (; d->places < n - 1; d->places++) /* the zeros skipped before this digit */
                acc *= 10;
            acc = acc * 10 + (*q - '0');
            d->places = n;
        }
        d->frac = acc;
    }
    *p = q;
    return 0;
}

/* The number d of units unit_ms long, in whole milliseconds, into *out; or
 * CH_PARSE_FINE (not whole), CH_PARSE_LARGE (past CH_DURATION_MAX). */
static int decimal_to_ms(const decimal *d, int64_t unit_ms, int64_t *out)
{
    if (d->problem != 0)
        return d->problem;
    if (d->whole > CH_DURATION_MAX / unit_ms)
        return CH_PARSE_LARGE;
    int64_t scale = 1;
    for (int i = 0; i < d->places; i++)
        scale *= 10;
    int64_t part = d->frac * unit_ms; /* < 10^MAX_PLACES * unit_ms: see MAX_PLACES */
    if (part % scale != 0)
        return CH_PARSE_FINE;
    int64_t ms = d->whole * unit_ms;
    part /= scale;
    if (part > CH_DURATION_MAX - ms)
        return CH_PARSE_LARGE;
    *out = ms + part;
    return 0;
}

/* The units, largest first: a chain of them must follow this order. */
static const struct {
    const char *name;
    int64_t ms;
} units[] = {{"w", 7 * 86400000LL}, {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};

/* The unit at *p (its index in units[]), moving *p past it; -1 for none. */
static int read_unit(const char **p)
{
    int found = -1;
    size_t found_len = 0;
    for (int i = 0; i < (int)(sizeof units / sizeof units[0]); i++) {
        size_t n = strlen(units[i].name);
        if (strncmp(*p, units[i].name, n) == 0 && n > found_len) { /* "ms" before "m" */
            found = i;
            found_len = n;
        }
    }
    *p += found_len;
    return found;
}

int ch_parse_duration(const char *s, int64_t *out_ms)
{
    decimal d;
    const char *p = s;
    if (s == NULL || read_decimal(&p, &d) != 0)
        return CH_PARSE_FORM;
    if (*p == '\0')
        return decimal_to_ms(&d, 1000, out_ms); /* a bare number is seconds */
    int64_t total = 0;
    int last_unit = -1, problem = 0;
    for (p = s; *p != '\0';) {
        int64_t ms = 0;
        if (read_decimal(&p, &d) != 0)
            return CH_PARSE_FORM;
        int u = read_unit(&p);
        if (u <= last_unit)
            return CH_PARSE_FORM; /* no unit, or not smaller than the last: 1h30m, not 1h30, 30m1h, 1h1h */
        if (d.point && *p != '\0')
            return CH_PARSE_FORM; /* a fraction in the last part only: 1h0.5m, not 0.5h30m */
        last_unit = u;
        int rc = decimal_to_ms(&d, units[u].ms, &ms);
        if (rc == 0 && ms > CH_DURATION_MAX - total)
            rc = CH_PARSE_LARGE;
        if (rc != 0 && problem == 0)
            problem = rc; /* reported once the whole text is known to be a duration */
        total += rc == 0 ? ms : 0;
    }
    if (problem != 0)
        return problem;
    *out_ms = total;
    return 0;
}

/* Epoch seconds, decimals allowed: "1764140000", "1764140000.250". */
static int parse_epoch(const char *s, int64_t *out)
{
    decimal d;
    const char *p = s;
    if (read_decimal(&p, &d) != 0 || *p != '\0')
        return CH_PARSE_FORM;
    return decimal_to_ms(&d, 1000, out);
}

/* A duration with a unit, meaning that long before now: "2h", "1.5h", "1d12h". */
static int parse_ago(const char *s, int64_t now_ms, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || is_digit(s[n - 1]))
        return CH_PARSE_FORM; /* a bare number is an epoch second, not a time ago */
    int64_t d;
    int rc = ch_parse_duration(s, &d);
    if (rc != 0)
        return rc;
    *out = now_ms - d;
    return 0;
}

/* Four digits and a '-': a date, so RFC 3339 is the form to explain. */
static int looks_like_date(const char *s)
{
    for (int i = 0; i < 4; i++) {
        if (!is_digit(s[i]))
            return 0;
    }
    return s[4] == '-';
}

static int parse_time_any(const char *s, int64_t now_ms, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return CH_PARSE_FORM;
    if (strcmp(s, "now") == 0) {
        *out = now_ms;
        return 0;
    }
    if (*s == '-')
        return parse_ago(s + 1, now_ms, out);
    if (*s == '@')
        return parse_epoch(s + 1, out);
    if (looks_like_date(s))
        return parse_rfc3339(s, out);
    if (strspn(s, "0123456789.") == strlen(s))
        return parse_epoch(s, out);
    return parse_ago(s, now_ms, out); /* "30m", "2h": that long ago */
}

/* The years RFC 3339 can write (0000-9999): what we print must read back. */
#define FIRST_MS (-62167219200000LL) /* 0000-01-01T00:00:00.000Z */
#define LAST_MS 253402300799999LL    /* 9999-12-31T23:59:59.999Z */

int ch_parse_time(const char *s, int64_t now_ms, int64_t *out)
{
    int64_t t;
    int rc = parse_time_any(s, now_ms, &t);
    if (rc == CH_PARSE_LARGE || (rc == 0 && (t < FIRST_MS || t > LAST_MS)))
        return CH_PARSE_YEARS;
    if (rc != 0)
        return rc;
    *out = t;
    return 0;
}
