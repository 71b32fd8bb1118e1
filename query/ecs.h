/*
 * Lifetimes as Elastic Common Schema (ECS) documents: one JSON object per
 * line, field names and types as the ECS field definitions give them, what
 * ECS has no field for under "connhist.*". Unknown values are left out,
 * never written as null or a made-up value. query/README.md (export) lists
 * every field and where it comes from.
 */
#ifndef CHQ_ECS_H
#define CHQ_ECS_H

#include <sqlite3.h>
#include <stdint.h>

#include "jsonw.h"

/* The columns ecs_put reads, in its order, over lifetimes l (with
 * processes p joined for the filters: CHQ_LIFETIME_FROM). The process
 * comes from a cache by proc_id, not from the join: a lifetime's process
 * is most often the one of a recent row. */
#define ECS_COLUMNS                                                                                   \
    "l.lifetime_id, l.proto, l.family, l.local_addr_id, l.local_port, l.remote_addr_id, l.remote_port," \
    " l.state, l.states, l.first_seen, l.first_seen + l.last_seen_after, l.first_seen + l.closed_after," \
    " l.close_reason, l.holders, l.owner_source, l.seen_by, l.opened_after, l.bytes_sent,"              \
    " l.bytes_received, l.run_id, l.uid, l.proc_id"

/* The columns ecs_put_answer reads, in its order, and the tables they come
 * from: one row per DNS answer lifetime (dns_answers a). */
#define ECS_ANSWER_COLUMNS                                                                                 \
    "a.answer_id, q.name, r.name, a.type, a.addr_id, t.name, a.ttl, a.first_seen,"                         \
    " a.first_seen + a.last_seen_after, a.first_seen + a.expires_after, a.times_seen, a.resolver_addr_id," \
    " a.client_addr_id, a.client_port, a.proto, a.proc_id, a.run_id, a.qtype"
#define ECS_ANSWER_FROM                                                                                    \
    " FROM dns_answers a JOIN dns_names q ON q.name_id = a.qname_id JOIN dns_names r ON r.name_id = a.rname_id" \
    " LEFT JOIN dns_names t ON t.name_id = a.target_id"

typedef struct ecs_writer ecs_writer;

/*
 * Prepares writing documents of db's lifetimes: reads the database's
 * identity (its first run, for event.id) and the TCP listeners (for
 * network.direction). Returns 0, or -1 with an SQLite error on db.
 */
int ecs_open(sqlite3 *db, ecs_writer **out);

/* Learns the TCP listeners whose lifetime_id is at least min_id (follow
 * mode: before writing the rows they may have accepted), and whether any
 * DNS answer is recorded yet (the domain join). 0 or -1. */
int ecs_learn_listeners(ecs_writer *e, int64_t min_id);

/* The identity written into every event.id ("HOST:MS" of the first run),
 * or "" in a database without runs. */
const char *ecs_database_id(const ecs_writer *e);

/* Writes the row of st (ECS_COLUMNS from column 0) as one document line;
 * the remote end has "domain" when a DNS answer names it (query/names.c). */
void ecs_put(ecs_writer *e, jw *w, sqlite3_stmt *st);

/* Writes the DNS answer of st (ECS_ANSWER_COLUMNS from column 0) as one
 * document line: event.dataset connhist.dns, event.id "HOST:MS:dns:ID". */
void ecs_put_answer(ecs_writer *e, jw *w, sqlite3_stmt *st);

void ecs_close(ecs_writer *e);

#endif
