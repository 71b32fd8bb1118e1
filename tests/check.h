/*
 * A minimal assertion helper for the C unit tests: a failed check prints
 * where and what, and the test exits non-zero at the end.
 */
#ifndef CH_CHECK_H
#define CH_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                        \
        }                                                                            \
    } while (0)

#define CHECK_INT(a, b)                                                                           \
    do {                                                                                          \
        long long a_ = (long long)(a), b_ = (long long)(b);                                       \
        if (a_ != b_) {                                                                           \
            fprintf(stderr, "%s:%d: %s is %lld, expected %lld\n", __FILE__, __LINE__, #a, a_, b_); \
            check_failures++;                                                                     \
        }                                                                                         \
    } while (0)

#define CHECK_STR(a, b)                                                                                   \
    do {                                                                                                  \
        const char *a_ = (a), *b_ = (b);                                                                  \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                            \
            fprintf(stderr, "%s:%d: %s is '%s', expected '%s'\n", __FILE__, __LINE__, #a, a_ ? a_ : "(null)", \
                    b_ ? b_ : "(null)");                                                                  \
            check_failures++;                                                                             \
        }                                                                                                 \
    } while (0)

static int check_report(const char *name)
{
    if (check_failures == 0)
        printf("%s: all checks passed\n", name);
    else
        printf("%s: %d checks failed\n", name, check_failures);
    return check_failures != 0;
}

#endif
