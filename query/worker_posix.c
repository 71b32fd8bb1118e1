/*
 * chq_worker on POSIX threads (worker.h).
 */
#include "worker.h"

#include <pthread.h>
#include <stdlib.h>

struct chq_worker {
    pthread_t thread;
    void (*fn)(void *);
    void *arg;
};

static void *run(void *p)
{
    chq_worker *w = p;
    w->fn(w->arg);
    return NULL;
}

chq_worker *chq_worker_start(void (*fn)(void *), void *arg)
{
    chq_worker *w = malloc(sizeof *w);
    if (w == NULL)
        return NULL;
    w->fn = fn;
    w->arg = arg;
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        free(w);
        return NULL;
    }
    return w;
}

void chq_worker_join(chq_worker *w)
{
    pthread_join(w->thread, NULL);
    free(w);
}
