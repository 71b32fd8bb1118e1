/*
 * Writing lifetimes. Each sample is one transaction: the events the tracker
 * queued (opens, state changes, closes) and the heartbeat. Open lifetimes
 * are never rewritten just because they are still open; how long they were
 * seen comes from the heartbeat.
 *
 * Lifetime ids are assigned by the tracker (from MAX(lifetime_id) + 1 at
 * start), so a failed transaction can be replayed as it was on the next
 * tick. They grow with first_seen, and each transaction widens the
 * first_seen bounds of the blocks of ids it wrote (lifetime_blocks), which
 * is how the query tool turns a time window into an id range. One recorder
 * writes a database at a time; main.c refuses to start a second one.
 *
 * Schema version 3 stores names as codes (the codes table) and addresses
 * through the addrs dictionary (addr_ids.c); times after first_seen as
 * offsets from it.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr_ids.h"
#include "chain.h"

#define MAX_SPANS 16

/*
 * WAL upkeep. SQLite's automatic checkpoint runs inside COMMIT and reports
 * its own failure (say, disk full while copying into the database file) as
 * the COMMIT's: a committed sample would look failed and be written twice.
 * The store checkpoints by itself instead, once a commit has succeeded.
 */
#define CHECKPOINT_FRAMES 64          /* WAL pages (~256 KiB) that call for a checkpoint */
#define WAL_SIZE_LIMIT (1024 * 1024)  /* a WAL started over is cut back to this */

typedef struct {
    int64_t first_at, last_at, samples;
} span;

enum {
    ST_PROC, ST_PROC_ID, ST_OPEN, ST_EXTRAS, ST_STATE, ST_CHANGE, ST_CLOSE, ST_ANNOUNCED, ST_OWNER, ST_BEAT, ST_BLOCK,
    ST_COUNT
};

/* The statements whose rows the chain's triggers digest (few a sample). */
static const char *const statement_sql[ST_COUNT] = {
    [ST_PROC_ID] = "SELECT proc_id FROM processes WHERE pid = ?1 AND start_time = ?2",
    [ST_EXTRAS] = "INSERT INTO lifetime_extras(lifetime_id, local_scope, remote_scope, created_at, offload_state,"
                  " owner_module, owner_module_path) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_BEAT] = "INSERT INTO heartbeats(run_id, first_at, last_at, samples) VALUES (?1, ?2, ?3, ?4)"
                " ON CONFLICT(run_id, first_at) DO UPDATE SET last_at = excluded.last_at, samples = excluded.samples",
    [ST_BLOCK] = "INSERT INTO lifetime_blocks(block, min_first_seen, max_first_seen) VALUES (?1, ?2, ?3)"
                 " ON CONFLICT(block) DO UPDATE SET min_first_seen = min(min_first_seen, excluded.min_first_seen),"
                 " max_first_seen = max(max_first_seen, excluded.max_first_seen)",
};

/*
 * The hot ones: each row's digest is computed in the statement that writes
 * it (chain.h, ch_chain_prepare). A process is written only when it is not
 * there yet (its proc_id given, so that its digest covers it); a state
 * change before its lifetime's UPDATE, which takes in its digest.
 */
static const ch_chain_value proc_values[] = {
    {"proc_id", "(SELECT IFNULL(MAX(proc_id), 0) + 1 FROM processes)"},
    {"pid", "?1"}, {"start_time", "?2"}, {"name", "?3"}, {"path", "?4"}, {"cmdline", "?5"}, {"uid", "?6"},
    {"user", "?7"}, {"first_seen", "?8"}, {NULL, NULL},
};
static const ch_chain_value open_values[] = {
    {"lifetime_id", "?1"}, {"run_id", "?2"}, {"proto", "?3"}, {"family", "?4"}, {"local_addr_id", "?5"},
    {"local_port", "?6"}, {"remote_addr_id", "?7"}, {"remote_port", "?8"}, {"state", "?9"}, {"states", "?9"},
    {"first_seen", "?10"}, {"proc_id", "?11"}, {"holders", "?12"}, {"uid", "?13"}, {"inode", "?14"},
    {"cookie", "?15"}, {"bytes_sent", "?16"}, {"bytes_received", "?17"}, {"opened_after", "?18"},
    {"seen_by", "?19"}, {"owner_source", "?20"}, {NULL, NULL},
};
/* states keeps its first 15 (2^56: 14 used, room for one more). */
static const ch_chain_value state_values[] = {
    {"state", "?2"},
    {"states", "CASE WHEN states < 72057594037927936 THEN states * 16 + ?2 ELSE states END"},
    {"bytes_sent", "COALESCE(?3, bytes_sent)"}, {"bytes_received", "COALESCE(?4, bytes_received)"}, {NULL, NULL},
};
static const ch_chain_value change_values[] = {
    {"lifetime_id", "?1"}, {"at", "?2 - lifetimes.first_seen"}, {"state", "?3"}, {NULL, NULL},
};
static const ch_chain_value close_values[] = {
    {"last_seen_after", "?2 - first_seen"}, {"closed_after", "?3 - first_seen"}, {"close_reason", "?4"},
    {"bytes_sent", "COALESCE(?5, bytes_sent)"}, {"bytes_received", "COALESCE(?6, bytes_received)"},
    {"seen_by", "COALESCE(?7, seen_by)"}, {NULL, NULL},
};
/* A TIME_WAIT entry's row learns of the connection it came from (with
 * seen_by NULL: only its final counters). */
