/*
 * Process attribution on Linux, read from /proc.
 *
 * A socket belongs to whichever processes hold a descriptor on it: every
 * /proc/PID/fd/N is a symbolic link, and a socket's reads "socket:[INODE]".
 * A scan walks each process once, reads each of its descriptor links, and
 * credits the inodes the caller is waiting for. A scan costs one readlink
 * per open descriptor on the machine, so the cache remembers every inode it
 * has looked up, owned or not, and ch_procs_resolve scans only when a
 * sample holds an inode it has never seen.
 *
 * Races: a process may exit while we read it, and its pid may be reused.
 * Each process is read through a descriptor on its /proc/PID directory,
 * which the kernel ties to that one process (a successor with the same pid
 * gets a new directory; reads through the old one fail). On top of that the
 * start time is read before the descriptors are walked and again after;
 * when it changed or vanished, the process is ignored for this scan.
 *
 * Lifetimes: ch_proc records are never freed before ch_procs_free. The
 * tracker keeps their pointers across ticks, and the number of distinct
 * processes that ever held a socket during one run is modest. Inode entries
 * are dropped by ch_procs_forget when their sockets close, so that part
 * follows the live sockets.
 */
#define _GNU_SOURCE
#include "procs.h"
#include "procs_iter.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- tables ------------------------------------------------------------ */

/*
 * One remembered inode, 16 bytes: the table holds one per socket of the
 * machine, at the first sample beside every socket's row; its owner is the
 * record's place in the cache's list (proc_table.all), 4 bytes instead of
 * an 8-byte pointer (at 100,000 sockets: 2 MiB instead of 3). While a scan
 * runs, `pending` marks the inodes it is looking for, and last_pid keeps a
 * process that holds the socket on two descriptors from being counted
 * twice: 22 bits hold every pid (pid_max is at most 2^22, the kernel's
 * PID_MAX_LIMIT). A descriptor past 2^24 - 2 (fs.nr_open is 2^20 unless
 * raised) is kept as unknown, which only costs its process a whole read
 * after the socket closes (see seen_proc). Socket inode numbers are 32-bit
 * on Linux (get_next_ino(), and sock_diag's idiag_inode is a __u32): a
 * larger one is never cached, and its socket gets no owner (cacheable).
 */
#define PID_BITS 22
#define FD_BITS 24
#define FD_UNKNOWN ((UINT32_C(1) << FD_BITS) - 1)

typedef struct {
    uint32_t inode;               /* 0: empty slot */
    uint32_t proc;                /* oldest holder: its place in proc_table.all + 1; 0: unattributable */
    uint64_t last_pid : PID_BITS; /* last process credited during a scan (pid_bits); 0: none */
    uint64_t fd : FD_BITS;        /* its descriptor in the owner; FD_UNKNOWN: unknown (set_fd) */
    uint64_t holders : 16;        /* saturates at UINT16_MAX */
    uint64_t pending : 1;
    /* found in no process by a lookup that could not read them all: looked up again when asked again */
    uint64_t unsure : 1;
} inode_entry;

_Static_assert(sizeof(inode_entry) <= 16, "an inode entry stays small");

static uint32_t pid_bits(int64_t pid)
{
    return (uint32_t)pid & ((UINT32_C(1) << PID_BITS) - 1);
}

static void set_fd(inode_entry *e, int32_t fd)
{
    e->fd = fd >= 0 && (uint32_t)fd < FD_UNKNOWN ? (uint32_t)fd : FD_UNKNOWN;
}

/* True when an inode can be cached (see inode_entry). */
static bool cacheable(uint64_t inode)
{
    return inode != 0 && inode <= UINT32_MAX;
}

/*
 * A process as the last look at /proc found it, kept so that a lookup can
 * read only what changed. New sockets mostly take the descriptor numbers of
 * sockets that closed (the kernel hands out the lowest free number), so the
 * descriptors of a process's closed sockets ("holes") are read first; a
 * process whose descriptor count (st_size of /proc/PID/fd, Linux 6.2+) is
 * what its holes explain has no other new descriptor worth a full read.
 * Sorted by pid.
 */
typedef struct {
    int64_t pid;
    uint64_t dino;        /* inode of /proc/PID when listed: a new one is a new process */
    uint64_t start_ticks; /* from its stat when read; 0 before */
    int64_t ppid;
    int64_t nfd;    /* descriptors at its last read; -1: never read (or must be read whole) */
    /* descriptors of its sockets closed since that read, and (as -1 - fd)
     * of sockets that read found and the cache did not know (see keep_unknown) */
    int32_t *holes;
    uint32_t nholes, holes_cap;
    bool changed;   /* this lookup: descriptors changed beyond its holes */
    bool read;      /* this lookup: read whole */
    bool fresh_hit; /* this lookup: read for the first time and held a pending inode */
} seen_proc;

/* Open addressing with linear probing, at most 7/8 full: it holds an entry
 * per socket of the machine, and inode numbers are dense, so Fibonacci
 * hashing spreads them evenly and probe runs stay short (at 100,000
 * sockets: 2 MiB instead of 4 at most half full). Its size is not a power
 * of two (inode_cap_for). Deleted from in place (inode_remove_slot). */
#define INODE_LOAD_EIGHTHS 7
typedef struct {
    inode_entry *slots;
    size_t cap; /* a multiple of 64, or 0 */
    size_t count;
} inode_table;

/* A process as the cache keeps it. The start in clock ticks is the exact
 * half of its identity; pub must stay the first member (ch_proc pointers
 * handed out are converted back). */
typedef struct {
    ch_proc pub;
    uint64_t start_ticks;
    uint32_t place; /* in proc_table.all */
} proc_rec;

/* The records by (pid, start), and all of them in the order they came: an
 * inode entry names its owner by its place there (never freed before
 * ch_procs_free, so a place stays valid). */
typedef struct {
    proc_rec **slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
    proc_rec **all;
    size_t all_cap;
} proc_table;

/* getpwuid_r may ask NSS (LDAP, sssd); a machine has few socket-owning
 * users, so their names are looked up once and kept in a short list. */
typedef struct {
    int64_t uid;
    char *name; /* NULL: no passwd entry */
} user_entry;

