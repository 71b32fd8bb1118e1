/*
 * The chain's arithmetic (see chain_codec.h and schema/README.md, "The
 * chain"). Everything here must give the same bytes on every platform and
 * in both programs: integers are encoded big-endian, text and blobs with
 * their length, and a row's columns in the table's own order.
 */
#include "chain_codec.h"

#include <stdio.h>
#include <string.h>

/* Children whose rows fold into their parent's short digest. */
static const struct {
    const char *child, *parent, *key;
} children[] = {
    {"state_changes", "lifetimes", "lifetime_id"},
    {"lifetime_extras", "lifetimes", "lifetime_id"},
};

static int find_table(const ch_chain_tables *ts, const char *name)
{
    for (int i = 0; i < ts->n; i++)
        if (strcmp(ts->t[i].name, name) == 0)
            return i;
    return -1;
}

static int find_col(const ch_chain_table *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i], name) == 0)
            return i;
    return -1;
}

/* The columns of one table, from PRAGMA table_info. */
static int read_columns(sqlite3 *db, ch_chain_table *t, char *err, size_t errn)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT cid, name FROM pragma_table_info(?1) ORDER BY cid", -1, &st, NULL) !=
        SQLITE_OK) {
        snprintf(err, errn, "cannot read the columns of %s: %s", t->name, sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *col = (const char *)sqlite3_column_text(st, 1);
        if (strcmp(col, CH_CHAIN_DIGEST_COL) == 0) {
            t->has_digest = true;
            continue;
        }
        if (t->ncols == CH_CHAIN_MAX_COLS || strlen(col) >= sizeof t->cols[0]) {
            snprintf(err, errn, "table %s: too many or too long columns for the chain", t->name);
            sqlite3_finalize(st);
            return -1;
        }
        t->cids[t->ncols] = sqlite3_column_int(st, 0);
        snprintf(t->cols[t->ncols++], sizeof t->cols[0], "%s", col);
    }
    return sqlite3_finalize(st) == SQLITE_OK ? 0 : -1;
}

int ch_chain_tables_read(sqlite3 *db, ch_chain_tables *out, char *err, size_t errn)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    const char *sql = "SELECT name, sql LIKE '%WITHOUT ROWID%' FROM main.sqlite_schema WHERE type = 'table'"
                      " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> 'chain_links' ORDER BY name";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errn, "cannot list the tables: %s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (out->n == CH_CHAIN_MAX_TABLES || strlen(name) >= sizeof out->t[0].name) {
            snprintf(err, errn, "too many or too long table names for the chain (%s)", name);
            rc = -1;
            break;
        }
        ch_chain_table *t = &out->t[out->n++];
        snprintf(t->name, sizeof t->name, "%s", name);
        t->has_rowid = sqlite3_column_int(st, 1) == 0;
        t->parent = -1;
    }
    sqlite3_finalize(st);
    for (int i = 0; rc == 0 && i < out->n; i++)
        rc = read_columns(db, &out->t[i], err, errn);
    for (size_t c = 0; rc == 0 && c < sizeof children / sizeof children[0]; c++) {
        int child = find_table(out, children[c].child), parent = find_table(out, children[c].parent);
        if (child < 0 || parent < 0 || !out->t[parent].has_digest)
            continue;
        out->t[child].parent = parent;
        out->t[child].parent_key = find_col(&out->t[child], children[c].key);
        if (out->t[child].parent_key < 0)
            out->t[child].parent = -1;
    }
    return rc;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

