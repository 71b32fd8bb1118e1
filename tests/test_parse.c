/*
 * Parsing what users type: times, durations, integers, addresses, prefixes;
 * and formatting times back.
 */
#include <locale.h>
#include <string.h>

#include "addr.h"
#include "check.h"
#include "timeutil.h"

/* A value and what a parser must make of it: 0 and ms, or a CH_PARSE_* reason. */
typedef struct {
    const char *text;
    int rc;
    int64_t ms;
} parse_case;

#define NOW 1764000000000LL /* 2025-11-24T16:00:00Z */

static void check_cases(const char *what, const parse_case *cases, size_t n, int time)
{
    for (size_t i = 0; i < n; i++) {
        int64_t v = -12345;
        int rc = time ? ch_parse_time(cases[i].text, NOW, &v) : ch_parse_duration(cases[i].text, &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].ms)) {
            fprintf(stderr, "%s '%s': rc %d value %lld, expected rc %d value %lld\n", what, cases[i].text, rc,
                    (long long)v, cases[i].rc, (long long)cases[i].ms);
            check_failures++;
        }
        if (rc != 0 && v != -12345) {
            fprintf(stderr, "%s '%s' refused but wrote a value\n", what, cases[i].text);
            check_failures++;
        }
    }
}

#define FORM CH_PARSE_FORM
#define FINE CH_PARSE_FINE
#define LARGE CH_PARSE_LARGE
#define YEARS CH_PARSE_YEARS

static const parse_case time_cases[] = {
    {"2026-11-24T10:00:00Z", 0, 1795514400000LL},
    {"2026-11-24T10:00:00.250Z", 0, 1795514400250LL},
    {"2026-11-24T10:00:00.25Z", 0, 1795514400250LL},
    {"2026-11-24T10:00:00.2500000Z", 0, 1795514400250LL}, /* zeros past ms change nothing */
    {"2026-11-24T10:00:00.2501Z", FINE, 0},
    {"2026-11-24T10:00:00.0000001Z", FINE, 0},
    {"2026-11-24T10:00:00.2501X", FORM, 0}, /* the form is judged first */
    {"2026-11-24T10:00:00.Z", FORM, 0},
    {"2026-11-24T11:00:00+01:00", 0, 1795514400000LL},
    {"2026-11-24 10:00", 0, 1795514400000LL},
    {"2026-11-24", 0, 1795478400000LL},
    {"1764000000", 0, 1764000000000LL},
    {"1764140000.250", 0, 1764140000250LL}, /* epoch seconds take decimals like any number */
    {"1764140000.25", 0, 1764140000250LL},
    {"1764140000.001", 0, 1764140000001LL},
    {"1764140000.0001", FINE, 0},
    {"1764140000.2500", 0, 1764140000250LL},
    {"@1764140000.250", 0, 1764140000250LL},
    {"0.001", 0, 1},
    {"@0", 0, 0},
    {"253402300799.999", 0, 253402300799999LL}, /* the last instant of 9999 */
    {"253402300800", YEARS, 0},
    {"99999999999999999999", YEARS, 0},
    {"99999999999999999999.5", YEARS, 0},
    {"-2h", 0, NOW - 7200000},
    {"30m", 0, NOW - 1800000},
    {"1.5h", 0, NOW - 5400000},
    {"-1.5h", 0, NOW - 5400000},
    {"-0.5d", 0, NOW - 43200000},
    {"-1d12h", 0, NOW - 129600000},
    {"-250ms", 0, NOW - 250},
    {"-0.0001s", FINE, 0},
    {"-0s", 0, NOW},
    {"-99999999w", YEARS, 0},
    {"-3812571114w", YEARS, 0},
    {"now", 0, NOW},
    {"", FORM, 0},
    {"yesterday", FORM, 0},
    {"2026-13-01", FORM, 0},
    {"2026-02-30", FORM, 0},
    {"2026-11-24T25:00Z", FORM, 0},
    {"2026-11-24T10:00:00X", FORM, 0},
    {"-", FORM, 0},
    {"-5", FORM, 0}, /* a time ago needs its unit: a bare number is an epoch second */
    {"-5.5", FORM, 0},
    {"--2h", FORM, 0},
    {"@x", FORM, 0},
    {"@", FORM, 0},
    {"@-1", FORM, 0},
    {"@1.", FORM, 0},
    {"@.5", FORM, 0},
    {"12abc", FORM, 0},
    {"2026-11-24T10:00:00+1:00", FORM, 0},
    {"1e3", FORM, 0},
    {"0x10", FORM, 0},
    {"NaN", FORM, 0},
    {"inf", FORM, 0},
    {"1.", FORM, 0},
    {".5", FORM, 0},
    {".", FORM, 0},
    {"1764140000,250", FORM, 0},
    {"+1764140000", FORM, 0},
    {" 1764140000", FORM, 0},
    {"1764140000 ", FORM, 0},
    {"1.5h ago", FORM, 0},
    {"0000-01-01T00:00:00+00:01", YEARS, 0},
};