struct ch_procs {
    inode_table inodes;
    proc_table procs;
    user_entry *users;
    size_t nusers;
    /* Boot time, fixed at creation: the kernel derives /proc/stat btime
     * from the wall clock, so it moves when the clock is stepped. One value
     * per cache gives each process the same start_time on every scan. */
    int64_t boot_ms;
    long hz;
    /* Scratch reused by every scan: the pending entries one process holds
     * (pointers into inodes.slots, which do not move while a scan runs),
     * and a buffer for command lines (they can be long). */
    inode_entry **hits;
    int32_t *hit_fds; /* the descriptor of each hit */
    size_t nhits, hits_cap;
    /* The descriptors of the process being read that hold a socket the
     * cache does not know (see keep_unknown). */
    int32_t *unknown;
    size_t nunknown, unknown_cap;
    /* The processes of the last lookup, and whether st_size of a
     * /proc/PID/fd directory counts its descriptors (Linux 6.2+). */
    seen_proc *seen;
    size_t nseen, seen_cap;
    bool fd_count;
    size_t pending_left; /* pending inodes no process was found holding yet */
    size_t again_left;   /* of those, the ones asked again (unsure after an earlier look-up) */
    /* The last read of every process a lookup fell back to (see
     * scan_processes): when it ended (monotonic ms) and the CPU time it
     * took (this thread's, ms). */
    int64_t fallback_end, fallback_ms;
    bool read_all; /* the last scan read every process it could, or found every inode */
    char *text;
    size_t text_cap;
    /* The pass over every process's sockets in the kernel (procs_iter.h),
     * tried at the first look-up that reads processes whole; the note
     * saying which way holders are read, for the run, until taken. */
    ch_sockfiles *iter;
    bool iter_tried, note_taken;
    char note[400];
};

/* What /proc/PID/stat says about a process that matters here. */
typedef struct {
    int64_t pid;
    int64_t ppid;
    uint64_t start_ticks;
    char comm[64]; /* the kernel keeps at most 15 bytes */
} proc_stat;

/* Fibonacci hashing: inode numbers are dense and sequential; the multiply
 * scatters them over the high half, which is scaled to [0, cap) (a
 * multiply and a shift, not a mask: cap need not be a power of two). */
static size_t hash_slot(uint64_t key, size_t cap)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    return (size_t)(((h >> 32) * (uint64_t)cap) >> 32);
}

/* The slot after i, in a table of cap slots. */
static size_t next_slot(size_t i, size_t cap)
{
    return i + 1 < cap ? i + 1 : 0;
}

/* The smallest power of two holding `need` entries at most eighths/8 full. */
static size_t table_cap_for(size_t need, size_t eighths)
{
    size_t cap = 64;
    while (cap / 8 * eighths < need) {
        if (cap > SIZE_MAX / 4)
            return 0;
        cap *= 2;
    }
    return cap;
}

static inode_entry *inode_find(const inode_table *t, uint64_t inode)
{
    if (t->cap == 0 || !cacheable(inode))
        return NULL;
    for (size_t i = hash_slot(inode, t->cap);; i = next_slot(i, t->cap)) {
        if (t->slots[i].inode == inode)
            return &t->slots[i];
        if (t->slots[i].inode == 0)
            return NULL;
    }
}

/* Returns the entry of inode (cacheable), adding a blank one when missing.
 * The caller has reserved room with inode_reserve. */
static inode_entry *inode_put(inode_table *t, uint32_t inode)
{
    size_t i = hash_slot(inode, t->cap);
    while (t->slots[i].inode != 0 && t->slots[i].inode != inode)
        i = next_slot(i, t->cap);
    if (t->slots[i].inode == 0) {
        t->slots[i] = (inode_entry){.inode = inode, .fd = FD_UNKNOWN};
        t->count++;
    }
    return &t->slots[i];
}

/* Moves the table into cap slots (0, or room for what it holds). Returns 0, or -1 when out of memory (the table is unchanged). */
static int inode_rehash(inode_table *t, size_t cap)
{
    inode_entry *slots = cap ? calloc(cap, sizeof *slots) : NULL;
    if (!slots)
        return -1;
    inode_table grown = {slots, cap, 0};
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].inode != 0)
            *inode_put(&grown, t->slots[i].inode) = t->slots[i];
    free(t->slots);
    *t = grown;
    return 0;
}

/* The slots for need entries: 3/4 full, so that the table grows again
 * (at 7/8) only after 1/6 more. Not a power of two: doubling left a table
 * just past a power of two at half its load, 32 bytes a socket instead of
 * 18-21 (4 MiB at 130,000 sockets instead of 2.6). A multiple of 64. */
static size_t inode_cap_for(size_t need)
{
    if (need > SIZE_MAX / 8)
        return 0;
    size_t cap = (need * 4 / 3 + 63) / 64 * 64;
    return cap > 64 ? cap : 64;
}

/* Makes room for `extra` more entries. Returns 0, or -1 when out of memory
 * (the table is unchanged). */
static int inode_reserve(inode_table *t, size_t extra)
{
    if (extra > SIZE_MAX / 4 - t->count)
        return -1;
    size_t need = t->count + extra;
    if (need <= t->cap / 8 * INODE_LOAD_EIGHTHS)
        return 0;
    return inode_rehash(t, inode_cap_for(need));
}

/* Slots a table keeps however few sockets there are. */
#define INODE_KEPT 1024

/* Gives back the room of forgotten sockets (after a mass close): a table
 * at most an eighth full moves into one at most half full, so it grows
 * again only after its sockets double twice. Out of memory, it stays. */
static void inode_shrink(inode_table *t)
{
    if (t->cap > INODE_KEPT && t->count <= t->cap / 8) {
        size_t cap = t->count * 2;
        inode_rehash(t, cap > INODE_KEPT ? cap : INODE_KEPT);
    }
}

static uint64_t proc_key(int64_t pid, uint64_t start_ticks)
{
    return (uint64_t)pid * 0x100000001B3ULL ^ start_ticks;
}

static proc_rec *proc_find(const proc_table *t, int64_t pid, uint64_t start_ticks)
{
    if (t->cap == 0)
        return NULL;
    size_t i = hash_slot(proc_key(pid, start_ticks), t->cap);
    for (; t->slots[i]; i = next_slot(i, t->cap)) {
        proc_rec *r = t->slots[i];
        if (r->pub.pid == pid && r->start_ticks == start_ticks)
            return r;
    }
    return NULL;
}

static void proc_place(proc_table *t, proc_rec *r)
{
    size_t i = hash_slot(proc_key(r->pub.pid, r->start_ticks), t->cap);
    while (t->slots[i])
        i = next_slot(i, t->cap);
    t->slots[i] = r;
    t->count++;
}

/* Adds a record not yet in the table. Returns 0, or -1 when out of memory. */
static int proc_add(proc_table *t, proc_rec *r)
{
    if (t->count >= UINT32_MAX - 1)
        return -1; /* no place left to name it by */
    if (t->count == t->all_cap) {
        size_t cap = t->all_cap ? t->all_cap * 2 : 64;
        proc_rec **all = realloc(t->all, cap * sizeof *all);
        if (!all)
            return -1;
        t->all = all;
        t->all_cap = cap;
    }
    if (t->count + 1 > t->cap / 2) {
        size_t cap = table_cap_for(t->count + 1, 4);
        proc_rec **slots = cap ? calloc(cap, sizeof *slots) : NULL;
        if (!slots)
            return -1;
        proc_table grown = {slots, cap, 0, NULL, 0};
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots[i])
                proc_place(&grown, t->slots[i]);
        free(t->slots);
        t->slots = grown.slots;
        t->cap = grown.cap;
    }
    r->place = (uint32_t)t->count;
    t->all[t->count] = r;
    proc_place(t, r);
    return 0;
}

