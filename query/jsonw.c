/*
 * The streaming JSON writer (see jsonw.h). Pretty output follows cJSON's own
 * layout (a tab per level, "key":<tab>value, arrays of scalars on one line
 * as [a, b]) so that items printed by cJSON_Print, the containers printed
 * here and the values written here line up as one document.
 *
 * Everything goes through one buffer: a report of a million lifetimes
 * writes some 25 million small pieces, and a FILE call for each would cost
 * more than the database does.
 */
#include "jsonw.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"
#include "utf8.h"

void jw_init(jw *w, FILE *f, enum jw_mode mode)
{
    memset(w, 0, offsetof(jw, buf));
    w->f = f;
    w->mode = mode;
}

void jw_html_safe(jw *w)
{
    w->html_safe = true;
}

/* Hands n bytes to the FILE, with '<' escaped when html_safe. */
static void write_out(jw *w, const char *p, size_t n)
{
    while (w->html_safe && n > 0) {
        const char *lt = memchr(p, '<', n);
        if (lt == NULL)
            break;
        fwrite(p, 1, (size_t)(lt - p), w->f);
        fputs("\\u003c", w->f);
        n -= (size_t)(lt - p) + 1;
        p = lt + 1;
    }
    if (n > 0)
        fwrite(p, 1, n, w->f); /* errors stay in the FILE for the caller */
}

void jw_flush(jw *w)
{
    write_out(w, w->buf, w->len);
    w->len = 0;
}

/* Makes room for n more bytes (n <= JW_BUF_SIZE) and returns where they go. */
static char *room(jw *w, size_t n)
{
    if (n > JW_BUF_SIZE - w->len)
        jw_flush(w);
    return w->buf + w->len;
}

static void put_char(jw *w, char c)
{
    if (w->len == JW_BUF_SIZE)
        jw_flush(w);
    w->buf[w->len++] = c;
}