static void test_times(void)
{
    char buf[CH_TIME_TEXT];
    check_cases("time", time_cases, sizeof time_cases / sizeof time_cases[0], 1);
    ch_format_time(1795514400250LL, buf);
    CHECK_STR(buf, "2026-11-24T10:00:00.250Z");
    ch_format_time(0, buf);
    CHECK_STR(buf, "1970-01-01T00:00:00.000Z");
    ch_format_time(951782400000LL, buf); /* a leap day */
    CHECK_STR(buf, "2000-02-29T00:00:00.000Z");
}

static const parse_case duration_cases[] = {
    /* a bare number is seconds, decimals included */
    {"0.2", 0, 200},
    {"1", 0, 1000},
    {"1.5", 0, 1500},
    {"0.05", 0, 50},
    {"0.001", 0, 1},
    {"0.0010", 0, 1},
    {"90", 0, 90000},
    {"0", 0, 0},
    {"0.000", 0, 0},
    {"00010", 0, 10000},
    {"1.000000000000000000000000", 0, 1000}, /* zeros past the ms are exact */
    /* a unit after any number */
    {"500ms", 0, 500},
    {"1s", 0, 1000},
    {"1.5s", 0, 1500},
    {"0.5h", 0, 1800000},
    {"2.5m", 0, 150000},
    {"1.25d", 0, 108000000},
    {"0.5w", 0, 302400000},
    {"90d", 0, 90LL * 86400000},
    {"1w", 0, 7LL * 86400000},
    {"0.00001h", 0, 36},
    {"0.0000003125w", 0, 189}, /* ten places, still whole milliseconds */
    /* chains: largest unit first, each once, a fraction in the last only */
    {"1h30m", 0, 5400000},
    {"1d12h", 0, 129600000},
    {"1h0.5m", 0, 3630000},
    {"1w1d1h1m1s1ms", 0, 694861001},
    /* finer than a millisecond */
    {"0.0001", FINE, 0},
    {"1.5ms", FINE, 0},
    {"0.5ms", FINE, 0},
    {"0.0005s", FINE, 0},
    {"0.000001h", FINE, 0},
    {"0.00000031251w", FINE, 0},
    {"1.00000000001s", FINE, 0},
    {"1.0000000000000000000001", FINE, 0},
    {"1h0.0001s", FINE, 0},
    /* the limit, CH_DURATION_MAX = 2305843009213693951 ms */
    {"2305843009213693951ms", 0, CH_DURATION_MAX},
    {"2305843009213693.951", 0, CH_DURATION_MAX},
    {"3812571113w71293951ms", 0, CH_DURATION_MAX},
    {"2305843009213693952ms", LARGE, 0},
    {"2305843009213693.952", LARGE, 0},
    {"3812571113w71293952ms", LARGE, 0},
    {"3812571113w1d", LARGE, 0}, /* each part fits, the sum does not */
    {"3812571114w", LARGE, 0},
    {"9223372036854775807ms", LARGE, 0},
    {"9223372036854775808ms", LARGE, 0},
    {"99999999999999999999", LARGE, 0},
    {"99999999999999999999d", LARGE, 0},
    {"99999999999999999999.5s", LARGE, 0},
    /* not a duration at all */
    {"", FORM, 0},
    {"s", FORM, 0},
    {"ms", FORM, 0},
    {"5x", FORM, 0},
    {"-1s", FORM, 0},
    {"-1", FORM, 0},
    {"+1s", FORM, 0},
    {"1s2", FORM, 0},
    {"1h30", FORM, 0},
    {" 1s", FORM, 0},
    {"1s ", FORM, 0},
    {"1 s", FORM, 0},
    {"1e3", FORM, 0},
    {"1E3", FORM, 0},
    {"1e-3", FORM, 0},
    {"0x10", FORM, 0},
    {"1.", FORM, 0},
    {"1.s", FORM, 0},
    {".5", FORM, 0},
    {".5s", FORM, 0},
    {"1..5", FORM, 0},
    {"1.5.5", FORM, 0},
    {"1,5", FORM, 0},
    {"1,5s", FORM, 0},
    {"NaN", FORM, 0},
    {"nan", FORM, 0},
    {"inf", FORM, 0},
    {"infinity", FORM, 0},
    {"1h1h", FORM, 0},
    {"30m1h", FORM, 0},
    {"1ms1s", FORM, 0},
    {"1sms", FORM, 0},
    {"1hm", FORM, 0},
    {"0.5h30m", FORM, 0},
    {"1.0h30m", FORM, 0},
    {"1S", FORM, 0},
    {"1H", FORM, 0},
    {"1us", FORM, 0},
    {"1ns", FORM, 0},
    {"1msx", FORM, 0},
    {"\xef\xbc\x91s", FORM, 0}, /* a full-width digit one */
    {"0.0001x", FORM, 0},        /* the form is judged first */
    {"99999999999999999999x", FORM, 0},
};

