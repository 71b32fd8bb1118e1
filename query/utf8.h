/*
 * Making text from the database safe to print as JSON. Process names, paths
 * and command lines come from the kernel as bytes, not necessarily UTF-8.
 */
#ifndef CHQ_UTF8_H
#define CHQ_UTF8_H

#include <stddef.h>

/* A copy of s (free() it) with each invalid UTF-8 sequence replaced by
 * U+FFFD, or NULL when s is already valid (or out of memory). */
char *utf8_repair(const char *s);

/* Length (1-4) of the valid UTF-8 sequence at p, which has avail bytes
 * (avail >= 1), or 0 when those bytes do not start one. */
size_t utf8_sequence(const unsigned char *p, size_t avail);

#endif
