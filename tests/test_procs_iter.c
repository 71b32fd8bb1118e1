/*
 * Tests the socket holder pass of the kernel (the BPF iterator over the
 * processes' files, procs_iter.h) against the real kernel, and that a
 * look-up through it finds exactly what the look-up through /proc finds:
 * a listener shared by this process, a child and a grandchild (three
 * holders, the oldest owns), a socket only a child holds, one whose creator exited and left it
 * to its own child, and one nobody holds. The /proc look-up is forced with
 * CONNHIST_PROCS_SOURCE=proc, a switch kept for such comparisons. Where
 * the pass cannot run (not root, no BPF in the build, no BTF), its own
 * checks are skipped with the reason printed; the comparison still runs.
 */
#define _GNU_SOURCE
#include "procs.h"
#include "procs_iter.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hidden_socket.h"

/* A child that holds its copies of this process's descriptors until
 * killed. */
static pid_t spawn_holder(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    return pid;
}

static void end(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* Why the pass is not expected to run here, or NULL (then it must). */
static const char *why_skipped(const char *why)
{
    if (geteuid() != 0)
        return "not root";
    if (strstr(why, "built without") || strstr(why, "no BTF") || strstr(why, "pid namespace") ||
        strstr(why, "locked down"))
        return why;
    return NULL;
}

/* ---- the pass itself -------------------------------------------------------- */

typedef struct {
    uint64_t udp, tcp;  /* inodes of this process's sockets */
    int udp_fd, tcp_fd; /* their descriptors */
    int found_udp, found_tcp, named, ascending;
    int64_t nfd, last_pid;
    uint64_t start_ticks;
} own_view;

static int on_task(void *ctx, const ch_task_sockets *t)
{
    own_view *v = ctx;
    v->ascending &= t->pid > v->last_pid;
    v->last_pid = t->pid;
    if (t->pid != getpid())
        return 0;
    v->named++;
    v->nfd = t->nfd;
    v->start_ticks = t->start_ticks;
    for (size_t i = 0; i < t->nsockets; i++) {
        v->found_udp += t->inodes[i] == v->udp && t->fds[i] == v->udp_fd;
        v->found_tcp += t->inodes[i] == v->tcp && t->fds[i] == v->tcp_fd;
    }
    return 0;
}

/* Descriptors open in this process, the directory's own left out. */
static int64_t own_descriptors(void)
{
    DIR *d = opendir("/proc/self/fd");
    int64_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n - 1;
}

static uint64_t own_start_ticks(void)
{
    char buf[1024] = "";
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *s = strrchr(buf, ')');
    for (int field = 3; field <= 22 && s; field++)
        s = strchr(s + 1, ' ');
    return s ? strtoull(s + 1, NULL, 10) : 0;
}

/* The pass names this process once, with its start, its descriptor count
 * (the pass's own descriptor included) and its sockets, every process in
 * ascending pid order. Returns 1 when the pass runs here. */
static int test_pass(void)
{
    char why[300] = "";
    ch_sockfiles *s = ch_sockfiles_open(why, sizeof why);
    if (!s) {
        const char *skip = why_skipped(why);
        if (skip)
            fprintf(stderr, "test_procs_iter: skipping the checks of the pass itself: %s\n", skip);
        else
            fprintf(stderr, "test_procs_iter: the pass should run here and does not: %s\n", why);
        CHECK(skip != NULL);
        return 0;
    }
    own_view v = {.udp_fd = loopback_socket(AF_INET, SOCK_DGRAM),
                  .tcp_fd = loopback_socket(AF_INET, SOCK_STREAM),
                  .ascending = 1};
    v.udp = inode_of(v.udp_fd);
    v.tcp = inode_of(v.tcp_fd);
    int64_t open_now = own_descriptors();
    CHECK_INT(ch_sockfiles_read(s, on_task, &v), 0);
    CHECK_INT(v.named, 1);
    CHECK_INT(v.found_udp, 1);
    CHECK_INT(v.found_tcp, 1);
    CHECK_INT(v.nfd, open_now + 1);
    CHECK_INT(v.start_ticks, own_start_ticks());
    CHECK(v.ascending);
    close(v.udp_fd);
    close(v.tcp_fd);
    ch_sockfiles_close(s);
    return 1;
}

/* ---- the same owners both ways ---------------------------------------------- */

/* A socket whose creator exited: a child makes it, forks a grandchild that
 * keeps it, and exits. The grandchild comes back to this process (a
 * subreaper). Returns the grandchild's pid, the socket's inode in *inode. */
static pid_t orphaned_socket(uint64_t *inode)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    pid_t child = fork();
    if (child == 0) {
        int fd = loopback_socket(AF_INET, SOCK_DGRAM);
        uint64_t made[2] = {inode_of(fd), 0};
        pid_t grandchild = spawn_holder();
        made[1] = (uint64_t)grandchild;
        _exit(write(pipefd[1], made, sizeof made) == (ssize_t)sizeof made ? 0 : 1);
    }
    close(pipefd[1]);
    uint64_t made[2] = {0, 0};
    ssize_t n = read(pipefd[0], made, sizeof made);
    close(pipefd[0]);
    if (child > 0)
        waitpid(child, NULL, 0);
    *inode = made[0];
    return n == (ssize_t)sizeof made ? (pid_t)made[1] : -1;
}