static void test_durations(void)
{
    check_cases("duration", duration_cases, sizeof duration_cases / sizeof duration_cases[0], 0);
    int64_t v;
    CHECK_INT(ch_parse_duration(NULL, &v), FORM);
    CHECK_INT(ch_parse_time(NULL, NOW, &v), FORM);
}

/* The reasons as messages show them (both programs print these words). */
static void test_problems(void)
{
    CHECK_STR(ch_parse_problem(CH_PARSE_FINE, "is not a duration"), "is finer than a millisecond");
    CHECK_STR(ch_parse_problem(CH_PARSE_LARGE, "is not a duration"), "is too large");
    CHECK_STR(ch_parse_problem(CH_PARSE_YEARS, "is not a time"), "is outside the years 0000-9999");
    CHECK_STR(ch_parse_problem(CH_PARSE_FORM, "is not a time"), "is not a time");
}

/* The point is '.' whatever LC_NUMERIC says: under a locale that writes
 * 1,5 the parsers still take 1.5 and refuse 1,5. */
static void test_locale(void)
{
    const char *comma[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "ru_RU.UTF-8", "German"};
    const char *found = NULL;
    for (size_t i = 0; i < sizeof comma / sizeof comma[0] && found == NULL; i++) {
        if (setlocale(LC_NUMERIC, comma[i]) != NULL && strcmp(localeconv()->decimal_point, ",") == 0)
            found = comma[i];
    }
    if (found == NULL) {
        printf("test_parse: no locale with a decimal comma installed; the LC_NUMERIC check is skipped\n");
        setlocale(LC_NUMERIC, "C");
        return;
    }
    check_cases("duration", duration_cases, sizeof duration_cases / sizeof duration_cases[0], 0);
    check_cases("time", time_cases, sizeof time_cases / sizeof time_cases[0], 1);
    setlocale(LC_NUMERIC, "C");
}

static void test_ints(void)
{
    int64_t v;
    CHECK_INT(ch_parse_int("65535", 0, 65535, &v), 0);
    CHECK_INT(v, 65535);
    CHECK_INT(ch_parse_int("65536", 0, 65535, &v), -1);
    CHECK_INT(ch_parse_int("-1", 0, 65535, &v), -1);
    CHECK_INT(ch_parse_int("12x", 0, 65535, &v), -1);
    CHECK_INT(ch_parse_int("", 0, 65535, &v), -1);
    CHECK_INT(ch_parse_int(" 1", 0, 65535, &v), -1);
}

static void test_addresses(void)
{
    ch_addr a, net;
    int len;
    char buf[CH_ADDR_TEXT];
    CHECK_INT(ch_addr_parse("10.0.0.5", &a), 0);
    CHECK_INT(a.family, 4);
    ch_addr_format(&a, buf);
    CHECK_STR(buf, "10.0.0.5");
    CHECK_INT(ch_addr_parse("2001:DB8:0:0::1", &a), 0);
    ch_addr_format(&a, buf);
    CHECK_STR(buf, "2001:db8::1");
    CHECK_INT(ch_addr_parse("10.0.0.256", &a), -1);
    CHECK_INT(ch_addr_parse("", &a), -1);
    CHECK_INT(ch_addr_parse("::g", &a), -1);

    CHECK_INT(ch_prefix_parse("10.0.0.0/8", &net, &len), 0);
    CHECK_INT(len, 8);
    ch_addr_parse("10.200.1.1", &a);
    CHECK(ch_addr_in_prefix(&a, &net, len));
    ch_addr_parse("11.0.0.1", &a);
    CHECK(!ch_addr_in_prefix(&a, &net, len));
    ch_addr_parse("::ffff:10.9.9.9", &a); /* dual-stack socket's IPv4 peer */
    CHECK(ch_addr_in_prefix(&a, &net, len));
    CHECK_INT(ch_prefix_parse("2001:db8::/32", &net, &len), 0);
    ch_addr_parse("2001:db8:ffff::1", &a);
    CHECK(ch_addr_in_prefix(&a, &net, len));
    ch_addr_parse("2001:db9::1", &a);
    CHECK(!ch_addr_in_prefix(&a, &net, len));
    CHECK_INT(ch_prefix_parse("10.0.0.1/27", &net, &len), 0);
    ch_addr_parse("10.0.0.31", &a);
    CHECK(ch_addr_in_prefix(&a, &net, len));
    ch_addr_parse("10.0.0.32", &a);
    CHECK(!ch_addr_in_prefix(&a, &net, len));
    CHECK_INT(ch_prefix_parse("10.0.0.0/33", &net, &len), -1);
    CHECK_INT(ch_prefix_parse("::/129", &net, &len), -1);
    CHECK_INT(ch_prefix_parse("10.0.0.0/", &net, &len), -1);
    CHECK_INT(ch_prefix_parse("10.0.0.0/x", &net, &len), -1);
    CHECK_INT(ch_prefix_parse("/8", &net, &len), -1);
}

int main(void)
{
    test_times();
    test_durations();
    test_problems();
    test_locale();
    test_ints();
    test_addresses();
    return check_report("test_parse");
}
