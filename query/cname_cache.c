/*
 * CNAME records per name asked (see cname_cache.h).
 *
 * Each name's records are kept sorted by the name they point at, then most
 * recent first, then first recorded first: a step is two binary searches.
 * That order is what the SQL it replaces gave ("ORDER BY first_seen DESC
 * LIMIT 1" over the qname index, which lists equal names by answer_id).
 */
#include "cname_cache.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t target_id, first_seen, answer_id, rname_id;
    char *rname;
} cname_row;

typedef struct {
    int64_t qname_id; /* 0: empty (ids start at 1) */
    cname_row *v;
    size_t n;
} qname_slot;

static const char rows_sql[] =
    "SELECT c.target_id, c.first_seen, c.answer_id, c.rname_id, n.name FROM dns_answers c"
    " JOIN dns_names n ON n.name_id = c.rname_id WHERE c.qname_id = ?1 AND c.type = 5";

static struct {
    sqlite3 *db;
    sqlite3_stmt *rows;
    qname_slot *slots; /* open addressing, at most half full */
    size_t cap, used;
} cache;

static size_t home(int64_t id, size_t cap)
{
    return (size_t)(((uint64_t)id * 0x9e3779b97f4a7c15u) >> 20) & (cap - 1);
}

/* The slot of qname_id: its own, or the empty one where it would go. */
static qname_slot *find(qname_slot *slots, size_t cap, int64_t qname_id)
{
    for (size_t i = home(qname_id, cap);; i = (i + 1) & (cap - 1))
        if (slots[i].qname_id == qname_id || slots[i].qname_id == 0)
            return &slots[i];
}

/* Room for one more name. 0 or -1. */
static int reserve(void)
{
    if (2 * (cache.used + 1) <= cache.cap)
        return 0;
    size_t cap = cache.cap ? 2 * cache.cap : 1024;
    qname_slot *grown = calloc(cap, sizeof *grown);
    if (grown == NULL)
        return -1;
    for (size_t i = 0; i < cache.cap; i++)
        if (cache.slots[i].qname_id != 0)
            *find(grown, cap, cache.slots[i].qname_id) = cache.slots[i];
    free(cache.slots);
    cache.slots = grown;
    cache.cap = cap;
    return 0;
}

/* By target, then most recent first, then first recorded first. */
static int step_order(const void *x, const void *y)
{
    const cname_row *a = x, *b = y;
    if (a->target_id != b->target_id)
        return a->target_id < b->target_id ? -1 : 1;
    if (a->first_seen != b->first_seen)
        return a->first_seen > b->first_seen ? -1 : 1;
    return (a->answer_id > b->answer_id) - (a->answer_id < b->answer_id);
}

static void free_rows(cname_row *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].rname);
    free(v);
}

/* Appends the row in cache.rows' columns to *v. 0 or -1. */
static int append(cname_row **v, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 8;
        cname_row *g = realloc(*v, c * sizeof *g);
        if (g == NULL)
            return -1;
        *v = g;
        *cap = c;
    }
    const char *text = (const char *)sqlite3_column_text(cache.rows, 4);
    size_t len = text != NULL ? strlen(text) + 1 : 1;
    char *copy = malloc(len);
    if (copy == NULL)
        return -1;
    memcpy(copy, text != NULL ? text : "", len);
    (*v)[(*n)++] = (cname_row){sqlite3_column_int64(cache.rows, 0), sqlite3_column_int64(cache.rows, 1),
                               sqlite3_column_int64(cache.rows, 2), sqlite3_column_int64(cache.rows, 3), copy};
    /* cppcheck-suppress memleak ; copy is (*v)[*n - 1].rname now, freed with the rows */
    return 0;
}

/* Reads the CNAME records of qname_id into slot s. 0 or -1. */
static int read_qname(qname_slot *s, int64_t qname_id)
{
    if (cache.rows == NULL && sqlite3_prepare_v2(cache.db, rows_sql, -1, &cache.rows, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(cache.rows, 1, qname_id);
    cname_row *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(cache.rows)) == SQLITE_ROW)
        if (append(&v, &n, &cap) != 0)
            break;
    sqlite3_reset(cache.rows);
    if (rc != SQLITE_DONE) {
        free_rows(v, n);
        return -1;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, step_order);
    *s = (qname_slot){qname_id, v, n};
    cache.used++;
    return 0;
}

/* The records of qname_id, read the first time. NULL on an error. */
static const qname_slot *records_of(sqlite3 *db, int64_t qname_id)
{
    if (cache.db != db) {
        cname_cache_clear();
        cache.db = db;
    }
    if (cache.cap > 0) {
        qname_slot *s = find(cache.slots, cache.cap, qname_id);
        if (s->qname_id == qname_id)
            return s;
    }
    if (reserve() != 0)
        return NULL;
    qname_slot *s = find(cache.slots, cache.cap, qname_id);
    return read_qname(s, qname_id) == 0 ? s : NULL;
}

/* The first of v's n records (in step_order) that is not before (target, at). */
static size_t first_from(const cname_row *v, size_t n, int64_t target_id, int64_t at)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const cname_row *r = &v[mid];
        if (r->target_id < target_id || (r->target_id == target_id && r->first_seen > at))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int cname_cache_step(sqlite3 *db, int64_t qname_id, int64_t target_id, int64_t at, int64_t *rname_id,
                     const char **rname)
{
    const qname_slot *s = records_of(db, qname_id);
    if (s == NULL)
        return -1;
    size_t i = first_from(s->v, s->n, target_id, at);
    if (i == s->n || s->v[i].target_id != target_id)
        return 0;
    *rname_id = s->v[i].rname_id;
    *rname = s->v[i].rname;
    return 1;
}

void cname_cache_clear(void)
{
    for (size_t i = 0; i < cache.cap; i++)
        if (cache.slots[i].qname_id != 0)
            free_rows(cache.slots[i].v, cache.slots[i].n);
    free(cache.slots);
    sqlite3_finalize(cache.rows);
    cache.slots = NULL;
    cache.rows = NULL;
    cache.cap = cache.used = 0;
    cache.db = NULL;
}
