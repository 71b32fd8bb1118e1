/*
 * A second thread for work that splits in two (verify's rows), one file per
 * platform (worker_posix.c, worker_windows.c). Started, then joined; NULL
 * when the platform would not start it (the caller does the work itself).
 */
#ifndef CHQ_WORKER_H
#define CHQ_WORKER_H

typedef struct chq_worker chq_worker;

chq_worker *chq_worker_start(void (*fn)(void *), void *arg);

/* Waits for fn to return and releases the worker. */
void chq_worker_join(chq_worker *w);

#endif