static void put_bytes(jw *w, const void *p, size_t n)
{
    if (n > JW_BUF_SIZE - w->len) {
        jw_flush(w);
        if (n > JW_BUF_SIZE) {
            write_out(w, p, n);
            return;
        }
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_str(jw *w, const char *s)
{
    put_bytes(w, s, strlen(s));
}

static void indent(jw *w, int levels)
{
    put_char(w, '\n');
    for (int i = 0; i < levels; i++)
        put_char(w, '\t');
}

/* Keys are the report's own constant ASCII names: nothing to escape. */
static void print_key(jw *w, const char *key, size_t n)
{
    char *p = room(w, n + 4);
    *p++ = '"';
    memcpy(p, key, n);
    p += n;
    *p++ = '"';
    *p++ = ':';
    if (w->mode == JW_PRETTY)
        *p++ = '\t';
    w->len = (size_t)(p - w->buf);
}

static void put_string(jw *w, const char *s, size_t n);

/* Prints the section's tag at the start of an ndjson line, before its key: "host":"a", */
static void put_tag(jw *w)
{
    print_key(w, w->tag_key, strlen(w->tag_key));
    if (w->tag_value == NULL)
        put_bytes(w, "null", 4);
    else
        put_string(w, w->tag_value, strlen(w->tag_value));
    put_char(w, ',');
}

/*
 * Prints what comes before a child of the innermost level: a comma and
 * indentation inside a printed container, or the start of an ndjson line
 * under a hidden one. Reports whether the child is such a line.
 */
static inline void child_begin(jw *w, const char *key, size_t keylen, bool *line, bool *keyed)
{
    jw_level *parent = &w->stack[w->depth - 1];
    *line = parent->hidden;
    *keyed = false;
    if (!parent->hidden && w->mode != JW_PRETTY) { /* most children: compact, in a printed container */
        if (parent->count++ > 0)
            put_char(w, ',');
        if (key != NULL && !parent->is_array)
            print_key(w, key, keylen);
        return;
    }
    if (parent->hidden) {
        if (key != NULL && !parent->is_array) {
            put_char(w, '{');
            if (parent->tagged)
                put_tag(w);
            print_key(w, key, keylen);
            *keyed = true;
        }
    } else {
        if (parent->count > 0) {
            put_char(w, ',');
            if (parent->flat && w->mode == JW_PRETTY)
                put_char(w, ' ');
        }
        if (w->mode == JW_PRETTY && !parent->flat)
            indent(w, w->depth);
        if (key != NULL && !parent->is_array)
            print_key(w, key, keylen);
    }
    parent->count++;
}

static inline void child_end(jw *w, bool line, bool keyed)
{
    if (keyed)
        put_char(w, '}');
    if (line)
        put_char(w, '\n');
}

static void push(jw *w, bool is_array, bool hidden, bool line, bool keyed)
{
    if (w->depth >= JW_MAX_DEPTH)
        abort(); /* a programming error: reports nest a few levels only */
    w->stack[w->depth++] = (jw_level){is_array, hidden, line, keyed, false, false, 0};
    if (!hidden)
        put_char(w, is_array ? '[' : '{');
}

void jw_begin(jw *w)
{
    push(w, false, w->mode == JW_NDJSON, false, false);
}

void jw_open_k(jw *w, const char *key, size_t keylen, bool is_array)
{
    bool line, keyed;
    bool tag = w->stack[w->depth - 1].tagged && key == NULL && !is_array;
    child_begin(w, key, keylen, &line, &keyed);
    push(w, is_array, false, line, keyed);
    if (tag)
        jw_text(w, w->tag_key, w->tag_value);
}

void jw_open_main(jw *w, const char *key)
{
    if (w->mode == JW_NDJSON)
        push(w, true, true, false, false);
    else
        jw_open(w, key, true);
    w->stack[w->depth - 1].tagged = w->in_section && w->tag_rows;
}

void jw_open_section(jw *w, const char *tag_key, const char *tag_value, bool tag_rows)
{
    w->in_section = true;
    w->tag_key = tag_key;
    w->tag_value = tag_value;
    w->tag_rows = tag_rows;
    if (w->mode == JW_NDJSON) {
        push(w, false, true, false, false);
        w->stack[w->depth - 1].tagged = tag_rows;
        return;
    }
    jw_open(w, NULL, false);
    jw_text(w, tag_key, tag_value);
}

void jw_close_section(jw *w)
{
    jw_close(w);
    w->in_section = false;
}

bool jw_in_section(const jw *w)
{
    return w->in_section;
}

void jw_open_flat_k(jw *w, const char *key, size_t keylen)
{
    jw_open_k(w, key, keylen, true);
    w->stack[w->depth - 1].flat = true;
}

void jw_close(jw *w)
{
    jw_level level = w->stack[--w->depth];
    if (level.hidden)
        return;
    if (w->mode == JW_PRETTY && level.count > 0 && !level.flat)
        indent(w, w->depth);
    put_char(w, level.is_array ? ']' : '}');
    child_end(w, level.line, level.keyed);
}

/* Prints cJSON's pretty text, shifted right to the current depth. */
static void print_shifted(jw *w, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\n')
            indent(w, w->depth);
        else
            put_char(w, *p);
    }
}

void jw_put(jw *w, const char *key, const cJSON *v)
{
    bool line, keyed;
    child_begin(w, key, jw_keylen(key), &line, &keyed);
    char *text = w->mode == JW_PRETTY ? cJSON_Print(v) : cJSON_PrintUnformatted(v);
    if (text == NULL) {
        put_str(w, "null"); /* out of memory: keep the document valid */
    } else {
        if (w->mode == JW_PRETTY)
            print_shifted(w, text);
        else
            put_str(w, text);
        cJSON_free(text);
    }
    child_end(w, line, keyed);
}

void jw_raw_k(jw *w, const char *key, size_t keylen, const char *json, size_t len)
{
    bool line, keyed;
    child_begin(w, key, keylen, &line, &keyed);
    put_bytes(w, json, len);
    child_end(w, line, keyed);
}

void jw_put_free(jw *w, const char *key, cJSON *v)
{
    jw_put(w, key, v);
    cJSON_Delete(v);
}

void jw_end(jw *w)
{
    jw_close(w);
    if (w->mode != JW_NDJSON)
        put_char(w, '\n');
    jw_flush(w);
}

/*
 * A number as cJSON prints the double it would hold: integers below 10^15
 * have at most 15 digits and come out as they are; larger ones the way
 * cJSON does it, "%1.15g" unless that does not read back as the same
 * double (within DBL_EPSILON), then "%1.17g".
 */
static void put_number(jw *w, int64_t v)
{
    char text[32];
    if (v > -1000000000000000 && v < 1000000000000000) {
        uint64_t u = v < 0 ? (uint64_t)-v : (uint64_t)v;
        char *p = text + sizeof text;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u != 0);
        if (v < 0)
            *--p = '-';
        put_bytes(w, p, (size_t)(text + sizeof text - p));
        return;
    }
    double d = (double)v;
    snprintf(text, sizeof text, "%1.15g", d);
    double back = strtod(text, NULL);
    double largest = fabs(d) > fabs(back) ? fabs(d) : fabs(back);
    if (fabs(back - d) > largest * DBL_EPSILON)
        snprintf(text, sizeof text, "%1.17g", d);
    put_str(w, text);
}

