/*
 * The answers of each remote address, in memory (see name_cache.h).
 *
 * Two tables, both open addressing on an id: the names (name_id to its
 * text, each name once however many answers carry it) and the addresses
 * read one by one (addr_id to its answers). Reading one address costs a
 * query; reading all costs a pass over dns_answers, after which an index by
 * addr_id finds each address's part of one array: the cache switches to
 * the pass once the addresses read one by one, at about LAZY_COST answers'
 * worth each, would cost more than the pass itself, or from the start when
 * the report said it will ask for that many (name_cache_expect).
 */
#include "name_cache.h"

#include <stdlib.h>
#include <string.h>

#include "names.h"

/* A query for one address costs about what reading this many answers in
 * the full pass costs (measured: bench/README.md, "Export"). */
#define LAZY_COST 40
#define LAZY_MIN 256 /* addresses always read one by one, however few answers */

/* The answer columns both reads share, from a, q, r and p. */
#define ANSWER_COLUMNS "a.answer_id, a.first_seen, a.expires_after, a.qname_id, q.name, a.rname_id, r.name, p.pid, p.start_time"
#define ANSWER_FROM                                                                                  \
    " FROM dns_answers a JOIN dns_names q ON q.name_id = a.qname_id"                                 \
    " JOIN dns_names r ON r.name_id = a.rname_id LEFT JOIN processes p ON p.proc_id = a.proc_id"

static const char one_sql[] = "SELECT " ANSWER_COLUMNS ANSWER_FROM " WHERE a.addr_id IN (?1, " CHQ_ALT_ADDR("?1") ")";
/* The full read scans each table once, in storage order: joined or in index
 * order, every row would be a page looked up at random (3x slower). */
static const char all_sql[] = "SELECT a.addr_id, a.answer_id, a.first_seen, a.expires_after, a.qname_id, a.rname_id,"
                              " a.proc_id FROM dns_answers a NOT INDEXED WHERE a.addr_id IS NOT NULL";
static const char count_sql[] = "SELECT addr_id FROM dns_answers WHERE addr_id IS NOT NULL";
static const char mapped_sql[] = "SELECT m.addr_id, v4.addr_id FROM addrs m JOIN addrs v4 ON v4.addr = substr(m.addr, 8)"
                                 " WHERE m.addr LIKE '::ffff:%'";

typedef struct {
    int64_t id; /* 0: empty (ids start at 1) */
    char *text;
} name_slot;

typedef struct {
    int64_t id; /* 0: empty */
    name_answer *v;
    size_t n;
    bool owned; /* v is its own; else part of the full read's one array */
} addr_slot;

typedef struct {
    int64_t id; /* proc_id; 0: empty */
    int64_t pid, start;
} proc_slot;

/* An open-addressing table of slots of size bytes keyed by their first int64_t. */
typedef struct {
    void *slots;
    size_t cap, used, size;
} id_table;

static struct {
    sqlite3 *db;
    sqlite3_stmt *one;
    bool checked, empty, complete; /* empty: no answer has an address */
    int64_t answers;               /* the newest answer_id: about how many there are */
    int64_t addresses;             /* the newest addr_id: at most that many distinct remotes */
    size_t lazily;                 /* addresses read one by one */
    int64_t expected;              /* name_cache_expect: lifetimes about to be asked for */
    id_table names, addrs, procs;  /* procs: only for the full read */
    /* The full read: every answer in address order, address id's part
     * from all[part_from[id]] up to all[part_to[id]] (ids up to max_id).
     * An index by id, as the ids are dense: a probe of the addrs table per
     * lifetime missed the processor's caches (8.5% of an export). The
     * addrs table then holds only the mapped addresses given the answers
     * of their IPv4 address. */
    name_answer *all;
    size_t *part_from, *part_to;
    int64_t max_id;
} cache = {.names = {.size = sizeof(name_slot)}, .addrs = {.size = sizeof(addr_slot)}, .procs = {.size = sizeof(proc_slot)}};

