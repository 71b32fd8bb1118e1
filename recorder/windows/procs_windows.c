/*
 * Process attribution on Windows. The IP Helper tables name each socket's
 * owning pid, so no descriptor scan is needed: a pid is opened with
 * PROCESS_QUERY_LIMITED_INFORMATION (granted for most processes, protected
 * ones included, to an administrator) and identified by its creation time
 * from GetProcessTimes, so a reused pid is another process. The details are
 * read once per (pid, start time):
 *  - name: the Toolhelp32 snapshot's exe name (needs no access at all);
 *  - path: QueryFullProcessImageNameW;
 *  - user: the token's user, as DOMAIN\name;
 *  - command line: NtQueryInformationProcess(ProcessCommandLineInformation),
 *    Windows 8.1 and later, where the process lets us read it.
 * All text is converted from UTF-16 to UTF-8. A pid that cannot be opened
 * (it exited, or access is denied) gets no owner: without a start time it
 * could be confused with a later process of the same pid.
 */
#include "procs.h"

#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <tlhelp32.h>

#include "win_text.h"
#include "win_user.h"

/* ntdll's ProcessCommandLineInformation, and its UNICODE_STRING answer. */
#define PROCESS_COMMAND_LINE_INFORMATION 60
typedef struct {
    USHORT Length, MaximumLength;
    PWSTR Buffer;
} unicode_text;
typedef LONG(NTAPI *query_process_fn)(HANDLE, int, PVOID, ULONG, PULONG);

/* 100 ns ticks between 1601-01-01 (FILETIME) and 1970-01-01. */
#define FILETIME_UNIX_EPOCH 116444736000000000LL

struct ch_procs {
    ch_proc **procs;
    size_t count, cap;
    query_process_fn query_process; /* NULL: no command lines */
};

ch_procs *ch_procs_new(void)
{
    ch_procs *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    FARPROC f = ntdll ? GetProcAddress(ntdll, "NtQueryInformationProcess") : NULL;
    p->query_process = (query_process_fn)(void (*)(void))f;
    return p;
}

static void proc_free(ch_proc *r)
{
    free(r->name);
    free(r->path);
    free(r->cmdline);
    free(r->user);
    free(r);
}

void ch_procs_free(ch_procs *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->count; i++)
        proc_free(p->procs[i]);
    free(p->procs);
    free(p);
}

/* Sockets on Windows come with pids, not inodes: nothing to do here. */
size_t ch_procs_resolve(ch_procs *p, const uint64_t *inodes, size_t n, ch_owner *owners)
{
    (void)p;
    (void)inodes;
    (void)n;
    (void)owners;
    return 0;
}

bool ch_procs_may_find_later(const ch_procs *p, uint64_t inode)
{
    (void)p;
    (void)inode;
    return false; /* owners come with the rows */
}

void ch_procs_forget(ch_procs *p, const uint64_t *gone, size_t ngone)
{
    (void)p;
    (void)gone;
    (void)ngone;
}

size_t ch_procs_room(const ch_procs *p)
{
    (void)p;
    return 0; /* the rows name their pids: no table of sockets */
}

