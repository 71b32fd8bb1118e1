/*
 * connhist-query verify: recomputes the recorder's chain (schema/README.md,
 * "The chain") from the database alone, read-only, and says what holds and
 * where it first does not:
 *
 *  - the links: numbered 1, 2, ... with no gap but the one pruning left
 *    after the first link (which a chained prunes row records, with the
 *    hash the next link follows), each one's hash recomputed from the
 *    previous hash and its fields equal to the hash it stores;
 *  - the rows: every chained row's digest recomputed from its content; a
 *    row whose short digest (with its children's) differs from the one
 *    beside it is named, with its times, as is a row nobody chained (NULL)
 *    and a child whose parent is gone;
 *  - the head: the rows, as they are, add up to the multiset sum and the
 *    row count of the newest link (rows deleted, added or re-digested);
 *  - the anchors given: the chain reaches each one's sequence number with
 *    the same hash (a chain cut short, or rewritten, does not).
 *
 * Everything is read in one read transaction: a recorder committing
 * meanwhile is not seen. A large lifetimes table is split in two by id, the
 * lower half checked by a second thread on a second connection, used only
 * when it sees the same newest link (and so, the link's sum vouching for
 * every row, the same rows); else one thread does it all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain_codec.h"
#include "custody.h"
#include "db.h"
#include "worker.h"
#include "rowjson.h"
#include "timeutil.h"

#define MAX_NAMED 20  /* rows named per failure */
#define MAX_FAILURES 50
/* Lifetime ids below which one thread reads them all; the tests lower it
 * with $CONNHIST_VERIFY_SPLIT (ids) to check the split on small files. */
#define SPLIT_MIN_IDS 100000

typedef struct {
    sqlite3 *db;
    ch_digest *d;
    ch_chain_tables tables;
    cJSON *failures;
    int nfailures;
    cJSON *first;             /* the failure at the lowest link */
    int64_t first_link;
    bool first_listed;        /* first is also in failures */
    ch_chain_mset rows;       /* recomputed from the rows */
    int64_t table_rows[CH_CHAIN_MAX_TABLES];
    int64_t mismatched;       /* rows named (or not, past MAX_NAMED) */
    cJSON *named;             /* rows named so far, for the head's failure */
    /* The links. */
    int64_t nlinks, broken, genesis_at, head_seq, head_at, head_rows;
    int genesis_kind;
    int64_t key_id;
    unsigned char head_mset[CH_DIGEST_LEN], head_hash[CH_DIGEST_LEN];
    /* Links 2 to pruned_before - 1 pruned (a prunes row says so); 0: none. */
    int64_t pruned_before;
    unsigned char pruned_prev[CH_DIGEST_LEN];
    bool unreadable;
    /* The share of the rows this verifier reads: of table split (-1: none
     * split) only the keys lo <= key < hi; split_only: no other table. */
    int split;
    bool split_only;
    int64_t lo, hi;
} verifier;

/* Records a failure at link (its time at, -1 when unknown). */
static void fail(verifier *v, int64_t link, int64_t at, const char *reason, cJSON *rows)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "link", (double)link);
    json_add_time(f, "at", at >= 0, at);
    cJSON_AddStringToObject(f, "reason", reason);
    if (rows != NULL)
        cJSON_AddItemToObject(f, "rows", rows);
    bool listed = v->nfailures++ < MAX_FAILURES;
    if (listed)
        cJSON_AddItemToArray(v->failures, f);
    if (v->first == NULL || link < v->first_link) {
        if (v->first != NULL && !v->first_listed)
            cJSON_Delete(v->first);
        v->first = f;
        v->first_link = link;
        v->first_listed = listed;
    } else if (!listed) {
        cJSON_Delete(f);
    }
}

static void fail_sql(verifier *v, const char *what)
{
    char reason[512];
    snprintf(reason, sizeof reason, "cannot read %s: %s", what, sqlite3_errmsg(v->db));
    v->unreadable = true;
    fail(v, 0, -1, reason, NULL);
}

/* ---- links ------------------------------------------------------------ */

static void link_failure(verifier *v, int64_t seq, int64_t at, const char *fmt, int64_t a, int64_t b)
{
    char reason[256];
    snprintf(reason, sizeof reason, fmt, (long long)a, (long long)b);
    v->broken++;
    fail(v, seq, at, reason, NULL);
}

