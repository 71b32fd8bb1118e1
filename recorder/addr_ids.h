/*
 * The addrs dictionary of the database (schema version 3): every address a
 * lifetime had is stored once, and lifetimes refer to it by addr_id. The
 * store asks here for the id of each address it writes; a small cache of
 * recent ones keeps that off the database on a busy machine.
 */
#ifndef CH_ADDR_IDS_H
#define CH_ADDR_IDS_H

#include <sqlite3.h>
#include <stdint.h>

#include "addr.h"

typedef struct ch_addr_ids ch_addr_ids;

/* Prepares the statements on db. NULL with a message in err. */
ch_addr_ids *ch_addr_ids_open(sqlite3 *db, char *err, size_t errn);
void ch_addr_ids_close(ch_addr_ids *d);

/*
 * The addr_id of a, inserting the address into addrs when it is new (so
 * only inside the store's write transaction). Returns an SQLite status.
 */
int ch_addr_ids_get(ch_addr_ids *d, const ch_addr *a, int64_t *id);

/* Forgets every cached id: after a rollback, ids given out in it are void. */
void ch_addr_ids_forget(ch_addr_ids *d);

#endif