/* ---- the tables ---------------------------------------------------------- */

static void *slot_at(const id_table *t, size_t i)
{
    return (char *)t->slots + i * t->size;
}

static size_t home(int64_t id, size_t cap)
{
    return (size_t)(((uint64_t)id * 0x9e3779b97f4a7c15u) >> 20) & (cap - 1);
}

/* The slot of id: its own, or the empty one where it would go. */
static void *find(const id_table *t, int64_t id)
{
    for (size_t i = home(id, t->cap);; i = (i + 1) & (t->cap - 1)) {
        int64_t *s = slot_at(t, i);
        if (*s == id || *s == 0)
            return s;
    }
}

/* Room for one more id (kept at most half full). 0 or -1. */
static int reserve(id_table *t)
{
    if (2 * (t->used + 1) <= t->cap)
        return 0;
    size_t cap = t->cap ? 2 * t->cap : 1024;
    id_table grown = {calloc(cap, t->size), cap, t->used, t->size};
    if (grown.slots == NULL)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        int64_t *s = slot_at(t, i);
        if (*s != 0)
            memcpy(find(&grown, *s), s, t->size);
    }
    free(t->slots);
    *t = grown;
    return 0;
}

/* The text of name id (the column's text kept the first time). */
static const char *intern(int64_t id, const unsigned char *text)
{
    if (cache.names.cap > 0) {
        name_slot *s = find(&cache.names, id);
        if (s->id == id)
            return s->text;
    }
    if (reserve(&cache.names) != 0)
        return NULL;
    name_slot *s = find(&cache.names, id);
    size_t n = text != NULL ? strlen((const char *)text) + 1 : 1;
    s->text = malloc(n);
    if (s->text == NULL)
        return NULL;
    memcpy(s->text, text != NULL ? (const char *)text : "", n);
    s->id = id;
    cache.names.used++;
    return s->text;
}

/* ---- reading answers ----------------------------------------------------- */

/* The answer in st's columns from col; -1 when out of memory. */
static int read_answer(sqlite3_stmt *st, int col, name_answer *a)
{
    a->answer_id = sqlite3_column_int64(st, col);
    a->first_seen = sqlite3_column_int64(st, col + 1);
    a->until = a->first_seen + sqlite3_column_int64(st, col + 2) + CHQ_NAME_GRACE_MS;
    a->qname_id = sqlite3_column_int64(st, col + 3);
    a->rname_id = sqlite3_column_int64(st, col + 5);
    a->has_proc = sqlite3_column_type(st, col + 7) != SQLITE_NULL;
    a->pid = sqlite3_column_int64(st, col + 7);
    a->start = sqlite3_column_int64(st, col + 8);
    return intern(a->qname_id, sqlite3_column_text(st, col + 4)) != NULL &&
                   intern(a->rname_id, sqlite3_column_text(st, col + 6)) != NULL
               ? 0
               : -1;
}

/* Most recent first: first_seen, then answer_id, descending. */
static int newer_first(const void *x, const void *y)
{
    const name_answer *a = x, *b = y;
    if (a->first_seen != b->first_seen)
        return a->first_seen > b->first_seen ? -1 : 1;
    return a->answer_id > b->answer_id ? -1 : a->answer_id < b->answer_id;
}

/* Sets older_until along answers v, sorted most recent first. */
static void link_older(name_answer *v, size_t n)
{
    for (size_t i = n; i-- > 0;)
        v[i].older_until = i + 1 < n && v[i + 1].older_until > v[i].until ? v[i + 1].older_until : v[i].until;
}

/* Puts v into slot s as addr_id's answers: sorted first when it is the
 * slot's own (a part of the full read's array comes sorted). */
static void fill(addr_slot *s, int64_t addr_id, name_answer *v, size_t n, bool owned)
{
    if (owned && n > 1)
        qsort(v, n, sizeof *v, newer_first);
    *s = (addr_slot){addr_id, v, n, owned};
    link_older(v, n);
}

