/*
 * Tests process attribution against the real kernel: this process opens
 * TCP, UDP and IPv6 sockets, looks them up by inode, and checks the owner
 * it gets back against what it knows of itself, read independently from
 * /proc. Forked children check the rules for shared sockets (the oldest
 * holder owns, every process counts once) and a name full of ')' and
 * spaces. The cache checks count scans: known inodes, unattributable ones
 * included, never cause another.
 */
#define _GNU_SOURCE
#include "procs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "hidden_socket.h"

/* ---- what the test knows independently ----------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t btime_seconds(void)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[4096];
    long long sec = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &sec) == 1)
            break;
    if (f)
        fclose(f);
    return sec;
}

/* The start of process pid in ms since the epoch, from field 22 of its
 * stat, counted from the last ')' since the name may hold one. */
static int64_t start_ms_of(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *s = strrchr(buf, ')');
    if (!s)
        return -1;
    for (int field = 3; field <= 22 && s; field++) /* to the space before it */
        s = strchr(s + 1, ' ');
    if (!s)
        return -1;
    unsigned long long ticks = strtoull(s + 1, NULL, 10);
    long hz = sysconf(_SC_CLK_TCK);
    return btime_seconds() * 1000 + (int64_t)(ticks * 1000 / (unsigned long long)hz);
}

/* Start times agree exactly, except that btime moves in whole seconds
 * when the wall clock is stepped between the two reads. */
static int same_start(int64_t a, int64_t b)
{
    int64_t d = a > b ? a - b : b - a;
    return d == 0 || d == 1000;
}

static void own_comm(char *out, size_t n)
{
    FILE *f = fopen("/proc/self/comm", "r");
    out[0] = '\0';
    if (f && fgets(out, (int)n, f))
        out[strcspn(out, "\n")] = '\0';
    if (f)
        fclose(f);
}

/* ---- the checks ------------------------------------------------------------ */

/* The owner is this very process, with every detail right. */
static void check_is_me(const ch_owner *o)
{
    char comm[64];
    own_comm(comm, sizeof comm);
    CHECK(o->proc != NULL);
    if (!o->proc)
        return;
    const ch_proc *p = o->proc;
    int64_t start = start_ms_of(getpid());
    CHECK_INT(o->holders, 1);
    CHECK_INT(p->pid, getpid());
    CHECK(same_start(p->start_time, start));
    CHECK(p->start_time <= now_ms() + 1000);
    CHECK(p->start_time > now_ms() - 10 * 60 * 1000);
    CHECK_STR(p->name, comm);
    /* The path is the binary actually run: a wrapper such as valgrind
     * has its own, so only its form is checked. */
    CHECK(p->path && p->path[0] == '/');
    CHECK(p->cmdline && strstr(p->cmdline, "test_procs"));
    CHECK_INT(p->uid, getuid());
    if (getuid() == 0)
        CHECK_STR(p->user, "root");
}

static void test_boot_time(void)
{
    int64_t boot = ch_boot_time_ms();
    CHECK(boot > 0);
    CHECK(same_start(boot, btime_seconds() * 1000));
}

/* Own sockets resolve to this process; 0, a made-up inode and a closed
 * socket to nobody; and all of it comes from the cache the second time. */
