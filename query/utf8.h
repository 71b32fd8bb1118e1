/*
 * Making text from the database safe to print as JSON. Process names, paths
 * and command lines come from the kernel as bytes, not necessarily UTF-8.
 */
#ifndef CHQ_UTF8_H
#define CHQ_UTF8_H

/* A copy of s (free() it) with each invalid UTF-8 sequence replaced by
 * U+FFFD, or NULL when s is already valid (or out of memory). */
char *utf8_repair(const char *s);

#endif
