/*
 * The clocks of the dump floors (rawdump.c, iterdump.c), so that both
 * measure a dump the same way: wall time of one dump on the monotonic
 * clock, the process's CPU time (user + system) over all of them, and the
 * median of the wall times.
 */
#ifndef CONNHIST_DUMP_CLOCK_H
#define CONNHIST_DUMP_CLOCK_H

#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of the n wall times in walls (sorted in place). */
static inline double median_ms(double *walls, int n)
{
    qsort(walls, (size_t)n, sizeof *walls, cmp_double);
    return walls[n / 2];
}

#endif
