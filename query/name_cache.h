/*
 * The DNS answers of each remote address, in memory, for joining names to
 * lifetimes (names.h) without a query per lifetime: a bulk report or an
 * export writes hundreds of thousands of lifetimes a second, and one SQL
 * lookup each for its names cost more than everything else together.
 *
 * An address's answers are read from the database the first time it is
 * asked for (its own and, for '::ffff:a.b.c.d', those of a.b.c.d), most
 * recent first. Once many distinct addresses were asked for, or when a
 * bulk report says it will ask for them (name_cache_expect), every answer
 * of the database is read in one pass instead. The
 * cache belongs to one database connection at a time: asked with another,
 * it starts again. What was recorded after an address was read is not
 * seen until name_cache_clear (export --follow clears it every pass).
 */
#ifndef CHQ_NAME_CACHE_H
#define CHQ_NAME_CACHE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One answer that gave an address: the columns the join reads. */
typedef struct {
    int64_t answer_id;
    int64_t first_seen; /* ms UTC */
    int64_t until;      /* the last moment it names a connection: expiry plus the grace */
    int64_t older_until; /* the latest until of this answer and every older one of its address */
    int64_t qname_id, rname_id;
    int64_t pid, start; /* the asking process, when has_proc */
    bool has_proc;
} name_answer;

/* The answers of one address, most recent first (first_seen, then
 * answer_id, descending). */
typedef struct {
    const name_answer *v;
    size_t n;
} name_answers;

/* The answers of address addr_id in db into out (n 0 when none). -1 on a
 * database error or out of memory (out then empty). */
int name_cache_get(sqlite3 *db, int64_t addr_id, name_answers *out);

/* Says that about this many lifetimes, of addresses as varied as the
 * recorded traffic, are about to be asked for (a bulk report: every
 * lifetime of a window, no filter narrowing the addresses). When reading
 * their addresses one by one would cost more than reading every answer,
 * the first read is the full one. Until name_cache_clear or another db. */
void name_cache_expect(sqlite3 *db, int64_t lifetimes);

/* The text of name name_id of an answer name_cache_get gave (owned by the
 * cache, valid until it is cleared); NULL when dns_names has no such name
 * (the join leaves such an answer out). */
const char *name_cache_name(int64_t name_id);

/* Forgets everything read (before the database closes, or to see what was
 * recorded since). */
void name_cache_clear(void);

#endif
