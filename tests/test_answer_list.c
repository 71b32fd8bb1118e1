/*
 * The list of DNS answers (recorder/answer_list.c) that the capture's
 * queues and the store's waiting list are made of: it grows as it fills,
 * never beyond its bound, and gives a large array back when emptied.
 */
#include <string.h>

#include "answer_list.h"
#include "check.h"

/* Appends n answers named by their index, as many as fit under max. */
static size_t append(ch_answer_list *l, size_t n, size_t max)
{
    size_t room = ch_answer_list_room(l, n, max);
    for (size_t i = 0; i < room; i++) {
        ch_dns_answer *a = &l->items[l->count + i];
        memset(a, 0, sizeof *a);
        a->ttl = (uint32_t)(l->count + i);
    }
    l->count += room;
    return room;
}

static void test_grows_as_it_fills(void)
{
    ch_answer_list l = {0};
    CHECK_INT(l.cap, 0);
    CHECK_INT(append(&l, 1, 4096), 1);
    CHECK_INT(l.cap, CH_ANSWER_LIST_FIRST);
    for (size_t i = 1; i < 1000; i++)
        CHECK_INT(append(&l, 1, 4096), 1);
    CHECK_INT(l.count, 1000);
    CHECK_INT(l.cap, 1024); /* doubled from 32 */
    for (size_t i = 0; i < l.count; i++)
        if (l.items[i].ttl != (uint32_t)i) { /* kept across the moves */
            CHECK_INT(l.items[i].ttl, i);
            break;
        }
    CHECK_INT(append(&l, 5000, 4096), 3096); /* up to the bound at once */
    CHECK_INT(l.cap, 4096);
    CHECK_INT(append(&l, 1, 4096), 0); /* full */
    CHECK_INT(l.count, 4096);
    ch_answer_list_free(&l);
    CHECK(l.items == NULL && l.count == 0 && l.cap == 0);
}

static void test_bound_not_a_power_of_two(void)
{
    ch_answer_list l = {0};
    CHECK_INT(append(&l, 40, 100), 40);
    CHECK_INT(l.cap, 64);
    CHECK_INT(append(&l, 100, 100), 60);
    CHECK_INT(l.cap, 100);
    ch_answer_list_free(&l);
}

static void test_emptied(void)
{
    ch_answer_list l = {0};
    append(&l, CH_ANSWER_LIST_KEEP, 4096);
    CHECK_INT(l.cap, CH_ANSWER_LIST_KEEP);
    ch_answer_list_empty(&l); /* small: kept for the next answers */
    CHECK_INT(l.count, 0);
    CHECK_INT(l.cap, CH_ANSWER_LIST_KEEP);
    CHECK(l.items != NULL);
    append(&l, CH_ANSWER_LIST_KEEP + 1, 4096);
    CHECK_INT(l.cap, 2 * CH_ANSWER_LIST_KEEP);
    ch_answer_list_empty(&l); /* after a burst: given back */
    CHECK(l.items == NULL);
    CHECK_INT(l.count, 0);
    CHECK_INT(l.cap, 0);
    CHECK_INT(append(&l, 3, 4096), 3); /* and grows again */
    CHECK_INT(l.cap, CH_ANSWER_LIST_FIRST);
    ch_answer_list_free(&l);
}

int main(void)
{
    test_grows_as_it_fills();
    test_bound_not_a_power_of_two();
    test_emptied();
    return check_report("test_answer_list");
}
