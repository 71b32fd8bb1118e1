/*
 * What the fuzz targets share: the fuzzer's bytes as the C string the code
 * under test reads (as argv or fgets would give it), in a heap block of
 * exactly that size so AddressSanitizer sees any read past its end.
 */
#ifndef CH_FUZZ_TEXT_H
#define CH_FUZZ_TEXT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A NUL-terminated copy of data (to free), or NULL when out of memory. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s != NULL) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

#endif
