/*
 * DNS answers as answer lifetimes (see answers.h).
 *
 * Two small tables in memory make the deduplication: the rows still in
 * force, by what makes an answer the same (names, type, address or target,
 * resolver, client, asking process), and for each address the name it was
 * last answered for. A repeat extends its row only while the row is in
 * force and no other name was answered for the address since; otherwise a
 * new row starts. Both tables are bounded: when one fills it is emptied,
 * which only costs a new row for the next repeat. A rolled-back write
 * empties them too, since the ids they hold may be void.
 */
#include "answers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer_list.h"

#define LIVE_CAP 16384          /* rows in force remembered (a power of two) */
#define NAME_CACHE 1024         /* names whose name_id is remembered (a power of two) */

typedef struct {
    int64_t qname, rname, target, addr, resolver, client, proc; /* ids; 0: none */
    int64_t type;
} answer_key;

typedef struct {
    answer_key key;
    bool used;
    int64_t answer_id, first_seen, last_seen, expires;
} live_row;

typedef struct {
    int64_t addr_id, qname_id; /* addr_id 0: empty */
} addr_last;

typedef struct {
    char name[CH_DNS_NAME_MAX];
    int64_t id; /* 0: empty */
} name_slot;

enum { ST_NAME_ADD, ST_NAME_ID, ST_ASKER, ST_INSERT, ST_REPEAT, ST_COUNT };

static const char *const statement_sql[ST_COUNT] = {
    [ST_NAME_ADD] = "INSERT OR IGNORE INTO dns_names(name) VALUES (?1)",
    [ST_NAME_ID] = "SELECT name_id FROM dns_names WHERE name = ?1",
    /* The owner of the socket that asked: the newest lifetime of that
     * protocol and local port, bound to the client address or to any, open
     * when the answer came (first seen by a sample at most two intervals
     * later: a socket that asks and closes between samples is first seen
     * when its close is announced). */
    [ST_ASKER] = "SELECT proc_id FROM lifetimes WHERE local_port = ?1 AND proto = ?2"
                 " AND (local_addr_id = ?3 OR local_addr_id IN (SELECT addr_id FROM addrs WHERE addr IN ('0.0.0.0', '::')))"
                 " AND first_seen <= ?4 + ?5 AND (closed_after IS NULL OR first_seen + closed_after >= ?4)"
                 " ORDER BY lifetime_id DESC LIMIT 1",
    [ST_INSERT] = "INSERT INTO dns_answers(qname_id, rname_id, type, addr_id, target_id, ttl, first_seen,"
                  " last_seen_after, expires_after, times_seen, resolver_addr_id, client_addr_id, client_port, proto,"
                  " proc_id, run_id, qtype) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    [ST_REPEAT] = ("UPDATE dns_answers SET last_seen_after = ?2, expires_after = ?3, times_seen = times_seen + ?4"
                   " WHERE answer_id = ?1"),
};

struct ch_answers {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    int64_t interval_ms;
    ch_answer_list pending; /* grown as facts come (answer_list.h) */
    int64_t dropped;
    live_row live[LIVE_CAP];
    size_t nlive;
    addr_last last[LIVE_CAP];
    size_t nlast;
    name_slot names[NAME_CACHE];
};

ch_answers *ch_answers_new(sqlite3 *db, int64_t interval_ms, char *err, size_t errn)
{
    ch_answers *a = calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(err, errn, "out of memory");
        free(a);
        return NULL;
    }
    a->db = db;
    a->interval_ms = interval_ms;
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &a->st[i], NULL) != SQLITE_OK) {
            snprintf(err, errn, "cannot prepare the DNS answer statements: %s", sqlite3_errmsg(db));
            ch_answers_free(a);
            return NULL;
        }
    }
    return a;
}