/* Hands v to addr_id's slot, which must be empty. */
static int keep(int64_t addr_id, name_answer *v, size_t n, bool owned)
{
    if (reserve(&cache.addrs) != 0) {
        if (owned)
            free(v);
        return -1;
    }
    fill(find(&cache.addrs, addr_id), addr_id, v, n, owned);
    cache.addrs.used++;
    return 0;
}

/* Appends st's answer at col to *v. */
static int append(name_answer **v, size_t *n, size_t *cap, sqlite3_stmt *st, int col)
{
    if (*n == *cap) {
        size_t grown = *cap ? 2 * *cap : 4;
        name_answer *p = realloc(*v, grown * sizeof *p);
        if (p == NULL)
            return -1;
        *v = p;
        *cap = grown;
    }
    return read_answer(st, col, &(*v)[(*n)++]);
}

static int read_one(int64_t addr_id)
{
    if (cache.one == NULL && sqlite3_prepare_v2(cache.db, one_sql, -1, &cache.one, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(cache.one, 1, addr_id);
    name_answer *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(cache.one)) == SQLITE_ROW)
        if (append(&v, &n, &cap, cache.one, 0) != 0)
            break;
    sqlite3_reset(cache.one);
    if (rc != SQLITE_DONE) {
        free(v);
        return -1;
    }
    cache.lazily++;
    return keep(addr_id, v, n, true);
}

/* Address id's part of the full read (n 0 when none). */
static name_answers part(int64_t id)
{
    if (id < 1 || id > cache.max_id)
        return (name_answers){NULL, 0};
    return (name_answers){cache.all + cache.part_from[id], cache.part_to[id] - cache.part_from[id]};
}

/* After the full read, an '::ffff:a.b.c.d' address takes a.b.c.d's
 * answers beside its own, in an array of its own in the addrs table. */
static int add_mapped(int64_t mapped, int64_t v4)
{
    name_answers from = part(v4), own = part(mapped);
    if (from.n == 0)
        return 0;
    name_answer *v = malloc((own.n + from.n) * sizeof *v);
    if (v == NULL)
        return -1;
    if (own.n > 0)
        memcpy(v, own.v, own.n * sizeof *v);
    memcpy(v + own.n, from.v, from.n * sizeof *v);
    return keep(mapped, v, own.n + from.n, true);
}

/* Drops the addresses read one by one. */
static void forget_addrs(void)
{
    for (size_t i = 0; i < cache.addrs.cap; i++) {
        addr_slot *s = slot_at(&cache.addrs, i);
        if (s->owned)
            free(s->v);
    }
    free(cache.addrs.slots);
    free(cache.all);
    free(cache.part_from);
    free(cache.part_to);
    free(cache.procs.slots);
    cache.addrs = (id_table){.size = sizeof(addr_slot)};
    cache.procs = (id_table){.size = sizeof(proc_slot)};
    cache.all = NULL;
    cache.part_from = cache.part_to = NULL;
    cache.max_id = 0;
}

