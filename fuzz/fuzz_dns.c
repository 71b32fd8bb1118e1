/*
 * libFuzzer target: the DNS names' parse-and-store path. The first byte
 * picks how the rest is read (raw IP, the "any" device's SLL and SLL2
 * headers, Ethernet, or a bare DNS message as over UDP); every fact decoded
 * is checked and written by the answer store into a database in memory,
 * inside a transaction rolled back after each input (so the store's
 * rollback path runs every time, and memory does not grow).
 * Malformed, truncated, compression-looped and oversized messages must
 * neither crash nor hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "db.h"
#include "names_decode.h"

static sqlite3 *db;
static ch_addr_ids *ids;
static ch_answers *store;

static void take(void *ctx, const ch_dns_answer *a)
{
    (void)ctx;
    if (a->type != CH_DNS_A && a->type != CH_DNS_AAAA && a->type != CH_DNS_CNAME)
        abort();
    if (memchr(a->qname, '\0', sizeof a->qname) == NULL || memchr(a->rname, '\0', sizeof a->rname) == NULL ||
        memchr(a->target, '\0', sizeof a->target) == NULL)
        abort();
    if ((a->type == CH_DNS_CNAME) != (a->addr.family == 0))
        abort();
    ch_answers_add(store, a, 1);
}

static void open_once(void)
{
    char err[256];
    if (sqlite3_open(":memory:", &db) != SQLITE_OK || sqlite3_exec(db, ch_schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "INSERT INTO runs(run_id, started_at, mode, interval_ms, host, os, sampler, version, pid)"
                         " VALUES (1, 0, 'continuous', 1000, 'h', 'o', 'netlink', 'v', 1)", NULL, NULL, NULL) != SQLITE_OK)
        abort();
    ids = ch_addr_ids_open(db, err, sizeof err);
    store = ch_answers_new(db, 1000, err, sizeof err);
    if (ids == NULL || store == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int links[] = {CH_LINK_RAW, CH_LINK_SLL, CH_LINK_SLL2, CH_LINK_ETHERNET};
    if (size < 1)
        return 0;
    if (db == NULL)
        open_once();
    size_t len = size - 1;
    uint8_t *buf = malloc(len ? len : 1); /* exactly len bytes: ASan sees a read past the end */
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, len);
    int pick = data[0] % 5;
    if (pick == 4) {
        ch_dns_answer base;
        memset(&base, 0, sizeof base);
        base.count = 1;
        base.proto = 17;
        base.resolver.family = base.client.family = 4;
        ch_dns_decode_message(buf, len, &base, take, NULL);
    } else {
        ch_dns_decode_packet(buf, len, links[pick], (int64_t)data[0] * 1000, take, NULL);
    }
    free(buf);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (ch_answers_write(store, ids, 1) != SQLITE_OK)
        abort();
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    ch_addr_ids_forget(ids);
    ch_answers_done(store, false);
    ch_answers_done(store, true); /* the facts are done with: the next input starts empty */
    return 0;
}
