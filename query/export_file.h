/*
 * What export needs of the file system beyond stdio, one file per platform
 * (export_file_posix.c, export_file_windows.c): durable writes, an atomic
 * replacement of the cursor file, cutting a torn last line off the output,
 * noticing that the output was rotated away, and sleeping between polls.
 * Paths are UTF-8.
 */
#ifndef CHQ_EXPORT_FILE_H
#define CHQ_EXPORT_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* fopen with a UTF-8 path. */
FILE *xf_open(const char *path, const char *mode);

/* Flushes f and has the OS write it to the disk. 0 or -1. */
int xf_sync(FILE *f);

/* Renames from to to, replacing to, durably. 0 or -1. */
int xf_replace(const char *from, const char *to);

/* Cuts the file f to size bytes. 0 or -1. */
int xf_truncate(FILE *f, int64_t size);

/* False when path no longer names the open file f (moved away by log
 * rotation, or deleted); true when it does or it cannot be told. */
bool xf_still_at(FILE *f, const char *path);

void xf_sleep_ms(int ms);

#endif
