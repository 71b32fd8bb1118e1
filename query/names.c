/*
 * Names joined to lifetimes (see names.h), and the names report.
 *
 * An IPv4 peer of a dual-stack socket is stored as '::ffff:a.b.c.d' while
 * its A record says 'a.b.c.d': the join takes both (ALT_ADDR).
 */
#include "names.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "coverage.h"
#include "filter.h"
#include "rowjson.h"
#include "stream.h"

#define GRACE "10000" /* CHQ_NAME_GRACE_MS, in SQL */
_Static_assert(CHQ_NAME_GRACE_MS == 10000, "GRACE is CHQ_NAME_GRACE_MS");

/* The addr_id of the IPv4 address an '::ffff:a.b.c.d' address id x maps, or NULL. */
#define ALT_ADDR(x)                                                                                 \
    "(SELECT v4.addr_id FROM addrs m JOIN addrs v4 ON v4.addr = substr(m.addr, 8)"                   \
    " WHERE m.addr_id = " x " AND m.addr LIKE '::ffff:%')"

/* The answers in force for address ?1 at time ?2, asked by process (?3, ?4) first. */
static const char answers_sql[] =
    "SELECT a.qname_id, q.name, a.rname_id, r.name, a.first_seen FROM dns_answers a"
    " JOIN dns_names q ON q.name_id = a.qname_id JOIN dns_names r ON r.name_id = a.rname_id"
    " LEFT JOIN processes p ON p.proc_id = a.proc_id"
    " WHERE a.addr_id IN (?1, " ALT_ADDR("?1") ") AND a.first_seen <= ?2"
    " AND ?2 <= a.first_seen + a.expires_after + " GRACE
    " ORDER BY (p.pid IS NOT NULL AND p.pid IS ?3 AND p.start_time IS ?4) DESC, a.first_seen DESC, a.answer_id DESC";

/* The CNAME of the chain asked as ?1 that pointed at name ?2, latest at ?3. */
static const char chain_sql[] =
    "SELECT c.rname_id, n.name FROM dns_answers c JOIN dns_names n ON n.name_id = c.rname_id"
    " WHERE c.qname_id = ?1 AND c.target_id = ?2 AND c.type = 5 AND c.first_seen <= ?3"
    " ORDER BY c.first_seen DESC LIMIT 1";

#define MAX_NAMES 64 /* names listed for one lifetime */
#define MAX_CHAIN 16

static sqlite3_stmt *answers_st, *chain_st, *group_st;

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
static void put_chain(jw *w, name_set *done, int64_t qname, int64_t rname, int64_t at)
{
    int64_t ids[MAX_CHAIN];
    char names[MAX_CHAIN][256];
    int n = 0;
    for (int64_t cur = rname; n < MAX_CHAIN;) {
        sqlite3_bind_int64(chain_st, 1, qname);
        sqlite3_bind_int64(chain_st, 2, cur);
        sqlite3_bind_int64(chain_st, 3, at);
        if (sqlite3_step(chain_st) != SQLITE_ROW) {
            sqlite3_reset(chain_st);
            break;
        }
        cur = sqlite3_column_int64(chain_st, 0);
        const char *text = (const char *)sqlite3_column_text(chain_st, 1);
        snprintf(names[n], sizeof names[n], "%s", text != NULL ? text : "");
        ids[n++] = cur;
        sqlite3_reset(chain_st);
        if (cur == qname)
            break;
    }
    for (int i = n; i-- > 0;)
        if (ids[i] != qname)
            put_name(w, done, ids[i], names[i]);
}

static int prepare(sqlite3 *db)
{
    if (answers_st != NULL && sqlite3_db_handle(answers_st) != db)
        names_close(); /* another database's (several databases, query/multidb.c) */
    if (answers_st == NULL && sqlite3_prepare_v2(db, answers_sql, -1, &answers_st, NULL) != SQLITE_OK)
        return -1;
    if (chain_st == NULL && sqlite3_prepare_v2(db, chain_sql, -1, &chain_st, NULL) != SQLITE_OK)
        return -1;
    return 0;
}

void put_remote_names(jw *w, sqlite3_stmt *st, int addr_col, int first_seen_col, int pid_col, int start_col)
{
    if (sqlite3_column_type(st, addr_col) == SQLITE_NULL || prepare(sqlite3_db_handle(st)) != 0) {
        jw_null(w, "remote_names");
        return;
    }
    int64_t at = sqlite3_column_int64(st, first_seen_col);
    sqlite3_bind_int64(answers_st, 1, sqlite3_column_int64(st, addr_col));
    sqlite3_bind_int64(answers_st, 2, at);
    sqlite3_bind_value(answers_st, 3, sqlite3_column_value(st, pid_col));
    sqlite3_bind_value(answers_st, 4, sqlite3_column_value(st, start_col));
    name_set done = {.n = 0};
    bool open = false;
    while (sqlite3_step(answers_st) == SQLITE_ROW) {
        if (!open)
            jw_open_flat(w, "remote_names");
        open = true;
        int64_t qname = sqlite3_column_int64(answers_st, 0), rname = sqlite3_column_int64(answers_st, 2);
        put_name(w, &done, qname, (const char *)sqlite3_column_text(answers_st, 1));
        if (rname != qname) {
            put_chain(w, &done, qname, rname, at);
            put_name(w, &done, rname, (const char *)sqlite3_column_text(answers_st, 3));
        }
    }
    sqlite3_reset(answers_st);
    if (open)
        jw_close(w);
    else
        jw_null(w, "remote_names");
}

bool names_remote_domain(sqlite3 *db, int64_t addr_id, int64_t at, const int64_t *pid, const int64_t *start,
                         char *out, size_t n)
{
    if (prepare(db) != 0)
        return false;
    sqlite3_bind_int64(answers_st, 1, addr_id);
    sqlite3_bind_int64(answers_st, 2, at);
    if (pid != NULL && start != NULL) {
        sqlite3_bind_int64(answers_st, 3, *pid);
        sqlite3_bind_int64(answers_st, 4, *start);
    } else {
        sqlite3_bind_null(answers_st, 3);
        sqlite3_bind_null(answers_st, 4);
    }
    const char *name = sqlite3_step(answers_st) == SQLITE_ROW ? (const char *)sqlite3_column_text(answers_st, 1) : NULL;
    bool found = name != NULL && snprintf(out, n, "%s", name) < (int)n;
    sqlite3_reset(answers_st);
    return found;
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
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cJSON_AddItemToArray(why, cJSON_CreateString((const char *)sqlite3_column_text(st, 0)));
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

void names_close(void)
{
    sqlite3_finalize(answers_st);
    sqlite3_finalize(chain_st);
    sqlite3_finalize(group_st);
    answers_st = chain_st = group_st = NULL;
}
