/*
 * Windows sampler: the IP Helper API. GetExtendedTcpTable and
 * GetExtendedUdpTable, for IPv4 and IPv6, with the *_ALL owner-module
 * classes (the *_CONNECTIONS classes return only some states on some
 * implementations) and the owner-pid classes where those fail; GetTcpTable2
 * for TCP offload states; GetOwnerModuleFrom*Entry for the module (the
 * service inside svchost.exe) that owns a socket; GetPerTcp*ConnectionEStats
 * for TCP byte counters, which it must first enable on each connection
 * with SetPerTcp*ConnectionEStats (an administrator may; see add_bytes).
 *
 * Everything beyond the two table functions may be missing (older Windows,
 * Wine 8 lacks GetOwnerModuleFrom*Entry and GetPerTcp*ConnectionEStats),
 * so it is looked up at run time and its absence is said once through
 * ch_sampler_next_note. Buffers are converted by iphlp_rows.c, which has
 * the facts about byte order and layout.
 */
#include "sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <winsock2.h>
#include <windows.h>
#include <ws2ipdef.h>
#include <iphlpapi.h>

#include "iphlp_rows.h"
#include "win_text.h"

#define MAX_NOTES 8
#define MODULE_INFO_BYTES 4096

typedef DWORD(WINAPI *tcp2_fn)(PVOID table, PULONG size, BOOL order);
typedef DWORD(WINAPI *module_fn)(PVOID row, TCPIP_OWNER_MODULE_INFO_CLASS cls, PVOID buf, PDWORD size);
/* Get/SetPerTcpConnectionEStats (row: MIB_TCPROW) and their Tcp6 twins (MIB_TCP6ROW). */
typedef ULONG(WINAPI *estats_get_fn)(PVOID row, TCP_ESTATS_TYPE type, PUCHAR rw, ULONG rw_version, ULONG rw_size,
                                     PUCHAR ros, ULONG ros_version, ULONG ros_size, PUCHAR rod, ULONG rod_version,
                                     ULONG rod_size);
typedef ULONG(WINAPI *estats_set_fn)(PVOID row, TCP_ESTATS_TYPE type, PUCHAR rw, ULONG rw_version, ULONG rw_size,
                                     ULONG offset);

/* Which table to read: family, protocol, the layouts of both classes. */
typedef struct {
    ULONG af;
    int tcp;
    enum ch_iphlp_layout module_layout, pid_layout;
    int module_class, pid_class;
    const char *module_fn_name; /* GetOwnerModuleFrom*Entry for these rows */
} table_kind;

static const table_kind kinds[] = {
    {AF_INET, 1, CH_IPHLP_TCP4_MODULE, CH_IPHLP_TCP4_PID, TCP_TABLE_OWNER_MODULE_ALL, TCP_TABLE_OWNER_PID_ALL,
     "GetOwnerModuleFromTcpEntry"},
    {AF_INET6, 1, CH_IPHLP_TCP6_MODULE, CH_IPHLP_TCP6_PID, TCP_TABLE_OWNER_MODULE_ALL, TCP_TABLE_OWNER_PID_ALL,
     "GetOwnerModuleFromTcp6Entry"},
    {AF_INET, 0, CH_IPHLP_UDP4_MODULE, CH_IPHLP_UDP4_PID, UDP_TABLE_OWNER_MODULE, UDP_TABLE_OWNER_PID,
     "GetOwnerModuleFromUdpEntry"},
    {AF_INET6, 0, CH_IPHLP_UDP6_MODULE, CH_IPHLP_UDP6_PID, UDP_TABLE_OWNER_MODULE, UDP_TABLE_OWNER_PID,
     "GetOwnerModuleFromUdp6Entry"},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])


/* What a connection's byte counters need next (add_bytes). */
enum { ESTATS_UNTRIED, ESTATS_ENABLED, ESTATS_FAILED };

/* What the previous sample learnt of each socket, by identity, sorted, so
 * only new sockets are asked about: its owner module, and whether byte
 * counting is enabled on it. */
typedef struct {
    uint64_t ident;
    const ch_module *module;
    uint8_t estats;
} row_memo;

