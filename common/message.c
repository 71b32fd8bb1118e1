/*
 * One-line messages (see message.h).
 */
#include "message.h"

#include <stdlib.h>

static void put_escaped(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\r')
            fputs("\\r", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}

void ch_vmessage(FILE *f, const char *prefix, const char *fmt, va_list ap)
{
    char small[1024];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    char *text = small;
    if (n >= (int)sizeof small) {
        text = malloc((size_t)n + 1);
        if (text != NULL)
            vsnprintf(text, (size_t)n + 1, fmt, again);
        else
            text = small; /* out of memory: the message cut short beats none */
    }
    va_end(again);
    fputs(prefix, f);
    put_escaped(f, n < 0 ? "(unprintable message)" : text);
    fputc('\n', f);
    if (text != small)
        free(text);
}

void ch_message(FILE *f, const char *prefix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ch_vmessage(f, prefix, fmt, ap);
    va_end(ap);
}
