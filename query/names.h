/*
 * Names joined to lifetimes: the DNS answers the recorder captured
 * (dns_answers, dns_names) that gave a lifetime's remote address before it
 * opened. Every lifetime in every report carries "remote_names" (put by
 * put_lifetime), --remote-name GLOB filters on them, the summary's top
 * remotes show them, and the header's coverage says whether names were
 * being captured at all.
 *
 * The join: an answer for the remote address, first seen at or before the
 * lifetime's first_seen and in force then (its expiry plus
 * CHQ_NAME_GRACE_MS). Most recent first, the asking process's own answers
 * before others'; each answer gives the name asked, then the names of its
 * CNAME chain. schema.sql's v_lifetime_names is the same join.
 */
#ifndef CHQ_NAMES_H
#define CHQ_NAMES_H

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jsonw.h"
#include "qsql.h"
#include "query.h"

/* After an answer expired, how long it still names a connection: the time
 * between an answer and the connect, and clients that cache a little
 * longer than the TTL. The view v_lifetime_names uses the same 10 s. */
#define CHQ_NAME_GRACE_MS 10000

/* In SQL: the addr_id of the IPv4 address an '::ffff:a.b.c.d' address id x
 * maps, or NULL. */
#define CHQ_ALT_ADDR(x)                                                                             \
    "(SELECT v4.addr_id FROM addrs m JOIN addrs v4 ON v4.addr = substr(m.addr, 8)"                   \
    " WHERE m.addr_id = " x " AND m.addr LIKE '::ffff:%')"

/* "remote_names": for the lifetime whose remote_addr_id and first_seen
 * are the columns at, and whose process has pid and start (NULL when it
 * has none), the names as a list, most recent first, or null when none was
 * seen. */
void put_remote_names(jw *w, sqlite3_stmt *st, int addr_col, int first_seen_col, const int64_t *pid,
                      const int64_t *start);

/* The first of remote_names without writing it: the name asked most
 * recently, the process (pid, start; NULL when unknown) first, for address
 * addr_id at time at; NULL when none, or when it is max bytes or longer.
 * The text is the name cache's: valid until names_forget. */
const char *names_remote_domain(sqlite3 *db, int64_t addr_id, int64_t at, const int64_t *pid, const int64_t *start,
                                size_t max);

/* Appends " AND ..." keeping lifetimes l one of whose names matches
 * --remote-name (f->remote_name), when given. */
void names_filter(qsql *q, const query_filters *f);

/* Parses --remote-name: a GLOB on names, matched in lower case. */
int names_parse_pattern(const char *opt, const char *val, const char **out);

/* Adds "names" to the header's coverage: whether DNS answers were captured
 * in the window's runs, why not, and how many were dropped. */
int names_coverage(query_ctx *c, cJSON *cov);

/* The report "names": the answers captured in the window. */
int report_names(query_ctx *c, cJSON *header);

/* The columns put_group_names reads, for a query grouping lifetimes l by
 * remote address: the address id and the group's first and last opening. */
#define CHQ_GROUP_NAMES_COLUMNS "l.remote_addr_id, MIN(l.first_seen), MAX(l.first_seen)"

/* "names": the names answered for the group's address while its lifetimes
 * opened (CHQ_GROUP_NAMES_COLUMNS at col), most recent first, at most 10;
 * null when none. */
void put_group_names(jw *w, sqlite3_stmt *st, int col);

/* Before a report writes every lifetime of f's window: when no filter but
 * the window and --limit is given, tells the name cache how many lifetimes
 * to expect (name_cache_expect), so that a large report reads every answer
 * in one pass from the start. Any other filter may narrow the remote
 * addresses to a few: the cache then finds out as it goes. */
void names_expect_window(sqlite3 *db, const query_filters *f);

/* Forgets the answers read so far (name_cache.h), so that the next
 * lifetimes see what was recorded since: export --follow, every pass. */
void names_forget(void);

/* Frees what the join keeps between lifetimes (before the database closes). */
void names_close(void);

#endif