void ch_answers_free(ch_answers *a)
{
    if (a == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(a->st[i]);
    ch_answer_list_free(&a->pending);
    free(a);
}

void ch_answers_add(ch_answers *a, const ch_dns_answer *facts, size_t n)
{
    size_t take = ch_answer_list_room(&a->pending, n, CH_ANSWERS_PENDING_MAX);
    if (take > 0)
        memcpy(a->pending.items + a->pending.count, facts, take * sizeof *facts);
    a->pending.count += take;
    a->dropped += (int64_t)(n - take);
}

int64_t ch_answers_dropped(const ch_answers *a)
{
    return a != NULL ? a->dropped : 0;
}

size_t ch_answers_pending(const ch_answers *a)
{
    return a != NULL ? a->pending.count : 0;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* Steps a statement to its end and resets it. */
static int run_stmt(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The name_id of name, adding it to dns_names when new. */
static int name_id(ch_answers *a, const char *name, int64_t *id)
{
    name_slot *slot = &a->names[hash_bytes(name, strlen(name)) & (NAME_CACHE - 1)];
    if (slot->id != 0 && strcmp(slot->name, name) == 0) {
        *id = slot->id;
        return SQLITE_OK;
    }
    sqlite3_bind_text(a->st[ST_NAME_ADD], 1, name, -1, SQLITE_STATIC);
    int rc = run_stmt(a->st[ST_NAME_ADD]);
    if (rc != SQLITE_OK)
        return rc;
    if (sqlite3_changes(a->db) == 1) {
        *id = sqlite3_last_insert_rowid(a->db);
    } else {
        sqlite3_stmt *st = a->st[ST_NAME_ID];
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        *id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (rc != SQLITE_ROW)
            return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
    }
    snprintf(slot->name, sizeof slot->name, "%s", name);
    slot->id = *id;
    return SQLITE_OK;
}

/* The asking process's proc_id, or 0 when its socket has no recorded owner. */
static int asker(ch_answers *a, const ch_dns_answer *f, int64_t client_id, int64_t *proc)
{
    sqlite3_stmt *st = a->st[ST_ASKER];
    sqlite3_bind_int(st, 1, f->client_port);
    sqlite3_bind_int(st, 2, f->proto);
    sqlite3_bind_int64(st, 3, client_id);
    sqlite3_bind_int64(st, 4, f->at);
    sqlite3_bind_int64(st, 5, 2 * a->interval_ms);
    int rc = sqlite3_step(st);
    *proc = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The ids that make up a fact's key. */
static int key_of(ch_answers *a, ch_addr_ids *ids, const ch_dns_answer *f, answer_key *k)
{
    memset(k, 0, sizeof *k);
    k->type = f->type;
    int rc = name_id(a, f->qname, &k->qname);
    if (rc == SQLITE_OK)
        rc = name_id(a, f->rname, &k->rname);
    if (rc == SQLITE_OK && f->type == CH_DNS_CNAME)
        rc = name_id(a, f->target, &k->target);
    if (rc == SQLITE_OK && f->type != CH_DNS_CNAME)
        rc = ch_addr_ids_get(ids, &f->addr, &k->addr);
    if (rc == SQLITE_OK)
        rc = ch_addr_ids_get(ids, &f->resolver, &k->resolver);
    if (rc == SQLITE_OK)
        rc = ch_addr_ids_get(ids, &f->client, &k->client);
    if (rc == SQLITE_OK)
        rc = asker(a, f, k->client, &k->proc);
    return rc;
}

/* The slot of k among the rows in force (an empty one when absent),
 * emptying the table first when it is half full. */
static live_row *live_slot(ch_answers *a, const answer_key *k)
{
    if (a->nlive * 2 >= LIVE_CAP) {
        memset(a->live, 0, sizeof a->live);
        a->nlive = 0;
    }
    size_t j = hash_bytes(k, sizeof *k) & (LIVE_CAP - 1);
    while (a->live[j].used && memcmp(&a->live[j].key, k, sizeof *k) != 0)
        j = (j + 1) & (LIVE_CAP - 1);
    return &a->live[j];
}

/* The slot of an address's last name, likewise. */
static addr_last *last_slot(ch_answers *a, int64_t addr_id)
{
    if (a->nlast * 2 >= LIVE_CAP) {
        memset(a->last, 0, sizeof a->last);
        a->nlast = 0;
    }
    size_t j = hash_bytes(&addr_id, sizeof addr_id) & (LIVE_CAP - 1);
    while (a->last[j].addr_id != 0 && a->last[j].addr_id != addr_id)
        j = (j + 1) & (LIVE_CAP - 1);
    return &a->last[j];
}

static int insert_row(ch_answers *a, const ch_dns_answer *f, const answer_key *k, int64_t run_id, live_row *row)
{
    sqlite3_stmt *st = a->st[ST_INSERT];
    int64_t expires = f->last_at + (int64_t)f->ttl * 1000;
    sqlite3_bind_int64(st, 1, k->qname);
    sqlite3_bind_int64(st, 2, k->rname);
    sqlite3_bind_int64(st, 3, k->type);
    if (k->addr != 0)
        sqlite3_bind_int64(st, 4, k->addr);
    if (k->target != 0)
        sqlite3_bind_int64(st, 5, k->target);
    sqlite3_bind_int64(st, 6, f->ttl);
    sqlite3_bind_int64(st, 7, f->at);
    sqlite3_bind_int64(st, 8, f->last_at - f->at);
    sqlite3_bind_int64(st, 9, expires - f->at);
    sqlite3_bind_int64(st, 10, f->count);
    sqlite3_bind_int64(st, 11, k->resolver);
    sqlite3_bind_int64(st, 12, k->client);
    sqlite3_bind_int(st, 13, f->client_port);
    sqlite3_bind_int(st, 14, f->proto);
    if (k->proc != 0)
        sqlite3_bind_int64(st, 15, k->proc);
    sqlite3_bind_int64(st, 16, run_id);
    sqlite3_bind_int(st, 17, f->qtype); /* of the first response, like the TTL */
    int rc = run_stmt(st);
    if (rc != SQLITE_OK)
        return rc;
    if (!row->used)
        a->nlive++;
    *row = (live_row){*k, true, sqlite3_last_insert_rowid(a->db), f->at, f->last_at, expires};
    return SQLITE_OK;
}

static int extend_row(ch_answers *a, const ch_dns_answer *f, live_row *row)
{
    int64_t expires = f->last_at + (int64_t)f->ttl * 1000;
    row->last_seen = f->last_at > row->last_seen ? f->last_at : row->last_seen;
    row->expires = expires > row->expires ? expires : row->expires;
    sqlite3_stmt *st = a->st[ST_REPEAT];
    sqlite3_bind_int64(st, 1, row->answer_id);
    sqlite3_bind_int64(st, 2, row->last_seen - row->first_seen);
    sqlite3_bind_int64(st, 3, row->expires - row->first_seen);
    sqlite3_bind_int64(st, 4, f->count);
    return run_stmt(st);
}

/* Writes one fact: a repeat of a row in force, or a new row. */
static int write_fact(ch_answers *a, ch_addr_ids *ids, const ch_dns_answer *f, int64_t run_id)
{
    answer_key k;
    int rc = key_of(a, ids, f, &k);
    if (rc != SQLITE_OK)
        return rc;
    live_row *row = live_slot(a, &k);
    addr_last *last = k.addr != 0 ? last_slot(a, k.addr) : NULL;
    bool other_name = last != NULL && last->addr_id != 0 && last->qname_id != k.qname;
    if (last != NULL) {
        if (last->addr_id == 0)
            a->nlast++;
        *last = (addr_last){k.addr, k.qname};
    }
    if (row->used && f->at <= row->expires && f->at >= row->first_seen && !other_name) {
        rc = extend_row(a, f, row);
        /* No row changed: --retain deleted it (the wall clock went back past
         * the cutoff), and the response starts a new one. */
        if (rc != SQLITE_OK || sqlite3_changes(a->db) > 0)
            return rc;
    }
    return insert_row(a, f, &k, run_id, row);
}

int ch_answers_write(ch_answers *a, ch_addr_ids *ids, int64_t run_id)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; rc == SQLITE_OK && i < a->pending.count; i++)
        rc = write_fact(a, ids, &a->pending.items[i], run_id);
    return rc;
}

void ch_answers_done(ch_answers *a, bool committed)
{
    if (committed) {
        ch_answer_list_empty(&a->pending);
        return;
    }
    memset(a->live, 0, sizeof a->live);
    memset(a->last, 0, sizeof a->last);
    memset(a->names, 0, sizeof a->names);
    a->nlive = a->nlast = 0;
}
