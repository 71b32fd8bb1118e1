/*
 * chq_worker on Windows threads (worker.h).
 */
#include "worker.h"

#include <stdlib.h>
#include <windows.h>

struct chq_worker {
    HANDLE thread;
    void (*fn)(void *);
    void *arg;
};

static DWORD WINAPI run(LPVOID p)
{
    chq_worker *w = p;
    w->fn(w->arg);
    return 0;
}

chq_worker *chq_worker_start(void (*fn)(void *), void *arg)
{
    chq_worker *w = malloc(sizeof *w);
    if (w == NULL)
        return NULL;
    w->fn = fn;
    w->arg = arg;
    w->thread = CreateThread(NULL, 0, run, w, 0, NULL);
    if (w->thread == NULL) {
        free(w);
        return NULL;
    }
    return w;
}

void chq_worker_join(chq_worker *w)
{
    WaitForSingleObject(w->thread, INFINITE);
    CloseHandle(w->thread);
    free(w);
}
