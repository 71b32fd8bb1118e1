/*
 * Facts about the machine the recorder runs on, for the run row: host name,
 * operating system, boot identity, and whether another recorder is alive;
 * and the process services the record loop needs from the OS: its own ids,
 * private files, a clean stop on request, and sleeping until then.
 * host_linux.c and host_windows.c implement it.
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

/* This process's id, and the numeric user id it runs as (-1 where the OS
 * has none: Windows identifies users by SID). */
int64_t ch_host_pid(void);
int64_t ch_host_uid(void);

/* Makes the files the recorder creates private to its user (POSIX: umask
 * 077; Windows: they inherit the database directory's ACL). */
void ch_host_private_files(void);

/* Makes large blocks go back to the system when freed, for the whole run,
 * however large a block was freed before. glibc: a fixed threshold for
 * mapped blocks (128 KiB, its default), which it otherwise raises to the
 * size of each mapped block freed, so that a list of answers emptied after
 * a burst (answer_list.h) made the next ones come from the heap and stay
 * resident. Elsewhere nothing to do (Windows' heap maps and unmaps large
 * blocks itself). Call before the first allocation that matters. */
void ch_host_return_freed_memory(void);

/*
 * Turns the platform's stop requests into a flag the loop polls: SIGINT and
 * SIGTERM on POSIX; Ctrl-C, Ctrl-Break, console close, logoff and shutdown
 * on Windows. The loop then commits its last sample and ends the run, and
 * calls ch_host_stop_done so a Windows close handler may let the process go.
 */
void ch_host_catch_stop(void);
bool ch_host_stop_requested(void);

/* A wait that can miss a stop request (one that arrives just before it
 * starts) checks again at least this often. */
#define STOP_CHECK_MS 1000
void ch_host_stop_done(void);

/* Sleeps ms milliseconds, or less when a stop is requested. */
void ch_host_sleep_ms(int64_t ms);

#endif