static void test_own_sockets(ch_procs *cache, const ch_proc **me)
{
    int tcp = loopback_socket(AF_INET, SOCK_STREAM);
    int udp = loopback_socket(AF_INET, SOCK_DGRAM);
    int tcp6 = loopback_socket(AF_INET6, SOCK_STREAM);
    int gone = loopback_socket(AF_INET, SOCK_DGRAM);
    CHECK(tcp >= 0 && udp >= 0 && gone >= 0);
    if (tcp6 < 0)
        fprintf(stderr, "note: no IPv6 loopback here (%s); skipping ::1\n", strerror(errno));
    uint64_t gone_inode = inode_of(gone);
    close(gone);

    uint64_t inodes[] = {inode_of(tcp), inode_of(udp), tcp6 >= 0 ? inode_of(tcp6) : 0,
                         0, UINT32_MAX - 12345, gone_inode};
    ch_owner owners[6];
    CHECK(ch_procs_resolve(cache, inodes, 6, owners) > 0);
    check_is_me(&owners[0]);
    check_is_me(&owners[1]);
    if (tcp6 >= 0)
        check_is_me(&owners[2]);
    for (int i = 3; i < 6; i++)
        CHECK(owners[i].proc == NULL && owners[i].holders == 0);
    /* One record per process, shared by all its sockets. */
    CHECK(owners[1].proc == owners[0].proc);
    CHECK(tcp6 < 0 || owners[2].proc == owners[0].proc);
    *me = owners[0].proc;

    ch_owner again[6];
    CHECK_INT(ch_procs_resolve(cache, inodes, 6, again), 0);
    for (int i = 0; i < 6; i++)
        CHECK(again[i].proc == owners[i].proc && again[i].holders == owners[i].holders);
    CHECK_INT(ch_procs_resolve(cache, &inodes[4], 1, again), 0); /* unattributable stays so */

    /* Forgetting all but the TCP socket: the UDP socket is looked up
     * afresh (a scan) and gets the same record back. */
    ch_procs_forget(cache, &inodes[1], 5);
    CHECK_INT(ch_procs_resolve(cache, &inodes[0], 1, again), 0);
    CHECK(again[0].proc == *me);
    CHECK(ch_procs_resolve(cache, &inodes[1], 1, again) > 0);
    CHECK(again[0].proc == *me && again[0].holders == 1);
    CHECK(ch_procs_resolve(cache, &inodes[4], 1, again) > 0);
    CHECK(again[0].proc == NULL && again[0].holders == 0);

    close(tcp);
    close(udp);
    if (tcp6 >= 0)
        close(tcp6);
}

/* Forks a child that keeps the inherited descriptors open, optionally
 * renames itself, reports ready, and exits once *go_write is closed.
 * Returns the child's pid, or -1 (then *go_write is -1 too). */
