/*
 * Names joined to lifetimes (see names.h), and the names report.
 *
 * An IPv4 peer of a dual-stack socket is stored as '::ffff:a.b.c.d' while
 * its A record says 'a.b.c.d': the join takes both (ALT_ADDR).
 *
 * The join of a lifetime reads its remote address's answers from memory
 * (name_cache.h: read once per address, or all at once for a bulk report),
 * not from SQL, and so are the CNAME chains of the answers in force
 * (cname_cache.h).
 */
#include "names.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cname_cache.h"
#include "coverage.h"
#include "filter.h"
#include "name_cache.h"
#include "rowjson.h"
#include "stream.h"
#include "utf8.h"

#define GRACE "10000" /* CHQ_NAME_GRACE_MS, in SQL */
_Static_assert(CHQ_NAME_GRACE_MS == 10000, "GRACE is CHQ_NAME_GRACE_MS");

#define ALT_ADDR CHQ_ALT_ADDR

#define MAX_NAMES 64 /* names listed for one lifetime */
#define MAX_CHAIN 16

static sqlite3_stmt *group_st;

typedef struct {
    int64_t ids[MAX_NAMES];
    int n;
} name_set;

/* Writes name unless it was written already for this lifetime. */
static void put_name(jw *w, name_set *done, int64_t id, const char *name)
{
    for (int i = 0; i < done->n; i++)
        if (done->ids[i] == id)
            return;
    if (done->n == MAX_NAMES)
        return;
    done->ids[done->n++] = id;
    jw_text(w, NULL, name);
}

/* The names between qname and rname on the chain, from qname's side. */
static void put_chain(jw *w, name_set *done, sqlite3 *db, int64_t qname, int64_t rname, int64_t at)
{
    int64_t ids[MAX_CHAIN];
    char names[MAX_CHAIN][256];
    int n = 0;
    for (int64_t cur = rname; n < MAX_CHAIN;) {
        const char *text;
        if (cname_cache_step(db, qname, cur, at, &cur, &text) != 1)
            break;
        snprintf(names[n], sizeof names[n], "%s", text);
        ids[n++] = cur;
        if (cur == qname)
            break;
    }
    for (int i = n; i-- > 0;)
        if (ids[i] != qname)
            put_name(w, done, ids[i], names[i]);
}

/* Who opened a lifetime, for preferring its own answers. */
typedef struct {
    bool known;
    int64_t pid, start;
} asker;

/* Whether answer a names a connection opened at time at. */
static bool in_force(const name_answer *a, int64_t at)
{
    return a->first_seen <= at && at <= a->until;
}

static bool asked_by(const name_answer *a, const asker *who)
{
    return a->has_proc && who->known && a->pid == who->pid && a->start == who->start;
}

/* The first of l's answers first seen at or before at: most recent first,
 * so a binary search. */
static size_t first_at_or_before(const name_answers *l, int64_t at)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid].first_seen > at)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Calls fn for each answer of l in force at at, with its names, in the
 * join's order (the process's own first, then the others; each most recent
 * first) until it returns false. */
static void each_in_force(const name_answers *l, int64_t at, const asker *who,
                          bool (*fn)(void *ctx, const name_answer *a, const char *qname, const char *rname),
                          void *ctx)
{
    size_t from = first_at_or_before(l, at);
    for (int own = 1; own >= 0; own--) {
        if (own && !who->known)
            continue;
        for (size_t i = from; i < l->n && l->v[i].older_until >= at; i++) { /* none older in force: stop */
            const name_answer *a = &l->v[i];
            if (!in_force(a, at) || asked_by(a, who) != own)
                continue;
            const char *q = name_cache_name(a->qname_id), *r = name_cache_name(a->rname_id);
            if (q != NULL && r != NULL && !fn(ctx, a, q, r))
                return;
        }
    }
}

typedef struct {
    jw *w;
    sqlite3 *db;
    name_set done;
    int64_t at;
    bool open;
} names_out;