struct ch_sampler {
    ch_iphlp_buf buf;
    int pid_only[NKINDS];        /* the module class failed for this kind */
    module_fn module[NKINDS];    /* NULL: missing */
    tcp2_fn tcp2[2];             /* GetTcpTable2, GetTcp6Table2; NULL: missing */
    estats_get_fn estats_get[2]; /* [0] IPv4, [1] IPv6; NULL: no byte counters */
    estats_set_fn estats_set[2];
    bool counters;               /* samples carry byte counters (ch_sampler_byte_counters) */
    ch_module **modules;         /* interned for the sampler's life: rows point at them */
    size_t nmodules;
    row_memo *memo, *next_memo;
    size_t nmemo, memo_cap, nnext, next_cap;
    void *module_buf;
    char *notes[MAX_NOTES];
    int nnotes, next_note;
};

/* Queues a note (said once: the caller checks its own flag). */
static void add_note(ch_sampler *s, const char *fmt, const char *arg, unsigned long code)
{
    if (s->nnotes == MAX_NOTES)
        return;
    char text[256];
    snprintf(text, sizeof text, fmt, arg, code);
    s->notes[s->nnotes] = _strdup(text);
    if (s->notes[s->nnotes] != NULL)
        s->nnotes++;
}

/* An iphlpapi function, or NULL (GetLastError says why). */
static void (*lookup_fn(const char *name))(void)
{
    HMODULE lib = GetModuleHandleW(L"iphlpapi.dll");
    return lib != NULL ? (void (*)(void))GetProcAddress(lib, name) : NULL;
}

/* An optional iphlpapi function, or NULL with a note. */
static void (*optional_fn(ch_sampler *s, const char *name, const char *without))(void)
{
    void (*f)(void) = lookup_fn(name);
    if (f == NULL) {
        char fmt[200];
        snprintf(fmt, sizeof fmt, "%%s is not available (error %%lu): %s", without);
        add_note(s, fmt, name, GetLastError());
        return NULL;
    }
    return f;
}

/* The four estats functions, or none (with one note naming the first
 * missing one: they came together, with Windows Vista). */
static void resolve_estats(ch_sampler *s)
{
    static const char *const names[4] = {"GetPerTcpConnectionEStats", "GetPerTcp6ConnectionEStats",
                                         "SetPerTcpConnectionEStats", "SetPerTcp6ConnectionEStats"};
    void (*f[4])(void);
    for (int i = 0; i < 4; i++) {
        if ((f[i] = lookup_fn(names[i])) == NULL) {
            add_note(s, "%s is not available (error %lu): TCP byte counters are not recorded", names[i],
                     GetLastError());
            return;
        }
    }
    for (int v6 = 0; v6 < 2; v6++) {
        s->estats_get[v6] = (estats_get_fn)f[v6];
        s->estats_set[v6] = (estats_set_fn)f[2 + v6];
    }
}

ch_sampler *ch_sampler_open(const char *force, bool one_sample, char *err, size_t errn)
{
    (void)one_sample; /* one way to read the tables */
    if (force != NULL) {
        snprintf(err, errn, "--sampler %s is not available on Windows: the IP Helper API is the only sampler", force);
        return NULL;
    }
    ch_sampler *s = calloc(1, sizeof *s);
    if (s == NULL || (s->module_buf = malloc(MODULE_INFO_BYTES)) == NULL) {
        free(s);
        snprintf(err, errn, "out of memory");
        return NULL;
    }
    LoadLibraryW(L"iphlpapi.dll"); /* linked already; makes GetModuleHandle certain */
    for (size_t i = 0; i < NKINDS; i++)
        s->module[i] = (module_fn)optional_fn(s, kinds[i].module_fn_name, "sockets are recorded without owner modules");
    s->tcp2[0] = (tcp2_fn)optional_fn(s, "GetTcpTable2", "IPv4 TCP offload states are not recorded");
    s->tcp2[1] = (tcp2_fn)optional_fn(s, "GetTcp6Table2", "IPv6 TCP offload states are not recorded");
    resolve_estats(s);
    s->counters = true;
    return s;
}

const char *ch_sampler_name(const ch_sampler *s)
{
    (void)s;
    return "iphlpapi";
}

bool ch_sampler_ident_is_stable(const ch_sampler *s)
{
    (void)s;
    return true; /* a hash of creation time, addresses and pid: the same in every run */
}

void ch_sampler_byte_counters(ch_sampler *s, bool in_samples)
{
    s->counters = in_samples; /* Windows announces no closes: the recorder leaves it on */
}

bool ch_sampler_leave_out_tcp(ch_sampler *s, bool leave_out)
{
    (void)s, (void)leave_out;
    return false; /* Windows announces nothing that would say the tables did not move */
}

int64_t ch_sampler_tcp_timer_ms(const ch_sampler *s)
{
    (void)s;
    return -1;
}

const char *ch_sampler_next_note(ch_sampler *s)
{
    return s->next_note < s->nnotes ? s->notes[s->next_note++] : NULL;
}

