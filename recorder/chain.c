/*
 * Writing the tamper-evident chain (see chain.h and schema/README.md, "The
 * chain"). Every row of every chained table has a 32-byte digest of its
 * canonical encoding (common/chain_codec.c); the multiset of all current
 * rows' digests is kept as their sum modulo 2^256, and each committed
 * transaction appends a link or brings the newest one up to date (see
 * LINK_SPAN_MS): its sequence number, time, row count and that sum,
 * hashed with the previous link's hash.
 *
 * The store's hot writers (lifetimes, state changes, processes) chain
 * their rows in their own statements, built by ch_chain_prepare: the row's
 * values go to ch_chain_new / ch_chain_put / ch_chain_upd, and the store
 * writes the link once before its COMMIT (ch_chain_write_link). Every
 * other writer does not know about the chain: temporary triggers (they
 * live in this connection only, so a sqlite3 shell editing the file fires
 * none) call the functions below with each changed row's old and new
 * values: the sum loses the old digest and gains the new one, the row's
 * short digest beside it is set (tables with a chain_digest column; the
 * children state_changes and lifetime_extras add theirs to their lifetime's),
 * and the transaction's link is written or brought up to date. A
 * transaction that rolls back takes its link with it; the next one starts
 * again from the last committed link, read back from the database.
 */
#include "chain.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain_codec.h"
#include "custody.h"
#include "db.h"
#include "timeutil.h"

#define DEFAULT_ANCHOR_EVERY_MS (10 * 60 * 1000)

/*
 * A link covers the transactions of up to LINK_SPAN_MS: a transaction
 * extends the newest link (same seq, a new sum and hash) when this
 * connection made it, it is younger than that and no anchor names it yet;
 * else it appends the next. One link per sample would cost a 1 s recorder
 * 87 bytes a second (7.5 MB a day) whatever the traffic.
 */
#define LINK_SPAN_MS (60 * 1000)

struct ch_chain {
    sqlite3 *db;
    bool off;                     /* $CONNHIST_CHAIN_OFF: statements without the chain */
    ch_digest *d;
    ch_chain_tables tables;
    /* The transaction in progress. */
    bool in_txn, wrote;
    int64_t seq, at;
    ch_chain_mset m;
    unsigned char prev[CH_DIGEST_LEN];
    int64_t last_short;           /* what the last row function returned */
    /* Rows chained since the link was last written (ch_chain_write_link). */
    bool dirty;
    /* A child row inserted by a statement of ch_chain_prepare, whose short
     * digest waits for its parent's UPDATE (see fn_put). */
    bool pending;
    int pending_parent;
    int64_t pending_key, pending_short;
    int key_col[CH_CHAIN_MAX_TABLES]; /* a child's parent key among its parent's columns */
    /* The triggers ch_chain_prepare dropped (bit i: table i), its
     * statements chaining those writes instead (see ch_chain_rearm). */
    uint32_t unarmed_ins, unarmed_upd;
    /* The newest link this connection made (it may extend it). */
    int64_t own_seq;
    unsigned char own_prev[CH_DIGEST_LEN];
    /* The newest committed link, and the anchors written. */
    bool have_head;               /* head_* are the last committed link */
    int64_t head_seq, head_at;
    unsigned char head_hash[CH_DIGEST_LEN];
    ch_chain_mset head_m;
    int64_t anchored_seq, anchored_at, anchor_every_ms;
    char db_path[CH_PATH_MAX];
    char anchor_file[CH_PATH_MAX];
};
typedef struct ch_chain chain;

/* ---- anchors ---------------------------------------------------------- */

/* Writes the committed head to the system log (and the anchor file). */
static void anchor(chain *c, int64_t now)
{
    if (!c->have_head || c->head_seq == c->anchored_seq)
        return;
    char hex[2 * CH_DIGEST_LEN + 1], at[CH_TIME_TEXT], line[CH_PATH_MAX + 256];
    ch_chain_hex(c->head_hash, CH_DIGEST_LEN, hex);
    ch_format_time(c->head_at, at);
    snprintf(line, sizeof line, "connhist chain head seq=%lld hash=%s at=%s db=%s", (long long)c->head_seq, hex,
             at, c->db_path);
    ch_custody_log(line);
    if (c->anchor_file[0] != '\0') {
        FILE *f = fopen(c->anchor_file, "a");
        if (f != NULL) {
            fprintf(f, "%s\n", line);
            fclose(f);
        }
    }
    c->anchored_seq = c->head_seq;
    c->anchored_at = now;
}

/* ---- the transaction's link ------------------------------------------- */

/* Reads the last committed link into the transaction's starting point.
 * (Prepared each time: a statement kept would stop sqlite3_close.) */