/* The escape of an ASCII byte that JSON does not allow raw in a string:
 * the short forms cJSON uses, else \u00XX in lower case. */
static void put_escape(jw *w, unsigned char c)
{
    char e[6] = {'\\', 'u', '0', '0', "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]};
    switch (c) {
    case '"': e[1] = '"'; break;
    case '\\': e[1] = '\\'; break;
    case '\b': e[1] = 'b'; break;
    case '\f': e[1] = 'f'; break;
    case '\n': e[1] = 'n'; break;
    case '\r': e[1] = 'r'; break;
    case '\t': e[1] = 't'; break;
    default: put_bytes(w, e, 6); return;
    }
    put_bytes(w, e, 2);
}

/* True for the bytes that go into a JSON string as they are (ASCII only). */
static bool is_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/*
 * How many bytes at the start of the n at p are plain (is_plain): eight at a
 * time while a whole word is, as in most text. In a word v, a byte is not
 * plain when its high bit is set, when subtracting 0x20 borrows (below
 * 0x20), or when it equals '"' or '\\' (its XOR with them is zero, which
 * subtracting 1 reveals). A borrow can only spread up from a byte that is
 * itself not plain, so a word that passes is all plain.
 */
static size_t plain_prefix(const unsigned char *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        uint64_t quote = v ^ (ones * '"'), backslash = v ^ (ones * '\\');
        uint64_t odd = v | ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) |
                       ((backslash - ones) & ~backslash);
        if ((odd & highs) != 0)
            break;
    }
    while (i < n && is_plain(p[i]))
        i++;
    return i;
}

/*
 * The n bytes at s as a JSON string: valid UTF-8 and plain ASCII copied in
 * runs, quotes, backslashes and control characters escaped, and each byte
 * that starts no valid UTF-8 sequence replaced by U+FFFD (utf8_repair's
 * rule), so the output is valid JSON and valid UTF-8 whatever s holds.
 */
static void put_string(jw *w, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    put_char(w, '"');
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        for (;;) {
            run += plain_prefix(p + run, n - run);
            size_t seq = run < n && p[run] >= 0x80 ? utf8_sequence(p + run, n - run) : 0;
            if (seq == 0)
                break;
            run += seq;
        }
        put_bytes(w, p + i, run - i);
        if (run == n)
            break;
        if (p[run] >= 0x80)
            put_bytes(w, "\xef\xbf\xbd", 3);
        else
            put_escape(w, p[run]);
        i = run + 1;
    }
    put_char(w, '"');
}

void jw_null_k(jw *w, const char *key, size_t keylen)
{
    bool line, keyed;
    child_begin(w, key, keylen, &line, &keyed);
    put_bytes(w, "null", 4);
    child_end(w, line, keyed);
}

void jw_int_k(jw *w, const char *key, size_t keylen, int64_t v)
{
    bool line, keyed;
    child_begin(w, key, keylen, &line, &keyed);
    put_number(w, v);
    child_end(w, line, keyed);
}

void jw_text_n_k(jw *w, const char *key, size_t keylen, const char *text, size_t len)
{
    bool line, keyed;
    child_begin(w, key, keylen, &line, &keyed);
    put_string(w, text, len);
    child_end(w, line, keyed);
}

void jw_text_k(jw *w, const char *key, size_t keylen, const char *text)
{
    if (text == NULL)
        jw_null_k(w, key, keylen);
    else
        jw_text_n_k(w, key, keylen, text, strlen(text));
}

void jw_time_k(jw *w, const char *key, size_t keylen, bool known, int64_t ms)
{
    if (!known) {
        jw_null_k(w, key, keylen);
        return;
    }
    char text[CH_TIME_TEXT];
    ch_format_time(ms, text);
    bool line, keyed;
    child_begin(w, key, keylen, &line, &keyed);
    put_char(w, '"');
    put_str(w, text); /* digits, '-', ':', '.', 'T', 'Z': nothing to escape */
    put_char(w, '"');
    child_end(w, line, keyed);
}
