/*
 * DNS answers as answer lifetimes (see answers.h).
 *
 * Two small tables in memory make the deduplication: the rows still in
 * force, by what makes an answer the same (names, type, address or target,
 * resolver, client, asking process), and for each address the name it was
 * last answered for. A repeat extends its row only while the row is in
 * force and no other name was answered for the address since; otherwise a
 * new row starts. Both tables grow with use, from nothing (a machine's DNS
 * traffic is mostly a few hundred answers in force), up to a bound: when
 * one is half full at its bound it is emptied, which only costs a new row
 * for the next repeat. A rolled-back write empties them too, since the ids
 * they hold may be void.
 */
#include "answers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer_list.h"

#define TABLE_FIRST 64  /* slots of a table once it holds one (a power of two) */
#define TABLE_CAP 16384 /* slots of a table at most (a power of two): 640 KiB of rows in force */
#define NAME_CACHE 1024 /* names whose name_id is remembered (a power of two) */

typedef struct {
    int64_t qname, rname, target, addr, resolver, client, proc; /* ids; 0: none */
    int64_t type;
} answer_key;

/* A row in force, by the hash of its answer_key (key_hash): two answers
 * whose keys hash alike, one chance in 2^64 for a pair, would share a row. */
typedef struct {
    uint64_t key; /* never 0 */
    int64_t answer_id, first_seen, last_seen, expires;
} live_row;

typedef struct {
    uint64_t addr_id; /* never 0 */
    int64_t qname_id;
} addr_last;

/* Open addressing with linear probing over slots that each begin with a
 * nonzero 64-bit key (0: an empty slot), kept at most half full. */
typedef struct {
    void *slots;
    size_t size;  /* bytes a slot */
    size_t cap;   /* a power of two, or 0 */
    size_t count; /* slots in use */
} slot_table;

/* A remembered name_id; name NULL: an empty slot. */
typedef struct {
    char *name;
    int64_t id;
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
    slot_table live; /* live_row */
    slot_table last; /* addr_last */
    name_slot names[NAME_CACHE];
};

static void forget(ch_answers *a);

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
    a->live.size = sizeof(live_row);
    a->last.size = sizeof(addr_last);
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
    forget(a);
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

/* Remembers name's id in slot (keeping what it had when out of memory). */
static void remember_name(name_slot *slot, const char *name, int64_t id)
{
    size_t n = strlen(name) + 1;
    char *copy = malloc(n);
    if (copy == NULL)
        return;
    memcpy(copy, name, n);
    free(slot->name);
    slot->name = copy;
    slot->id = id;
}

/* The name_id of name, adding it to dns_names when new. */
static int name_id(ch_answers *a, const char *name, int64_t *id)
{
    name_slot *slot = &a->names[hash_bytes(name, strlen(name)) & (NAME_CACHE - 1)];
    if (slot->name != NULL && strcmp(slot->name, name) == 0) {
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
    remember_name(slot, name, *id);
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

/* Fibonacci hashing: addr_ids are small and sequential, the multiply
 * spreads them over the table. */
static size_t home_of(const slot_table *t, uint64_t key)
{
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (t->cap - 1);
}

static uint64_t *slot_at(const slot_table *t, size_t i)
{
    return (uint64_t *)((char *)t->slots + i * t->size);
}

/* The slot of key in t, or the empty one where it would go. */
static uint64_t *probe(const slot_table *t, uint64_t key)
{
    for (size_t i = home_of(t, key);; i = (i + 1) & (t->cap - 1)) {
        uint64_t *s = slot_at(t, i);
        if (*s == 0 || *s == key)
            return s;
    }
}

/* Makes room for one more slot in t: twice the slots (moving what it
 * holds), or, at TABLE_CAP or out of memory, an emptied table. -1 only
 * when t has no slots and none can be had. */
static int make_room(slot_table *t)
{
    size_t cap = t->cap == 0 ? TABLE_FIRST : t->cap * 2;
    void *slots = cap <= TABLE_CAP ? calloc(cap, t->size) : NULL;
    if (slots == NULL) {
        if (t->cap == 0)
            return -1;
        memset(t->slots, 0, t->cap * t->size);
        t->count = 0;
        return 0;
    }
    slot_table grown = {slots, t->size, cap, t->count};
    for (size_t i = 0; i < t->cap; i++) {
        const uint64_t *s = slot_at(t, i);
        if (*s != 0)
            memcpy(probe(&grown, *s), s, t->size);
    }
    free(t->slots);
    *t = grown;
    return 0;
}

/* The slot of key (nonzero) in t, or an empty one taken for it (its key
 * set, the rest zero); *fresh says which. NULL when out of memory. */
static void *slot_for(slot_table *t, uint64_t key, bool *fresh)
{
    if ((t->count + 1) * 2 > t->cap && make_room(t) != 0)
        return NULL;
    uint64_t *s = probe(t, key);
    *fresh = *s == 0;
    if (*fresh) {
        *s = key;
        t->count++;
    }
    return s;
}

static void table_free(slot_table *t)
{
    free(t->slots);
    *t = (slot_table){.size = t->size};
}

/* Forgets the rows in force, the addresses' last names and the names'
 * ids, giving their memory back. */
static void forget(ch_answers *a)
{
    table_free(&a->live);
    table_free(&a->last);
    for (size_t i = 0; i < NAME_CACHE; i++) {
        free(a->names[i].name);
        a->names[i] = (name_slot){0};
    }
}

/* The hash a row in force is kept under: never 0. */
static uint64_t key_hash(const answer_key *k)
{
    uint64_t h = hash_bytes(k, sizeof *k);
    return h != 0 ? h : 1;
}

/* Inserts a new row for f, remembered in row (NULL: out of memory, not
 * remembered). */
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
    if (row != NULL)
        *row = (live_row){row->key, sqlite3_last_insert_rowid(a->db), f->at, f->last_at, expires};
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
    bool fresh_row = true, fresh_last = true;
    live_row *row = slot_for(&a->live, key_hash(&k), &fresh_row);
    addr_last *last = k.addr != 0 ? slot_for(&a->last, (uint64_t)k.addr, &fresh_last) : NULL;
    bool other_name = last != NULL && !fresh_last && last->qname_id != k.qname;
    if (last != NULL)
        last->qname_id = k.qname;
    /* answer_id 0: a row whose insert failed (the write is rolled back) */
    bool in_force = row != NULL && !fresh_row && row->answer_id != 0;
    if (in_force && f->at <= row->expires && f->at >= row->first_seen && !other_name) {
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
    forget(a);
}