/* Every name, into the names table. */
static int read_names(void)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(cache.db, "SELECT name_id, name FROM dns_names", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (intern(sqlite3_column_int64(st, 0), sqlite3_column_text(st, 1)) == NULL)
            break;
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Every process's pid and start, by proc_id, into the procs table. */
static int read_procs(void)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(cache.db, "SELECT proc_id, pid, start_time FROM processes", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (reserve(&cache.procs) != 0)
            break;
        proc_slot *p = find(&cache.procs, sqlite3_column_int64(st, 0));
        *p = (proc_slot){sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2)};
        cache.procs.used++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* How many answers each address has (counts[addr_id], up to max_id), the
 * first scan of the full read. */
static int count_answers(uint32_t *counts, int64_t max_id, size_t *total)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(cache.db, count_sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc;
    *total = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (id < 1 || id > max_id)
            continue; /* an address the dictionary does not hold: never a lifetime's */
        counts[id]++;
        (*total)++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* all_sql's row into a. Its names are not looked up here (a cache miss
 * each): an answer whose names are not in dns_names is left out when it is
 * used (names.c), as the SQL join leaves it out. */
static void read_row(sqlite3_stmt *st, name_answer *a)
{
    a->answer_id = sqlite3_column_int64(st, 1);
    a->first_seen = sqlite3_column_int64(st, 2);
    a->until = a->first_seen + sqlite3_column_int64(st, 3) + CHQ_NAME_GRACE_MS;
    a->qname_id = sqlite3_column_int64(st, 4);
    a->rname_id = sqlite3_column_int64(st, 5);
    const proc_slot *p = NULL;
    if (sqlite3_column_type(st, 6) != SQLITE_NULL && cache.procs.cap > 0)
        p = find(&cache.procs, sqlite3_column_int64(st, 6));
    a->has_proc = p != NULL && p->id != 0; /* the LEFT JOIN: a process the table holds */
    a->pid = a->has_proc ? p->pid : 0;
    a->start = a->has_proc ? p->start : 0;
}

/* The second scan: each answer into its address's part of cache.all, from
 * the part's end (the scan is in answer_id order: the part ends up newest
 * first). end[id]: where the part of id ends, moved down as it fills;
 * left[id]: its room left. The scans are two statements, so two snapshots:
 * an answer the recorder committed between them finds no room and waits
 * for the next read. */
static int place_answers(size_t *end, uint32_t *left, int64_t max_id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(cache.db, all_sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (id >= 1 && id <= max_id && left[id] > 0) {
            left[id]--;
            read_row(st, &cache.all[--end[id]]);
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Sorts each address's part of cache.all (the scan's order is only nearly
 * the join's: answer_id, not first_seen). Address id's part starts at
 * part_from[id], where place_answers stopped, and ends at part_to[id],
 * where the counts before and with it add up to. */
static void sort_parts(void)
{
    for (int64_t id = 1; id <= cache.max_id; id++) {
        name_answers p = part(id);
        name_answer *v = cache.all + cache.part_from[id];
        bool sorted = true;
        for (size_t i = 1; sorted && i < p.n; i++)
            sorted = newer_first(&v[i - 1], &v[i]) < 0;
        if (!sorted)
            qsort(v, p.n, sizeof *v, newer_first);
        link_older(v, p.n);
    }
}

static int max_addr_id(int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(cache.db, "SELECT COALESCE(MAX(addr_id), 0) FROM addrs", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* Reads every answer that has an address: two scans of dns_answers in
 * storage order (a count per address, then each answer into its place),
 * then gives mapped addresses their IPv4 answers. */
static int read_all(void)
{
    forget_addrs();
    int64_t max_id;
    size_t total = 0;
    if (read_names() != 0 || read_procs() != 0 || max_addr_id(&max_id) != 0)
        return -1;
    size_t ids = (size_t)max_id + 2;
    uint32_t *counts = calloc(ids, sizeof *counts), *left = malloc(ids * sizeof *left);
    cache.part_from = calloc(ids, sizeof *cache.part_from);
    cache.part_to = calloc(ids, sizeof *cache.part_to);
    int failed = counts == NULL || left == NULL || cache.part_from == NULL || cache.part_to == NULL ||
                 count_answers(counts, max_id, &total) != 0;
    if (!failed)
        memcpy(left, counts, ids * sizeof *left);
    cache.all = failed ? NULL : malloc((total > 0 ? total : 1) * sizeof *cache.all);
    failed = failed || cache.all == NULL;
    for (int64_t id = 1, at = 0; !failed && id <= max_id; id++)
        cache.part_from[id] = cache.part_to[id] = (size_t)(at += counts[id]);
    failed = failed || place_answers(cache.part_from, left, max_id) != 0;
    if (!failed) {
        cache.max_id = max_id;
        sort_parts();
    }
    free(counts);
    free(left);
    sqlite3_stmt *st;
    if (failed || sqlite3_prepare_v2(cache.db, mapped_sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && !failed)
        failed = add_mapped(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)) != 0;
    sqlite3_finalize(st);
    cache.complete = !failed && rc == SQLITE_DONE;
    return cache.complete ? 0 : -1;
}

/* ---- the interface ------------------------------------------------------- */

/* Whether reading the addresses of this many lifetimes one by one costs
 * at least what the full read does: at most one read per distinct address,
 * and there are no more of those than the dictionary holds. */
static bool worth_all(int64_t lifetimes)
{
    int64_t reads = lifetimes < cache.addresses ? lifetimes : cache.addresses;
    return reads > 0 && reads * LAZY_COST >= cache.answers;
}

/* On first use with db: whether any answer has an address, and about how many. */
static int check(sqlite3 *db)
{
    if (cache.db != db)
        name_cache_clear();
    if (cache.checked)
        return 0;
    cache.db = db;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT EXISTS (SELECT 1 FROM dns_answers WHERE addr_id IS NOT NULL),"
                               " (SELECT MAX(answer_id) FROM dns_answers), (SELECT MAX(addr_id) FROM addrs)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    cache.empty = rc != SQLITE_ROW || sqlite3_column_int(st, 0) == 0;
    cache.answers = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    cache.addresses = rc == SQLITE_ROW ? sqlite3_column_int64(st, 2) : 0;
    sqlite3_finalize(st);
    cache.checked = rc == SQLITE_ROW;
    return cache.checked ? 0 : -1;
}

int name_cache_get(sqlite3 *db, int64_t addr_id, name_answers *out)
{
    *out = (name_answers){NULL, 0};
    if (check(db) != 0)
        return -1;
    if (cache.empty)
        return 0;
    const addr_slot *s = cache.addrs.used > 0 ? find(&cache.addrs, addr_id) : NULL;
    if (s != NULL && s->id == addr_id) {
        *out = (name_answers){s->v, s->n};
        return 0;
    }
    if (!cache.complete) {
        bool all = worth_all(cache.expected) || (cache.lazily >= LAZY_MIN && worth_all((int64_t)cache.lazily));
        if (!all) {
            if (read_one(addr_id) != 0)
                return -1;
            s = find(&cache.addrs, addr_id);
            *out = (name_answers){s->v, s->n};
            return 0;
        }
        if (read_all() != 0)
            return -1;
        s = cache.addrs.used > 0 ? find(&cache.addrs, addr_id) : NULL;
        if (s != NULL && s->id == addr_id) { /* a mapped address */
            *out = (name_answers){s->v, s->n};
            return 0;
        }
    }
    *out = part(addr_id); /* the full read: every address with answers */
    return 0;
}

void name_cache_expect(sqlite3 *db, int64_t lifetimes)
{
    if (cache.db != db)
        name_cache_clear(); /* as check() would at the first address, which would forget this */
    cache.db = db;
    cache.expected = lifetimes;
}

const char *name_cache_name(int64_t name_id)
{
    if (cache.names.cap == 0)
        return NULL;
    const name_slot *s = find(&cache.names, name_id);
    return s->id == name_id ? s->text : NULL;
}

void name_cache_clear(void)
{
    forget_addrs();
    for (size_t i = 0; i < cache.names.cap; i++)
        free(((name_slot *)slot_at(&cache.names, i))->text);
    free(cache.names.slots);
    sqlite3_finalize(cache.one);
    cache.names = (id_table){.size = sizeof(name_slot)};
    cache.one = NULL;
    cache.db = NULL;
    cache.checked = cache.empty = cache.complete = false;
    cache.answers = cache.addresses = cache.expected = 0;
    cache.lazily = 0;
}
