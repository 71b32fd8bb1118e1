/*
 * What the chain needs from the operating system (recorder/chain.c): the
 * system log for its anchors (Linux: syslog, which journald keeps; Windows:
 * the Application event log) and a check that a key file is private.
 * custody_linux.c and custody_windows.c implement it.
 */
#ifndef CH_CUSTODY_H
#define CH_CUSTODY_H

#include <stddef.h>

/* Writes one line to the system log as connhist-record. */
void ch_custody_log(const char *line);

/* 0 when the file at path may hold a key: a regular file that only its
 * owner (root or the user running the recorder; on Windows SYSTEM, the
 * Administrators or the user) can read or write. -1 with a message naming
 * the file and what to change. */
int ch_custody_key_private(const char *path, char *err, size_t errn);

#endif