static int same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* Two owners are the same process, holders and source. */
static void check_same_owner(const ch_owner *a, const ch_owner *b)
{
    CHECK_INT(a->holders, b->holders);
    CHECK_INT(a->source, b->source);
    CHECK((a->proc == NULL) == (b->proc == NULL));
    if (!a->proc || !b->proc)
        return;
    CHECK_INT(a->proc->pid, b->proc->pid);
    CHECK_INT(a->proc->start_time, b->proc->start_time);
    CHECK(same_text(a->proc->name, b->proc->name));
    CHECK(same_text(a->proc->path, b->proc->path));
    CHECK(same_text(a->proc->cmdline, b->proc->cmdline));
    CHECK_INT(a->proc->uid, b->proc->uid);
    CHECK(same_text(a->proc->user, b->proc->user));
}

/* Resolves inodes with a new cache, through /proc when forced. Writes the
 * cache's note into note. */
static ch_procs *resolve(const uint64_t *inodes, size_t n, ch_owner *owners, int forced, char *note, size_t noten)
{
    if (forced)
        setenv("CONNHIST_PROCS_SOURCE", "proc", 1);
    ch_procs *cache = ch_procs_new();
    CHECK(cache != NULL);
    if (cache) {
        CHECK(ch_procs_resolve(cache, inodes, n, owners) > 0);
        const char *said = ch_procs_next_note(cache);
        snprintf(note, noten, "%s", said ? said : "");
        CHECK(ch_procs_next_note(cache) == NULL); /* said once */
    }
    unsetenv("CONNHIST_PROCS_SOURCE");
    return cache;
}

static void test_same_both_ways(int pass_runs)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int shared = loopback_socket(AF_INET, SOCK_STREAM), alone = loopback_socket(AF_INET, SOCK_DGRAM),
        closed = loopback_socket(AF_INET, SOCK_DGRAM);
    CHECK(shared >= 0 && alone >= 0 && closed >= 0);
    uint64_t inodes[4] = {inode_of(shared), inode_of(alone), 0, inode_of(closed)};
    close(closed);     /* nobody holds it */
    usleep(30 * 1000); /* a clock tick: the children are strictly younger */
    pid_t child = spawn_holder();
    close(alone); /* only the child holds it */
    pid_t grandchild = orphaned_socket(&inodes[2]);
    CHECK(child > 0 && grandchild > 0 && inodes[2] != 0);

    ch_owner by_pass[4], by_proc[4];
    char note_pass[400], note_proc[400];
    ch_procs *a = resolve(inodes, 4, by_pass, 0, note_pass, sizeof note_pass);
    ch_procs *b = resolve(inodes, 4, by_proc, 1, note_proc, sizeof note_proc);
    if (pass_runs)
        CHECK_STR(note_pass, "socket holders read by a BPF iterator over the processes' files");
    else
        CHECK(strstr(note_pass, "socket holders read from /proc/PID/fd") == note_pass);
    CHECK_STR(note_proc, "socket holders read from /proc/PID/fd: no BPF iterator (CONNHIST_PROCS_SOURCE=proc)");
    for (int i = 0; i < 4; i++)
        check_same_owner(&by_pass[i], &by_proc[i]);
    /* And what they are. */
    CHECK(by_pass[0].proc && by_pass[0].proc->pid == getpid());
    CHECK_INT(by_pass[0].holders, 3); /* the grandchild inherited it too */
    CHECK(by_pass[1].proc && by_pass[1].proc->pid == child);
    CHECK_INT(by_pass[1].holders, 1);
    CHECK(by_pass[2].proc && by_pass[2].proc->pid == grandchild);
    CHECK_INT(by_pass[2].holders, 1);
    CHECK(by_pass[3].proc == NULL);
    CHECK_INT(by_pass[3].holders, 0);
    CHECK_INT(by_pass[3].source, CH_OWNER_UNKNOWN);
    ch_procs_free(a);
    ch_procs_free(b);
    end(child);
    end(grandchild);
    close(shared);
}

/* A socket only a full read finds (it took a file's descriptor number in
 * a process read before): the fallback that reads every process (through
 * the pass, or /proc) finds the same owner both ways. The test's CPU
 * clock stands still (hidden_socket.h), so that fallback is always due. */
static void test_fallback_both_ways(void)
{
    hider h;
    CHECK_INT(hider_start(&h), 0);
    ch_owner first[2], second[2];
    char note[400];
    ch_procs *a = resolve(&h.first, 1, &first[0], 0, note, sizeof note);
    ch_procs *b = resolve(&h.first, 1, &first[1], 1, note, sizeof note);
    CHECK_INT(hider_swap(&h), 0);
    for (int ask = 0; ask < 2; ask++) { /* only a socket asked again calls for a full read */
        CHECK(a && ch_procs_resolve(a, &h.second, 1, &second[0]) > 0);
        CHECK(b && ch_procs_resolve(b, &h.second, 1, &second[1]) > 0);
    }
    check_same_owner(&first[0], &first[1]);
    check_same_owner(&second[0], &second[1]);
    CHECK(second[0].proc && second[0].proc->pid == h.pid);
    CHECK_INT(second[0].holders, 1);
    ch_procs_free(a);
    ch_procs_free(b);
    hider_stop(&h);
}

int main(void)
{
    int pass_runs = test_pass();
    test_same_both_ways(pass_runs);
    test_fallback_both_ways();
    return check_report("test_procs_iter");
}
