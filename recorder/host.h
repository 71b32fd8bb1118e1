/*
 * Facts about the machine the recorder runs on, for the run row: host name,
 * operating system, boot identity, and whether another recorder is alive.
 */
#ifndef CH_HOST_H
#define CH_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void ch_host_name(char *out, size_t n);

/* "Linux 6.1.0-18-amd64" and the like. */
void ch_host_os(char *out, size_t n);

/* An id that changes at every boot. Returns 0, or -1 when unknown. */
int ch_host_boot_id(char *out, size_t n);

/* True when pid is a running connhist-record (not merely a reused pid). */
bool ch_host_recorder_alive(int64_t pid);

#endif