/* What became of an anchor: its link not in the chain, there with the
 * anchor's hash (reached), or there with another (the chain rewritten). */
enum { ANCHOR_MISSED, ANCHOR_REACHED, ANCHOR_DIFFERS };

/* Checks each anchor against link seq, whose recomputed hash is hash. */
static void check_anchor_at(verifier *v, int64_t seq, int64_t at, const unsigned char hash[CH_DIGEST_LEN],
                            const chq_anchor *anchors, int nanchors, unsigned char *reached)
{
    for (int i = 0; i < nanchors; i++) {
        if (anchors[i].seq != seq)
            continue;
        reached[i] = memcmp(anchors[i].hash, hash, CH_DIGEST_LEN) == 0 ? ANCHOR_REACHED : ANCHOR_DIFFERS;
        if (reached[i] == ANCHOR_DIFFERS)
            fail(v, seq, at, "the anchor's hash is not this link's: the chain up to it was rewritten", NULL);
    }
}

/* The newest record of links pruned (prunes.links_before and links_prev):
 * the first link is followed by link links_before, whose previous hash is
 * links_prev. Its row is chained, so check_rows vouches for it. */
static void read_pruned(verifier *v)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(v->db, "SELECT links_before, links_prev FROM prunes WHERE links_before IS NOT NULL"
                                  " ORDER BY links_before DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return; /* a database from before the column: nothing pruned */
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) == CH_DIGEST_LEN) {
        v->pruned_before = sqlite3_column_int64(st, 0);
        memcpy(v->pruned_prev, sqlite3_column_blob(st, 1), CH_DIGEST_LEN);
    }
    sqlite3_finalize(st);
}

/* Whether the gap before link seq, after link 1, is the recorded pruning;
 * if so prev becomes the hash link seq follows. */
static bool pruned_gap(verifier *v, int64_t seq, const chq_anchor *anchors, int nanchors, unsigned char *reached,
                       unsigned char prev[CH_DIGEST_LEN])
{
    if (v->head_seq != 1 || v->pruned_before != seq || seq <= 2)
        return false;
    memcpy(prev, v->pruned_prev, CH_DIGEST_LEN);
    check_anchor_at(v, seq - 1, -1, prev, anchors, nanchors, reached);
    return true;
}

static void check_links(verifier *v, const chq_anchor *anchors, int nanchors, unsigned char *reached)
{
    read_pruned(v);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(v->db, "SELECT seq, at, kind, rows, mset, hash, key_id FROM chain_links ORDER BY seq", -1,
                           &st, NULL) != SQLITE_OK) {
        fail_sql(v, "chain_links");
        return;
    }
    unsigned char prev[CH_DIGEST_LEN] = {0}, hash[CH_DIGEST_LEN];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0), at = sqlite3_column_int64(st, 1);
        int kind = sqlite3_column_int(st, 2);
        ch_chain_mset m = {.rows = sqlite3_column_int64(st, 3)};
        v->nlinks++;
        if (seq != v->head_seq + 1 && !pruned_gap(v, seq, anchors, nanchors, reached, prev))
            link_failure(v, v->head_seq + 1, -1, "link %lld is missing (the next one is %lld)", v->head_seq + 1, seq);
        if ((seq == 1) != (kind == CH_LINK_GENESIS || kind == CH_LINK_GENESIS_KEYED) ||
            (kind != CH_LINK_COMMIT && kind != CH_LINK_GENESIS && kind != CH_LINK_GENESIS_KEYED))
            link_failure(v, seq, at, "link %lld has kind %lld, not the one its place calls for", seq, kind);
        if (seq == 1) {
            v->genesis_at = at;
            v->genesis_kind = kind;
            v->key_id = sqlite3_column_int64(st, 6);
        }
        if (sqlite3_column_bytes(st, 4) != CH_DIGEST_LEN || sqlite3_column_bytes(st, 5) != CH_DIGEST_LEN) {
            link_failure(v, seq, at, "link %lld: its multiset or hash is not %lld bytes", seq, CH_DIGEST_LEN);
            memset(prev, 0, sizeof prev);
        } else {
            memcpy(m.sum, sqlite3_column_blob(st, 4), CH_DIGEST_LEN);
            if (ch_chain_link_hash(v->d, prev, seq, at, kind, &m, hash) != 0) {
                fail(v, seq, at, "the digest library failed", NULL);
                break;
            }
            check_anchor_at(v, seq, at, hash, anchors, nanchors, reached);
            const unsigned char *stored = sqlite3_column_blob(st, 5);
            if (memcmp(hash, stored, CH_DIGEST_LEN) != 0)
                link_failure(v, seq, at, "link %lld: its hash is not the hash of its fields and the link before", seq, 0);
            memcpy(prev, stored, CH_DIGEST_LEN); /* each later link checked on its own */
            memcpy(v->head_mset, m.sum, CH_DIGEST_LEN);
            memcpy(v->head_hash, hash, CH_DIGEST_LEN);
        }
        v->head_seq = seq;
        v->head_at = at;
        v->head_rows = m.rows;
    }
    if (rc != SQLITE_DONE)
        fail_sql(v, "chain_links");
    sqlite3_finalize(st);
}

