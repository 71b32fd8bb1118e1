/*
 * The query tool's JSON writer against cJSON, which printed every value
 * before the writer learned to: strings (hostile ones, random bytes, text
 * longer than the output buffer), numbers, times, and whole items in the
 * three output modes must come out byte for byte as cJSON prints them.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "jsonw.h"
#include "timeutil.h"
#include "utf8.h"

static jw writer; /* 64 KiB: not on the stack */

/* What the writer wrote to f since it was rewound, as a string (free it). */
static char *read_back(FILE *f)
{
    long n = ftell(f);
    char *text = malloc((size_t)n + 1);
    rewind(f);
    if (text == NULL || fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

/* Starts a document on a fresh temporary file. */
static FILE *start(enum jw_mode mode)
{
    FILE *f = tmpfile();
    if (f == NULL) {
        perror("tmpfile");
        exit(1);
    }
    jw_init(&writer, f, mode);
    jw_begin(&writer);
    return f;
}

/* Ends the document and compares it with cJSON's print of expected (freed). */
static int finish(FILE *f, cJSON *expected, enum jw_mode mode)
{
    jw_end(&writer);
    char *got = read_back(f);
    fclose(f);
    char *want = mode == JW_PRETTY ? cJSON_Print(expected) : cJSON_PrintUnformatted(expected);
    cJSON_Delete(expected);
    int same = got != NULL && want != NULL && strncmp(got, want, strlen(want)) == 0 &&
               strcmp(got + strlen(want), "\n") == 0;
    if (!same)
        fprintf(stderr, "writer: %s\ncJSON:  %s\n", got ? got : "(null)", want ? want : "(null)");
    free(got);
    cJSON_free(want);
    return same;
}

/* s (len bytes, NUL-terminated) through jw_text and through utf8_repair + cJSON. */
static int same_string(const char *s)
{
    FILE *f = start(JW_COMPACT);
    jw_text(&writer, "k", s);
    cJSON *expected = cJSON_CreateObject();
    char *repaired = utf8_repair(s);
    cJSON_AddStringToObject(expected, "k", repaired != NULL ? repaired : s);
    free(repaired);
    return finish(f, expected, JW_COMPACT);
}

static void test_hostile_strings(void)
{
    static const char *const cases[] = {
        "", "plain", "curl \"quoted\"", "back\\slash", "\b\f\n\r\t", "\x01\x02\x1f\x7f",
        "ßrowser-ü", "日本語", "\xf0\x9f\x98\x80 emoji", "\xff", "\xc3", "a\xc3", "\xc3(",
        "\xe2\x82", "\xe2\x82\x28", "\xed\xa0\x80 surrogate", "\xc0\xaf overlong",
        "\xf4\x90\x80\x80 too big", "\xf8\x88\x80\x80\x80", "\x80\x80\x80",
        "12345678\"12345678", "1234567\x80", "abcdefg\\", "abcdefgh\x1f", "\"\"\"\"\"\"\"\"\"",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(same_string(cases[i]));
}

/* Random bytes, biased towards what needs care: controls, quotes, backslashes,
 * lead and continuation bytes. */
static void test_random_strings(void)
{
    static const unsigned char picks[] = {'a', 'Z', ' ', '"', '\\', '\n', 0x01, 0x1f, 0x7f, 0x80,
                                          0xbf, 0xc2, 0xc3, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xff};
    unsigned seed = 12345;
    char s[200];
    for (int round = 0; round < 20000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % (sizeof s - 1);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 16;
            s[i] = (char)(r % 3 == 0 ? picks[(r / 3) % sizeof picks] : 1 + (r / 3) % 255);
        }
        s[n] = '\0';
        if (!same_string(s)) {
            CHECK(!"a random string differs");
            return;
        }
    }
}

/* Text longer than the writer's buffer, with escapes and bad bytes across its edges. */
static void test_long_string(void)
{
    size_t n = 3 * JW_BUF_SIZE + 17;
    char *s = malloc(n + 1);
    if (s == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        s[i] = i % 7 == 0 ? '"' : i % 11 == 0 ? '\x01' : i % 13 == 0 ? '\xff' : (char)('a' + i % 26);
    s[n] = '\0';
    CHECK(same_string(s));
    memset(s, 'x', n);
    CHECK(same_string(s));
    free(s);
}

static void test_numbers(void)
{
    static const int64_t cases[] = {0, 1, -1, 42, INT_MAX, (int64_t)INT_MAX + 1, INT_MIN,
                                    (int64_t)INT_MIN - 1, 1795514400250LL, 999999999999999LL,
                                    -999999999999999LL, 1000000000000000LL, 1234567890123456LL,
                                    9007199254740993LL, -9007199254740993LL, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = start(JW_COMPACT);
        jw_int(&writer, "n", cases[i]);
        cJSON *expected = cJSON_CreateObject();
        cJSON_AddNumberToObject(expected, "n", (double)cases[i]);
        CHECK(finish(f, expected, JW_COMPACT));
    }
}

static void test_times(void)
{
    static const int64_t cases[] = {0, 1795514400250LL, -1, 253402300799999LL, 253402300800000LL,
                                    -62167219200000LL, -62167219200001LL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[CH_TIME_TEXT];
        ch_format_time(cases[i], text);
        FILE *f = start(JW_COMPACT);
        jw_time(&writer, "t", true, cases[i]);
        jw_time(&writer, "u", false, 0);
        cJSON *expected = cJSON_CreateObject();
        cJSON_AddStringToObject(expected, "t", text);
        cJSON_AddNullToObject(expected, "u");
        CHECK(finish(f, expected, JW_COMPACT));
    }
    char text[CH_TIME_TEXT];
    ch_format_time(253402300800000LL, text);
    CHECK_STR(text, "10000-01-01T00:00:00.000Z");
    ch_format_time(-1, text);
    CHECK_STR(text, "1969-12-31T23:59:59.999Z");
    ch_format_time(-62167219200001LL, text);
    CHECK_STR(text, "-001-12-31T23:59:59.999Z");
}

/* An item with nested objects and arrays of scalars (empty too), written
 * value by value, against the same item printed by cJSON through jw_put. */
static void test_items(enum jw_mode mode)
{
    cJSON *item = cJSON_CreateObject();
    cJSON_AddNumberToObject(item, "id", 7);
    cJSON *states = cJSON_AddArrayToObject(item, "states");
    cJSON_AddItemToArray(states, cJSON_CreateString("SYN_SENT"));
    cJSON_AddItemToArray(states, cJSON_CreateString("ESTABLISHED"));
    cJSON_AddArrayToObject(item, "empty");
    cJSON *p = cJSON_AddObjectToObject(item, "process");
    cJSON_AddNullToObject(p, "path");
    cJSON_AddStringToObject(p, "name", "a\tb");
    cJSON_AddNullToObject(item, "none");

    FILE *f = start(mode);
    jw_open_main(&writer, "list");
    jw_put(&writer, NULL, item);
    jw_put(&writer, NULL, item);
    jw_close(&writer);
    jw_end(&writer);
    char *want = read_back(f);
    fclose(f);
    cJSON_Delete(item);

    f = start(mode);
    jw_open_main(&writer, "list");
    for (int i = 0; i < 2; i++) {
        jw_open(&writer, NULL, false);
        jw_int(&writer, "id", 7);
        jw_open_flat(&writer, "states");
        jw_text(&writer, NULL, "SYN_SENT");
        jw_text_n(&writer, NULL, "ESTABLISHED,", 11);
        jw_close(&writer);
        jw_open_flat(&writer, "empty");
        jw_close(&writer);
        jw_open(&writer, "process", false);
        jw_text(&writer, "path", NULL);
        jw_text(&writer, "name", "a\tb");
        jw_close(&writer);
        jw_null(&writer, "none");
        jw_close(&writer);
    }
    jw_close(&writer);
    jw_end(&writer);
    char *got = read_back(f);
    fclose(f);
    CHECK(got != NULL && want != NULL && strcmp(got, want) == 0);
    if (got != NULL && want != NULL && strcmp(got, want) != 0)
        fprintf(stderr, "mode %d\nvalues: %s\ncJSON:  %s\n", (int)mode, got, want);
    free(got);
    free(want);
}

int main(void)
{
    test_hostile_strings();
    test_random_strings();
    test_long_string();
    test_numbers();
    test_times();
    test_items(JW_COMPACT);
    test_items(JW_PRETTY);
    test_items(JW_NDJSON);
    return check_report("test_jsonw");
}