/* The fetches ch_iphlp_fill drives. */
typedef struct {
    ULONG af;
    int tcp;
    int cls;
    tcp2_fn tcp2;
} fetch_args;

static unsigned long fetch_table(void *ctx, void *buf, unsigned long *size)
{
    const fetch_args *a = ctx;
    DWORD n = *size;
    DWORD rc = a->tcp ? GetExtendedTcpTable(buf, &n, FALSE, a->af, (TCP_TABLE_CLASS)a->cls, 0)
                      : GetExtendedUdpTable(buf, &n, FALSE, a->af, (UDP_TABLE_CLASS)a->cls, 0);
    *size = n;
    return rc;
}

static unsigned long fetch_tcp2(void *ctx, void *buf, unsigned long *size)
{
    const fetch_args *a = ctx;
    ULONG n = *size;
    DWORD rc = a->tcp2(buf, &n, FALSE);
    *size = n;
    return rc;
}

/* UTF-8 of a module text; NULL for none or empty. */
static char *module_text(const wchar_t *w)
{
    return w != NULL && *w != L'\0' ? ch_utf8_from_wide(w, -1) : NULL;
}

static bool same_text(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* The interned module of that name and path (a machine has few), or NULL
 * when it has neither or memory runs out. */
static const ch_module *intern(ch_sampler *s, const wchar_t *wname, const wchar_t *wpath)
{
    char *name = module_text(wname), *path = module_text(wpath);
    if (name == NULL && path == NULL)
        return NULL;
    for (size_t i = 0; i < s->nmodules; i++) {
        if (same_text(s->modules[i]->name, name) && same_text(s->modules[i]->path, path)) {
            free(name);
            free(path);
            return s->modules[i];
        }
    }
    ch_module **grown = realloc(s->modules, (s->nmodules + 1) * sizeof *grown);
    ch_module *m = grown != NULL ? malloc(sizeof *m) : NULL;
    if (grown != NULL)
        s->modules = grown;
    if (m == NULL) {
        free(name);
        free(path);
        return NULL;
    }
    *m = (ch_module){name, path};
    s->modules[s->nmodules++] = m;
    return m;
}

static int memo_cmp(const void *a, const void *b)
{
    uint64_t x = ((const row_memo *)a)->ident, y = ((const row_memo *)b)->ident;
    return x < y ? -1 : x > y;
}

static const row_memo *memo_find(const ch_sampler *s, uint64_t ident)
{
    row_memo key = {ident, NULL, 0};
    return s->nmemo ? bsearch(&key, s->memo, s->nmemo, sizeof key, memo_cmp) : NULL;
}

static void memo_keep(ch_sampler *s, const ch_sock *row, uint8_t estats)
{
    if (row->ident == 0)
        return;
    if (s->nnext == s->next_cap) {
        size_t cap = s->next_cap ? s->next_cap * 2 : 256;
        row_memo *m = realloc(s->next_memo, cap * sizeof *m);
        if (m == NULL)
            return; /* it will be asked about again: slower, not wrong */
        s->next_memo = m;
        s->next_cap = cap;
    }
    s->next_memo[s->nnext++] = (row_memo){row->ident, row->module, estats};
}

/* The owner module of one row, from the memo or else asked of the OS for
 * its entry of the module-class table. Pid 0 (idle, TIME_WAIT) and 4 (the
 * kernel) have none. */
static void add_module(ch_sampler *s, size_t k, ch_sock *row, const row_memo *m, void *entry)
{
    if (m != NULL) {
        row->module = m->module;
        return;
    }
    if (s->module[k] == NULL || row->pid <= 4)
        return;
    DWORD n = MODULE_INFO_BYTES;
    if (s->module[k](entry, TCPIP_OWNER_MODULE_INFO_BASIC, s->module_buf, &n) == NO_ERROR) {
        const TCPIP_OWNER_MODULE_BASIC_INFO *info = s->module_buf;
        row->module = intern(s, info->pModuleName, info->pModulePath);
    }
}

/* Turns collection on for one connection (mib: its MIB_TCPROW or
 * MIB_TCP6ROW). Refused for want of rights or support, it is given up for
 * the sampler's life, said once. Returns what the memo keeps. */
static uint8_t enable_estats(ch_sampler *s, int v6, void *mib)
{
    TCP_ESTATS_DATA_RW_v0 rw = {TRUE};
    ULONG rc = s->estats_set[v6](mib, TcpConnectionEstatsData, (PUCHAR)&rw, 0, sizeof rw, 0);
    if (rc == NO_ERROR)
        return ESTATS_ENABLED;
    if (rc == ERROR_ACCESS_DENIED || rc == ERROR_NOT_SUPPORTED) {
        const char *why = rc == ERROR_ACCESS_DENIED ? " (enabling them needs an elevated recorder)" : "";
        char fmt[200];
        snprintf(fmt, sizeof fmt, "%%s failed (error %%lu): TCP byte counters are not recorded%s", why);
        add_note(s, fmt, v6 ? "SetPerTcp6ConnectionEStats" : "SetPerTcpConnectionEStats", rc);
        s->estats_get[0] = s->estats_get[1] = NULL;
    }
    return ESTATS_FAILED; /* ERROR_NOT_FOUND: closed in between; else not this one */
}

/*
 * TCP byte counters for one row, from the connection's extended statistics
 * (TcpConnectionEstatsData). Windows keeps them only for connections that
 * someone enabled collection on, and counts from then on: the sample that
 * first sees a connection enables it and reports nothing (a count taken at
 * once would be about 0, which reads as "nothing sent"); later samples read
 * the bytes since then. So a lifetime's counters leave out what moved
 * before its first sample, and one that closed before its second sample
 * has none (NULL), as has every row when enabling is refused.
 *
 * Cost: one call into the TCP/IP stack per live connection per sample to
 * read, one more per new connection to enable; none for listeners,
 * TIME_WAIT or connections already known to fail (the memo says which, at
 * a binary search per row). With 100k connections that is 100k kernel
 * round trips a sample, more than the table reads themselves: on such a
 * machine a longer --interval keeps the recorder's share of a CPU small.
 *
 * Returns what the memo keeps for the next sample.
 */
static uint8_t add_bytes(ch_sampler *s, int v6, ch_sock *row, uint8_t estats)
{
    MIB_TCPROW mib4;
    MIB_TCP6ROW mib6;
    void *mib = v6 ? (void *)&mib6 : (void *)&mib4;
    /* Rows without identity (pid and creation time 0) have no memo entry:
     * they would be enabled anew each sample and are not asked at all. */
    if (!s->counters || s->estats_get[v6] == NULL || row->ident == 0 || estats == ESTATS_FAILED ||
        !ch_iphlp_estats_wanted(row))
        return estats;
    if ((v6 ? ch_iphlp_tcp6_row(row, &mib6) : ch_iphlp_tcp_row(row, &mib4)) != 0)
        return ESTATS_FAILED;
    if (estats == ESTATS_UNTRIED)
        return enable_estats(s, v6, mib);
    TCP_ESTATS_DATA_RW_v0 rw = {FALSE};
    TCP_ESTATS_DATA_ROD_v0 rod;
    memset(&rod, 0, sizeof rod);
    ULONG rc = s->estats_get[v6](mib, TcpConnectionEstatsData, (PUCHAR)&rw, 0, sizeof rw, NULL, 0, 0, (PUCHAR)&rod,
                                 0, sizeof rod);
    if (rc != NO_ERROR)
        return ESTATS_ENABLED; /* closed in between: unknown in this sample */
    ch_iphlp_estats_bytes(&rw, &rod, row);
    /* Turned off by another program: left alone, so the last counts kept
     * are not followed by smaller ones counted from a new start. */
    return rw.EnableCollection ? ESTATS_ENABLED : ESTATS_FAILED;
}

/*
 * Finishes rows[from..] of kind k (one per entry of the table in s->buf,
 * in order): owner modules (module-class tables), TCP byte counters, and
 * the memo of the next sample.
 */
static void finish_rows(ch_sampler *s, size_t k, ch_sample *out, size_t from)
{
    size_t first = 0, size = 0;
    switch (kinds[k].module_layout) {
    case CH_IPHLP_TCP4_MODULE: first = offsetof(MIB_TCPTABLE_OWNER_MODULE, table), size = sizeof(MIB_TCPROW_OWNER_MODULE); break;
    case CH_IPHLP_TCP6_MODULE: first = offsetof(MIB_TCP6TABLE_OWNER_MODULE, table), size = sizeof(MIB_TCP6ROW_OWNER_MODULE); break;
    case CH_IPHLP_UDP4_MODULE: first = offsetof(MIB_UDPTABLE_OWNER_MODULE, table), size = sizeof(MIB_UDPROW_OWNER_MODULE); break;
    default: first = offsetof(MIB_UDP6TABLE_OWNER_MODULE, table), size = sizeof(MIB_UDP6ROW_OWNER_MODULE); break;
    }
    for (size_t i = from; i < out->count; i++) {
        ch_sock kept = ch_sample_row(out, i), *row = &kept;
        const row_memo *m = memo_find(s, row->ident);
        if (!s->pid_only[k])
            add_module(s, k, row, m, (char *)s->buf.data + first + (i - from) * size);
        uint8_t estats = m != NULL ? m->estats : ESTATS_UNTRIED;
        if (kinds[k].tcp)
            estats = add_bytes(s, kinds[k].af == AF_INET6, row, estats);
        memo_keep(s, row, estats);
        ch_sample_put(out, i, row); /* rows with a pid keep every field: the same room */
    }
}

/* Reads one table into out. 0, or -1 with err. */
static int take_kind(ch_sampler *s, size_t k, ch_sample *out, char *err, size_t errn)
{
    const table_kind *t = &kinds[k];
    fetch_args args = {t->af, t->tcp, s->pid_only[k] ? t->pid_class : t->module_class, NULL};
    unsigned long rc = ch_iphlp_fill(fetch_table, &args, &s->buf);
    if (rc != NO_ERROR && rc != ERROR_INSUFFICIENT_BUFFER && rc != ERROR_NOT_ENOUGH_MEMORY && !s->pid_only[k]) {
        s->pid_only[k] = 1;
        add_note(s, "the owner-module table class failed (%s, error %lu): owner pids only",
                 t->tcp ? (t->af == AF_INET ? "TCP IPv4" : "TCP IPv6") : (t->af == AF_INET ? "UDP IPv4" : "UDP IPv6"), rc);
        args.cls = t->pid_class;
        rc = ch_iphlp_fill(fetch_table, &args, &s->buf);
    }
    if (rc == ERROR_NOT_SUPPORTED && t->af == AF_INET6)
        return 0; /* no IPv6 stack: no IPv6 sockets */
    if (rc != NO_ERROR) {
        snprintf(err, errn, "%s(%s) failed with error %lu%s", t->tcp ? "GetExtendedTcpTable" : "GetExtendedUdpTable",
                 t->af == AF_INET ? "AF_INET" : "AF_INET6", rc,
                 rc == ERROR_INSUFFICIENT_BUFFER ? " (the table kept growing: heavy churn)" : "");
        return -1;
    }
    size_t from = out->count;
    enum ch_iphlp_layout layout = s->pid_only[k] ? t->pid_layout : t->module_layout;
    if (ch_iphlp_rows(layout, s->buf.data, s->buf.len, out, err, errn) != 0)
        return -1;
    finish_rows(s, k, out, from);
    return 0;
}

/* Offload states for the TCP rows of one family; silent when unavailable. */
static void take_offload(ch_sampler *s, int v6, ch_sample *out, size_t from)
{
    if (s->tcp2[v6] == NULL)
        return;
    fetch_args args = {0, 1, 0, s->tcp2[v6]};
    if (ch_iphlp_fill(fetch_tcp2, &args, &s->buf) == NO_ERROR)
        ch_iphlp_offload(v6 ? 6 : 4, s->buf.data, s->buf.len, out, from);
}

int ch_sampler_take(ch_sampler *s, ch_sample *out, char *err, size_t errn)
{
    ch_sample_clear(out);
    s->nnext = 0;
    for (size_t k = 0; k < NKINDS; k++) {
        size_t from = out->count;
        if (take_kind(s, k, out, err, errn) != 0)
            return -1;
        if (kinds[k].tcp)
            take_offload(s, kinds[k].af == AF_INET6, out, from);
    }
    /* What this sample learnt becomes the memo for the next one. */
    row_memo *m = s->memo;
    size_t cap = s->memo_cap;
    s->memo = s->next_memo;
    s->memo_cap = s->next_cap;
    s->nmemo = s->nnext;
    s->next_memo = m;
    s->next_cap = cap;
    if (s->memo != NULL)
        qsort(s->memo, s->nmemo, sizeof *s->memo, memo_cmp);
    return 0;
}

void ch_sampler_close(ch_sampler *s)
{
    if (s == NULL)
        return;
    ch_iphlp_buf_free(&s->buf);
    for (size_t i = 0; i < s->nmodules; i++) {
        free((char *)s->modules[i]->name);
        free((char *)s->modules[i]->path);
        free(s->modules[i]);
    }
    free(s->modules);
    free(s->memo);
    free(s->next_memo);
    free(s->module_buf);
    for (int i = 0; i < s->nnotes; i++)
        free(s->notes[i]);
    free(s);
}