static const ch_chain_value announced_values[] = {
    {"seen_by", "COALESCE(?2, seen_by)"}, {"opened_after", "COALESCE(?3, opened_after)"},
    {"bytes_sent", "COALESCE(?4, bytes_sent)"}, {"bytes_received", "COALESCE(?5, bytes_received)"}, {NULL, NULL},
};
static const ch_chain_value owner_values[] = {
    {"proc_id", "?2"}, {"holders", "?3"}, {"owner_source", "?4"}, {NULL, NULL},
};

static const ch_chain_write chained_writes[ST_COUNT] = {
    [ST_PROC] = {"processes", false, proc_values, NULL,
                 "NOT EXISTS (SELECT 1 FROM processes WHERE pid = ?1 AND start_time = ?2)"},
    [ST_OPEN] = {"lifetimes", false, open_values, NULL, NULL},
    [ST_STATE] = {"lifetimes", true, state_values, NULL, "lifetime_id = ?1"},
    [ST_CHANGE] = {"state_changes", false, change_values, "lifetimes",
                   "lifetimes.lifetime_id = ?1 AND NOT EXISTS (SELECT 1 FROM state_changes s WHERE"
                   " s.lifetime_id = ?1 AND s.at = ?2 - lifetimes.first_seen AND s.state = ?3)"},
    [ST_CLOSE] = {"lifetimes", true, close_values, NULL, "lifetime_id = ?1 AND closed_after IS NULL"},
    [ST_ANNOUNCED] = {"lifetimes", true, announced_values, NULL, "lifetime_id = ?1"},
    /* A late owner: only for a row without one, or with one only inferred
     * (a row of an earlier run may have had its owner all along). */
    [ST_OWNER] = {"lifetimes", true, owner_values, NULL,
                  "lifetime_id = ?1 AND (proc_id IS NULL OR owner_source = 3)"},
};

/* A process written by the transaction in progress, and its proc_id. */
typedef struct {
    const ch_proc *proc; /* NULL: empty slot */
    int64_t id;
} written_proc;

/* Ids per row of lifetime_blocks: block = lifetime_id >> BLOCK_SHIFT. */
#define BLOCK_SHIFT 12

/* The first_seen bounds of one block of ids, as this transaction wrote it. */
typedef struct {
    int64_t block, min_first_seen, max_first_seen;
} block_bounds;

struct ch_store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    int64_t run_id;
    int64_t interval_ms;
    int ident_is_cookie;
    span spans[MAX_SPANS];  /* spans not yet known to be committed; last = current */
    int nspans;
    int wal_frames;         /* pages in the WAL after the last commit */
    /* Processes already written by the transaction in progress, with their
     * proc_id: a tick that opens thousands of sockets of one process writes
     * it once. Open addressing on the record's address; emptied by every
     * flush (a later pruning may delete a process no lifetime refers to, and
     * a failed transaction's ids are void). */
    written_proc *written;
    size_t written_cap, nwritten;
    ch_addr_ids *addr_ids;
    ch_chain *chain;
    block_bounds *blocks;   /* the blocks of the transaction in progress */
    size_t nblocks, blocks_cap;
    ch_store_rider rider;   /* written in the same transaction; write NULL: none */
    bool bulk_failed;       /* a bulk flush failed: the rows go in one by one from now on */
    bool rearm_due;         /* the chain's triggers must be put back before anything is written */
};

static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db, (void)name;
    ((ch_store *)arg)->wal_frames = frames;
    return SQLITE_OK;
}

ch_store *ch_store_open(sqlite3 *db, char *err, size_t errn)
{
    ch_store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errn, "out of memory");
        return NULL;
    }
    s->db = db;
    /* An INSERT ... SELECT that reads its own table (a process's or a state
     * change's NOT EXISTS probe) first copies its row to a temporary table:
     * in memory, not a temporary file written at every row. Set before the
     * chain's temporary triggers: changing it drops the temp schema. */
    sqlite3_exec(db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
    /* Every write on db from here on is chained (chain.h). */
    s->chain = ch_chain_attach(db, err, errn);
    for (int i = 0; s->chain != NULL && i < ST_COUNT; i++) {
        int rc = statement_sql[i] != NULL
                     ? sqlite3_prepare_v3(db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL)
                     : ch_chain_prepare(s->chain, &chained_writes[i], &s->st[i], err, errn);
        if (rc != SQLITE_OK) {
            if (statement_sql[i] != NULL)
                snprintf(err, errn, "cannot prepare statement: %s", sqlite3_errmsg(db));
            ch_store_close(s);
            return NULL;
        }
    }
    s->addr_ids = s->chain != NULL ? ch_addr_ids_open(db, err, errn) : NULL;
    if (s->addr_ids == NULL) {
        ch_store_close(s);
        return NULL;
    }
    /* Replaces the automatic checkpoint (see CHECKPOINT_FRAMES). */
    sqlite3_wal_hook(db, on_wal_commit, s);
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA journal_size_limit = %d", WAL_SIZE_LIMIT);
    sqlite3_exec(db, pragma, NULL, NULL, NULL);
    return s;
}

