/*
 * Tests the store's bulk flush against a real SQLite file: a new database's
 * first sample of many sockets is written with the lifetimes' indexes
 * dropped and built again in the same transaction (seen in the statements
 * SQLite runs); the database ends with the same indexes, consistent with
 * the rows, every row chained (the chain's triggers survive the switch of
 * the sorts' temporary data to a file and back). A bulk flush that fails
 * leaves the database as it was, and the same events are written again,
 * row by row.
 */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "db.h"
#include "store.h"

enum { N = 12000 }; /* more than a bulk flush needs (queue_one_more adds lifetime 12001) */

/* Counts the DROP INDEX and CREATE INDEX statements the connection runs. */
typedef struct {
    int drops, creates;
} ddl_count;

static int on_statement(unsigned type, void *ctx, void *p, void *x)
{
    (void)type;
    ddl_count *c = ctx;
    const char *sql = sqlite3_sql((sqlite3_stmt *)p);
    (void)x;
    if (sql != NULL && strncmp(sql, "DROP INDEX", 10) == 0)
        c->drops++;
    if (sql != NULL && strncmp(sql, "CREATE INDEX", 12) == 0)
        c->creates++;
    return 0;
}

/* The lifetimes' indexes as the schema holds them, one text. */
static char *indexes_of(sqlite3 *db)
{
    sqlite3_stmt *st;
    char *all = sqlite3_mprintf("");
    sqlite3_prepare_v2(db,
                       "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'lifetimes' "
                       "AND sql IS NOT NULL ORDER BY name",
                       -1, &st, NULL);
    while (all != NULL && sqlite3_step(st) == SQLITE_ROW) {
        char *more = sqlite3_mprintf("%s%s: %s\n", all, sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
        sqlite3_free(all);
        all = more;
    }
    sqlite3_finalize(st);
    return all;
}

static int64_t one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int integrity_ok(sqlite3 *db)
{
    sqlite3_stmt *st;
    int ok = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    sqlite3_finalize(st);
    return ok;
}

/* Rows of the tables that carry a chain digest that have none: written
 * past the chain (its triggers gone). */
static int64_t unchained_rows(sqlite3 *db)
{
    sqlite3_stmt *st;
    int64_t n = 0;
    sqlite3_prepare_v2(db,
                       "SELECT name FROM sqlite_schema s WHERE type = 'table' AND EXISTS "
                       "(SELECT 1 FROM pragma_table_info(s.name) WHERE name = 'chain_digest')",
                       -1, &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char *sql =
            sqlite3_mprintf("SELECT COUNT(*) FROM \"%w\" WHERE chain_digest IS NULL", sqlite3_column_text(st, 0));
        int64_t k = sql != NULL ? one_int(db, sql) : -1;
        if (k != 0)
            fprintf(stderr, "%s: %lld rows without a chain digest\n", sqlite3_column_text(st, 0), (long long)k);
        n += k;
        sqlite3_free(sql);
    }
    sqlite3_finalize(st);
    return n;
}

/* One more connection, to a remote no earlier row had (a new addrs row,
 * chained by a trigger). */
static void queue_one_more(ch_events *q)
{
    ch_sock k;
    memset(&k, 0, sizeof k);
    k.proto = CH_TCP;
    ch_addr_parse("10.0.0.1", &k.local);
    ch_addr_parse("192.0.2.99", &k.remote);
    k.local_port = 999;
    k.remote_port = 22;
    k.ident = N + 1;
    k.uid = 4000000000u; /* uids and inodes are 32-bit unsigned: the top half is kept too */
    k.inode = 4000000001u;
    k.bytes_sent = k.bytes_received = -1;
    ch_event ev = {.type = CH_EV_OPEN, .state = CH_ST_ESTABLISHED, .lifetime_id = N + 1, .at = 3000};
    CHECK_INT(ch_events_push_open(q, &ev, &k, (ch_owner){NULL, 0, CH_OWNER_UNKNOWN}), 0);
}

/* N new connections, from many ports to many remotes, half of them owned
 * by nobody known (no process rows needed). */
static void queue_opens(ch_events *q)
{
    for (int i = 0; i < N; i++) {
        ch_sock k;
        memset(&k, 0, sizeof k);
        char remote[32];
        snprintf(remote, sizeof remote, "10.%d.%d.%d", i / 65536, i / 256 % 256, i % 256);
        k.proto = CH_TCP;
        ch_addr_parse("10.0.0.1", &k.local);
        ch_addr_parse(remote, &k.remote);
        k.local_port = (uint16_t)(1024 + (i * 7919) % 60000);
        k.remote_port = (uint16_t)(i % 3 == 0 ? 443 : 80);
        k.ident = (uint64_t)i + 1;
        k.inode = (uint32_t)i + 100;
        k.uid = i % 5 == 0 ? CH_UID_UNKNOWN : 1000;
#if CH_SOCK_OS_FIELDS
        k.offload = -1;
#endif
        k.bytes_sent = k.bytes_received = -1;
        ch_event ev = {.type = CH_EV_OPEN, .state = CH_ST_ESTABLISHED, .lifetime_id = i + 1, .at = 1000 + i / 1000};
        CHECK_INT(ch_events_push_open(q, &ev, &k, (ch_owner){NULL, 0, CH_OWNER_UNKNOWN}), 0);
    }
}

/* A rider (the DNS answers' place in the transaction) that fails once. */
static int fails_left;
static int rider_write(void *ctx, ch_addr_ids *ids, int64_t run_id)
{
    (void)ctx, (void)ids, (void)run_id;
    return fails_left-- > 0 ? SQLITE_IOERR : SQLITE_OK;
}

static void test_bulk(const char *dir, int fail_first)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/bulk%d.db", dir, fail_first);
    sqlite3 *db = NULL;
    CHECK_INT(ch_db_open_write(path, &db, NULL, err), 0);
    if (db == NULL)
        return;
    ch_store *s = ch_store_open(db, err, sizeof err);
    CHECK(s != NULL);
    ch_run_info run = {.mode = "continuous", .interval_ms = 1000, .host = "testhost", .os = "Linux",
                       .boot_id = NULL, .boot_time = -1, .sampler = "netlink", .ident_is_cookie = 1,
                       .version = "test", .pid = 1, .uid = 0, .started_at = 900};
    CHECK(s != NULL && ch_store_begin_run(s, &run, err, sizeof err) == 0);
    fails_left = fail_first;
    if (s != NULL)
        ch_store_set_rider(s, &(ch_store_rider){rider_write, NULL, NULL});
    char *before = indexes_of(db);
    CHECK(before != NULL && strstr(before, "lifetimes_local_port") != NULL);
    ddl_count ddl = {0, 0};
    sqlite3_trace_v2(db, SQLITE_TRACE_STMT, on_statement, &ddl);
    ch_events q = {0};
    queue_opens(&q);
    int rc = s != NULL ? ch_store_flush(s, &q, 2000, err, sizeof err) : -1;
    int ndrops = ddl.drops;
    CHECK(ndrops >= 4); /* every index of lifetimes: dropped, */
    CHECK_INT(ddl.creates, ndrops);  /* built again after the rows (a failure comes later) */
    if (fail_first) {
        CHECK(rc != SQLITE_OK);
        CHECK_INT(one_int(db, "SELECT COUNT(*) FROM lifetimes"), 0);
        char *after_failure = indexes_of(db);
        CHECK(after_failure != NULL && before != NULL && strcmp(after_failure, before) == 0);
        sqlite3_free(after_failure);
        ddl = (ddl_count){0, 0};
        rc = s != NULL ? ch_store_flush(s, &q, 2000, err, sizeof err) : -1;
        CHECK_INT(ddl.drops, 0); /* the same events again, row by row */
    }
    CHECK_INT(rc, SQLITE_OK);
    sqlite3_trace_v2(db, 0, NULL, NULL);
    char *after = indexes_of(db);
    CHECK(after != NULL && before != NULL && strcmp(after, before) == 0);
    CHECK_INT(one_int(db, "SELECT COUNT(*) FROM lifetimes"), N);
    CHECK(integrity_ok(db)); /* every index holds every row it should */
    CHECK_INT(one_int(db, "SELECT COUNT(*) FROM lifetimes INDEXED BY lifetimes_remote_port WHERE remote_port = 443"),
              (N + 2) / 3);
    /* Every row chained, in the bulk flush (whose sorts spill to a file:
     * switching there and back drops the chain's temporary triggers, which
     * the store puts back) and in the next one. */
    CHECK_INT(unchained_rows(db), 0);
    queue_one_more(&q);
    CHECK_INT(s != NULL ? ch_store_flush(s, &q, 3000, err, sizeof err) : -1, SQLITE_OK);
    CHECK_INT(one_int(db, "SELECT COUNT(*) FROM addrs WHERE addr = '192.0.2.99'"), 1);
    CHECK_INT(one_int(db, "SELECT COUNT(*) FROM lifetimes WHERE uid IS NULL"), (N + 4) / 5);
    CHECK_INT(one_int(db, "SELECT uid FROM lifetimes WHERE lifetime_id = 12001"), 4000000000LL);
    CHECK_INT(one_int(db, "SELECT inode FROM lifetimes WHERE lifetime_id = 12001"), 4000000001LL);
    CHECK_INT(unchained_rows(db), 0);
    sqlite3_free(before);
    sqlite3_free(after);
    ch_events_free(&q);
    ch_store_close(s);
    sqlite3_close(db);
}

int main(void)
{
    char dir[] = "/tmp/connhist-test-store-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_bulk(dir, 0);
    test_bulk(dir, 1);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_report("test_store");
}