int ch_chain_row_digest(ch_digest *d, const ch_chain_table *t, sqlite3_value **values,
                        unsigned char out[CH_DIGEST_LEN])
{
    /* Domain, table name and its terminating NUL, then per non-NULL column:
     * position, type, value (8 bytes, or a 4-byte length and the bytes). */
    unsigned char buf[512];
    size_t n = 0, name_len = strlen(t->name) + 1;
    memcpy(buf, "connhist-row", 13);
    memcpy(buf + 13, t->name, name_len);
    n = 13 + name_len;
    if (ch_digest_start(d) != 0)
        return -1;
    for (int i = 0; i < t->ncols; i++) {
        sqlite3_value *v = values[i];
        int type = sqlite3_value_type(v);
        if (type == SQLITE_NULL)
            continue;
        if (n + 13 > sizeof buf) {
            if (ch_digest_add(d, buf, n) != 0)
                return -1;
            n = 0;
        }
        buf[n++] = (unsigned char)t->cids[i];
        buf[n++] = (unsigned char)type;
        if (type == SQLITE_INTEGER) {
            put_be64(buf + n, (uint64_t)sqlite3_value_int64(v));
            n += 8;
        } else if (type == SQLITE_FLOAT) {
            double x = sqlite3_value_double(v);
            uint64_t bits;
            memcpy(&bits, &x, sizeof bits);
            put_be64(buf + n, bits);
            n += 8;
        } else {
            const void *p = type == SQLITE_TEXT ? (const void *)sqlite3_value_text(v) : sqlite3_value_blob(v);
            uint32_t len = (uint32_t)sqlite3_value_bytes(v);
            for (int k = 3; k >= 0; k--)
                buf[n + 3 - (size_t)k] = (unsigned char)(len >> (8 * k));
            n += 4;
            if (n + len > sizeof buf) {
                if (ch_digest_add(d, buf, n) != 0 || (len > 0 && ch_digest_add(d, p, len) != 0))
                    return -1;
                n = 0;
            } else {
                if (len > 0)
                    memcpy(buf + n, p, len);
                n += len;
            }
        }
    }
    if (n > 0 && ch_digest_add(d, buf, n) != 0)
        return -1;
    return ch_digest_finish(d, out);
}

int64_t ch_chain_short(const unsigned char digest[CH_DIGEST_LEN])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | digest[i];
    return (int64_t)v;
}

int64_t ch_chain_fold(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

void ch_chain_mset_add(ch_chain_mset *m, const unsigned char digest[CH_DIGEST_LEN])
{
    unsigned carry = 0;
    for (int i = CH_DIGEST_LEN - 1; i >= 0; i--) {
        carry += (unsigned)m->sum[i] + digest[i];
        m->sum[i] = (unsigned char)carry;
        carry >>= 8;
    }
    m->rows++;
}

void ch_chain_mset_sub(ch_chain_mset *m, const unsigned char digest[CH_DIGEST_LEN])
{
    int borrow = 0;
    for (int i = CH_DIGEST_LEN - 1; i >= 0; i--) {
        int v = (int)m->sum[i] - digest[i] - borrow;
        borrow = v < 0;
        m->sum[i] = (unsigned char)(v + (borrow ? 256 : 0));
    }
    m->rows--;
}

int ch_chain_link_hash(ch_digest *d, const unsigned char prev[CH_DIGEST_LEN], int64_t seq, int64_t at, int kind,
                       const ch_chain_mset *m, unsigned char out[CH_DIGEST_LEN])
{
    unsigned char buf[14 + CH_DIGEST_LEN + 8 * 3 + 1 + CH_DIGEST_LEN];
    size_t n = 0;
    memcpy(buf, "connhist-link", 14);
    n = 14;
    memcpy(buf + n, prev, CH_DIGEST_LEN);
    n += CH_DIGEST_LEN;
    put_be64(buf + n, (uint64_t)seq);
    put_be64(buf + n + 8, (uint64_t)at);
    put_be64(buf + n + 16, (uint64_t)m->rows);
    n += 24;
    buf[n++] = (unsigned char)kind;
    memcpy(buf + n, m->sum, CH_DIGEST_LEN);
    n += CH_DIGEST_LEN;
    return ch_digest_once(d, buf, n, out);
}

int64_t ch_chain_key_id(ch_digest *d)
{
    unsigned char out[CH_DIGEST_LEN];
    if (ch_digest_once(d, "connhist-key-id", 15, out) != 0)
        return 0;
    return ch_chain_short(out);
}

void ch_chain_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ch_chain_unhex(const char *s, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hi >= 0 ? hexval(s[2 * i + 1]) : -1;
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}
