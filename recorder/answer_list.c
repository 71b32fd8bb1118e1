#include "answer_list.h"

#include <stdlib.h>

size_t ch_answer_list_room(ch_answer_list *l, size_t want, size_t max)
{
    size_t need = l->count + want < max ? l->count + want : max;
    if (need > l->cap) {
        size_t cap = l->cap < CH_ANSWER_LIST_FIRST ? CH_ANSWER_LIST_FIRST : l->cap;
        while (cap < need)
            cap *= 2;
        if (cap > max)
            cap = max;
        ch_dns_answer *items = realloc(l->items, cap * sizeof *items);
        if (items != NULL) {
            l->items = items;
            l->cap = cap;
        }
    }
    size_t room = l->cap > l->count ? l->cap - l->count : 0;
    return room < want ? room : want;
}

void ch_answer_list_empty(ch_answer_list *l)
{
    l->count = 0;
    if (l->cap > CH_ANSWER_LIST_KEEP) {
        free(l->items);
        l->items = NULL;
        l->cap = 0;
    }
}

void ch_answer_list_free(ch_answer_list *l)
{
    free(l->items);
    *l = (ch_answer_list){0};
}
