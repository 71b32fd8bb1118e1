/*
 * The text of the addresses of the addrs dictionary (schema version 3), for
 * writing lifetimes: a bulk report would otherwise look up two addresses per
 * lifetime in the database (or join addrs, a seek per row). A cache keeps
 * them by id, the whole dictionary once a report asks for many.
 */
#ifndef CHQ_ADDR_TEXT_H
#define CHQ_ADDR_TEXT_H

#include <sqlite3.h>

#include "jsonw.h"

/* Writes the address whose addr_id is in column col of st as text under
 * key (null for NULL, or an id the dictionary does not hold). */
void put_addr_col(jw *w, const char *key, sqlite3_stmt *st, int col);

/* Frees the lookup statement and the cache; before the database is closed. */
void addr_text_close(void);

#endif