/* ---- rows ------------------------------------------------------------- */

/* Time columns worth naming a row by; closed_after is lifetimes' offset. */
static const char *const time_cols[] = {"first_seen", "closed_after", "started_at", "ended_at", "first_at",
                                        "last_at", "start_time", "closed_at"};

static cJSON *row_json(const ch_chain_table *t, int64_t key, sqlite3_value **vals, const char *reason)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "table", t->name);
    cJSON_AddNumberToObject(r, t->parent >= 0 ? t->cols[t->parent_key] : "rowid", (double)key);
    cJSON_AddStringToObject(r, "reason", reason);
    int64_t first_seen = -1;
    for (int i = 0; i < t->ncols; i++) {
        for (size_t k = 0; k < sizeof time_cols / sizeof time_cols[0]; k++) {
            if (strcmp(t->cols[i], time_cols[k]) != 0 || sqlite3_value_type(vals[i]) != SQLITE_INTEGER)
                continue;
            int64_t ms = sqlite3_value_int64(vals[i]);
            if (strcmp(t->cols[i], "first_seen") == 0)
                first_seen = ms;
            if (strcmp(t->cols[i], "closed_after") == 0)
                json_add_time(r, "closed_at", first_seen >= 0, first_seen + ms);
            else
                json_add_time(r, t->cols[i], true, ms);
        }
    }
    return r;
}

static void name_row(verifier *v, const ch_chain_table *t, int64_t key, sqlite3_value **vals, const char *reason)
{
    if (v->mismatched++ < MAX_NAMED)
        cJSON_AddItemToArray(v->named, row_json(t, key, vals, reason));
}

/* A cursor over a child table in the order of its parent's key. */
typedef struct {
    const ch_chain_table *t;
    sqlite3_stmt *st;
    bool more;
    int64_t key;
    sqlite3_value *vals[CH_CHAIN_MAX_COLS];
} child_cursor;

static sqlite3_stmt *select_table(verifier *v, const ch_chain_table *t, const char *key, bool digest, bool ranged)
{
    char sql[4096];
    size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT %s", key);
    for (int i = 0; i < t->ncols && n < sizeof sql; i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, ", \"%s\"", t->cols[i]);
    if (n < sizeof sql)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s FROM \"%s\"", digest ? ", chain_digest" : "", t->name);
    if (n < sizeof sql && ranged)
        n += (size_t)snprintf(sql + n, sizeof sql - n, " WHERE %s >= %lld AND %s < %lld", key, (long long)v->lo, key,
                              (long long)v->hi);
    if (n < sizeof sql)
        n += (size_t)snprintf(sql + n, sizeof sql - n, " ORDER BY %s", key);
    sqlite3_stmt *st = NULL;
    if (n >= sizeof sql || sqlite3_prepare_v2(v->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail_sql(v, t->name);
        return NULL;
    }
    return st;
}

/* Digests the row at the cursor st (values from column 1) into the sum. */
static int digest_row(verifier *v, int ti, sqlite3_stmt *st, sqlite3_value **vals, unsigned char dg[CH_DIGEST_LEN])
{
    const ch_chain_table *t = &v->tables.t[ti];
    for (int i = 0; i < t->ncols; i++)
        vals[i] = sqlite3_column_value(st, i + 1);
    if (ch_chain_row_digest(v->d, t, vals, dg) != 0)
        return -1;
    ch_chain_mset_add(&v->rows, dg);
    v->table_rows[ti]++;
    return 0;
}