/* Writes the names of one answer: the name asked, the chain, the record's. */
static bool put_answer_names(void *ctx, const name_answer *a, const char *qname, const char *rname)
{
    names_out *o = ctx;
    if (!o->open)
        jw_open_flat(o->w, "remote_names");
    o->open = true;
    put_name(o->w, &o->done, a->qname_id, qname);
    if (a->rname_id != a->qname_id) {
        put_chain(o->w, &o->done, o->db, a->qname_id, a->rname_id, o->at);
        put_name(o->w, &o->done, a->rname_id, rname);
    }
    return true;
}

void put_remote_names(jw *w, sqlite3_stmt *st, int addr_col, int first_seen_col, const int64_t *pid,
                      const int64_t *start)
{
    sqlite3 *db = sqlite3_db_handle(st);
    name_answers l;
    if (sqlite3_column_type(st, addr_col) == SQLITE_NULL ||
        name_cache_get(db, sqlite3_column_int64(st, addr_col), &l) != 0) {
        jw_null(w, "remote_names");
        return;
    }
    asker who = {pid != NULL && start != NULL, pid != NULL ? *pid : 0, start != NULL ? *start : 0};
    names_out o = {w, db, {.n = 0}, sqlite3_column_int64(st, first_seen_col), false};
    each_in_force(&l, o.at, &who, put_answer_names, &o);
    if (o.open)
        jw_close(w);
    else
        jw_null(w, "remote_names");
}

/* Keeps the name asked of the first answer. */
static bool take_first(void *ctx, const name_answer *a, const char *qname, const char *rname)
{
    (void)a;
    (void)rname;
    *(const char **)ctx = qname;
    return false;
}

const char *names_remote_domain(sqlite3 *db, int64_t addr_id, int64_t at, const int64_t *pid, const int64_t *start,
                                size_t max)
{
    name_answers l;
    if (name_cache_get(db, addr_id, &l) != 0 || l.n == 0)
        return NULL;
    asker who = {pid != NULL && start != NULL, pid != NULL ? *pid : 0, start != NULL ? *start : 0};
    const char *first = NULL;
    each_in_force(&l, at, &who, take_first, &first);
    return first != NULL && strlen(first) < max ? first : NULL;
}

void names_filter(qsql *q, const query_filters *f)
{
    if (!(f->given & OPT_REMOTE_NAME))
        return;
    qsql_add(q, " AND EXISTS (SELECT 1 FROM dns_answers a JOIN dns_names q ON q.name_id = a.qname_id"
                " JOIN dns_names r ON r.name_id = a.rname_id"
                " WHERE a.addr_id IN (l.remote_addr_id, " ALT_ADDR("l.remote_addr_id") ")"
                " AND a.first_seen <= l.first_seen AND l.first_seen <= a.first_seen + a.expires_after + " GRACE);
    qsql_text(q, " AND (q.name GLOB ?", f->remote_name);
    qsql_text(q, " OR r.name GLOB ?", f->remote_name);
    qsql_text(q, " OR EXISTS (SELECT 1 FROM dns_answers c JOIN dns_names cn ON cn.name_id = c.rname_id"
                 " WHERE c.qname_id = a.qname_id AND c.type = 5 AND c.first_seen <= l.first_seen AND cn.name GLOB ?)))",
              f->remote_name);
}

int names_parse_pattern(const char *opt, const char *val, const char **out)
{
    static char lower[512];
    size_t n = strlen(val);
    if (n > 0 && val[n - 1] == '.')
        n--; /* a name written with its final dot */
    if (n == 0 || n >= sizeof lower) {
        chq_error("%s: '%s' is not valid (expected a DNS name or a GLOB pattern like '*.example.com')", opt, val);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)tolower((unsigned char)val[i]);
    lower[n] = '\0';
    *out = lower;
    return 0;
}


/* The distinct reasons the window's runs give for capturing no names. */
static int add_why_not(query_ctx *c, cJSON *names)
{
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT DISTINCT r.names_off FROM runs r WHERE r.names_off IS NOT NULL");
    coverage_runs_where(&q, &c->o->f);
    sqlite3_stmt *st;
    if (qsql_prepare(&q, c->db, &st) != SQLITE_OK)
        return chq_sql_fail(c, "reading runs");
    cJSON *why = cJSON_AddArrayToObject(names, "why_not");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *raw = (const char *)sqlite3_column_text(st, 0);
        char *repaired = utf8_repair(raw); /* a damaged database's bytes; NULL: valid as it is */
        cJSON_AddItemToArray(why, cJSON_CreateString(repaired != NULL ? repaired : raw));
        free(repaired);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : chq_sql_fail(c, "reading runs");
}

