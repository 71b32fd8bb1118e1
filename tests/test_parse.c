/*
 * Parsing what users type: times, durations, integers, addresses, prefixes;
 * and formatting times back.
 */
#include <string.h>

#include "addr.h"
#include "check.h"
#include "timeutil.h"

static void test_times(void)
{
    int64_t v, now = 1764000000000LL; /* 2025-11-24T16:00:00Z */
    char buf[CH_TIME_TEXT];
    CHECK_INT(ch_parse_time("2026-11-24T10:00:00Z", now, &v), 0);
    CHECK_INT(v, 1795514400000LL);
    CHECK_INT(ch_parse_time("2026-11-24T10:00:00.250Z", now, &v), 0);
    CHECK_INT(v, 1795514400250LL);
    CHECK_INT(ch_parse_time("2026-11-24T11:00:00+01:00", now, &v), 0);
    CHECK_INT(v, 1795514400000LL);
    CHECK_INT(ch_parse_time("2026-11-24 10:00", now, &v), 0);
    CHECK_INT(v, 1795514400000LL);
    CHECK_INT(ch_parse_time("2026-11-24", now, &v), 0);
    CHECK_INT(v, 1795478400000LL);
    CHECK_INT(ch_parse_time("1764000000", now, &v), 0);
    CHECK_INT(v, 1764000000000LL);
    CHECK_INT(ch_parse_time("@0", now, &v), 0);
    CHECK_INT(v, 0);
    CHECK_INT(ch_parse_time("-2h", now, &v), 0);
    CHECK_INT(v, now - 7200000);
    CHECK_INT(ch_parse_time("30m", now, &v), 0);
    CHECK_INT(v, now - 1800000);
    CHECK_INT(ch_parse_time("now", now, &v), 0);
    CHECK_INT(v, now);
    const char *bad[] = {"", "yesterday", "2026-13-01", "2026-02-30", "2026-11-24T25:00Z", "2026-11-24T10:00:00X",
                         "-", "-5", "@x", "12abc", "2026-11-24T10:00:00+1:00", "99999999999999999999", "1.5h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (ch_parse_time(bad[i], now, &v) == 0) {
            fprintf(stderr, "accepted bad time '%s'\n", bad[i]);
            check_failures++;
        }
    }
    ch_format_time(1795514400250LL, buf);
    CHECK_STR(buf, "2026-11-24T10:00:00.250Z");
    ch_format_time(0, buf);
    CHECK_STR(buf, "1970-01-01T00:00:00.000Z");
    ch_format_time(951782400000LL, buf); /* a leap day */
    CHECK_STR(buf, "2000-02-29T00:00:00.000Z");
}

static void test_durations(void)
{
    int64_t v;
    CHECK_INT(ch_parse_duration("500ms", &v), 0);
    CHECK_INT(v, 500);
    CHECK_INT(ch_parse_duration("1s", &v), 0);
    CHECK_INT(v, 1000);
    CHECK_INT(ch_parse_duration("2", &v), 0);
    CHECK_INT(v, 2000);
    CHECK_INT(ch_parse_duration("1h30m", &v), 0);
    CHECK_INT(v, 5400000);
    CHECK_INT(ch_parse_duration("90d", &v), 0);
    CHECK_INT(v, 90LL * 86400000);
    CHECK_INT(ch_parse_duration("1w", &v), 0);
    CHECK_INT(v, 7LL * 86400000);
    const char *bad[] = {"", "0", "0s", "s", "5x", "-1s", "1.5s", "1s2", " 1s", "99999999999999999999d", "1 s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (ch_parse_duration(bad[i], &v) == 0) {
            fprintf(stderr, "accepted bad duration '%s'\n", bad[i]);
            check_failures++;
        }
    }
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
    test_ints();
    test_addresses();
    return check_report("test_parse");
}