/* The owner an inode entry names, or NULL. */
static const ch_proc *entry_proc(const ch_procs *p, const inode_entry *e)
{
    return e->proc ? &p->procs.all[e->proc - 1]->pub : NULL;
}

/* What an inode entry keeps of owner (a record of this cache). */
static uint32_t proc_ref(const ch_proc *owner)
{
    return ((const proc_rec *)owner)->place + 1;
}

static void proc_rec_free(proc_rec *r)
{
    if (!r)
        return;
    free(r->pub.name);
    free(r->pub.path);
    free(r->pub.cmdline);
    free(r->pub.user);
    free(r);
}

/* ---- reading /proc ----------------------------------------------------- */

/* Reads from fd until EOF or until buf (cap bytes) is full. Returns the
 * length, or -1 (ESRCH and the like: the process is gone). */
static ssize_t read_fully(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    return (ssize_t)len;
}

/* Reads up to cap-1 bytes of the file `name` below directory `dir` and
 * NUL-terminates them. Returns the length, or -1 (ENOENT, EACCES, ESRCH:
 * the process is gone or not ours to read). */
static ssize_t read_small(int dir, const char *name, char *buf, size_t cap)
{
    int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read_fully(fd, buf, cap - 1);
    close(fd);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

/* Reads the whole file `name` below `dir` into p->text, growing it, and
 * NUL-terminates it. Returns the length, or -1. */
static ssize_t read_whole(ch_procs *p, int dir, const char *name)
{
    int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    for (;;) {
        if (p->text_cap - len < 2) {
            size_t cap = p->text_cap ? p->text_cap * 2 : 4096;
            char *grown = realloc(p->text, cap);
            if (!grown)
                break; /* keep what fits */
            p->text = grown;
            p->text_cap = cap;
        }
        size_t room = p->text_cap - 1 - len;
        ssize_t n = read_fully(fd, p->text + len, room);
        if (n < 0) {
            close(fd);
            return -1;
        }
        len += (size_t)n;
        if ((size_t)n < room)
            break; /* EOF */
    }
    close(fd);
    if (!p->text)
        return -1;
    p->text[len] = '\0';
    return (ssize_t)len;
}

/* Parses a decimal number at *s, advancing past it. Returns false when
 * there is no digit. */
static bool parse_u64(const char **s, uint64_t *out)
{
    const char *c = *s;
    uint64_t v = 0;
    if (*c < '0' || *c > '9')
        return false;
    for (; *c >= '0' && *c <= '9'; c++)
        v = v * 10 + (uint64_t)(*c - '0');
    *s = c;
    *out = v;
    return true;
}

/*
 * Parses "PID (COMM) STATE PPID ... STARTTIME ...". COMM is whatever the
 * process named itself and may hold spaces and ')', so the fields are
 * counted from the last ')'; no later field contains one. starttime is
 * field 22, the 20th after COMM.
 */
static int parse_stat(const char *buf, size_t len, proc_stat *st)
{
    const char *open = memchr(buf, '(', len);
    const char *close = memrchr(buf, ')', len);
    if (!open || !close || close < open)
        return -1;
    size_t n = (size_t)(close - open - 1);
    if (n >= sizeof st->comm)
        n = sizeof st->comm - 1;
    memcpy(st->comm, open + 1, n);
    st->comm[n] = '\0';
    const char *s = close + 1;
    st->ppid = 0;
    for (int field = 3; field < 22; field++) {
        if (field == 4) {
            while (*s == ' ')
                s++;
            uint64_t ppid;
            if (!parse_u64(&s, &ppid))
                return -1;
            st->ppid = (int64_t)ppid;
            continue;
        }
        while (*s == ' ')
            s++;
        if (*s == '\0')
            return -1;
        while (*s != ' ' && *s != '\0')
            s++;
    }
    while (*s == ' ')
        s++;
    return parse_u64(&s, &st->start_ticks) ? 0 : -1;
}

static int read_stat(int pid_dir, proc_stat *st)
{
    char buf[1024]; /* field 22 lies well within; the rest is not needed */
    ssize_t n = read_small(pid_dir, "stat", buf, sizeof buf);
    return n > 0 ? parse_stat(buf, (size_t)n, st) : -1;
}

/* True when the process still runs with the start time read before. */
static bool still_same(int pid_dir, const proc_stat *before)
{
    proc_stat now;
    return read_stat(pid_dir, &now) == 0 && now.start_ticks == before->start_ticks;
}

/* The executable as the kernel names it (with " (deleted)" when the file
 * is gone); NULL when unreadable: kernel threads, or not ours to read. */
static char *read_exe(int pid_dir)
{
    char buf[PATH_MAX];
    ssize_t n = readlinkat(pid_dir, "exe", buf, sizeof buf);
    if (n <= 0 || (size_t)n >= sizeof buf)
        return NULL; /* a filled buffer may be cut short: better none */
    return strndup(buf, (size_t)n);
}

/* The arguments, NUL-separated in /proc, joined by single spaces. NULL
 * when unreadable or empty (kernel threads, zombies). */
static char *read_cmdline(ch_procs *p, int pid_dir)
{
    ssize_t n = read_whole(p, pid_dir, "cmdline");
    if (n <= 0)
        return NULL;
    size_t len = (size_t)n;
    while (len > 0 && p->text[len - 1] == '\0')
        len--;
    if (len == 0)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if (p->text[i] == '\0')
            p->text[i] = ' ';
    return strndup(p->text, len);
}

/* The real uid, the first of the four on the "Uid:" line; -1 unknown. */
static int64_t read_uid(int pid_dir)
{
    char buf[1024]; /* Uid: comes early, before the long Groups: lines */
    if (read_small(pid_dir, "status", buf, sizeof buf) <= 0)
        return -1;
    const char *line = strstr(buf, "\nUid:");
    if (!line)
        return -1;
    const char *s = line + 5;
    while (*s == '\t' || *s == ' ')
        s++;
    uint64_t uid;
    return parse_u64(&s, &uid) ? (int64_t)uid : -1;
}

/* ---- users --------------------------------------------------------------- */

/* The passwd name of uid, or NULL when it has none (or memory ran out). */
static char *lookup_user(uid_t uid)
{
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t size = hint > 0 ? (size_t)hint : 4096;
    char *name = NULL;
    for (;;) {
        char *buf = malloc(size);
        if (!buf)
            return NULL;
        struct passwd pw, *found = NULL;
        int rc = getpwuid_r(uid, &pw, buf, size, &found);
        if (rc == 0 && found)
            name = strdup(found->pw_name);
        free(buf);
        if (rc != ERANGE || size >= 1 << 20)
            return name;
        size *= 2;
    }
}

/* The user name of uid from the short list, asking NSS the first time.
 * The string belongs to the list. */
static const char *user_name(ch_procs *p, int64_t uid)
{
    for (size_t i = 0; i < p->nusers; i++)
        if (p->users[i].uid == uid)
            return p->users[i].name;
    user_entry *grown = realloc(p->users, (p->nusers + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    p->users = grown;
    p->users[p->nusers] = (user_entry){uid, lookup_user((uid_t)uid)};
    return p->users[p->nusers++].name;
}

/* ---- scanning ------------------------------------------------------------ */

static int64_t ticks_to_ms(const ch_procs *p, uint64_t ticks)
{
    uint64_t hz = (uint64_t)p->hz;
    return p->boot_ms + (int64_t)(ticks / hz * 1000 + ticks % hz * 1000 / hz);
}

/* True when a process (pid, start) is older than the current owner, the
 * ordering that makes a forked server's parent own its listener. */
static bool older_than(int64_t pid, uint64_t start_ticks, const ch_proc *owner)
{
    if (!owner)
        return true;
    const proc_rec *cur = (const proc_rec *)owner;
    if (start_ticks != cur->start_ticks)
        return start_ticks < cur->start_ticks;
    return pid < cur->pub.pid;
}

/* The inode of a descriptor link "socket:[INODE]", or 0 for anything else. */
static uint64_t socket_inode(const char *link, ssize_t n)
{
    static const char prefix[] = "socket:[";
    size_t plen = sizeof prefix - 1;
    if (n <= (ssize_t)plen || memcmp(link, prefix, plen) != 0)
        return 0;
    const char *s = link + plen;
    uint64_t inode;
    return parse_u64(&s, &inode) && *s == ']' ? inode : 0;
}

static int add_hit(ch_procs *p, inode_entry *e, int32_t fd)
{
    if (p->nhits == p->hits_cap) {
        size_t cap = p->hits_cap ? p->hits_cap * 2 : 256;
        inode_entry **grown = realloc(p->hits, cap * sizeof *grown);
        if (grown)
            p->hits = grown;
        int32_t *fds = grown ? realloc(p->hit_fds, cap * sizeof *fds) : NULL;
        if (!fds)
            return -1;
        p->hit_fds = fds;
        p->hits_cap = cap;
    }
    p->hit_fds[p->nhits] = fd;
    p->hits[p->nhits++] = e;
    return 0;
}

/* Opens directory `name` below `dir` for reading, or NULL. Its descriptor
 * (dirfd) serves the *at() calls on the entries. */
static DIR *open_dir_at(int dir, const char *name)
{
    int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    DIR *d = fdopendir(fd);
    if (!d)
        close(fd);
    return d;
}

/* The number of descriptors of the process whose fd directory is open as
 * fd_dir, or -1 when the kernel does not say (before Linux 6.2). */
static int64_t fd_count(const ch_procs *p, int fd_dir)
{
    struct stat st;
    if (!p->fd_count || fstat(fd_dir, &st) != 0)
        return -1;
    return (int64_t)st.st_size;
}

/* Notes descriptor fd of the process being read as holding a socket the
 * cache does not know. Out of memory, it is not noted: the socket is then
 * found as it was before keep_unknown, by a later read. */
static void add_unknown(ch_procs *p, int32_t fd)
{
    if (p->nunknown == p->unknown_cap) {
        size_t cap = p->unknown_cap ? p->unknown_cap * 2 : 64;
        int32_t *grown = realloc(p->unknown, cap * sizeof *grown);
        if (!grown)
            return;
        p->unknown = grown;
        p->unknown_cap = cap;
    }
    p->unknown[p->nunknown++] = fd;
}

/* Reads descriptor `fd` of the fd directory fd_dir: adds a hit when it is a
 * pending socket, and notes it (add_unknown) when it is a socket the cache
 * does not know and note_unknown is set. Returns 1 when the descriptor is
 * open, 0 when not, -1 when the hit list could not grow. */
static int read_fd(ch_procs *p, int fd_dir, const char *name, int32_t fd, bool note_unknown)
{
    char link[64]; /* "socket:[" + 20 digits + "]" fits; others may be cut */
    ssize_t n = readlinkat(fd_dir, name, link, sizeof link - 1);
    if (n <= 0)
        return 0;
    link[n] = '\0';
    uint64_t inode = socket_inode(link, n);
    inode_entry *e = inode_find(&p->inodes, inode);
    if (e && e->pending && add_hit(p, e, fd) != 0)
        return -1;
    if (!e && note_unknown && cacheable(inode))
        add_unknown(p, fd);
    return 1;
}

static void keep_unknown(ch_procs *p, seen_proc *sp);

/* Collects into p->hits the pending inodes the process holds, reading
 * every descriptor, and sets sp->nfd. Returns 0, or -1 when the list could
 * not grow (the process must then be skipped: a partial list would
 * miscount). An unreadable fd directory is no hits. */
static int collect_hits(ch_procs *p, int pid_dir, seen_proc *sp)
{
    p->nhits = 0;
    DIR *d = open_dir_at(pid_dir, "fd");
    if (!d)
        return 0;
    int fd_dir = dirfd(d);
    int64_t count = fd_count(p, fd_dir), seen = 0;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        rc = read_fd(p, fd_dir, de->d_name, (int32_t)strtol(de->d_name, NULL, 10), true);
        seen += rc > 0;
        rc = rc < 0 ? -1 : 0;
    }
    closedir(d);
    sp->nfd = count >= 0 ? count : seen;
    sp->nholes = 0;
    keep_unknown(p, sp);
    return rc;
}

/*
 * Reads only the holes of a process read before, collecting the pending
 * inodes they now hold. Sets sp->changed when its descriptor count is not
 * what the holes explain (or the kernel does not count descriptors): then
 * only a whole read can tell what else is new. Returns 0 or -1 as
 * collect_hits.
 */
static int collect_hole_hits(ch_procs *p, int pid_dir, seen_proc *sp)
{
    p->nhits = 0;
    int fd_dir = openat(pid_dir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_dir < 0) {
        sp->nholes = 0;
        return 0;
    }
    int64_t count = fd_count(p, fd_dir), expected = sp->nfd;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < sp->nholes; i++) {
        /* A socket the last read found unknown is kept one look-up only. */
        bool kept = sp->holes[i] < 0;
        int32_t fd = kept ? -1 - sp->holes[i] : sp->holes[i];
        char name[16];
        snprintf(name, sizeof name, "%d", (int)fd);
        rc = read_fd(p, fd_dir, name, fd, !kept);
        /* A hole still empty: one descriptor fewer (a kept one was counted
         * open: its socket closed since). */
        expected += rc > 0 ? 0 : -1;
        rc = rc < 0 ? -1 : 0;
    }
    close(fd_dir);
    sp->changed = count < 0 || count != expected;
    if (!sp->changed)
        sp->nfd = count;
    sp->nholes = 0;
    keep_unknown(p, sp);
    return rc;
}

/* Reads what the cache keeps of a process. NULL only when out of memory;
 * parts that cannot be read are left NULL (or -1). */
static proc_rec *read_details(ch_procs *p, int pid_dir, const proc_stat *st)
{
    proc_rec *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->start_ticks = st->start_ticks;
    r->pub.pid = st->pid;
    r->pub.start_time = ticks_to_ms(p, st->start_ticks);
    r->pub.name = strdup(st->comm);
    r->pub.path = read_exe(pid_dir);
    r->pub.cmdline = read_cmdline(p, pid_dir);
    r->pub.uid = read_uid(pid_dir);
    const char *user = r->pub.uid >= 0 ? user_name(p, r->pub.uid) : NULL;
    r->pub.user = user ? strdup(user) : NULL;
    return r;
}

/*
 * The process holding p->hits, found alive both before and after, as a
 * cached record; read and added only when it would own one of its hits
 * (the children of a forked server rarely do). Sets *owner to NULL when it
 * owns none. Returns -1 when the process must be ignored: it changed under
 * us, or memory ran out.
 */
static int confirm_process(ch_procs *p, int pid_dir, const proc_stat *st, const ch_proc **owner)
{
    bool owns = false;
    for (size_t i = 0; i < p->nhits && !owns; i++)
        owns = older_than(st->pid, st->start_ticks, entry_proc(p, p->hits[i]));
    proc_rec *rec = NULL, *fresh = NULL;
    if (owns) {
        rec = proc_find(&p->procs, st->pid, st->start_ticks);
        if (!rec)
            rec = fresh = read_details(p, pid_dir, st);
        if (!rec)
            return -1;
    }
    if (!still_same(pid_dir, st) || (fresh && proc_add(&p->procs, fresh) != 0)) {
        proc_rec_free(fresh);
        return -1;
    }
    *owner = rec ? &rec->pub : NULL;
    return 0;
}

/* Credits one process's hits: one more holder each, and the new owner
 * (with its descriptor) where it is older than the current one. */
static void credit_hits(ch_procs *p, const proc_stat *st, const ch_proc *owner)
{
    for (size_t i = 0; i < p->nhits; i++) {
        inode_entry *e = p->hits[i];
        if (e->last_pid != pid_bits(st->pid)) {
            e->last_pid = pid_bits(st->pid);
            if (e->holders == 0 && p->pending_left > 0)
                p->pending_left--;
            if (e->unsure) {
                e->unsure = false;
                p->again_left--;
            }
            if (e->holders < UINT16_MAX)
                e->holders++;
        }
        if (owner && older_than(st->pid, st->start_ticks, entry_proc(p, e))) {
            e->proc = proc_ref(owner);
            set_fd(e, p->hit_fds[i]);
        }
    }
}

/*
 * Reads one process: every descriptor (whole), or only its holes. Returns
 * the number of pending inodes it held (0 also when it was gone or
 * unreadable).
 */
static size_t read_process(ch_procs *p, int proc_dir, seen_proc *sp, bool whole)
{
    char name[24];
    snprintf(name, sizeof name, "%lld", (long long)sp->pid);
    int pid_dir = openat(proc_dir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pid_dir < 0) {
        sp->nholes = 0;
        return 0;
    }
    proc_stat st;
    size_t hits = 0;
    if (read_stat(pid_dir, &st) == 0) {
        st.pid = sp->pid;
        if (sp->start_ticks != 0 && sp->start_ticks != st.start_ticks)
            whole = true; /* not the process read before: its holes mean nothing */
        sp->start_ticks = st.start_ticks;
        sp->ppid = st.ppid;
        int rc = whole ? collect_hits(p, pid_dir, sp) : collect_hole_hits(p, pid_dir, sp);
        sp->read |= whole;
        const ch_proc *owner = NULL;
        if (rc == 0 && p->nhits > 0 && confirm_process(p, pid_dir, &st, &owner) == 0) {
            credit_hits(p, &st, owner);
            hits = p->nhits;
        }
        if (rc != 0)
            sp->nfd = -1; /* read it whole next time */
    }
    close(pid_dir);
    return hits;
}

static bool is_pid_name(const char *s)
{
    if (*s < '1' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9')
        s++;
    return *s == '\0';
}

static int cmp_seen(const void *a, const void *b)
{
    const seen_proc *x = a, *y = b;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static seen_proc *seen_find(const ch_procs *p, int64_t pid)
{
    seen_proc key = {.pid = pid};
    return p->nseen ? bsearch(&key, p->seen, p->nseen, sizeof *p->seen, cmp_seen) : NULL;
}

static void seen_drop(seen_proc *sp)
{
    free(sp->holes);
    sp->holes = NULL;
    sp->nholes = sp->holes_cap = 0;
}

/* Holes kept per process at most; past that it is read whole. */
#define MAX_HOLES 4096

/* Notes that descriptor fd of the process that owned a forgotten socket
 * is free, or may hold a new socket. */
static void add_hole(ch_procs *p, const ch_proc *owner, int32_t fd)
{
    seen_proc *sp = seen_find(p, owner->pid);
    if (!sp || sp->nfd < 0 || sp->start_ticks != ((const proc_rec *)owner)->start_ticks)
        return;
    if (sp->nholes == sp->holes_cap) {
        uint32_t cap = sp->holes_cap ? sp->holes_cap * 2 : 8;
        int32_t *holes = cap <= MAX_HOLES ? realloc(sp->holes, cap * sizeof *holes) : NULL;
        if (!holes) { /* too many to be worth it: read it whole when needed */
            seen_drop(sp);
            sp->nfd = -1;
            return;
        }
        sp->holes = holes;
        sp->holes_cap = cap;
    }
    sp->holes[sp->nholes++] = fd;
}

/*
 * Keeps the descriptors p->unknown names as holes of sp for its next read.
 * A socket the cache does not know was opened after the sample this
 * look-up serves (or is not a TCP or UDP socket); the next sample may ask
 * about it, and by then its descriptor is no hole and the process's count
 * may be what its holes explain (a socket closed, another opened). Without
 * this, only a read of every process would find it. Kept holes beyond
 * MAX_HOLES are let go (a later read finds them).
 */
static void keep_unknown(ch_procs *p, seen_proc *sp)
{
    size_t n = p->nunknown;
    p->nunknown = 0;
    if (sp->nholes + n > sp->holes_cap) {
        size_t cap = sp->holes_cap ? sp->holes_cap : 8;
        while (cap < sp->nholes + n && cap < MAX_HOLES)
            cap *= 2;
        int32_t *holes = realloc(sp->holes, cap * sizeof *holes);
        if (!holes)
            return;
        sp->holes = holes;
        sp->holes_cap = (uint32_t)cap;
    }
    for (size_t i = 0; i < n && sp->nholes < sp->holes_cap; i++)
        sp->holes[sp->nholes++] = -1 - p->unknown[i];
}

/*
 * Lists /proc into p->seen: processes listed before under the same /proc
 * inode keep what is known of them; others start afresh (never read).
 * Returns 0, or -1 (nothing listed, p->seen unchanged).
 */
static int list_processes(ch_procs *p, int proc_dir_fd, DIR *d)
{
    (void)proc_dir_fd;
    seen_proc *now = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_pid_name(de->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 512;
            seen_proc *grown = realloc(now, cap * sizeof *grown);
            if (!grown) {
                free(now);
                return -1;
            }
            now = grown;
        }
        now[n++] = (seen_proc){.pid = strtoll(de->d_name, NULL, 10), .dino = de->d_ino, .nfd = -1};
    }
    qsort(now, n, sizeof *now, cmp_seen);
    for (size_t i = 0; i < n; i++) {
        seen_proc *old = seen_find(p, now[i].pid);
        if (old && old->dino == now[i].dino) {
            now[i] = *old;
            old->holes = NULL; /* moved */
        }
        now[i].changed = now[i].read = now[i].fresh_hit = false;
    }
    for (size_t i = 0; i < p->nseen; i++)
        seen_drop(&p->seen[i]);
    free(p->seen);
    p->seen = now;
    p->nseen = n;
    p->seen_cap = cap;
    return 0;
}

/*
 * One lookup of the pending inodes, reading as little as it can:
 *  1. processes never read are read whole (all of them, the first time);
 *     processes read before, only at their holes, and only when their
 *     descriptor count says something else changed are they candidates for
 *     a whole read;
 *  2. the parent of a new process that held a pending inode is read whole
 *     (the socket may be inherited: the parent is then its oldest holder);
 *  3. while inodes are still unfound, the candidates are read whole, and
 *     the lookup stops as soon as every inode is found.
 * A process whose descriptor count did not change and that had no socket
 * closed is never read again, so a socket that took the place of another
 * kind of descriptor there is not found (it gets no owner, never a wrong
 * one). Returns the number of processes looked at.
 */
static int64_t clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reading every process is allowed while such reads take at most a tenth
 * of the time: a socket whose process exited between the dump and the
 * lookup makes one and finds nothing, and a machine where that happens on
 * every sample must not pay a full read on each. Their cost is the CPU
 * time they took, not their wall time, which a busy machine stretches:
 * the ration is what the recorder spends, not how long others kept it
 * waiting. */
static bool fallback_due(const ch_procs *p)
{
    return p->fallback_end == 0 || clock_ms(CLOCK_MONOTONIC) - p->fallback_end >= 9 * p->fallback_ms;
}

/* ---- reading every process through the kernel's iterator ------------------ */

/* True when the pass is there to read from, tried (and the note written)
 * the first time it is wanted. */
static bool iter_ready(ch_procs *p)
{
    if (!p->iter_tried) {
        char why[300] = "";
        p->iter_tried = true;
        p->iter = ch_sockfiles_open(why, sizeof why);
        if (p->iter)
            snprintf(p->note, sizeof p->note, "socket holders read by a BPF iterator over the processes' files");
        else
            snprintf(p->note, sizeof p->note, "socket holders read from /proc/PID/fd: no BPF iterator (%s)", why);
    }
    return p->iter != NULL;
}

/* Most listed processes were never read (the first look-up): one pass
 * over them all costs less than reading their descriptors one by one. A
 * few new processes are read through /proc, as the pass walks every file
 * of the machine. */
static bool mostly_new(const ch_procs *p)
{
    size_t fresh = 0;
    for (size_t i = 0; i < p->nseen; i++)
        fresh += p->seen[i].nfd < 0;
    return fresh > 0 && fresh >= p->nseen / 2;
}

typedef struct {
    ch_procs *p;
    int proc_dir;
} iter_pass;

/* Collects into p->hits the pending inodes among a process's sockets, and
 * notes those the cache does not know (add_unknown). Returns 0, or -1 when
 * the list could not grow. */
static int collect_named_hits(ch_procs *p, const ch_task_sockets *t)
{
    p->nhits = 0;
    for (size_t i = 0; i < t->nsockets; i++) {
        inode_entry *e = inode_find(&p->inodes, t->inodes[i]);
        if (e && e->pending && add_hit(p, e, t->fds[i]) != 0)
            return -1;
        if (!e && cacheable(t->inodes[i]))
            add_unknown(p, t->fds[i]);
    }
    return 0;
}

/*
 * One process as the pass named it, read as read_process reads it whole:
 * its descriptors are the pass's, its details /proc's. When /proc/PID is
 * another process by now (or the start times disagree), it is read through
 * /proc instead.
 */
static int on_task_sockets(void *ctx, const ch_task_sockets *t)
{
    iter_pass *pass = ctx;
    ch_procs *p = pass->p;
    seen_proc *sp = seen_find(p, t->pid);
    if (!sp || sp->read)
        return 0; /* not listed (newer than the look-up), or already read */
    char name[24];
    snprintf(name, sizeof name, "%lld", (long long)sp->pid);
    int pid_dir = openat(pass->proc_dir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    proc_stat st;
    if (pid_dir < 0 || read_stat(pid_dir, &st) != 0 || st.start_ticks != t->start_ticks) {
        if (pid_dir >= 0)
            close(pid_dir);
        sp->fresh_hit |= sp->nfd < 0 && read_process(p, pass->proc_dir, sp, true) > 0;
        return 0;
    }
    st.pid = sp->pid;
    bool never_read = sp->nfd < 0;
    sp->start_ticks = st.start_ticks;
    sp->ppid = st.ppid;
    sp->nfd = t->nfd;
    sp->nholes = 0;
    sp->read = true;
    const ch_proc *owner = NULL;
    int rc = collect_named_hits(p, t);
    keep_unknown(p, sp);
    if (rc != 0)
        sp->nfd = -1; /* read it whole next time */
    else if (p->nhits > 0 && confirm_process(p, pid_dir, &st, &owner) == 0) {
        credit_hits(p, &st, owner);
        sp->fresh_hit = never_read;
    }
    close(pid_dir);
    return 0;
}

/*
 * Reads whole, in one pass of the iterator, every process this look-up has
 * not read. A pass that went through marks the listed processes it did not
 * name as read with no descriptors (kernel threads, zombies: /proc/PID/fd
 * lists nothing there either); one that broke off leaves them to /proc.
 */
static void read_by_iter(ch_procs *p, int proc_dir)
{
    size_t unread = 0;
    for (size_t i = 0; i < p->nseen; i++)
        unread += !p->seen[i].read;
    if (unread == 0 || p->pending_left == 0 || !iter_ready(p))
        return;
    iter_pass pass = {p, proc_dir};
    if (ch_sockfiles_read(p->iter, on_task_sockets, &pass) < 0)
        return;
    for (size_t i = 0; i < p->nseen; i++) {
        seen_proc *sp = &p->seen[i];
        if (!sp->read) {
            sp->read = true;
            sp->nfd = 0;
            sp->nholes = 0;
        }
    }
}

/* Reads whole every process this lookup did not, until no inode is
 * pending. An unchanged descriptor count does not prove that a process
 * holds no new socket: a file closed and a socket opened in its number
 * between two reads leave the count as it was, and a socket's descriptor
 * may predate its entry in the kernel's table (a connection the kernel
 * completed before accept() returned it). */
static void read_the_rest(ch_procs *p, int proc_dir)
{
    int64_t cpu = clock_ms(CLOCK_THREAD_CPUTIME_ID);
    read_by_iter(p, proc_dir);
    for (size_t i = 0; i < p->nseen && p->pending_left > 0; i++)
        if (!p->seen[i].read)
            read_process(p, proc_dir, &p->seen[i], true);
    p->fallback_ms = clock_ms(CLOCK_THREAD_CPUTIME_ID) - cpu;
    p->fallback_end = clock_ms(CLOCK_MONOTONIC);
}

static size_t scan_processes(ch_procs *p)
{
    p->read_all = false;
    DIR *d = open_dir_at(AT_FDCWD, "/proc");
    if (!d)
        return 0;
    int proc_dir = dirfd(d);
    if (list_processes(p, proc_dir, d) != 0) {
        closedir(d);
        return 0;
    }
    if (mostly_new(p))
        read_by_iter(p, proc_dir);
    for (size_t i = 0; i < p->nseen; i++) {
        seen_proc *sp = &p->seen[i];
        if (sp->read) {
            continue;
        } else if (sp->nfd < 0) {
            sp->fresh_hit = read_process(p, proc_dir, sp, true) > 0;
        } else if (sp->nholes > 0) {
            read_process(p, proc_dir, sp, false);
        } else if (p->fd_count) {
            char path[40];
            struct stat st;
            snprintf(path, sizeof path, "%lld/fd", (long long)sp->pid);
            sp->changed = fstatat(proc_dir, path, &st, 0) == 0 && (int64_t)st.st_size != sp->nfd;
        } else {
            sp->changed = true;
        }
    }
    for (size_t i = 0; i < p->nseen; i++) {
        seen_proc *parent = p->seen[i].fresh_hit ? seen_find(p, p->seen[i].ppid) : NULL;
        if (parent && !parent->read)
            read_process(p, proc_dir, parent, true);
    }
    for (size_t i = 0; i < p->nseen && p->pending_left > 0; i++)
        if (p->seen[i].changed && !p->seen[i].read)
            read_process(p, proc_dir, &p->seen[i], true);
    /* What is still pending after that is mostly a socket that opened in the
     * descriptor of one that closed while the dump ran: the dump saw both,
     * so the descriptor is no hole yet and the count did not change. The
     * next look-up finds it in that hole, so only an inode asked again
     * (unsure since an earlier look-up) is worth reading every process. */
    bool fell_back = p->again_left > 0 && fallback_due(p);
    if (fell_back)
        read_the_rest(p, proc_dir);
    bool every = true; /* every listed process was read whole (the first look-up) */
    for (size_t i = 0; i < p->nseen && every; i++)
        every = p->seen[i].read;
    p->read_all = fell_back || every || p->pending_left == 0;
    closedir(d);
    return p->nseen;
}

/* ---- the interface ------------------------------------------------------- */

/* btime as the kernel computes it, when /proc/stat cannot say: the wall
 * clock minus the time since boot. */
static int64_t boot_ms_from_clocks(void)
{
    struct timespec real, up;
    if (clock_gettime(CLOCK_REALTIME, &real) != 0 || clock_gettime(CLOCK_BOOTTIME, &up) != 0)
        return -1;
    return ((int64_t)real.tv_sec - (int64_t)up.tv_sec) * 1000;
}

ch_procs *ch_procs_new(void)
{
    ch_procs *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->hz = sysconf(_SC_CLK_TCK);
    if (p->hz <= 0)
        p->hz = 100; /* USER_HZ on every Linux architecture */
    p->boot_ms = ch_boot_time_ms();
    if (p->boot_ms < 0)
        p->boot_ms = boot_ms_from_clocks();
    /* This process has descriptors open: a size of 0 means the kernel does
     * not count them (before 6.2), and every changed-or-not question then
     * has to be answered by reading. */
    struct stat st;
    p->fd_count = stat("/proc/self/fd", &st) == 0 && st.st_size > 0;
    return p;
}

void ch_procs_free(ch_procs *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->procs.cap; i++)
        proc_rec_free(p->procs.slots[i]);
    free(p->procs.slots);
    free(p->procs.all);
    free(p->inodes.slots);
    for (size_t i = 0; i < p->nusers; i++)
        free(p->users[i].name);
    free(p->users);
    free(p->hits);
    free(p->hit_fds);
    free(p->unknown);
    for (size_t i = 0; i < p->nseen; i++)
        seen_drop(&p->seen[i]);
    free(p->seen);
    free(p->text);
    ch_sockfiles_close(p->iter);
    free(p);
}

void ch_procs_prepare(ch_procs *p)
{
    if (p)
        iter_ready(p);
}

const char *ch_procs_next_note(ch_procs *p)
{
    if (!p || !p->iter_tried || p->note_taken)
        return NULL;
    p->note_taken = true;
    return p->note;
}

/* True when a requested inode must be looked up: never looked up, or not
 * found by a lookup that could not read every process. */
static bool needs_lookup(const ch_procs *p, uint64_t inode)
{
    if (!cacheable(inode))
        return false;
    const inode_entry *e = inode_find(&p->inodes, inode);
    return e == NULL || e->unsure;
}

/* Makes every requested inode that needs a lookup pending (adding an
 * entry for those never looked up). Returns how many there are; 0 also
 * when memory ran out (nothing is added then, and they simply get no
 * owner this time). */
static size_t mark_unknown(ch_procs *p, const uint64_t *inodes, size_t n)
{
    size_t unknown = 0;
    for (size_t i = 0; i < n; i++)
        if (needs_lookup(p, inodes[i]))
            unknown++;
    if (unknown == 0 || inode_reserve(&p->inodes, unknown) != 0)
        return 0;
    p->pending_left = p->again_left = 0;
    for (size_t i = 0; i < n; i++) {
        if (needs_lookup(p, inodes[i])) {
            inode_entry *e = inode_put(&p->inodes, (uint32_t)inodes[i]);
            if (e->pending) /* asked twice in one call */
                continue;
            e->pending = true; /* unsure stays set while it is looked up again */
            p->pending_left++;
            p->again_left += e->unsure;
        }
    }
    return unknown;
}

/* Ends a scan: what it found for each pending inode is final, and an inode
 * no process held is remembered as unattributable; as unsure when the scan
 * did not read every process (see fallback_due). */
static void settle_pending(ch_procs *p, const uint64_t *inodes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        inode_entry *e = inodes[i] ? inode_find(&p->inodes, inodes[i]) : NULL;
        if (!e || !e->pending)
            continue;
        e->pending = false;
        if (!e->proc) {
            e->holders = 0;
            e->unsure = !p->read_all;
        }
    }
}

/* Hits a scan keeps room for once done: a burst's room (a first sample's,
 * a process that opened thousands of sockets) is given back. */
#define HITS_KEPT 4096

static void give_back_hits(ch_procs *p)
{
    if (p->hits_cap > HITS_KEPT) {
        free(p->hits);
        free(p->hit_fds);
        p->hits = NULL;
        p->hit_fds = NULL;
        p->hits_cap = 0;
    }
}

size_t ch_procs_resolve(ch_procs *p, const uint64_t *inodes, size_t n, ch_owner *owners)
{
    if (!p || n == 0 || !inodes || !owners)
        return 0;
    size_t scanned = 0;
    if (mark_unknown(p, inodes, n) > 0) {
        scanned = scan_processes(p);
        settle_pending(p, inodes, n);
        give_back_hits(p);
    }
    for (size_t i = 0; i < n; i++) {
        const inode_entry *e = inodes[i] ? inode_find(&p->inodes, inodes[i]) : NULL;
        owners[i] = e && e->proc ? (ch_owner){entry_proc(p, e), e->holders, CH_OWNER_SOCKET}
                                 : (ch_owner){NULL, 0, CH_OWNER_UNKNOWN};
    }
    return scanned;
}

bool ch_procs_may_find_later(const ch_procs *p, uint64_t inode)
{
    const inode_entry *e = p != NULL ? inode_find(&p->inodes, inode) : NULL;
    return e != NULL && e->unsure;
}

/* A record of what an event said of a process that has exited. */
static proc_rec *event_details(ch_procs *p, const ch_owner_fact *fact)
{
    proc_rec *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->start_ticks = fact->start;
    r->pub.pid = fact->pid;
    r->pub.start_time = ticks_to_ms(p, fact->start);
    r->pub.name = fact->name[0] ? strndup(fact->name, sizeof fact->name) : NULL;
    r->pub.uid = fact->uid;
    const char *user = fact->uid >= 0 ? user_name(p, fact->uid) : NULL;
    r->pub.user = user ? strdup(user) : NULL;
    return r;
}

/* The process (pid, start) as /proc shows it while it still runs (read
 * whole: it was found unchanged after), else as the event said. NULL when
 * out of memory. */
static proc_rec *read_identified(ch_procs *p, const ch_owner_fact *fact)
{
    char path[32];
    snprintf(path, sizeof path, "/proc/%lld", (long long)fact->pid);
    int pid_dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    proc_stat st;
    proc_rec *r = NULL;
    if (pid_dir >= 0 && read_stat(pid_dir, &st) == 0 && st.start_ticks == fact->start) {
        st.pid = fact->pid;
        r = read_details(p, pid_dir, &st);
        if (r && !still_same(pid_dir, &st)) {
            proc_rec_free(r);
            r = NULL;
        }
    }
    if (pid_dir >= 0)
        close(pid_dir);
    return r ? r : event_details(p, fact);
}

const ch_proc *ch_procs_identified(ch_procs *p, const ch_owner_fact *fact)
{
    if (!p || !fact || fact->pid <= 0)
        return NULL;
    proc_rec *r = proc_find(&p->procs, fact->pid, fact->start);
    if (r)
        return &r->pub;
    r = read_identified(p, fact);
    if (!r || proc_add(&p->procs, r) != 0) {
        proc_rec_free(r);
        return NULL;
    }
    return &r->pub;
}

/* Linux samplers report inodes, never pids: ch_procs_resolve does the work. */
size_t ch_procs_resolve_pids(ch_procs *p, const int64_t *pids, size_t n, ch_owner *owners)
{
    (void)p;
    (void)pids;
    (void)n;
    (void)owners;
    return 0;
}

/* Empties slot i, moving later members of its probe run back. */
static void inode_remove_slot(inode_table *t, size_t i)
{
    for (size_t j = next_slot(i, t->cap); t->slots[j].inode != 0; j = next_slot(j, t->cap)) {
        size_t home = hash_slot(t->slots[j].inode, t->cap);
        /* Move j into the hole unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i] = (inode_entry){.inode = 0};
    t->count--;
}

/* Drops the gone inodes. The descriptor each one had in its owner becomes
 * a hole there: the next lookup reads it first. */
size_t ch_procs_room(const ch_procs *p)
{
    return p != NULL ? p->inodes.cap * sizeof *p->inodes.slots : 0;
}

void ch_procs_forget(ch_procs *p, const uint64_t *gone, size_t ngone)
{
    if (!p || p->inodes.cap == 0)
        return;
    for (size_t i = 0; i < ngone; i++) {
        inode_entry *e = gone[i] ? inode_find(&p->inodes, gone[i]) : NULL;
        if (!e)
            continue;
        if (e->proc && e->fd != FD_UNKNOWN)
            add_hole(p, entry_proc(p, e), (int32_t)e->fd);
        inode_remove_slot(&p->inodes, (size_t)(e - p->inodes.slots));
    }
    inode_shrink(&p->inodes);
}

/* Reads "btime SECONDS" from /proc/stat. The line comes after the per-CPU
 * and interrupt lines, which run long on big machines, hence stdio. */
int64_t ch_boot_time_ms(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    int64_t ms = -1;
    while (ms < 0 && getline(&line, &cap, f) > 0) {
        if (strncmp(line, "btime ", 6) != 0)
            continue;
        const char *s = line + 6;
        uint64_t sec;
        if (parse_u64(&s, &sec))
            ms = (int64_t)sec * 1000;
    }
    free(line);
    fclose(f);
    return ms;
}