int names_coverage(query_ctx *c, cJSON *cov)
{
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT count(*), total(r.names = 1), total(r.names IS NULL), total(r.names_dropped),"
                 " count(r.names_dropped) FROM runs r WHERE 1");
    coverage_runs_where(&q, &c->o->f);
    sqlite3_stmt *st;
    if (qsql_prepare(&q, c->db, &st) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return chq_sql_fail(c, "reading runs");
    }
    int64_t runs = sqlite3_column_int64(st, 0), with = sqlite3_column_int64(st, 1);
    int64_t unknown = sqlite3_column_int64(st, 2), dropped = sqlite3_column_int64(st, 3);
    bool counted = sqlite3_column_int64(st, 4) > 0;
    sqlite3_finalize(st);
    cJSON *names = cJSON_AddObjectToObject(cov, "names");
    const char *recorded = runs == 0 || unknown == runs ? NULL
                           : with == runs               ? "yes"
                           : with == 0 && unknown == 0  ? "no"
                                                        : "partly";
    if (recorded != NULL)
        cJSON_AddStringToObject(names, "recorded", recorded);
    else
        cJSON_AddNullToObject(names, "recorded");
    cJSON_AddNumberToObject(names, "runs_without", (double)(runs - with - unknown));
    if (counted)
        cJSON_AddNumberToObject(names, "dropped", (double)dropped);
    else
        cJSON_AddNullToObject(names, "dropped");
    return add_why_not(c, names);
}

/* The names answered for address ?1 while lifetimes opened from ?2 to ?3. */
static const char group_sql[] =
    "SELECT q.name FROM dns_answers a JOIN dns_names q ON q.name_id = a.qname_id"
    " WHERE a.addr_id IN (?1, " ALT_ADDR("?1") ") AND a.first_seen <= ?3"
    " AND a.first_seen + a.expires_after + " GRACE " >= ?2"
    " GROUP BY q.name ORDER BY MAX(a.first_seen) DESC LIMIT 10";

void put_group_names(jw *w, sqlite3_stmt *st, int col)
{
    if (group_st != NULL && sqlite3_db_handle(group_st) != sqlite3_db_handle(st)) {
        sqlite3_finalize(group_st); /* another database's (several databases, query/multidb.c) */
        group_st = NULL;
    }
    if (group_st == NULL && sqlite3_prepare_v2(sqlite3_db_handle(st), group_sql, -1, &group_st, NULL) != SQLITE_OK) {
        jw_null(w, "names");
        return;
    }
    for (int i = 0; i < 3; i++)
        sqlite3_bind_value(group_st, i + 1, sqlite3_column_value(st, col + i));
    bool open = false;
    while (sqlite3_step(group_st) == SQLITE_ROW) {
        if (!open)
            jw_open_flat(w, "names");
        open = true;
        jw_text(w, NULL, (const char *)sqlite3_column_text(group_st, 0));
    }
    sqlite3_reset(group_st);
    if (open)
        jw_close(w);
    else
        jw_null(w, "names");
}

/* The filters other than the window and --limit. */
#define NARROWING                                                                                              \
    (OPT_REMOTE | OPT_REMOTE_PORT | OPT_LOCAL_PORT | OPT_PORT | OPT_PROTO | OPT_FAMILY | OPT_PID | OPT_PROCESS | \
     OPT_STATE | OPT_OPEN | OPT_REMOTE_NAME)

void names_expect_window(sqlite3 *db, const query_filters *f)
{
    int64_t rows;
    if ((f->given & NARROWING) || filter_window_rows(db, f, &rows) != SQLITE_OK)
        return; /* no hint: the cache's own count decides */
    if ((f->given & OPT_LIMIT) && f->limit < rows)
        rows = f->limit;
    name_cache_expect(db, rows);
}

void names_forget(void)
{
    name_cache_clear();
    cname_cache_clear();
}

void names_close(void)
{
    names_forget();
    sqlite3_finalize(group_st);
    group_st = NULL;
}