int64_t ch_boot_time_ms(void)
{
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    int64_t now = ((int64_t)((uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime) - FILETIME_UNIX_EPOCH) / 10000;
    return now - (int64_t)GetTickCount64();
}

static int64_t filetime_ms(FILETIME ft)
{
    int64_t t = (int64_t)((uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime);
    return t == 0 ? 0 : (t - FILETIME_UNIX_EPOCH) / 10000;
}

static ch_proc *find(const ch_procs *p, int64_t pid, int64_t start)
{
    for (size_t i = p->count; i-- > 0;)
        if (p->procs[i]->pid == pid && p->procs[i]->start_time == start)
            return p->procs[i];
    return NULL;
}

static char *image_path(HANDLE h)
{
    wchar_t buf[32768];
    DWORD n = sizeof buf / sizeof buf[0];
    return QueryFullProcessImageNameW(h, 0, buf, &n) ? ch_utf8_from_wide(buf, (int)n) : NULL;
}

static char *command_line(const ch_procs *p, HANDLE h)
{
    if (p->query_process == NULL)
        return NULL;
    ULONG need = 0;
    p->query_process(h, PROCESS_COMMAND_LINE_INFORMATION, NULL, 0, &need);
    if (need < sizeof(unicode_text) || need > (1u << 20))
        return NULL;
    unicode_text *u = malloc(need);
    char *out = NULL;
    if (u != NULL && p->query_process(h, PROCESS_COMMAND_LINE_INFORMATION, u, need, &need) >= 0 && u->Buffer)
        out = ch_utf8_from_wide(u->Buffer, u->Length / 2);
    free(u);
    return out;
}

/* The exe name of pid from a Toolhelp32 snapshot (taken at most once per batch). */
static char *snapshot_name(HANDLE *snap, int64_t pid)
{
    if (*snap == NULL)
        *snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    if (*snap == INVALID_HANDLE_VALUE)
        return NULL;
    PROCESSENTRY32W e;
    e.dwSize = sizeof e;
    for (BOOL ok = Process32FirstW(*snap, &e); ok; ok = Process32NextW(*snap, &e))
        if ((int64_t)e.th32ProcessID == pid)
            return ch_utf8_from_wide(e.szExeFile, -1);
    return NULL;
}

/* The cached process pid is now, read when new; NULL when it cannot be opened. */
static const ch_proc *lookup(ch_procs *p, int64_t pid, HANDLE *snap, size_t *read)
{
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
    if (h == NULL)
        return NULL;
    FILETIME created, ended, kernel, user;
    ch_proc *r = NULL;
    if (!GetProcessTimes(h, &created, &ended, &kernel, &user))
        goto done;
    int64_t start = filetime_ms(created);
    r = find(p, pid, start);
    if (r != NULL)
        goto done;
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        ch_proc **procs = realloc(p->procs, cap * sizeof *procs);
        if (procs == NULL)
            goto done;
        p->procs = procs;
        p->cap = cap;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL)
        goto done;
    r->pid = pid;
    r->start_time = start;
    r->uid = -1; /* Windows users are SIDs: the name is in user */
    r->path = image_path(h);
    r->name = snapshot_name(snap, pid);
    r->user = ch_process_user_name(h);
    r->cmdline = command_line(p, h);
    p->procs[p->count++] = r;
    ++*read;
done:
    CloseHandle(h);
    return r;
}

/* The socket tables name each owner's pid: nothing to ready, one way
 * only, nothing to note. */
void ch_procs_prepare(ch_procs *p)
{
    (void)p;
}

const char *ch_procs_next_note(ch_procs *p)
{
    (void)p;
    return NULL;
}

/* Windows has no owner events (owners.h): nothing is ever identified by one. */
const ch_proc *ch_procs_identified(ch_procs *p, const ch_owner_fact *fact)
{
    (void)p, (void)fact;
    return NULL;
}

size_t ch_procs_resolve_pids(ch_procs *p, const int64_t *pids, size_t n, ch_owner *owners)
{
    HANDLE snap = NULL;
    size_t read = 0;
    for (size_t i = 0; i < n; i++) {
        if (pids[i] <= 0 || owners[i].proc != NULL)
            continue;
        /* The batch often holds many sockets of one process. */
        if (i > 0 && pids[i] == pids[i - 1]) {
            owners[i] = owners[i - 1];
            continue;
        }
        const ch_proc *r = lookup(p, pids[i], &snap, &read);
        owners[i] = (ch_owner){r, r != NULL, r != NULL ? CH_OWNER_SOCKET : CH_OWNER_UNKNOWN};
    }
    if (snap != NULL && snap != INVALID_HANDLE_VALUE)
        CloseHandle(snap);
    return read;
}