static int child_next(verifier *v, child_cursor *c)
{
    int rc = sqlite3_step(c->st);
    c->more = rc == SQLITE_ROW;
    if (c->more)
        c->key = sqlite3_column_int64(c->st, 0);
    else if (rc != SQLITE_DONE)
        fail_sql(v, c->t->name);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Takes in the children of parent key (those before it have no parent);
 * returns the sum of their short digests. */
static int64_t take_children(verifier *v, child_cursor *cs, int n, int64_t key, bool end)
{
    int64_t folded = 0;
    for (int i = 0; i < n; i++) {
        child_cursor *c = &cs[i];
        int ti = (int)(c->t - v->tables.t);
        while (c->more && (end || c->key <= key)) {
            unsigned char dg[CH_DIGEST_LEN];
            if (digest_row(v, ti, c->st, c->vals, dg) != 0)
                return folded;
            if (!end && c->key == key)
                folded = ch_chain_fold(folded, ch_chain_short(dg));
            else
                name_row(v, c->t, c->key, c->vals, "its parent row is gone");
            if (child_next(v, c) != 0)
                return folded;
        }
    }
    return folded;
}

/* Scans table ti (and its children, merged in by the parent's key). */
static void check_table(verifier *v, int ti)
{
    const ch_chain_table *t = &v->tables.t[ti];
    if (t->parent >= 0 || (v->split_only && ti != v->split))
        return; /* read with its parent, or by the other thread */
    bool ranged = ti == v->split;
    child_cursor cs[4];
    int n = 0;
    const char *key = t->has_rowid ? "rowid" : "NULL";
    for (int i = 0; i < v->tables.n && n < 4; i++) {
        if (v->tables.t[i].parent != ti)
            continue;
        const ch_chain_table *c = &v->tables.t[i];
        key = c->cols[c->parent_key]; /* the parent in the order of that key */
        cs[n] = (child_cursor){.t = c};
        char ckey[80];
        snprintf(ckey, sizeof ckey, "\"%s\"", c->cols[c->parent_key]);
        cs[n].st = select_table(v, c, ckey, false, ranged);
        if (cs[n].st == NULL || child_next(v, &cs[n]) != 0)
            goto done;
        n++;
    }
    sqlite3_stmt *st = select_table(v, t, key, t->has_digest, ranged);
    if (st == NULL)
        goto done;
    sqlite3_value *vals[CH_CHAIN_MAX_COLS];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        unsigned char dg[CH_DIGEST_LEN];
        int64_t k = sqlite3_column_int64(st, 0);
        if (digest_row(v, ti, st, vals, dg) != 0)
            break;
        int64_t expect = ch_chain_fold(ch_chain_short(dg), take_children(v, cs, n, k, false));
        if (!t->has_digest)
            continue;
        sqlite3_value *stored = sqlite3_column_value(st, t->ncols + 1);
        if (sqlite3_value_type(stored) == SQLITE_NULL)
            name_row(v, t, k, vals, "not chained: written by something other than the recorder");
        else if (sqlite3_value_int64(stored) != expect)
            name_row(v, t, k, vals, n > 0 ? "its content (or its children's) is not what was chained"
                                          : "its content is not what was chained");
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        fail_sql(v, t->name);
    take_children(v, cs, n, 0, true);
    sqlite3_finalize(st);
done:
    for (int i = 0; i < n; i++)
        sqlite3_finalize(cs[i].st);
}

/* ---- the second thread ------------------------------------------------ */

/* The newest link's stored hash as db sees it; false when there is none. */
static bool stored_head(sqlite3 *db, unsigned char hash[CH_DIGEST_LEN])
{
    sqlite3_stmt *st;
    bool ok = false;
    if (sqlite3_prepare_v2(db, "SELECT hash FROM chain_links ORDER BY seq DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return false;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == CH_DIGEST_LEN) {
        memcpy(hash, sqlite3_column_blob(st, 0), CH_DIGEST_LEN);
        ok = true;
    }
    sqlite3_finalize(st);
    return ok;
}

/* Where lifetimes splits in two: the middle of its ids; 0 when it is too
 * small to be worth a thread. */
static int64_t split_point(verifier *v, int ti)
{
    sqlite3_stmt *st;
    int64_t mid = 0;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT MIN(rowid), MAX(rowid) FROM \"%s\"", v->tables.t[ti].name);
    if (sqlite3_prepare_v2(v->db, sql, -1, &st, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
        int64_t lo = sqlite3_column_int64(st, 0), hi = sqlite3_column_int64(st, 1);
        const char *env = getenv("CONNHIST_VERIFY_SPLIT");
        int64_t min_ids = env != NULL && atoll(env) > 0 ? atoll(env) : SPLIT_MIN_IDS;
        if (hi - lo >= min_ids)
            mid = lo + (hi - lo) / 2;
    }
    sqlite3_finalize(st);
    return mid;
}

static void worker_rows(void *arg)
{
    verifier *w = arg;
    check_table(w, w->split);
}

/* A verifier of the ids below mid of table ti, on its own connection to
 * path in a read transaction that sees what v sees; false when there is
 * none (v then reads everything). */
static bool start_half(verifier *v, verifier *w, const char *path, const unsigned char *key, size_t keylen, int ti,
                       int64_t mid)
{
    char err[CH_ERR_MAX];
    unsigned char mine[CH_DIGEST_LEN], theirs[CH_DIGEST_LEN];
    *w = (verifier){.failures = cJSON_CreateArray(), .named = cJSON_CreateArray(), .tables = v->tables,
                    .split = ti, .split_only = true, .lo = INT64_MIN, .hi = mid};
    bool same = ch_db_open_read(path, &w->db, err) == 0 &&
                sqlite3_exec(w->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK && stored_head(v->db, mine) &&
                stored_head(w->db, theirs) && memcmp(mine, theirs, CH_DIGEST_LEN) == 0 &&
                (w->d = ch_digest_new(key, keylen)) != NULL;
    if (!same) {
        ch_digest_free(w->d);
        sqlite3_close(w->db);
        cJSON_Delete(w->failures);
        cJSON_Delete(w->named);
    }
    return same;
}

/* Takes in what the other half found. */
static void merge_half(verifier *v, verifier *w)
{
    ch_chain_mset sum = v->rows;
    ch_chain_mset_add(&sum, w->rows.sum);
    sum.rows = v->rows.rows + w->rows.rows;
    v->rows = sum;
    for (int i = 0; i < v->tables.n; i++)
        v->table_rows[i] += w->table_rows[i];
    cJSON *named = v->named;
    v->named = w->named; /* the lower ids first */
    cJSON *r;
    while ((r = cJSON_DetachItemFromArray(named, 0)) != NULL) {
        if (cJSON_GetArraySize(v->named) < MAX_NAMED)
            cJSON_AddItemToArray(v->named, r);
        else
            cJSON_Delete(r);
    }
    cJSON_Delete(named);
    v->mismatched += w->mismatched;
    cJSON *f;
    cJSON_ArrayForEach(f, w->failures) {
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(f, "reason");
        fail(v, 0, -1, cJSON_IsString(reason) ? reason->valuestring : "the second thread failed", NULL);
    }
    v->unreadable = v->unreadable || w->unreadable;
    if (w->first != NULL && !w->first_listed)
        cJSON_Delete(w->first);
    cJSON_Delete(w->failures);
    ch_digest_free(w->d);
    sqlite3_close(w->db);
}

static void check_rows(verifier *v, const char *path, const unsigned char *key, size_t keylen)
{
    v->named = cJSON_CreateArray();
    int ti = 0;
    while (ti < v->tables.n && strcmp(v->tables.t[ti].name, "lifetimes") != 0)
        ti++;
    int64_t mid = ti < v->tables.n ? split_point(v, ti) : 0;
    verifier half;
    chq_worker *worker = NULL;
    if (mid != 0 && start_half(v, &half, path, key, keylen, ti, mid)) {
        worker = chq_worker_start(worker_rows, &half);
        if (worker == NULL) {
            merge_half(v, &half); /* nothing read: v reads it all */
        } else {
            v->split = ti;
            v->lo = mid;
            v->hi = INT64_MAX;
        }
    }
    for (int i = 0; i < v->tables.n && !v->unreadable; i++)
        check_table(v, i);
    if (worker != NULL) {
        chq_worker_join(worker);
        merge_half(v, &half);
    }
    bool sum_ok = memcmp(v->rows.sum, v->head_mset, CH_DIGEST_LEN) == 0;
    bool count_ok = v->rows.rows == v->head_rows;
    if (v->mismatched == 0 && sum_ok && count_ok) {
        cJSON_Delete(v->named);
        return;
    }
    char reason[256];
    if (!count_ok)
        snprintf(reason, sizeof reason, "the database has %lld rows, the newest link %lld: %lld %s", (long long)v->rows.rows,
                 (long long)v->head_rows, (long long)llabs(v->rows.rows - v->head_rows),
                 v->rows.rows < v->head_rows ? "deleted" : "added");
    else if (!sum_ok)
        snprintf(reason, sizeof reason, "the rows do not add up to the newest link's multiset: rows were changed");
    else
        snprintf(reason, sizeof reason, "rows differ from what was chained");
    if (v->mismatched > MAX_NAMED) {
        size_t n = strlen(reason);
        snprintf(reason + n, sizeof reason - n, " (%lld rows differ, the first %d named)", (long long)v->mismatched,
                 MAX_NAMED);
    }
    fail(v, v->head_seq, v->head_at, reason, v->named);
}

/* ---- the report ------------------------------------------------------- */

/* What was recorded before the chain began (a database upgraded from
 * version 3): its rows were digested by the first link, but their history
 * before it is not vouched for. */
static cJSON *unchained_json(verifier *v)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT (SELECT COUNT(*) FROM lifetimes WHERE first_seen < ?1),"
                      " (SELECT MIN(first_seen) FROM lifetimes WHERE first_seen < ?1),"
                      " (SELECT COUNT(*) FROM runs WHERE started_at < ?1)";
    if (sqlite3_prepare_v2(v->db, sql, -1, &st, NULL) != SQLITE_OK)
        return cJSON_CreateNull();
    sqlite3_bind_int64(st, 1, v->genesis_at);
    cJSON *u = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && (sqlite3_column_int64(st, 0) > 0 || sqlite3_column_int64(st, 2) > 0)) {
        u = cJSON_CreateObject();
        json_add_time(u, "from", sqlite3_column_type(st, 1) != SQLITE_NULL, sqlite3_column_int64(st, 1));
        json_add_time(u, "until", true, v->genesis_at);
        cJSON_AddNumberToObject(u, "lifetimes", (double)sqlite3_column_int64(st, 0));
        cJSON_AddNumberToObject(u, "runs", (double)sqlite3_column_int64(st, 2));
    }
    sqlite3_finalize(st);
    return u != NULL ? u : cJSON_CreateNull();
}

static cJSON *links_json(verifier *v)
{
    cJSON *l = cJSON_CreateObject();
    cJSON_AddNumberToObject(l, "count", (double)v->nlinks);
    cJSON_AddNumberToObject(l, "broken", (double)v->broken);
    cJSON_AddBoolToObject(l, "keyed", v->genesis_kind == CH_LINK_GENESIS_KEYED);
    json_add_time(l, "from", v->nlinks > 0, v->genesis_at);
    json_add_time(l, "to", v->nlinks > 0, v->head_at);
    cJSON *head = cJSON_CreateObject();
    char hex[2 * CH_DIGEST_LEN + 1];
    ch_chain_hex(v->head_hash, CH_DIGEST_LEN, hex);
    cJSON_AddNumberToObject(head, "seq", (double)v->head_seq);
    json_add_time(head, "at", v->nlinks > 0, v->head_at);
    cJSON_AddStringToObject(head, "hash", hex);
    cJSON_AddNumberToObject(head, "rows", (double)v->head_rows);
    cJSON_AddItemToObject(l, "head", v->nlinks > 0 ? head : (cJSON_Delete(head), cJSON_CreateNull()));
    if (v->pruned_before > 2) {
        cJSON *p = cJSON_AddObjectToObject(l, "pruned");
        cJSON_AddNumberToObject(p, "from", 2);
        cJSON_AddNumberToObject(p, "to", (double)(v->pruned_before - 1));
    } else {
        cJSON_AddNullToObject(l, "pruned");
    }
    return l;
}

static cJSON *rows_json(verifier *v)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "total", (double)v->rows.rows);
    cJSON_AddNumberToObject(r, "differing", (double)v->mismatched);
    cJSON *tables = cJSON_AddObjectToObject(r, "tables");
    for (int i = 0; i < v->tables.n; i++)
        cJSON_AddNumberToObject(tables, v->tables.t[i].name, (double)v->table_rows[i]);
    return r;
}