static pid_t spawn_holder(const char *rename, int *go_write)
{
    int ready[2], go[2];
    *go_write = -1;
    if (pipe(ready) != 0)
        return -1;
    if (pipe(go) != 0) {
        close(ready[0]);
        close(ready[1]);
        return -1;
    }
    pid_t pid = fork();
    char c = 1;
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        if (rename)
            prctl(PR_SET_NAME, rename, 0, 0, 0);
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        while (read(go[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    if (pid > 0 && read(ready[0], &c, 1) != 1) {
        waitpid(pid, NULL, 0);
        pid = -1;
    }
    close(ready[0]);
    if (pid > 0)
        *go_write = go[1];
    else
        close(go[1]);
    return pid;
}

/* Lets the child exit and waits for it. */
static void reap(pid_t pid, int go_write)
{
    if (go_write >= 0)
        close(go_write);
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

/* A listener inherited by a child: two holders, the parent (older) owns. */
static void test_forked_listener(ch_procs *cache, const ch_proc *me)
{
    int lst = loopback_socket(AF_INET, SOCK_STREAM);
    CHECK(lst >= 0);
    /* Start times count in clock ticks; let one pass so the child is
     * strictly younger and the pid tie-break is not what decides. */
    usleep(30 * 1000);
    int go;
    pid_t child = spawn_holder(NULL, &go);
    CHECK(child > 0);
    uint64_t inode = inode_of(lst);
    ch_owner o;
    CHECK(ch_procs_resolve(cache, &inode, 1, &o) > 0);
    CHECK_INT(o.holders, 2);
    CHECK(o.proc == me);
    CHECK(o.proc && o.proc->pid == getpid());
    reap(child, go);
    close(lst);
}

/* A socket held on two descriptors by this process and by a child: each
 * process counts as one holder, however many descriptors it holds it on. */
static void test_two_descriptors_one_holder(ch_procs *cache, const ch_proc *me)
{
    int a = loopback_socket(AF_INET, SOCK_DGRAM);
    CHECK(a >= 0);
    int a2 = dup(a);
    CHECK(a2 >= 0);
    uint64_t inode = inode_of(a);
    ch_owner o;
    CHECK(ch_procs_resolve(cache, &inode, 1, &o) > 0);
    CHECK(o.proc == me && o.holders == 1);
    int b = loopback_socket(AF_INET, SOCK_DGRAM);
    CHECK(b >= 0);
    int b2 = dup(b);
    CHECK(b2 >= 0);
    usleep(30 * 1000); /* the child strictly younger (see test_forked_listener) */
    int go;
    pid_t child = spawn_holder(NULL, &go); /* it holds b on two descriptors too */
    CHECK(child > 0);
    inode = inode_of(b);
    CHECK(ch_procs_resolve(cache, &inode, 1, &o) > 0);
    CHECK_INT(o.holders, 2);
    CHECK(o.proc == me);
    reap(child, go);
    close(a);
    close(a2);
    close(b);
    close(b2);
}

/* A socket only a child holds, the child named with ')' and spaces: it is
 * the owner, and the stat parser is not fooled by its name. */
static void test_child_owner(ch_procs *cache)
{
    static const char odd[] = "x) (y z)";
    int udp = loopback_socket(AF_INET, SOCK_DGRAM);
    CHECK(udp >= 0);
    int go;
    pid_t child = spawn_holder(odd, &go);
    CHECK(child > 0);
    uint64_t inode = inode_of(udp);
    close(udp); /* now only the child holds it */
    ch_owner o;
    CHECK(ch_procs_resolve(cache, &inode, 1, &o) > 0);
    CHECK_INT(o.holders, 1);
    CHECK(o.proc && o.proc->pid == child);
    CHECK_STR(o.proc ? o.proc->name : NULL, odd);
    CHECK(o.proc && same_start(o.proc->start_time, start_ms_of(child)));
    CHECK(o.proc && o.proc->cmdline && strstr(o.proc->cmdline, "test_procs"));
    reap(child, go);
}

/* A socket closed and forgotten leaves a hole in its owner; the socket
 * that takes its descriptor is found (there). Retaining a subset of many
 * inodes drops the others in place and keeps the rest known. */
static void test_holes_and_forget(ch_procs *cache, const ch_proc *me)
{
    int a = loopback_socket(AF_INET, SOCK_DGRAM);
    CHECK(a >= 0);
    uint64_t ia = inode_of(a);
    ch_owner o;
    CHECK(ch_procs_resolve(cache, &ia, 1, &o) > 0);
    CHECK(o.proc == me);
    close(a);
    ch_procs_forget(cache, &ia, 1);
    int b = loopback_socket(AF_INET, SOCK_DGRAM);
    CHECK_INT(b, a); /* the lowest free descriptor: a's */
    uint64_t ib = inode_of(b);
    CHECK(ch_procs_resolve(cache, &ib, 1, &o) > 0);
    CHECK(o.proc == me && o.holders == 1);
    CHECK_INT(ch_procs_resolve(cache, &ib, 1, &o), 0);
    close(b);
    ch_procs_forget(cache, &ib, 1);

    enum { N = 3000 };
    uint64_t *fake = malloc(N * sizeof *fake), *keep = malloc(N * sizeof *keep), *drop = malloc(N * sizeof *drop);
    ch_owner *owners = malloc(N * sizeof *owners);
    CHECK(fake && keep && drop && owners);
    if (!fake || !keep || !drop || !owners)
        goto out;
    size_t nkeep = 0, ndrop = 0;
    for (size_t i = 0; i < N; i++) {
        fake[i] = 0xc0000000u + 7919 * (uint64_t)i; /* owned by nobody (inodes are 32-bit) */
        if (i % 3 == 0)
            keep[nkeep++] = fake[i];
        else
            drop[ndrop++] = fake[i];
    }
    /* Held by nobody: asked once, they may be found later; asked again,
     * every process is read, which settles them. */
    CHECK(ch_procs_resolve(cache, fake, N, owners) > 0);
    CHECK(ch_procs_may_find_later(cache, fake[0]));
    CHECK(ch_procs_resolve(cache, fake, N, owners) > 0);
    CHECK(!ch_procs_may_find_later(cache, fake[0]));
    ch_procs_forget(cache, drop, ndrop); /* two in three, in place, from a full table */
    CHECK_INT(ch_procs_resolve(cache, keep, nkeep, owners), 0); /* all still known */
    for (size_t i = 0; i < nkeep; i++)
        CHECK(owners[i].proc == NULL && owners[i].holders == 0);
    for (int ask = 0; ask < 2; ask++) /* dropped: looked up again */
        CHECK(ch_procs_resolve(cache, &fake[1], 1, owners) > 0);
    ch_procs_forget(cache, keep, nkeep);
    CHECK(ch_procs_resolve(cache, &keep[nkeep - 1], 1, owners) > 0);
    CHECK_INT(ch_procs_resolve(cache, &fake[1], 1, owners), 0);
out:
    free(fake);
    free(keep);
    free(drop);
    free(owners);
}

/* A file closed and a socket opened in its descriptor between two lookups
 * leave the process's descriptor count as it was. Asked for the first
 * time, the socket is not found and not written off (it is mostly one that
 * took the descriptor of a socket closed during the dump, which the next
 * look-up reads as a hole); asked again, it is found by the read of every
 * process, which is allowed (its clock stands still: it costs nothing). */
static void test_descriptor_of_a_closed_file(void)
{
    ch_procs *cache = ch_procs_new();
    hider h;
    ch_owner o;
    CHECK(cache != NULL && hider_start(&h) == 0);
    CHECK(ch_procs_resolve(cache, &h.first, 1, &o) > 0);
    CHECK(o.proc != NULL && o.proc->pid == h.pid);
    CHECK(hider_swap(&h) == 0);
    CHECK(ch_procs_resolve(cache, &h.second, 1, &o) > 0);
    CHECK(o.proc == NULL && o.holders == 0);
    CHECK(ch_procs_may_find_later(cache, h.second));
    CHECK(ch_procs_resolve(cache, &h.second, 1, &o) > 0);
    CHECK(o.proc != NULL && o.proc->pid == h.pid && o.holders == 1);
    CHECK(!ch_procs_may_find_later(cache, h.second));
    hider_stop(&h);
    ch_procs_free(cache);
}

/*
 * Reading every process is rationed to a tenth of the time. A socket only
 * such a read can find, looked up while the ration is spent, has no owner
 * yet but is not written off: it may be found later, and is looked up
 * again when asked again, until a read of every process settles it.
 */
static void test_rationed_full_read(void)
{
    ch_procs *cache = ch_procs_new();
    hider h;
    ch_owner o;
    uint64_t nobody = 0xf1000000u; /* held by no process */
    CHECK(cache != NULL && hider_start(&h) == 0);
    CHECK(ch_procs_resolve(cache, &h.first, 1, &o) > 0);
    CHECK(ch_procs_resolve(cache, &nobody, 1, &o) > 0); /* asked once: no full read */
    CHECK(o.proc == NULL && ch_procs_may_find_later(cache, nobody));
    clock_cpu_step(1000000000); /* the next full read takes 1 s of CPU: none for the next 9 s */
    CHECK(ch_procs_resolve(cache, &nobody, 1, &o) > 0);
    clock_cpu_step(0);
    CHECK(o.proc == NULL && !ch_procs_may_find_later(cache, nobody));
    CHECK(hider_swap(&h) == 0);
    for (int i = 0; i < 2; i++) { /* asked twice while the ration is spent */
        CHECK(ch_procs_resolve(cache, &h.second, 1, &o) > 0);
        CHECK(o.proc == NULL && o.holders == 0);
        CHECK(ch_procs_may_find_later(cache, h.second));
    }
    clock_skip(9000000000LL);
    CHECK(ch_procs_resolve(cache, &h.second, 1, &o) > 0);
    CHECK(o.proc != NULL && o.proc->pid == h.pid && o.holders == 1);
    CHECK(!ch_procs_may_find_later(cache, h.second));
    CHECK_INT(ch_procs_resolve(cache, &h.second, 1, &o), 0);
    hider_stop(&h);
    ch_procs_free(cache);
}

/*
 * A socket a read of its process found before anyone asked for it (it
 * opened after the sample that look-up served) is found when it is asked
 * for, without a read of every process: the read kept its descriptor as a
 * hole. Here the child's second socket took a closed file's descriptor
 * before the child was first read, so its count never changes after.
 */
static void test_socket_seen_before_asked(void)
{
    ch_procs *cache = ch_procs_new();
    hider h;
    ch_owner o;
    CHECK(cache != NULL && hider_start(&h) == 0);
    CHECK(hider_swap(&h) == 0);
    CHECK(ch_procs_resolve(cache, &h.first, 1, &o) > 0); /* the child read whole */
    CHECK(o.proc != NULL && o.proc->pid == h.pid);
    CHECK(ch_procs_resolve(cache, &h.second, 1, &o) > 0);
    CHECK(o.proc != NULL && o.proc->pid == h.pid && o.holders == 1);
    CHECK(!ch_procs_may_find_later(cache, h.second));
    hider_stop(&h);
    ch_procs_free(cache);
}

/*
 * The inode table fills up to 7/8 before it grows: n unknown inodes (no
 * process holds them) filling it that far are remembered, found again
 * without a scan after every other one is forgotten (removal shifts probe
 * runs back), and the forgotten ones are looked up afresh.
 */
static void test_full_inode_table(size_t n)
{
    ch_procs *cache = ch_procs_new();
    uint64_t *inodes = malloc(n * sizeof *inodes), *odd = malloc(n / 2 * sizeof *odd);
    ch_owner *owners = malloc(n * sizeof *owners);
    CHECK(cache != NULL && inodes != NULL && odd != NULL && owners != NULL);
    if (!cache || !inodes || !odd || !owners)
        goto out;
    for (size_t i = 0; i < n; i++)
        inodes[i] = 0xf0000000u + i; /* dense, as the kernel numbers them; held by nobody */
    CHECK(ch_procs_resolve(cache, inodes, n, owners) > 0);
    CHECK_INT(ch_procs_resolve(cache, inodes, n, owners), 0);
    for (size_t i = 0; i < n / 2; i++)
        odd[i] = inodes[2 * i + 1];
    ch_procs_forget(cache, odd, n / 2);
    size_t kept = 0;
    for (size_t i = 0; i < n; i += 2)
        inodes[kept++] = inodes[i];
    CHECK_INT(ch_procs_resolve(cache, inodes, kept, owners), 0);
    CHECK(owners[0].proc == NULL && owners[kept - 1].holders == 0);
    CHECK(ch_procs_resolve(cache, odd, n / 2, owners) > 0);
    CHECK(ch_procs_resolve(cache, odd, n / 2, owners) > 0); /* asked again: every process read */
    CHECK_INT(ch_procs_resolve(cache, odd, n / 2, owners), 0);
out:
    free(inodes);
    free(odd);
    free(owners);
    ch_procs_free(cache);
}

/* Most of the cache's sockets forgotten (a mass close): its table gives
 * back their room, and still knows the ones left. */
static void test_room_given_back(void)
{
    enum { N = 20000, LEFT = 100 };
    ch_procs *cache = ch_procs_new();
    uint64_t *inodes = malloc(N * sizeof *inodes);
    ch_owner *owners = malloc(N * sizeof *owners);
    CHECK(cache != NULL && inodes != NULL && owners != NULL);
    if (!cache || !inodes || !owners)
        goto out;
    for (size_t i = 0; i < N; i++)
        inodes[i] = 0xf0000000u + i; /* held by nobody */
    CHECK(ch_procs_resolve(cache, inodes, N, owners) > 0);
    size_t full = ch_procs_room(cache);
    CHECK(full >= N * 16);
    ch_procs_forget(cache, inodes + LEFT, N - LEFT);
    CHECK(ch_procs_room(cache) <= 1024 * 16);
    CHECK_INT(ch_procs_resolve(cache, inodes, LEFT, owners), 0);   /* still known */
    CHECK(ch_procs_resolve(cache, inodes + LEFT, 10, owners) > 0); /* forgotten: looked up */
out:
    free(inodes);
    free(owners);
    ch_procs_free(cache);
}

int main(void)
{
    test_room_given_back();
    test_full_inode_table(56);  /* 64 slots, 7/8 full */
    test_full_inode_table(896); /* 1024 slots */
    test_descriptor_of_a_closed_file();
    test_rationed_full_read();
    test_socket_seen_before_asked();
    ch_procs *cache = ch_procs_new();
    CHECK(cache != NULL);
    if (!cache)
        return 1;
    const ch_proc *me = NULL;
    test_boot_time();
    test_own_sockets(cache, &me);
    test_forked_listener(cache, me);
    test_two_descriptors_one_holder(cache, me);
    test_child_owner(cache);
    test_holes_and_forget(cache, me);
    CHECK_INT(ch_procs_resolve(cache, NULL, 0, NULL), 0);
    ch_procs_free(cache);
    return check_report("test_procs");
}
