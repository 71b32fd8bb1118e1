/*
 * Process attribution: which process owns a socket, by its inode, and what
 * that process is (pid, start time, name, path, command line, user).
 *
 * The cache remembers every inode it has resolved (or failed to resolve), so
 * a tick only scans processes when the sample holds inodes never seen
 * before. A process is identified by pid together with start time: a pid
 * reused by a new process is a different process and is never confused with
 * the old one.
 */
#ifndef CH_PROCS_H
#define CH_PROCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "owners.h"

/*
 * A process. Records belong to the cache, one per (pid, start_time), shared
 * by all sockets of that process, and stay valid at the same address until
 * ch_procs_free, so they may be held across ticks. The details are those
 * read when the process was first seen (a later exec() does not update
 * them).
 */
typedef struct {
    int64_t pid;
    int64_t start_time;  /* ms since the epoch, UTC; stable for the cache's life */
    char *name;          /* NULL when unknown */
    char *path;          /* executable; NULL when unreadable */
    char *cmdline;       /* arguments joined by spaces; NULL when unreadable */
    int64_t uid;         /* -1 when unknown */
    char *user;          /* NULL when unknown */
} ch_proc;

/* How an owner is known (the values are the schema's owner_source codes). */
enum ch_owner_source {
    CH_OWNER_UNKNOWN = 0, /* no owner */
    CH_OWNER_SOCKET = 1,  /* the OS showed the socket held by the process (Linux: its fd in /proc) */
    CH_OWNER_EVENT = 2,   /* a kernel event named the process that acted on it (owners.h) */
    CH_OWNER_LISTENER = 3, /* inferred: the owner of the listener on its local port (an accepted
                            * connection; it may belong to a child of that process) */
};

/* The owner of one socket: the oldest holder and how many hold it. */
typedef struct {
    const ch_proc *proc; /* NULL: not attributable; owned by the cache */
    int holders;         /* 0 when proc is NULL; 1 from an event (the others are not known) */
    uint8_t source;      /* enum ch_owner_source; CH_OWNER_UNKNOWN exactly when proc is NULL */
} ch_owner;

typedef struct ch_procs ch_procs;

ch_procs *ch_procs_new(void);
void ch_procs_free(ch_procs *p);

/*
 * Resolves the owners of the given inodes (0 entries are skipped; they get
 * no owner). Scans /proc only when some inode was never looked up before;
 * inodes found in no process are remembered as unattributable. owners[i]
 * receives the owner of inodes[i]. Returns the number of processes scanned
 * (0 when everything came from the cache). Processes this user may not
 * inspect are skipped, so without root another user's sockets are
 * unattributable; out of memory, new inodes get no owner and are retried.
 */
size_t ch_procs_resolve(ch_procs *p, const uint64_t *inodes, size_t n, ch_owner *owners);

/*
 * True when ch_procs_resolve found no owner for inode but a later call may:
 * that lookup could not afford to read every process (on Linux, reading
 * them all is rationed to a tenth of the time, and a socket can hide in a
 * descriptor number a file had). The inode is looked up again when asked
 * again; false once a lookup read everything it could, and where the OS
 * reports owners with the sockets.
 */
bool ch_procs_may_find_later(const ch_procs *p, uint64_t inode);

/*
 * Resolves owners from the pids the OS reported with the rows (Windows
 * reports the owning pid; Linux does not, so there this gives no owners).
 * Only entries with pids[i] > 0 and no owner yet are looked at; the holder
 * count is 1. Returns the number of processes newly read.
 */
size_t ch_procs_resolve_pids(ch_procs *p, const int64_t *pids, size_t n, ch_owner *owners);

/*
 * The process a kernel event named (pid and exact start time): the cached
 * record of that process, else the one /proc shows if it is still that
 * process, else a record of what the event said (name, uid; path and
 * command line NULL: the process has exited). NULL only when out of memory
 * or where the platform has no such events.
 */
const ch_proc *ch_procs_identified(ch_procs *p, const ch_owner_fact *fact);

/* Forgets the given inodes (sockets found gone), so the cache tracks the
 * live sockets and a recycled inode number is looked up afresh. Process
 * records are kept (see ch_proc). */
void ch_procs_forget(ch_procs *p, const uint64_t *gone, size_t ngone);

/* Bytes of the room the cache has for sockets (Linux: its table of
 * inodes, which gives back the room of forgotten ones when they are most
 * of it); 0 where it keeps none. */
size_t ch_procs_room(const ch_procs *p);

/*
 * Readies now what the first look-up will read holders with (Linux: loads
 * the BPF iterator, in a child process whose peak memory, the kernel's BTF
 * read in, adds to the recorder's own as it is then: best while it is
 * small, before the first sample). Optional: the first look-up that needs
 * it does it otherwise.
 */
void ch_procs_prepare(ch_procs *p);

/* A note for the run on how holders are read (Linux: which source, or why
 * not the faster one), once, after the first look-up that needed it; then
 * NULL. */
const char *ch_procs_next_note(ch_procs *p);

/* Milliseconds since the epoch at which the machine booted, or -1. */
int64_t ch_boot_time_ms(void);

#endif
