/*
 * A list of DNS answers that grows as it fills, up to a bound, and gives
 * its memory back when it is emptied after a burst.
 *
 * Answers are 856 bytes each (names.h), and the capture's two queues and
 * the store's waiting list may each hold thousands. Allocated at their
 * bound from the start, their pages became resident as a burst filled
 * them and stayed so for the rest of the run: up to 14 MiB after one
 * burst. Grown by doubling from a few dozen, a list costs what it holds;
 * emptied, a list larger than CH_ANSWER_LIST_KEEP frees its array (one of
 * that size is mapped memory, returned to the system when freed).
 */
#ifndef CH_ANSWER_LIST_H
#define CH_ANSWER_LIST_H

#include <stddef.h>

#include "names.h"

#define CH_ANSWER_LIST_FIRST 32 /* answers a list has room for once it holds one */
#define CH_ANSWER_LIST_KEEP 256 /* kept when emptied at most: 214 KiB */

typedef struct {
    ch_dns_answer *items;
    size_t count;
    size_t cap;
} ch_answer_list;

/* Makes room for want more answers, never beyond max in all: returns how
 * many fit (fewer than want when max is reached or memory is short). */
size_t ch_answer_list_room(ch_answer_list *l, size_t want, size_t max);

/* Forgets the answers; gives the array back when it is larger than
 * CH_ANSWER_LIST_KEEP. */
void ch_answer_list_empty(ch_answer_list *l);

void ch_answer_list_free(ch_answer_list *l);

#endif