static int load_head(chain *c)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(c->db, "SELECT seq, rows, mset, hash, at FROM main.chain_links ORDER BY seq DESC LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 2) == CH_DIGEST_LEN &&
        sqlite3_column_bytes(st, 3) == CH_DIGEST_LEN) {
        c->head_seq = sqlite3_column_int64(st, 0);
        c->head_m.rows = sqlite3_column_int64(st, 1);
        memcpy(c->head_m.sum, sqlite3_column_blob(st, 2), CH_DIGEST_LEN);
        memcpy(c->head_hash, sqlite3_column_blob(st, 3), CH_DIGEST_LEN);
        c->head_at = sqlite3_column_int64(st, 4);
        c->have_head = true;
        rc = SQLITE_OK;
    } else {
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Called before the first row of every transaction is counted. The last
 * committed link is known from the commit hook, and read again from the
 * database after a rollback (or any doubt). */
static int begin_txn(chain *c)
{
    if (c->in_txn)
        return SQLITE_OK;
    int rc = c->have_head ? SQLITE_OK : load_head(c);
    if (rc != SQLITE_OK)
        return rc;
    c->m = c->head_m;
    int64_t now = ch_now_ms();
    if (now - c->anchored_at >= c->anchor_every_ms) /* the head loaded is committed: anchor it */
        anchor(c, now);
    if (c->head_seq == c->own_seq && c->head_seq != c->anchored_seq && now - c->head_at >= 0 &&
        now - c->head_at < LINK_SPAN_MS) {
        c->seq = c->head_seq; /* extends it */
        c->at = c->head_at;
        memcpy(c->prev, c->own_prev, CH_DIGEST_LEN);
    } else {
        c->seq = c->head_seq + 1;
        c->at = now;
        memcpy(c->prev, c->head_hash, CH_DIGEST_LEN);
    }
    c->in_txn = c->wrote = true;
    return SQLITE_OK;
}

static int on_commit(void *arg)
{
    chain *c = arg;
    if (c->in_txn && (c->dirty || c->pending)) { /* a writer owes the link, or a parent's digest */
        c->in_txn = c->wrote = c->dirty = c->pending = false;
        return 1;
    }
    if (c->in_txn && c->wrote) { /* promoted now; a failing commit calls on_rollback */
        c->head_seq = c->own_seq = c->seq;
        c->head_at = c->at;
        c->head_m = c->m;
        memcpy(c->own_prev, c->prev, CH_DIGEST_LEN);
        if (ch_chain_link_hash(c->d, c->prev, c->seq, c->at, CH_LINK_COMMIT, &c->m, c->head_hash) != 0)
            return 1; /* the link written would not be the one hashed: refuse */
        c->have_head = true;
    }
    c->in_txn = c->wrote = false;
    return 0;
}

static void on_rollback(void *arg)
{
    chain *c = arg;
    c->in_txn = c->wrote = c->dirty = c->pending = false;
    c->have_head = false; /* read again at the next transaction */
}

/* ---- SQL functions called by the triggers ----------------------------- */

static const ch_chain_table *table_arg(chain *c, sqlite3_context *ctx, sqlite3_value *v)
{
    int i = sqlite3_value_int(v);
    if (i < 0 || i >= c->tables.n) {
        sqlite3_result_error(ctx, "chain: no such table", -1);
        return NULL;
    }
    return &c->tables.t[i];
}

static int row_digest(chain *c, sqlite3_context *ctx, const ch_chain_table *t, sqlite3_value **v,
                      unsigned char out[CH_DIGEST_LEN])
{
    if (ch_chain_row_digest(c->d, t, v, out) != 0) {
        sqlite3_result_error(ctx, "chain: the digest library failed", -1);
        return -1;
    }
    return 0;
}

/* ch_chain_row(TABLE, SIGN, values...): a row added (SIGN 1) or taken out
 * (SIGN -1). Returns its short digest, negated when taken out. */
static void fn_row(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    chain *c = sqlite3_user_data(ctx);
    const ch_chain_table *t = table_arg(c, ctx, argv[0]);
    if (t == NULL)
        return;
    if (argc != t->ncols + 2) {
        sqlite3_result_error(ctx, "chain: wrong number of values", -1);
        return;
    }
    int rc = begin_txn(c);
    if (rc != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    unsigned char dg[CH_DIGEST_LEN];
    if (row_digest(c, ctx, t, argv + 2, dg) != 0)
        return;
    int64_t s = ch_chain_short(dg);
    if (sqlite3_value_int(argv[1]) >= 0) {
        ch_chain_mset_add(&c->m, dg);
    } else {
        ch_chain_mset_sub(&c->m, dg);
        s = ch_chain_fold(0, (int64_t)(0 - (uint64_t)s));
    }
    c->last_short = s;
    c->dirty = true;
    sqlite3_result_int64(ctx, s);
}

/* ch_chain_change(TABLE, old values..., new values...): a row changed.
 * Returns the change of its short digest (new - old, modulo 2^64). */
static void fn_change(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    chain *c = sqlite3_user_data(ctx);
    const ch_chain_table *t = table_arg(c, ctx, argv[0]);
    if (t == NULL)
        return;
    if (argc != 2 * t->ncols + 1) {
        sqlite3_result_error(ctx, "chain: wrong number of values", -1);
        return;
    }
    int rc = begin_txn(c);
    if (rc != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    unsigned char old[CH_DIGEST_LEN], now[CH_DIGEST_LEN];
    if (row_digest(c, ctx, t, argv + 1, old) != 0 || row_digest(c, ctx, t, argv + 1 + t->ncols, now) != 0)
        return;
    ch_chain_mset_sub(&c->m, old);
    ch_chain_mset_add(&c->m, now);
    c->last_short = (int64_t)((uint64_t)ch_chain_short(now) - (uint64_t)ch_chain_short(old));
    c->dirty = true;
    sqlite3_result_int64(ctx, c->last_short);
}

/* ch_chain_last(): what the last ch_chain_row or ch_chain_change returned. */
static void fn_last(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc, (void)argv;
    sqlite3_result_int64(ctx, ((chain *)sqlite3_user_data(ctx))->last_short);
}

/* ch_chain_fold(A, B): A + B modulo 2^64, A NULL counting as 0. */
static void fn_fold(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sqlite3_result_int64(ctx, ch_chain_fold(sqlite3_value_int64(argv[0]), sqlite3_value_int64(argv[1])));
}

/* ch_chain_link(FIELD): the transaction's link: 0 seq, 1 at, 2 rows,
 * 3 mset, 4 hash. */
static void fn_link(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    chain *c = sqlite3_user_data(ctx);
    unsigned char hash[CH_DIGEST_LEN];
    switch (sqlite3_value_int(argv[0])) {
    case 0:
        sqlite3_result_int64(ctx, c->seq);
        return;
    case 1:
        sqlite3_result_int64(ctx, c->at);
        return;
    case 2:
        sqlite3_result_int64(ctx, c->m.rows);
        return;
    case 3:
        sqlite3_result_blob(ctx, c->m.sum, CH_DIGEST_LEN, SQLITE_TRANSIENT);
        return;
    default:
        if (ch_chain_link_hash(c->d, c->prev, c->seq, c->at, CH_LINK_COMMIT, &c->m, hash) != 0) {
            sqlite3_result_error(ctx, "chain: the digest library failed", -1);
            return;
        }
        c->dirty = false; /* the link written is the sum so far */
        sqlite3_result_blob(ctx, hash, CH_DIGEST_LEN, SQLITE_TRANSIENT);
    }
}

/* ---- SQL functions of the statements of ch_chain_prepare --------------- */

/* Checks the table and the number of values, and begins the transaction's
 * link; NULL (with the error set) when it cannot. */
static const ch_chain_table *fast_begin(chain *c, sqlite3_context *ctx, int argc, sqlite3_value **argv, int fixed,
                                        int per_col)
{
    const ch_chain_table *t = table_arg(c, ctx, argv[0]);
    if (t == NULL)
        return NULL;
    if (argc != fixed + per_col * t->ncols) {
        sqlite3_result_error(ctx, "chain: wrong number of values", -1);
        return NULL;
    }
    int rc = begin_txn(c);
    if (rc != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return NULL;
    }
    c->dirty = true;
    return t;
}

/* ch_chain_new(TABLE, values...): a row inserted; returns its short
 * digest (the value of its chain_digest). */
static void fn_new(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    chain *c = sqlite3_user_data(ctx);
    const ch_chain_table *t = fast_begin(c, ctx, argc, argv, 1, 1);
    unsigned char dg[CH_DIGEST_LEN];
    if (t == NULL || row_digest(c, ctx, t, argv + 1, dg) != 0)
        return;
    ch_chain_mset_add(&c->m, dg);
    sqlite3_result_int64(ctx, ch_chain_short(dg));
}

/* ch_chain_put(TABLE, RET, values...): a row inserted into a table without
 * chain_digest; returns RET (the value of one of its columns). A child's
 * short digest waits for its parent's UPDATE (fn_upd), which must come
 * before the COMMIT. */
static void fn_put(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    chain *c = sqlite3_user_data(ctx);
    const ch_chain_table *t = fast_begin(c, ctx, argc, argv, 2, 1);
    unsigned char dg[CH_DIGEST_LEN];
    if (t == NULL || row_digest(c, ctx, t, argv + 2, dg) != 0)
        return;
    ch_chain_mset_add(&c->m, dg);
    if (t->parent >= 0) {
        int64_t key = sqlite3_value_int64(argv[2 + t->parent_key]);
        if (c->pending && (c->pending_parent != t->parent || c->pending_key != key)) {
            sqlite3_result_error(ctx, "chain: a child row's parent was not updated", -1);
            return;
        }
        c->pending_short = ch_chain_fold(c->pending ? c->pending_short : 0, ch_chain_short(dg));
        c->pending = true;
        c->pending_parent = t->parent;
        c->pending_key = key;
    }
    sqlite3_result_value(ctx, argv[1]);
}

/* ch_chain_upd(TABLE, chain_digest, old values..., new values...): a row
 * changed; returns its new chain_digest (with a waiting child's). */
static void fn_upd(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    chain *c = sqlite3_user_data(ctx);
    const ch_chain_table *t = fast_begin(c, ctx, argc, argv, 2, 2);
    unsigned char old[CH_DIGEST_LEN], now[CH_DIGEST_LEN];
    if (t == NULL || row_digest(c, ctx, t, argv + 2, old) != 0 || row_digest(c, ctx, t, argv + 2 + t->ncols, now) != 0)
        return;
    ch_chain_mset_sub(&c->m, old);
    ch_chain_mset_add(&c->m, now);
    int64_t d = ch_chain_fold(sqlite3_value_int64(argv[1]),
                              (int64_t)((uint64_t)ch_chain_short(now) - (uint64_t)ch_chain_short(old)));
    int i = (int)(t - c->tables.t);
    if (c->pending && c->pending_parent == i && sqlite3_value_int64(argv[2 + c->key_col[i]]) == c->pending_key) {
        d = ch_chain_fold(d, c->pending_short);
        c->pending = false;
    }
    sqlite3_result_int64(ctx, d);
}

/* Released with the connection: the last anchor, then everything. */
static void chain_free(void *arg)
{
    chain *c = arg;
    anchor(c, ch_now_ms());
    ch_digest_free(c->d);
    free(c);
}

/* ---- triggers --------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
    bool failed;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = true;
            return;
        }
        if (b->p != NULL && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = (b->cap + (size_t)k + 1) * 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* ", PREFIX.col1, PREFIX.col2, ..." */
static void put_values(sbuf *b, const ch_chain_table *t, const char *prefix)
{
    for (int i = 0; i < t->ncols; i++)
        put(b, ", %s.\"%s\"", prefix, t->cols[i]);
}

static const char link_upsert[] =
    "INSERT INTO chain_links(seq, at, kind, rows, mset, hash)"
    " VALUES (ch_chain_link(0), ch_chain_link(1), 0, ch_chain_link(2), ch_chain_link(3), ch_chain_link(4))"
    " ON CONFLICT(seq) DO UPDATE SET rows = excluded.rows, mset = excluded.mset, hash = excluded.hash;";

/* Where a row's short digest goes: its own row, its parent's, or nowhere. */
static void put_store(sbuf *b, const chain *c, const ch_chain_table *t, const char *row, const char *value)
{
    if (t->has_digest && t->has_rowid) {
        put(b, "UPDATE \"%s\" SET chain_digest = ch_chain_fold(chain_digest, %s) WHERE rowid = %s.rowid;",
            t->name, value, row);
    } else if (t->parent >= 0) {
        const ch_chain_table *p = &c->tables.t[t->parent];
        put(b, "SELECT %s; UPDATE \"%s\" SET chain_digest = ch_chain_fold(chain_digest, ch_chain_last())"
               " WHERE \"%s\" = %s.\"%s\";",
            value, p->name, t->cols[t->parent_key], row, t->cols[t->parent_key]);
    } else {
        put(b, "SELECT %s;", value);
    }
}

/* The three triggers of table i. */
static void put_triggers(sbuf *b, const chain *c, int i)
{
    const ch_chain_table *t = &c->tables.t[i];
    sbuf v = {0};
    put(&v, "ch_chain_row(%d, 1", i);
    put_values(&v, t, "NEW");
    put(&v, ")");
    put(b, "CREATE TEMP TRIGGER chain_ins_%d AFTER INSERT ON main.\"%s\" BEGIN ", i, t->name);
    put_store(b, c, t, "NEW", v.p);
    put(b, "%s END;\n", link_upsert);

    v.n = 0;
    put(&v, "ch_chain_row(%d, -1", i);
    put_values(&v, t, "OLD");
    put(&v, ")");
    put(b, "CREATE TEMP TRIGGER chain_del_%d AFTER DELETE ON main.\"%s\" BEGIN ", i, t->name);
    if (t->has_digest)
        put(b, "SELECT %s;", v.p); /* its own digest goes with it */
    else
        put_store(b, c, t, "OLD", v.p);
    put(b, "%s END;\n", link_upsert);

    v.n = 0;
    put(&v, "ch_chain_change(%d", i);
    put_values(&v, t, "OLD");
    put_values(&v, t, "NEW");
    put(&v, ")");
    /* Only a change of content: setting chain_digest itself fires nothing. */
    put(b, "CREATE TEMP TRIGGER chain_upd_%d AFTER UPDATE OF ", i);
    for (int k = 0; k < t->ncols; k++)
        put(b, "%s\"%s\"", k ? ", " : "", t->cols[k]);
    put(b, " ON main.\"%s\" BEGIN ", t->name);
    put_store(b, c, t, "NEW", v.p);
    put(b, "%s END;\n", link_upsert);
    if (v.failed)
        b->failed = true;
    free(v.p);
}

static int install_triggers(chain *c, char *err, size_t errn)
{
    sbuf b = {0};
    for (int i = 0; i < c->tables.n; i++)
        put_triggers(&b, c, i);
    int rc = b.failed ? SQLITE_NOMEM : sqlite3_exec(c->db, b.p, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        snprintf(err, errn, "cannot install the chain's triggers: %s", sqlite3_errmsg(c->db));
    free(b.p);
    return rc == SQLITE_OK ? 0 : -1;
}

/* ---- the hot writers' statements --------------------------------------- */

static const char *given(const ch_chain_write *w, const char *col)
{
    for (const ch_chain_value *v = w->values; v->col != NULL; v++)
        if (strcmp(v->col, col) == 0)
            return v->expr;
    return NULL;
}

/* Column k's value in a row the INSERT writes: the one given, else NULL,
 * which the column must default to. NULL when it does not. */
static const char *inserted(sqlite3 *db, const ch_chain_table *t, const ch_chain_write *w, int k)
{
    const char *e = given(w, t->cols[k]);
    if (e != NULL)
        return e;
    sqlite3_stmt *st;
    int plain = 0;
    if (sqlite3_prepare_v2(db, "SELECT dflt_value IS NULL AND pk = 0 FROM pragma_table_info(?1) WHERE name = ?2", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, t->cols[k], -1, SQLITE_STATIC);
        plain = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return plain ? "NULL" : NULL;
}

/* INSERT INTO t(given..., chain_digest) SELECT exprs..., ch_chain_new(i,
 * every column's value) [FROM] [WHERE]; for a table without chain_digest
 * the last value given goes through ch_chain_put instead. */
static int put_insert(sbuf *b, chain *c, int i, const ch_chain_write *w)
{
    const ch_chain_table *t = &c->tables.t[i];
    sbuf all = {0};
    for (int k = 0; k < t->ncols; k++) {
        const char *e = inserted(c->db, t, w, k);
        if (e == NULL) {
            free(all.p);
            return -1;
        }
        put(&all, ", %s", e);
    }
    put(b, "INSERT INTO main.\"%s\"(", t->name);
    for (const ch_chain_value *v = w->values; v->col != NULL; v++)
        put(b, "%s\"%s\"", v == w->values ? "" : ", ", v->col);
    put(b, "%s) SELECT ", t->has_digest ? ", chain_digest" : "");
    for (const ch_chain_value *v = w->values; v->col != NULL; v++) {
        bool last = v[1].col == NULL;
        if (last && !t->has_digest)
            put(b, "%sch_chain_put(%d, %s%s)", v == w->values ? "" : ", ", i, v->expr, all.p ? all.p : "");
        else
            put(b, "%s%s", v == w->values ? "" : ", ", v->expr);
    }
    if (t->has_digest)
        put(b, ", ch_chain_new(%d%s)", i, all.p ? all.p : "");
    if (all.failed)
        b->failed = true;
    free(all.p);
    return 0;
}

/* UPDATE t SET given..., chain_digest = ch_chain_upd(i, chain_digest, old
 * values..., new values...) [WHERE]. */
static int put_update(sbuf *b, chain *c, int i, const ch_chain_write *w)
{
    const ch_chain_table *t = &c->tables.t[i];
    if (!t->has_digest)
        return -1;
    put(b, "UPDATE main.\"%s\" SET ", t->name);
    for (const ch_chain_value *v = w->values; v->col != NULL; v++)
        put(b, "\"%s\" = %s, ", v->col, v->expr);
    put(b, "chain_digest = ch_chain_upd(%d, chain_digest", i);
    for (int k = 0; k < t->ncols; k++)
        put(b, ", \"%s\"", t->cols[k]);
    for (int k = 0; k < t->ncols; k++) {
        const char *e = given(w, t->cols[k]);
        put(b, ", %s", e != NULL ? e : "");
        if (e == NULL)
            put(b, "\"%s\"", t->cols[k]);
    }
    put(b, ")");
    return 0;
}

/* The same statement without the chain ($CONNHIST_CHAIN_OFF): the store's
 * SQL as it is, less the digest, so that the difference is the chain's. */
static int put_plain(sbuf *b, const ch_chain_write *w)
{
    put(b, w->update ? "UPDATE main.\"%s\" SET " : "INSERT INTO main.\"%s\"(", w->table);
    for (const ch_chain_value *v = w->values; v->col != NULL; v++) {
        const char *sep = v == w->values ? "" : ", ";
        if (w->update)
            put(b, "%s\"%s\" = %s", sep, v->col, v->expr);
        else
            put(b, "%s\"%s\"", sep, v->col);
    }
    if (!w->update) {
        put(b, ") SELECT ");
        for (const ch_chain_value *v = w->values; v->col != NULL; v++)
            put(b, "%s%s", v == w->values ? "" : ", ", v->expr);
    }
    return 0;
}

int ch_chain_prepare(ch_chain *c, const ch_chain_write *w, sqlite3_stmt **st, char *err, size_t errn)
{
    int i = 0;
    while (i < c->tables.n && strcmp(c->tables.t[i].name, w->table) != 0)
        i++;
    sbuf b = {0};
    int rc = -1;
    if (c->off)
        rc = put_plain(&b, w);
    else if (i < c->tables.n)
        rc = w->update ? put_update(&b, c, i, w) : put_insert(&b, c, i, w);
    if (rc == 0 && w->from != NULL)
        put(&b, " FROM %s", w->from);
    if (rc == 0 && w->where != NULL)
        put(&b, " WHERE %s", w->where);
    if (rc != 0 || b.failed) {
        snprintf(err, errn, "chain: cannot write %s %s (%s)", w->update ? "an UPDATE of" : "an INSERT into", w->table,
                 rc != 0 ? "an unknown table, or a column left to a default" : "out of memory");
        free(b.p);
        return -1;
    }
    char drop[64];
    snprintf(drop, sizeof drop, "DROP TRIGGER IF EXISTS temp.chain_%s_%d", w->update ? "upd" : "ins", i);
    rc = c->off ? SQLITE_OK : sqlite3_exec(c->db, drop, NULL, NULL, NULL);
    if (!c->off)
        *(w->update ? &c->unarmed_upd : &c->unarmed_ins) |= 1u << i;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(c->db, b.p, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK)
        snprintf(err, errn, "chain: cannot prepare %s: %s", b.p, sqlite3_errmsg(c->db));
    free(b.p);
    return rc == SQLITE_OK ? 0 : -1;
}

/* Drops the chain's triggers that exist ("IF EXISTS": any of them). */
static int drop_triggers(chain *c, uint32_t ins, uint32_t del, uint32_t upd)
{
    int rc = SQLITE_OK;
    for (int i = 0; rc == SQLITE_OK && i < c->tables.n; i++) {
        const char *kinds[3] = {ins >> i & 1 ? "ins" : NULL, del >> i & 1 ? "del" : NULL, upd >> i & 1 ? "upd" : NULL};
        for (int k = 0; rc == SQLITE_OK && k < 3; k++) {
            char drop[64];
            snprintf(drop, sizeof drop, "DROP TRIGGER IF EXISTS temp.chain_%s_%d", kinds[k] ? kinds[k] : "", i);
            rc = kinds[k] ? sqlite3_exec(c->db, drop, NULL, NULL, NULL) : SQLITE_OK;
        }
    }
    return rc;
}

int ch_chain_rearm(ch_chain *c, char *err, size_t errn)
{
    if (c->off)
        return 0;
    if (drop_triggers(c, UINT32_MAX, UINT32_MAX, UINT32_MAX) != SQLITE_OK) {
        snprintf(err, errn, "cannot drop the chain's triggers: %s", sqlite3_errmsg(c->db));
        return -1;
    }
    if (install_triggers(c, err, errn) != 0)
        return -1;
    if (drop_triggers(c, c->unarmed_ins, 0, c->unarmed_upd) != SQLITE_OK) {
        snprintf(err, errn, "cannot drop the chain's triggers: %s", sqlite3_errmsg(c->db));
        return -1;
    }
    return 0;
}

int ch_chain_write_link(ch_chain *c)
{
    if (c->off || !c->in_txn || !c->dirty)
        return SQLITE_OK;
    return sqlite3_exec(c->db, link_upsert, NULL, NULL, NULL);
}

/* ---- the first link --------------------------------------------------- */

/* Digests every row of table t into the sum and, where it keeps one, sets
 * its short digest. A child's goes to its parent's, so children have a
 * pass of their own, after every parent's digest is set. */
static int genesis_table(chain *c, const ch_chain_table *t, bool children_pass)
{
    if ((t->parent >= 0) != children_pass)
        return SQLITE_OK;
    sbuf sel = {0}, upd = {0};
    put(&sel, "SELECT %s", t->has_rowid ? "rowid" : "NULL");
    for (int i = 0; i < t->ncols; i++)
        put(&sel, ", \"%s\"", t->cols[i]);
    put(&sel, " FROM main.\"%s\"", t->name);
    if (t->has_digest && t->has_rowid)
        put(&upd, "UPDATE main.\"%s\" SET chain_digest = ?2 WHERE rowid = ?1", t->name);
    else if (t->parent >= 0)
        put(&upd, "UPDATE main.\"%s\" SET chain_digest = ch_chain_fold(chain_digest, ?2) WHERE \"%s\" = ?1",
            c->tables.t[t->parent].name, t->cols[t->parent_key]);
    sqlite3_stmt *st = NULL, *up = NULL;
    int rc = sel.failed || upd.failed ? SQLITE_NOMEM : sqlite3_prepare_v2(c->db, sel.p, -1, &st, NULL);
    if (rc == SQLITE_OK && upd.p != NULL)
        rc = sqlite3_prepare_v2(c->db, upd.p, -1, &up, NULL);
    sqlite3_value *vals[CH_CHAIN_MAX_COLS];
    int step = SQLITE_DONE;
    while (rc == SQLITE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < t->ncols; i++)
            vals[i] = sqlite3_column_value(st, i + 1);
        unsigned char dg[CH_DIGEST_LEN];
        if (ch_chain_row_digest(c->d, t, vals, dg) != 0) {
            rc = SQLITE_ERROR;
            break;
        }
        ch_chain_mset_add(&c->m, dg);
        if (up == NULL)
            continue;
        if (t->parent >= 0)
            sqlite3_bind_value(up, 1, vals[t->parent_key]);
        else
            sqlite3_bind_int64(up, 1, sqlite3_column_int64(st, 0));
        sqlite3_bind_int64(up, 2, ch_chain_short(dg));
        rc = sqlite3_step(up) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(c->db);
        sqlite3_reset(up);
    }
    if (rc == SQLITE_OK && step != SQLITE_DONE)
        rc = step;
    sqlite3_finalize(st);
    sqlite3_finalize(up);
    free(sel.p);
    free(upd.p);
    return rc;
}

/* Begins the chain: one link over every row there is (none in a new
 * database but the codes; all of them in one upgraded from version 3). */
static int genesis(chain *c, bool keyed, int64_t key_id, char *err, size_t errn)
{
    memset(&c->m, 0, sizeof c->m);
    int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; rc == SQLITE_OK && i < c->tables.n; i++)
            rc = genesis_table(c, &c->tables.t[i], pass == 1);
    unsigned char zero[CH_DIGEST_LEN] = {0}, hash[CH_DIGEST_LEN];
    int kind = keyed ? CH_LINK_GENESIS_KEYED : CH_LINK_GENESIS;
    int64_t at = ch_now_ms();
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK)
        rc = ch_chain_link_hash(c->d, zero, 1, at, kind, &c->m, hash) == 0 ? SQLITE_OK : SQLITE_ERROR;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c->db,
                                "INSERT INTO main.chain_links(seq, at, kind, rows, mset, hash, key_id)"
                                " VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, at);
        sqlite3_bind_int(st, 2, kind);
        sqlite3_bind_int64(st, 3, c->m.rows);
        sqlite3_bind_blob(st, 4, c->m.sum, CH_DIGEST_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(st, 5, hash, CH_DIGEST_LEN, SQLITE_STATIC);
        if (keyed)
            sqlite3_bind_int64(st, 6, key_id);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(c->db);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errn, "cannot begin the chain: %s", sqlite3_errmsg(c->db));
        if (!sqlite3_get_autocommit(c->db))
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

/* ---- attaching -------------------------------------------------------- */

/* Reads the key file; returns its length (16 to CH_DIGEST_KEY_MAX), or -1. */
static int read_key(const char *path, unsigned char *key, char *err, size_t errn)
{
    if (ch_custody_key_private(path, err, errn) != 0)
        return -1;
    FILE *f = fopen(path, "rb");
    size_t n = f != NULL ? fread(key, 1, CH_DIGEST_KEY_MAX + 1, f) : 0;
    if (f != NULL)
        fclose(f);
    if (n < 16 || n > CH_DIGEST_KEY_MAX) {
        snprintf(err, errn, "chain key file %s: %zu bytes (expected 16 to %d)", path, n, CH_DIGEST_KEY_MAX);
        return -1;
    }
    return (int)n;
}

/* The first link's kind and key fingerprint; 0 when there is no link. */
static int first_link(sqlite3 *db, int *kind, int64_t *key_id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT kind, key_id FROM main.chain_links ORDER BY seq LIMIT 1", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    int found = rc == SQLITE_ROW;
    if (found) {
        *kind = sqlite3_column_int(st, 0);
        *key_id = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -1;
}

static void fn_off(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc, (void)argv;
    sqlite3_result_int(ctx, 1);
}

static int register_functions(chain *c)
{
    struct {
        const char *name;
        int nargs;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
    } fns[] = {
        {"ch_chain_row", -1, fn_row},   {"ch_chain_change", -1, fn_change}, {"ch_chain_last", 0, fn_last},
        {"ch_chain_fold", 2, fn_fold}, {"ch_chain_new", -1, fn_new},       {"ch_chain_put", -1, fn_put},
        {"ch_chain_upd", -1, fn_upd},  {"ch_chain_link", 1, fn_link},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        /* The last one owns the state: freed when the connection closes. */
        void (*destroy)(void *) = i + 1 == sizeof fns / sizeof fns[0] ? chain_free : NULL;
        if (sqlite3_create_function_v2(c->db, fns[i].name, fns[i].nargs, SQLITE_UTF8 | SQLITE_DIRECTONLY, c,
                                       fns[i].fn, NULL, NULL, destroy) != SQLITE_OK)
            return -1;
    }
    return 0;
}

/* The settings from the environment. */
static int read_settings(chain *c, unsigned char *key, int *keylen, char *err, size_t errn)
{
    const char *every = getenv("CONNHIST_CHAIN_ANCHOR_EVERY");
    c->anchor_every_ms = DEFAULT_ANCHOR_EVERY_MS;
    if (every != NULL && (ch_parse_duration(every, &c->anchor_every_ms) != 0 || c->anchor_every_ms < 1000)) {
        snprintf(err, errn, "CONNHIST_CHAIN_ANCHOR_EVERY: '%s' is not a duration of at least 1s (expected %s)",
                 every, CH_DURATION_FORMS);
        return -1;
    }
    const char *file = getenv("CONNHIST_CHAIN_ANCHORS");
    snprintf(c->anchor_file, sizeof c->anchor_file, "%s", file != NULL ? file : "");
    const char *key_path = getenv("CONNHIST_CHAIN_KEY");
    *keylen = 0;
    if (key_path != NULL && *key_path != '\0' && (*keylen = read_key(key_path, key, err, errn)) < 0)
        return -1;
    return 0;
}

/* Where each parent's key is among its columns (for fn_upd). */
static void parent_keys(chain *c)
{
    for (int i = 0; i < c->tables.n; i++) {
        const ch_chain_table *t = &c->tables.t[i];
        if (t->parent < 0)
            continue;
        const ch_chain_table *p = &c->tables.t[t->parent];
        for (int k = 0; k < p->ncols; k++)
            if (strcmp(p->cols[k], t->cols[t->parent_key]) == 0)
                c->key_col[t->parent] = k;
    }
}

/*
 * $CONNHIST_CHAIN_OFF=1, for benchmarks only: the store's statements
 * without the chain, to measure what the chain costs in one build. A chain
 * cannot be paused (rows written without it would break it), so a database
 * that has one is refused; the run's notes say the chain was off, and a
 * chain begun later on that database reports those rows as unchained.
 * Returns 1 (off), 0 (not set, empty or 0) or -1 with a message.
 */
static int chain_off(sqlite3 *db, char *err, size_t errn)
{
    const char *off = getenv("CONNHIST_CHAIN_OFF");
    if (off == NULL || *off == '\0' || strcmp(off, "0") == 0)
        return 0;
    if (strcmp(off, "1") != 0) {
        snprintf(err, errn, "CONNHIST_CHAIN_OFF: '%s' is not 0 or 1 (1: record without the chain, for benchmarks)",
                 off);
        return -1;
    }
    int kind = 0;
    int64_t key_id = 0;
    int found = first_link(db, &kind, &key_id);
    if (found != 0) {
        const char *path = sqlite3_db_filename(db, "main");
        snprintf(err, errn, found > 0 ? "CONNHIST_CHAIN_OFF: %s has a chain, which cannot be paused: record to a new"
                                        " database, or unset CONNHIST_CHAIN_OFF"
                                      : "CONNHIST_CHAIN_OFF: cannot read the chain of %s",
                 path != NULL ? path : "");
        return -1;
    }
    return 1;
}

/* The handle of a connection whose chain is off: it only builds the plain
 * statements. Owned by the connection, as a chained one is (through a
 * function that does nothing but say so). */
static ch_chain *attach_off(sqlite3 *db, char *err, size_t errn)
{
    chain *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errn, "out of memory");
        return NULL;
    }
    c->db = db;
    c->off = true;
    if (sqlite3_create_function_v2(db, "ch_chain_off", 0, SQLITE_UTF8 | SQLITE_DIRECTONLY, c, fn_off, NULL, NULL,
                                   chain_free) != SQLITE_OK) {
        snprintf(err, errn, "cannot register the chain's functions: %s", sqlite3_errmsg(db));
        return NULL; /* sqlite3_create_function_v2 freed c */
    }
    return c;
}

bool ch_chain_is_off(const ch_chain *c)
{
    return c->off;
}

ch_chain *ch_chain_attach(sqlite3 *db, char *err, size_t errn)
{
    int off = chain_off(db, err, errn);
    if (off != 0)
        return off > 0 ? attach_off(db, err, errn) : NULL;

    chain *c = calloc(1, sizeof *c);
    unsigned char key[CH_DIGEST_KEY_MAX + 1];
    int keylen = 0;
    if (c == NULL) {
        snprintf(err, errn, "out of memory");
        return NULL;
    }
    c->db = db;
    const char *path = sqlite3_db_filename(db, "main");
    snprintf(c->db_path, sizeof c->db_path, "%s", path != NULL ? path : "");
    if (read_settings(c, key, &keylen, err, errn) != 0) {
        free(c);
        return NULL;
    }
    c->d = ch_digest_new(keylen > 0 ? key : NULL, (size_t)keylen);
    if (c->d == NULL) {
        snprintf(err, errn, "the digest library (%s) refused SHA-256", ch_digest_library());
        free(c);
        return NULL;
    }
    int64_t key_id = keylen > 0 ? ch_chain_key_id(c->d) : 0, first_id = 0;
    int kind = 0;
    int found = first_link(db, &kind, &first_id);
    if (found < 0 || ch_chain_tables_read(db, &c->tables, err, errn) != 0) {
        if (found < 0)
            snprintf(err, errn, "cannot read the chain: %s", sqlite3_errmsg(db));
        chain_free(c);
        return NULL;
    }
    if (found && (kind == CH_LINK_GENESIS_KEYED) != (keylen > 0)) {
        snprintf(err, errn, kind == CH_LINK_GENESIS_KEYED
                                ? "%s: its chain is keyed: set CONNHIST_CHAIN_KEY to the key file it was begun with"
                                : "%s: its chain was begun without a key: unset CONNHIST_CHAIN_KEY",
                 c->db_path);
        chain_free(c);
        return NULL;
    }
    if (found && keylen > 0 && first_id != key_id) {
        snprintf(err, errn, "%s: its chain was begun with another key than the one in $CONNHIST_CHAIN_KEY", c->db_path);
        chain_free(c);
        return NULL;
    }
    if (register_functions(c) != 0) {
        snprintf(err, errn, "cannot register the chain's functions: %s", sqlite3_errmsg(db));
        chain_free(c);
        return NULL;
    }
    /* From here on c belongs to the connection. */
    if (!found && genesis(c, keylen > 0, key_id, err, errn) != 0)
        return NULL;
    if (install_triggers(c, err, errn) != 0)
        return NULL;
    parent_keys(c);
    sqlite3_commit_hook(db, on_commit, c);
    sqlite3_rollback_hook(db, on_rollback, c);
    if (load_head(c) == SQLITE_OK) /* the head at start is an anchor too */
        anchor(c, ch_now_ms());
    return c;
}
