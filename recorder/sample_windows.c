/*
 * Windows sampler: the IP Helper API. GetExtendedTcpTable and
 * GetExtendedUdpTable, for IPv4 and IPv6, with the *_ALL owner-module
 * classes (the *_CONNECTIONS classes return only some states on some
 * implementations) and the owner-pid classes where those fail; GetTcpTable2
 * for TCP offload states; GetOwnerModuleFrom*Entry for the module (the
 * service inside svchost.exe) that owns a socket.
 *
 * Everything beyond the two table functions may be missing (older Windows,
 * Wine 8 lacks GetOwnerModuleFrom*Entry), so it is looked up at run time
 * and its absence is said once through ch_sampler_next_note. Buffers are
 * converted by iphlp_rows.c, which has the facts about byte order and
 * layout.
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

/* A module name and path, interned for the sampler's life. */
typedef struct {
    char *name, *path;
} module_text;

/* Modules of the previous sample by identity, sorted, so only new
 * sockets are asked about. */
typedef struct {
    uint64_t ident;
    const char *name, *path;
} module_memo;

struct ch_sampler {
    ch_iphlp_buf buf;
    int pid_only[NKINDS];        /* the module class failed for this kind */
    module_fn module[NKINDS];    /* NULL: missing */
    tcp2_fn tcp2[2];             /* GetTcpTable2, GetTcp6Table2; NULL: missing */
    module_text *texts;
    size_t ntexts;
    module_memo *memo, *next_memo;
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

/* An optional iphlpapi function, or NULL with a note. */
static void (*optional_fn(ch_sampler *s, const char *name, const char *without))(void)
{
    HMODULE lib = GetModuleHandleW(L"iphlpapi.dll");
    FARPROC f = lib != NULL ? GetProcAddress(lib, name) : NULL;
    if (f == NULL) {
        char fmt[200];
        snprintf(fmt, sizeof fmt, "%%s is not available (error %%lu): %s", without);
        add_note(s, fmt, name, GetLastError());
        return NULL;
    }
    return (void (*)(void))f;
}

ch_sampler *ch_sampler_open(const char *force, char *err, size_t errn)
{
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
    (void)s;
    (void)in_samples; /* the IP Helper tables carry none */
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

static const char *intern(ch_sampler *s, const wchar_t *w, int want_path)
{
    if (w == NULL || *w == L'\0')
        return NULL;
    char *text = ch_utf8_from_wide(w, -1);
    if (text == NULL)
        return NULL;
    for (size_t i = 0; i < s->ntexts; i++) {
        const char *have = want_path ? s->texts[i].path : s->texts[i].name;
        if (have != NULL && strcmp(have, text) == 0) {
            free(text);
            return have;
        }
    }
    module_text *t = realloc(s->texts, (s->ntexts + 1) * sizeof *t);
    if (t == NULL) {
        free(text);
        return NULL;
    }
    s->texts = t;
    s->texts[s->ntexts].name = want_path ? NULL : text;
    s->texts[s->ntexts].path = want_path ? text : NULL;
    s->ntexts++;
    return text;
}

static int memo_cmp(const void *a, const void *b)
{
    uint64_t x = ((const module_memo *)a)->ident, y = ((const module_memo *)b)->ident;
    return x < y ? -1 : x > y;
}

static const module_memo *memo_find(const ch_sampler *s, uint64_t ident)
{
    module_memo key = {ident, NULL, NULL};
    return s->nmemo ? bsearch(&key, s->memo, s->nmemo, sizeof key, memo_cmp) : NULL;
}

static void memo_keep(ch_sampler *s, const ch_sock *row)
{
    if (row->ident == 0)
        return;
    if (s->nnext == s->next_cap) {
        size_t cap = s->next_cap ? s->next_cap * 2 : 256;
        module_memo *m = realloc(s->next_memo, cap * sizeof *m);
        if (m == NULL)
            return; /* it will be asked about again: slower, not wrong */
        s->next_memo = m;
        s->next_cap = cap;
    }
    s->next_memo[s->nnext++] = (module_memo){row->ident, row->module, row->module_path};
}

/*
 * Sets the owner module of rows[from..] (one per entry of the module-class
 * table in s->buf, in order). Pid 0 (idle, TIME_WAIT) and 4 (the kernel)
 * have none.
 */
static void add_modules(ch_sampler *s, size_t k, ch_sample *out, size_t from)
{
    size_t first = 0, size = 0;
    switch (kinds[k].module_layout) {
    case CH_IPHLP_TCP4_MODULE: first = offsetof(MIB_TCPTABLE_OWNER_MODULE, table), size = sizeof(MIB_TCPROW_OWNER_MODULE); break;
    case CH_IPHLP_TCP6_MODULE: first = offsetof(MIB_TCP6TABLE_OWNER_MODULE, table), size = sizeof(MIB_TCP6ROW_OWNER_MODULE); break;
    case CH_IPHLP_UDP4_MODULE: first = offsetof(MIB_UDPTABLE_OWNER_MODULE, table), size = sizeof(MIB_UDPROW_OWNER_MODULE); break;
    default: first = offsetof(MIB_UDP6TABLE_OWNER_MODULE, table), size = sizeof(MIB_UDP6ROW_OWNER_MODULE); break;
    }
    for (size_t i = from; i < out->count; i++) {
        ch_sock *row = &out->rows[i];
        const module_memo *m = memo_find(s, row->ident);
        if (m != NULL) {
            row->module = m->name, row->module_path = m->path;
        } else if (s->module[k] != NULL && row->pid > 4) {
            void *entry = (char *)s->buf.data + first + (i - from) * size;
            DWORD n = MODULE_INFO_BYTES;
            if (s->module[k](entry, TCPIP_OWNER_MODULE_INFO_BASIC, s->module_buf, &n) == NO_ERROR) {
                const TCPIP_OWNER_MODULE_BASIC_INFO *info = s->module_buf;
                row->module = intern(s, info->pModuleName, 0);
                row->module_path = intern(s, info->pModulePath, 1);
            }
        }
        memo_keep(s, row);
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
    if (!s->pid_only[k])
        add_modules(s, k, out, from);
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
    /* This sample's modules become the memo for the next one. */
    module_memo *m = s->memo;
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
    for (size_t i = 0; i < s->ntexts; i++) {
        free(s->texts[i].name);
        free(s->texts[i].path);
    }
    free(s->texts);
    free(s->memo);
    free(s->next_memo);
    free(s->module_buf);
    for (int i = 0; i < s->nnotes; i++)
        free(s->notes[i]);
    free(s);
}
