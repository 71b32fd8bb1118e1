/*
 * The cursor file of export --cursor/--follow: how far the export got, so
 * that a restart neither repeats nor skips. It holds the database's
 * identity (a cursor of another database is refused), the next lifetime_id
 * not yet exported, and the lifetimes exported while open whose close is
 * still to be written, and how far the DNS answers got (the next answer_id
 * and the latest last_seen written; a cursor written before answers were
 * exported has neither and exports every answer once). It is replaced atomically (a temporary file, synced,
 * renamed over it) after the documents it counts are synced to the output.
 */
#ifndef CHQ_EXPORT_CURSOR_H
#define CHQ_EXPORT_CURSOR_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t next_id;  /* lifetimes below it were written */
    int64_t *open;    /* of those, the ones written while open, ascending */
    size_t n_open, cap;
    int64_t next_answer;  /* answers below it were written */
    int64_t answers_seen; /* the latest last_seen written of them; -1 none */
} export_cursor;

/*
 * Reads path into c. A missing file is a fresh cursor (next_id 0, nothing
 * open, next_answer 0, answers_seen -1). Returns 0, or -1 after a message (unreadable, not a cursor, or the
 * cursor of a database other than database_id).
 */
int cursor_load(const char *path, const char *database_id, export_cursor *c);

/* Writes c for database_id to path, atomically and durably. 0, or -1 after a message. */
int cursor_save(const char *path, const char *database_id, const export_cursor *c);

/* Appends id to the open list (ids come in ascending order). 0 or -1. */
int cursor_add_open(export_cursor *c, int64_t id);

void cursor_free(export_cursor *c);

#endif
