/*
 * The CNAME records of each name asked, in memory, for following the chain
 * of an answer (names.c) without a query per step: a bulk report over a
 * database with DNS answers follows a chain for most lifetimes, and one SQL
 * query per step was most of its time (80 us a lifetime).
 *
 * A name's CNAME records are read the first time a chain of it is
 * followed. The cache belongs to one database connection at a time: asked
 * with another, it starts again. What was recorded after a name was read is
 * not seen until cname_cache_clear.
 */
#ifndef CHQ_CNAME_CACHE_H
#define CHQ_CNAME_CACHE_H

#include <sqlite3.h>
#include <stdint.h>

/* The CNAME record of the chain asked as qname_id that pointed at name
 * target_id and was first seen last at or before at (of those first seen at
 * the same moment, the first recorded; records whose name dns_names lacks
 * are left out): its name's id into *rname_id and text into *rname (owned
 * by the cache, valid until it is cleared). 1 found, 0 none, -1 on a
 * database error or out of memory. */
int cname_cache_step(sqlite3 *db, int64_t qname_id, int64_t target_id, int64_t at, int64_t *rname_id,
                     const char **rname);

/* Forgets everything read (before the database closes, or to see what was
 * recorded since). */
void cname_cache_clear(void);

#endif
