/*
 * The streaming JSON writer (see jsonw.h). Pretty output follows cJSON's own
 * layout (a tab per level, "key":<tab>value) so that items printed by
 * cJSON_Print and the containers printed here line up as one document.
 */
#include "jsonw.h"

#include <stdlib.h>
#include <string.h>

void jw_init(jw *w, FILE *f, enum jw_mode mode)
{
    memset(w, 0, sizeof *w);
    w->f = f;
    w->mode = mode;
}

static void indent(jw *w, int levels)
{
    fputc('\n', w->f);
    for (int i = 0; i < levels; i++)
        fputc('\t', w->f);
}

/* Keys are the report's own constant ASCII names: nothing to escape. */
static void print_key(jw *w, const char *key)
{
    fprintf(w->f, w->mode == JW_PRETTY ? "\"%s\":\t" : "\"%s\":", key);
}

/*
 * Prints what comes before a child of the innermost level: a comma and
 * indentation inside a printed container, or the start of an ndjson line
 * under a hidden one. Reports whether the child is such a line.
 */
static void child_begin(jw *w, const char *key, bool *line, bool *keyed)
{
    jw_level *parent = &w->stack[w->depth - 1];
    *line = parent->hidden;
    *keyed = false;
    if (parent->hidden) {
        if (key != NULL && !parent->is_array) {
            fputc('{', w->f);
            print_key(w, key);
            *keyed = true;
        }
    } else {
        if (parent->count > 0)
            fputc(',', w->f);
        if (w->mode == JW_PRETTY)
            indent(w, w->depth);
        if (key != NULL && !parent->is_array)
            print_key(w, key);
    }
    parent->count++;
}

static void child_end(jw *w, bool line, bool keyed)
{
    if (keyed)
        fputc('}', w->f);
    if (line)
        fputc('\n', w->f);
}

static void push(jw *w, bool is_array, bool hidden, bool line, bool keyed)
{
    if (w->depth >= JW_MAX_DEPTH)
        abort(); /* a programming error: reports nest a few levels only */
    w->stack[w->depth++] = (jw_level){is_array, hidden, line, keyed, 0};
    if (!hidden)
        fputc(is_array ? '[' : '{', w->f);
}

void jw_begin(jw *w)
{
    push(w, false, w->mode == JW_NDJSON, false, false);
}

void jw_open(jw *w, const char *key, bool is_array)
{
    bool line, keyed;
    child_begin(w, key, &line, &keyed);
    push(w, is_array, false, line, keyed);
}

void jw_open_main(jw *w, const char *key)
{
    if (w->mode == JW_NDJSON)
        push(w, true, true, false, false);
    else
        jw_open(w, key, true);
}

void jw_close(jw *w)
{
    jw_level level = w->stack[--w->depth];
    if (level.hidden)
        return;
    if (w->mode == JW_PRETTY && level.count > 0)
        indent(w, w->depth);
    fputc(level.is_array ? ']' : '}', w->f);
    child_end(w, level.line, level.keyed);
}

/* Prints cJSON's pretty text, shifted right to the current depth. */
static void print_shifted(jw *w, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\n')
            indent(w, w->depth);
        else
            fputc(*p, w->f);
    }
}

void jw_put(jw *w, const char *key, const cJSON *v)
{
    bool line, keyed;
    child_begin(w, key, &line, &keyed);
    char *text = w->mode == JW_PRETTY ? cJSON_Print(v) : cJSON_PrintUnformatted(v);
    if (text == NULL) {
        fputs("null", w->f); /* out of memory: keep the document valid */
    } else {
        if (w->mode == JW_PRETTY)
            print_shifted(w, text);
        else
            fputs(text, w->f);
        cJSON_free(text);
    }
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
        fputc('\n', w->f);
}