void ch_store_close(ch_store *s)
{
    if (s == NULL)
        return;
    sqlite3_wal_hook(s->db, NULL, NULL);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    ch_addr_ids_close(s->addr_ids);
    free(s->written);
    free(s->blocks);
    free(s);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v != NULL)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void bind_int_or_null(sqlite3_stmt *st, int i, int64_t v, int known)
{
    if (known)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* Binds a lifetime's byte counters at i and i + 1: NULL for UDP and when
 * not reported (-1). */
static void bind_bytes(sqlite3_stmt *st, int i, int proto, int64_t sent, int64_t received)
{
    bind_int_or_null(st, i, sent, proto == CH_TCP && sent >= 0);
    bind_int_or_null(st, i + 1, received, proto == CH_TCP && received >= 0);
}

/* Steps a write statement to completion and resets it. */
static int run_stmt(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

#define STATE_CODE_UNKNOWN 15

/* A code of the schema's codes table; 0 is NULL (the tracker's close
 * reasons and seen_by kinds are those codes: tracker.h). */
static void bind_code(sqlite3_stmt *st, int i, int code)
{
    bind_int_or_null(st, i, code, code != 0);
}

/* A state's code: enum ch_state is the codes table's numbering, but for
 * CH_ST_UNKNOWN (0 would end the states list early). */
static int state_code(int state)
{
    return state > CH_ST_UNKNOWN && state < CH_ST_COUNT ? state : STATE_CODE_UNKNOWN;
}

int ch_store_history(ch_store *s, const char *host, const char *boot_id, ch_history *h, char *err, size_t errn)
{
    memset(h, 0, sizeof *h);
    h->last_sample = -1;
    h->next_lifetime_id = 1;
    sqlite3_stmt *st = NULL;
    const char *sql[] = {
        "SELECT h.last_at, r.boot_id FROM heartbeats h JOIN runs r ON r.run_id = h.run_id"
        " ORDER BY h.last_at DESC LIMIT 1",
        "SELECT COALESCE(MAX(lifetime_id), 0) + 1 FROM lifetimes",
        "SELECT pid FROM runs WHERE ended_at IS NULL AND end_reason IS NULL AND host = ?1 AND boot_id IS ?2"
        " ORDER BY run_id DESC LIMIT 1",
    };
    for (int i = 0; i < 3; i++) {
        if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) != SQLITE_OK) {
            snprintf(err, errn, "cannot read the database's history: %s", sqlite3_errmsg(s->db));
            return -1;
        }
        if (i == 2) {
            sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
            bind_text_or_null(st, 2, boot_id);
        }
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && i == 0) {
            h->last_sample = sqlite3_column_int64(st, 0);
            const unsigned char *b = sqlite3_column_text(st, 1);
            snprintf(h->boot_id, sizeof h->boot_id, "%s", b ? (const char *)b : "");
        } else if (rc == SQLITE_ROW && i == 1) {
            h->next_lifetime_id = sqlite3_column_int64(st, 0);
        } else if (rc == SQLITE_ROW && i == 2) {
            h->live_pid = sqlite3_column_int64(st, 0);
        } else if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
            snprintf(err, errn, "cannot read the database's history: %s", sqlite3_errmsg(s->db));
            sqlite3_finalize(st);
            return -1;
        }
        sqlite3_finalize(st);
    }
    return 0;
}

/* Rebuilds a neutral row from a stored lifetime. */
static void row_from_stmt(sqlite3_stmt *st, int ident_is_cookie, ch_sock *s)
{
    memset(s, 0, sizeof *s);
    s->proto = sqlite3_column_int(st, 1) == 17 ? CH_UDP : CH_TCP;
    int family = sqlite3_column_int(st, 2);
    ch_addr_parse((const char *)sqlite3_column_text(st, 3), &s->local);
    s->local_port = (uint16_t)sqlite3_column_int(st, 4);
    if (sqlite3_column_type(st, 5) != SQLITE_NULL)
        ch_addr_parse((const char *)sqlite3_column_text(st, 5), &s->remote);
    s->local.family = s->remote.family = family;
    s->remote_port = (uint16_t)sqlite3_column_int(st, 6);
    int state = sqlite3_column_int(st, 7);
    s->state = (uint8_t)(state > CH_ST_UNKNOWN && state < CH_ST_COUNT ? state : CH_ST_UNKNOWN);
    int64_t inode = sqlite3_column_int64(st, 8);
    s->inode = inode > 0 && inode <= UINT32_MAX ? (uint32_t)inode : 0; /* none other is written */
    s->ident = ident_is_cookie ? (uint64_t)sqlite3_column_int64(st, 9) : (uint64_t)inode;
    s->local_scope = (uint32_t)sqlite3_column_int64(st, 10);
    s->remote_scope = (uint32_t)sqlite3_column_int64(st, 11);
#if CH_SOCK_OS_FIELDS
    s->offload = -1;
#endif
    s->bytes_sent = s->bytes_received = -1;
}