static cJSON *anchors_json(verifier *v, const chq_anchor *anchors, int nanchors, const unsigned char *reached)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < nanchors; i++) {
        char hex[2 * CH_DIGEST_LEN + 1];
        ch_chain_hex(anchors[i].hash, CH_DIGEST_LEN, hex);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "seq", (double)anchors[i].seq);
        cJSON_AddStringToObject(o, "hash", hex);
        bool missed = reached[i] == ANCHOR_MISSED;
        bool pruned = missed && anchors[i].seq > 1 && anchors[i].seq < v->pruned_before - 1;
        cJSON_AddBoolToObject(o, "reached", reached[i] == ANCHOR_REACHED);
        cJSON_AddBoolToObject(o, "rewritten", reached[i] == ANCHOR_DIFFERS);
        cJSON_AddBoolToObject(o, "pruned", pruned);
        cJSON_AddItemToArray(a, o);
        if (missed && !pruned) {
            char reason[160];
            snprintf(reason, sizeof reason, "the chain ends at link %lld, before the anchor at link %lld: links were removed",
                     (long long)v->head_seq, (long long)anchors[i].seq);
            fail(v, anchors[i].seq, -1, reason, NULL);
        }
    }
    return a;
}

/* A keyed chain needs its key, and only it. 0, or 2 after a message. */
static int check_key(verifier *v, const char *path, bool keyed)
{
    sqlite3_stmt *st;
    int kind = -1;
    int64_t key_id = 0;
    if (sqlite3_prepare_v2(v->db, "SELECT kind, key_id FROM chain_links WHERE seq = 1", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            kind = sqlite3_column_int(st, 0);
            key_id = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
    }
    if (kind == CH_LINK_GENESIS_KEYED && !keyed) {
        fprintf(stderr, "connhist-query: %s: its chain is keyed: give its key with --key FILE\n", path);
        return 2;
    }
    if (kind == CH_LINK_GENESIS && keyed) {
        fprintf(stderr, "connhist-query: %s: its chain has no key: verify it without --key\n", path);
        return 2;
    }
    if (kind == CH_LINK_GENESIS_KEYED && key_id != ch_chain_key_id(v->d)) {
        fprintf(stderr, "connhist-query: %s: --key: not the key this chain was begun with\n", path);
        return 2;
    }
    return 0;
}

int verify_run(sqlite3 *db, const char *path, const unsigned char *key, size_t keylen, const chq_anchor *anchors,
               int nanchors, cJSON **out)
{
    verifier v = {.db = db, .failures = cJSON_CreateArray(), .split = -1};
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL); /* one snapshot of a live database */
    char err[512];
    v.d = ch_digest_new(key, keylen);
    if (v.d == NULL) {
        fprintf(stderr, "connhist-query: the digest library (%s) refused SHA-256\n", ch_digest_library());
        cJSON_Delete(v.failures);
        return 1;
    }
    int rc = check_key(&v, path, key != NULL);
    if (rc != 0) {
        ch_digest_free(v.d);
        cJSON_Delete(v.failures);
        return rc;
    }
    unsigned char *reached = calloc((size_t)nanchors + 1, sizeof *reached); /* ANCHOR_MISSED */
    if (ch_chain_tables_read(db, &v.tables, err, sizeof err) != 0)
        fail(&v, 0, -1, err, NULL);
    else
        check_links(&v, anchors, nanchors, reached);
    if (v.nlinks == 0 && !v.unreadable)
        fail(&v, 0, -1, "there is no chain: nothing in this database is vouched for", NULL);
    else if (!v.unreadable)
        check_rows(&v, path, key, keylen);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "database", path);
    cJSON *anchors_out = anchors_json(&v, anchors, nanchors, reached);
    cJSON_AddBoolToObject(o, "intact", v.nfailures == 0);
    cJSON_AddItemToObject(o, "links", links_json(&v));
    cJSON_AddItemToObject(o, "rows", rows_json(&v));
    cJSON_AddItemToObject(o, "unchained", v.nlinks > 0 && !v.unreadable ? unchained_json(&v) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "anchors", anchors_out);
    cJSON_AddItemToObject(o, "first_failure", v.first != NULL ? cJSON_Duplicate(v.first, true) : cJSON_CreateNull());
    if (v.nfailures > MAX_FAILURES)
        cJSON_AddNumberToObject(o, "failures_not_listed", v.nfailures - MAX_FAILURES);
    cJSON_AddItemToObject(o, "failures", v.failures);
    if (v.first != NULL && !v.first_listed)
        cJSON_Delete(v.first);
    *out = o;
    free(reached);
    ch_digest_free(v.d);
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return v.nfailures == 0 ? 0 : 1;
}