int ch_store_load_open(ch_store *s, ch_tracker *t, int ident_is_cookie, char *err, size_t errn)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT l.lifetime_id, l.proto, l.family, la.addr, l.local_port, ra.addr, l.remote_port,"
                      " l.state, l.inode, l.cookie, x.local_scope, x.remote_scope FROM lifetimes l"
                      " JOIN addrs la ON la.addr_id = l.local_addr_id LEFT JOIN addrs ra ON ra.addr_id = l.remote_addr_id"
                      " LEFT JOIN lifetime_extras x ON x.lifetime_id = l.lifetime_id"
                      " WHERE l.closed_after IS NULL";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errn, "cannot read open lifetimes: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ch_sock sock;
        row_from_stmt(st, ident_is_cookie, &sock);
        if (ch_tracker_load(t, &sock, sqlite3_column_int64(st, 0)) != 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errn, "cannot read open lifetimes: %s", sqlite3_errstr(rc));
        return -1;
    }
    return 0;
}

int ch_store_begin_run(ch_store *s, const ch_run_info *r, char *err, size_t errn)
{
    sqlite3_stmt *st;
    const char *sql = "INSERT INTO runs(started_at, mode, interval_ms, host, os, boot_id, boot_time, sampler,"
                      " version, pid, uid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    /* Runs that never ended and are not this one died (crash, power loss). */
    const char *died = "UPDATE runs SET end_reason = 'died' WHERE ended_at IS NULL AND end_reason IS NULL";
    if (sqlite3_exec(s->db, died, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errn, "cannot record the run: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    sqlite3_bind_int64(st, 1, r->started_at);
    sqlite3_bind_text(st, 2, r->mode, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->interval_ms);
    sqlite3_bind_text(st, 4, r->host, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->os, -1, SQLITE_STATIC);
    bind_text_or_null(st, 6, r->boot_id);
    bind_int_or_null(st, 7, r->boot_time, r->boot_time >= 0);
    sqlite3_bind_text(st, 8, r->sampler, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, r->version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, r->pid);
    bind_int_or_null(st, 11, r->uid, r->uid >= 0);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errn, "cannot record the run: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    s->run_id = sqlite3_last_insert_rowid(s->db);
    if (ch_chain_is_off(s->chain) &&
        ch_store_note(s, "chain off ($CONNHIST_CHAIN_OFF, for benchmarks): nothing of this run is vouched for") != 0) {
        snprintf(err, errn, "cannot record the run: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    s->interval_ms = r->interval_ms;
    s->ident_is_cookie = r->ident_is_cookie;
    return 0;
}

static int write_process(ch_store *s, const ch_proc *p, int64_t at)
{
    sqlite3_stmt *st = s->st[ST_PROC];
    sqlite3_bind_int64(st, 1, p->pid);
    sqlite3_bind_int64(st, 2, p->start_time);
    bind_text_or_null(st, 3, p->name);
    bind_text_or_null(st, 4, p->path);
    bind_text_or_null(st, 5, p->cmdline);
    bind_int_or_null(st, 6, p->uid, p->uid >= 0);
    bind_text_or_null(st, 7, p->user);
    sqlite3_bind_int64(st, 8, at);
    return run_stmt(st);
}

static size_t proc_slot(const ch_proc *p, size_t cap)
{
    return ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ULL >> 40 & (cap - 1);
}

/* The slot of p in the set of this transaction's processes (the empty slot
 * where it would go when it is not there), growing the set first when it
 * fills; NULL out of memory. */
static written_proc *written_slot(ch_store *s, const ch_proc *p)
{
    if ((s->nwritten + 1) * 2 > s->written_cap) {
        size_t cap = s->written_cap ? s->written_cap * 2 : 64;
        written_proc *slots = calloc(cap, sizeof *slots);
        if (slots == NULL)
            return NULL;
        for (size_t i = 0; i < s->written_cap; i++) {
            if (s->written[i].proc == NULL)
                continue;
            size_t j = proc_slot(s->written[i].proc, cap);
            while (slots[j].proc != NULL)
                j = (j + 1) & (cap - 1);
            slots[j] = s->written[i];
        }
        free(s->written);
        s->written = slots;
        s->written_cap = cap;
    }
    size_t j = proc_slot(p, s->written_cap);
    while (s->written[j].proc != NULL && s->written[j].proc != p)
        j = (j + 1) & (s->written_cap - 1);
    return &s->written[j];
}

/*
 * The proc_id of p, writing its processes row when it has none: once per
 * process and transaction (a tick that opens thousands of sockets of one
 * process looks it up once). Returns an SQLite status.
 */
static int process_id(ch_store *s, const ch_proc *p, int64_t at, int64_t *id)
{
    written_proc *slot = written_slot(s, p);
    if (slot != NULL && slot->proc == p) {
        *id = slot->id;
        return SQLITE_OK;
    }
    int rc = write_process(s, p, at);
    if (rc != SQLITE_OK)
        return rc;
    if (sqlite3_changes(s->db) == 1) {
        *id = sqlite3_last_insert_rowid(s->db);
    } else {
        sqlite3_stmt *st = s->st[ST_PROC_ID];
        sqlite3_bind_int64(st, 1, p->pid);
        sqlite3_bind_int64(st, 2, p->start_time);
        rc = sqlite3_step(st);
        *id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (rc != SQLITE_ROW)
            return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
    }
    if (slot != NULL) { /* out of memory it is only looked up again */
        *slot = (written_proc){p, *id};
        s->nwritten++;
    }
    return SQLITE_OK;
}

/* Widens the first_seen bounds of the block of id by at, for this
 * transaction's lifetime_blocks rows. Ids of one transaction are mostly
 * consecutive: the block of the previous open is checked first. */
static int note_block(ch_store *s, int64_t id, int64_t at)
{
    int64_t block = id >> BLOCK_SHIFT;
    for (size_t i = s->nblocks; i-- > 0;) {
        block_bounds *b = &s->blocks[i];
        if (b->block == block) {
            b->min_first_seen = at < b->min_first_seen ? at : b->min_first_seen;
            b->max_first_seen = at > b->max_first_seen ? at : b->max_first_seen;
            return SQLITE_OK;
        }
    }
    if (s->nblocks == s->blocks_cap) {
        size_t cap = s->blocks_cap ? s->blocks_cap * 2 : 8;
        block_bounds *grown = realloc(s->blocks, cap * sizeof *grown);
        if (grown == NULL)
            return SQLITE_NOMEM;
        s->blocks = grown;
        s->blocks_cap = cap;
    }
    s->blocks[s->nblocks++] = (block_bounds){block, at, at};
    return SQLITE_OK;
}

static int write_blocks(ch_store *s)
{
    for (size_t i = 0; i < s->nblocks; i++) {
        sqlite3_stmt *st = s->st[ST_BLOCK];
        sqlite3_bind_int64(st, 1, s->blocks[i].block);
        sqlite3_bind_int64(st, 2, s->blocks[i].min_first_seen);
        sqlite3_bind_int64(st, 3, s->blocks[i].max_first_seen);
        int rc = run_stmt(st);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* A lifetime's lifetime_extras row, when the sampler reported any of it. */
static int write_extras(ch_store *s, const ch_event *ev, const ch_sock *k, int has_remote)
{
    int offload = k->proto == CH_TCP && ch_offload_name(ch_sock_offload(k)) != NULL;
    int remote_scope = has_remote && k->remote_scope != 0;
    int64_t created = ch_sock_created(k);
    const ch_module *module = ch_sock_module(k);
    if (k->local_scope == 0 && !remote_scope && created == 0 && !offload && module == NULL)
        return SQLITE_OK;
    sqlite3_stmt *st = s->st[ST_EXTRAS];
    sqlite3_bind_int64(st, 1, ev->lifetime_id);
    bind_int_or_null(st, 2, k->local_scope, k->local_scope != 0);
    bind_int_or_null(st, 3, k->remote_scope, remote_scope);
    bind_int_or_null(st, 4, created, created != 0);
    bind_int_or_null(st, 5, ch_sock_offload(k), offload);
    bind_text_or_null(st, 6, module != NULL ? module->name : NULL);
    bind_text_or_null(st, 7, module != NULL ? module->path : NULL);
    return run_stmt(st);
}

static int write_open(ch_store *s, const ch_event *ev, const ch_opened *o)
{
    const ch_sock *k = &o->sock;
    const ch_proc *p = o->owner.proc;
    int has_remote = ch_sock_has_remote(k);
    int64_t proc_id = 0, local = 0, remote = 0;
    int rc = p != NULL ? process_id(s, p, ev->at, &proc_id) : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = ch_addr_ids_get(s->addr_ids, &k->local, &local);
    if (rc == SQLITE_OK && has_remote)
        rc = ch_addr_ids_get(s->addr_ids, &k->remote, &remote);
    if (rc == SQLITE_OK)
        rc = note_block(s, ev->lifetime_id, ev->at);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_stmt *st = s->st[ST_OPEN];
    sqlite3_bind_int64(st, 1, ev->lifetime_id);
    sqlite3_bind_int64(st, 2, s->run_id);
    sqlite3_bind_int(st, 3, k->proto == CH_UDP ? 17 : 6);
    sqlite3_bind_int(st, 4, k->local.family);
    sqlite3_bind_int64(st, 5, local);
    sqlite3_bind_int(st, 6, k->local_port);
    bind_int_or_null(st, 7, remote, has_remote);
    /* A TCP connection's remote port is never 0: announced with 0, it was
     * cleared by the kernel and no event gave it back (cleared_addrs.h). */
    bind_int_or_null(st, 8, k->remote_port, has_remote && (k->proto != CH_TCP || k->remote_port != 0));
    sqlite3_bind_int(st, 9, state_code(ev->state));
    sqlite3_bind_int64(st, 10, ev->at);
    bind_int_or_null(st, 11, proc_id, p != NULL);
    bind_int_or_null(st, 12, o->owner.holders, p != NULL);
    bind_int_or_null(st, 13, k->uid, k->uid != CH_UID_UNKNOWN);
    bind_int_or_null(st, 14, (int64_t)k->inode, k->inode != 0);
    bind_int_or_null(st, 15, (int64_t)k->ident, s->ident_is_cookie && k->ident != 0);
    bind_bytes(st, 16, k->proto, k->bytes_sent, k->bytes_received);
    bind_int_or_null(st, 18, ev->opened_after, ev->seen_by != CH_SEEN_BY_SAMPLES && ev->opened_after >= 0);
    bind_code(st, 19, ev->seen_by);
    bind_code(st, 20, p != NULL ? o->owner.source : CH_OWNER_UNKNOWN);
    rc = run_stmt(st);
    return rc == SQLITE_OK ? write_extras(s, ev, k, has_remote) : rc;
}

/* The state change first: the lifetime's UPDATE takes in its digest. */
static int write_state(ch_store *s, const ch_event *ev)
{
    int code = state_code(ev->state);
    sqlite3_stmt *st = s->st[ST_CHANGE];
    sqlite3_bind_int64(st, 1, ev->lifetime_id);
    sqlite3_bind_int64(st, 2, ev->at);
    sqlite3_bind_int(st, 3, code);
    int rc = run_stmt(st);
    if (rc != SQLITE_OK)
        return rc;
    st = s->st[ST_STATE];
    sqlite3_bind_int64(st, 1, ev->lifetime_id);
    sqlite3_bind_int(st, 2, code);
    bind_int_or_null(st, 3, ev->bytes_sent, ev->bytes_sent >= 0);
    bind_int_or_null(st, 4, ev->bytes_received, ev->bytes_received >= 0);
    return run_stmt(st);
}

static int write_close(ch_store *s, const ch_event *ev)
{
    sqlite3_stmt *st = s->st[ST_CLOSE];
    sqlite3_bind_int64(st, 1, ev->lifetime_id);
    bind_int_or_null(st, 2, ev->last_seen, ev->last_seen >= 0);
    sqlite3_bind_int64(st, 3, ev->at);
    bind_code(st, 4, ev->reason);
    bind_int_or_null(st, 5, ev->bytes_sent, ev->bytes_sent >= 0);
    bind_int_or_null(st, 6, ev->bytes_received, ev->bytes_received >= 0);
    bind_code(st, 7, ev->seen_by);
    return run_stmt(st);
}

static int write_announced(ch_store *s, const ch_event *ev)
{
    sqlite3_stmt *st = s->st[ST_ANNOUNCED];
    sqlite3_bind_int64(st, 1, ev->lifetime_id);
    bind_code(st, 2, ev->seen_by);
    bind_int_or_null(st, 3, ev->opened_after, ev->opened_after >= 0);
    bind_int_or_null(st, 4, ev->bytes_sent, ev->bytes_sent >= 0);
    bind_int_or_null(st, 5, ev->bytes_received, ev->bytes_received >= 0);
    return run_stmt(st);
}

static int write_owner(ch_store *s, const ch_event *ev, const ch_owner *o)
{
    int64_t proc_id = 0;
    int rc = process_id(s, o->proc, ev->at, &proc_id);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_stmt *st = s->st[ST_OWNER];
    sqlite3_bind_int64(st, 1, ev->lifetime_id);
    sqlite3_bind_int64(st, 2, proc_id);
    sqlite3_bind_int(st, 3, o->holders);
    bind_code(st, 4, o->source);
    return run_stmt(st);
}

static int write_event(ch_store *s, const ch_events *q, const ch_event *ev)
{
    switch (ev->type) {
    case CH_EV_OPEN:
        return write_open(s, ev, ch_events_opened(q, ev));
    case CH_EV_OWNER:
        return write_owner(s, ev, &ch_events_opened(q, ev)->owner);
    case CH_EV_STATE:
        return write_state(s, ev);
    case CH_EV_ANNOUNCED:
        return write_announced(s, ev);
    default:
        return write_close(s, ev);
    }
}

/* Extends the current span with a sample, or starts a new one after a gap. */
static void note_sample(ch_store *s, int64_t at)
{
    span *cur = s->nspans ? &s->spans[s->nspans - 1] : NULL;
    if (cur != NULL && at == cur->last_at)
        return; /* the same sample written again */
    if (cur != NULL && at > cur->last_at && at - cur->last_at <= 2 * s->interval_ms) {
        cur->last_at = at;
        cur->samples++;
        return;
    }
    if (s->nspans == MAX_SPANS) { /* never committed for that long: keep the newest */
        memmove(s->spans, s->spans + 1, (MAX_SPANS - 1) * sizeof *s->spans);
        s->nspans--;
    }
    s->spans[s->nspans++] = (span){at, at, 1};
}

static int write_spans(ch_store *s)
{
    for (int i = 0; i < s->nspans; i++) {
        sqlite3_stmt *st = s->st[ST_BEAT];
        sqlite3_bind_int64(st, 1, s->run_id);
        sqlite3_bind_int64(st, 2, s->spans[i].first_at);
        sqlite3_bind_int64(st, 3, s->spans[i].last_at);
        sqlite3_bind_int64(st, 4, s->spans[i].samples);
        int rc = run_stmt(st);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/*
 * Copies committed pages from the WAL into the database without waiting
 * for readers (PASSIVE). Once all are copied and no reader needs them, the
 * next write starts the WAL over, cut back to WAL_SIZE_LIMIT: the WAL grows
 * only while a reader holds an old snapshot. Whatever stops it (a reader,
 * a full disk) is tried again after a later commit.
 */
static void checkpoint(ch_store *s)
{
    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

/*
 * A new database's first sample writes every socket of the machine at once
 * (100,000 OPENs at 100,000 sockets). Inserted one by one, the rows reach
 * each index of lifetimes in random order through the 512 KiB page cache:
 * most of that sample's cost. Such a flush drops those indexes inside its
 * own transaction and builds them again after the rows, one sort each:
 * the database is the same, committed or rolled back as one.
 */
#define BULK_OPENS 10000

typedef struct {
    char **name, **sql; /* of each index of lifetimes: its name, its CREATE INDEX */
    size_t n;
} dropped_indexes;

static void free_dropped(dropped_indexes *d)
{
    for (size_t i = 0; i < d->n; i++) {
        sqlite3_free(d->name[i]);
        sqlite3_free(d->sql[i]);
    }
    free(d->name);
    free(d->sql);
    *d = (dropped_indexes){0};
}

/* True when the flush is a bulk one: many OPENs and no lifetime yet.
 * Not after a bulk flush failed: what failed may be the sorts' temporary
 * file, and the same flush is tried again. */
static bool bulk_flush(ch_store *s, const ch_events *q)
{
    if (s->bulk_failed || q->count + q->opens.count < BULK_OPENS)
        return false;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT NOT EXISTS (SELECT 1 FROM lifetimes)", -1, &st, NULL) != SQLITE_OK)
        return false;
    bool empty = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
    sqlite3_finalize(st);
    return empty;
}

/* Reads the indexes of lifetimes into d (SQLite's own, without a
 * statement, are not among them). */
static int read_lifetime_indexes(ch_store *s, dropped_indexes *d)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'lifetimes' "
                                "AND sql IS NOT NULL",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char **names = realloc(d->name, (d->n + 1) * sizeof *names);
        if (names != NULL)
            d->name = names;
        char **sqls = names != NULL ? realloc(d->sql, (d->n + 1) * sizeof *sqls) : NULL;
        if (sqls != NULL)
            d->sql = sqls;
        char *name = sqls != NULL ? sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 0)) : NULL;
        char *sql = name != NULL ? sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 1)) : NULL;
        if (sql == NULL) {
            sqlite3_free(name);
            rc = SQLITE_NOMEM;
            break;
        }
        d->name[d->n] = name;
        d->sql[d->n++] = sql;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Drops the indexes of lifetimes, keeping in d how to build them again. */
static int drop_lifetime_indexes(ch_store *s, dropped_indexes *d)
{
    int rc = read_lifetime_indexes(s, d);
    for (size_t i = 0; rc == SQLITE_OK && i < d->n; i++) {
        char *drop = sqlite3_mprintf("DROP INDEX \"%w\"", d->name[i]);
        rc = drop != NULL ? sqlite3_exec(s->db, drop, NULL, NULL, NULL) : SQLITE_NOMEM;
        sqlite3_free(drop);
    }
    return rc;
}

/*
 * Where SQLite keeps temporary data: in memory (the store's usual way: a
 * NOT EXISTS probe's copy of a row, statement journals), or in a file for
 * a bulk flush's sorts, which would otherwise hold every key of an index in
 * memory (4.5 MiB at 100,000 sockets). Changing it drops the connection's
 * temporary schema, the chain's triggers with it: they are put back, and
 * until they are nothing is written (rearm_due). Returns 0 or -1.
 */
static int set_temp_store(ch_store *s, const char *mode, char *err, size_t errn)
{
    char sql[48];
    snprintf(sql, sizeof sql, "PRAGMA temp_store = %s", mode);
    s->rearm_due = true;
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errn, "%s", sqlite3_errmsg(s->db));
        return -1;
    }
    if (ch_chain_rearm(s->chain, err, errn) != 0)
        return -1;
    s->rearm_due = false;
    return 0;
}

static int rebuild_indexes(ch_store *s, const dropped_indexes *d)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; rc == SQLITE_OK && i < d->n; i++)
        rc = sqlite3_exec(s->db, d->sql[i], NULL, NULL, NULL);
    return rc;
}

int ch_store_flush(ch_store *s, ch_events *q, int64_t sample_at, char *err, size_t errn)
{
    note_sample(s, sample_at);
    if (s->nwritten > 0) {
        memset(s->written, 0, s->written_cap * sizeof *s->written);
        s->nwritten = 0;
    }
    s->nblocks = 0;
    dropped_indexes dropped = {0};
    if (s->rearm_due && ch_chain_rearm(s->chain, err, errn) != 0)
        return SQLITE_ERROR; /* nothing is written past the chain */
    s->rearm_due = false;
    bool bulk = bulk_flush(s, q);
    if (bulk && set_temp_store(s, "FILE", err, errn) != 0) {
        s->bulk_failed = true;
        if (s->rearm_due)
            return SQLITE_ERROR;
        bulk = false;
    }
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK && bulk)
        rc = drop_lifetime_indexes(s, &dropped);
    /* In the order they were queued: the deferred closes came after items[0, at_item). */
    size_t before_closes = q->closes.count > 0 ? q->closes.at_item : q->count;
    for (size_t i = 0; rc == SQLITE_OK && i < before_closes; i++)
        rc = write_event(s, q, &q->items[i]);
    for (size_t i = 0; rc == SQLITE_OK && i < q->closes.count; i++) {
        ch_event ev = ch_events_close_at(q, i);
        rc = write_event(s, q, &ev);
    }
    for (size_t i = before_closes; rc == SQLITE_OK && i < q->count; i++)
        rc = write_event(s, q, &q->items[i]);
    for (size_t i = 0; rc == SQLITE_OK && i < q->opens.count; i++) {
        ch_opened o;
        ch_event ev = ch_events_open_at(q, i, &o);
        rc = write_open(s, &ev, &o);
    }
    if (rc == SQLITE_OK)
        rc = rebuild_indexes(s, &dropped);
    free_dropped(&dropped);
    if (rc == SQLITE_OK)
        rc = write_blocks(s);
    if (rc == SQLITE_OK)
        rc = write_spans(s);
    if (rc == SQLITE_OK && s->rider.write != NULL)
        rc = s->rider.write(s->rider.ctx, s->addr_ids, s->run_id);
    if (rc == SQLITE_OK)
        rc = ch_chain_write_link(s->chain);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (s->rider.done != NULL)
        s->rider.done(s->rider.ctx, rc == SQLITE_OK);
    if (rc != SQLITE_OK) {
        snprintf(err, errn, "%s", sqlite3_errmsg(s->db));
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (bulk) { /* outside the transaction, as it was set */
        char why[256];
        set_temp_store(s, "MEMORY", why, sizeof why); /* failed: rearm_due, the next flush tries again */
        s->bulk_failed = rc != SQLITE_OK;
    }
    if (rc != SQLITE_OK) {
        ch_addr_ids_forget(s->addr_ids); /* the addresses it added are gone */
        /* A WAL that filled the disk can only be reused once checkpointed. */
        if ((rc & 0xff) == SQLITE_FULL)
            checkpoint(s);
        return rc;
    }
    if (s->wal_frames >= CHECKPOINT_FRAMES)
        checkpoint(s);
    ch_events_clear(q);
    s->spans[0] = s->spans[s->nspans - 1];
    s->nspans = 1;
    return SQLITE_OK;
}

int ch_store_end_run(ch_store *s, int64_t ended_at, const char *reason, char *err, size_t errn)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "UPDATE runs SET ended_at = ?2, end_reason = ?3 WHERE run_id = ?1", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errn, "cannot end the run: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    sqlite3_bind_int64(st, 1, s->run_id);
    sqlite3_bind_int64(st, 2, ended_at);
    sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errn, "cannot end the run: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    return 0;
}

int64_t ch_store_run_id(const ch_store *s)
{
    return s->run_id;
}

int ch_store_event_overruns(ch_store *s, int64_t overruns)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "UPDATE runs SET event_overruns = ?2 WHERE run_id = ?1", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, s->run_id);
    sqlite3_bind_int64(st, 2, overruns);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

void ch_store_set_rider(ch_store *s, const ch_store_rider *rider)
{
    s->rider = *rider;
}

int ch_store_note(ch_store *s, const char *note)
{
    sqlite3_stmt *st;
    const char *sql = "UPDATE runs SET notes = COALESCE(notes || '; ', '') || ?2 WHERE run_id = ?1";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, s->run_id);
    sqlite3_bind_text(st, 2, note, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}
