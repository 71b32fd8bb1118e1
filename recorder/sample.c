/*
 * The neutral sample: socket rows kept packed, and state names.
 */
#include "sample.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[CH_ST_COUNT] = {
    [CH_ST_UNKNOWN] = "UNKNOWN",       [CH_ST_ESTABLISHED] = "ESTABLISHED",
    [CH_ST_SYN_SENT] = "SYN_SENT",     [CH_ST_SYN_RECV] = "SYN_RECV",
    [CH_ST_FIN_WAIT1] = "FIN_WAIT1",   [CH_ST_FIN_WAIT2] = "FIN_WAIT2",
    [CH_ST_TIME_WAIT] = "TIME_WAIT",   [CH_ST_CLOSE] = "CLOSE",
    [CH_ST_CLOSE_WAIT] = "CLOSE_WAIT", [CH_ST_LAST_ACK] = "LAST_ACK",
    [CH_ST_LISTEN] = "LISTEN",         [CH_ST_CLOSING] = "CLOSING",
    [CH_ST_NEW_SYN_RECV] = "NEW_SYN_RECV", [CH_ST_UNCONN] = "UNCONN",
};

const char *ch_state_name(int state)
{
    if (state < 0 || state >= CH_ST_COUNT)
        return "UNKNOWN";
    return state_names[state];
}

int ch_state_from_name(const char *name)
{
    for (int i = 1; i < CH_ST_COUNT; i++)
        if (strcmp(state_names[i], name) == 0)
            return i;
    return CH_ST_UNKNOWN;
}

const char *ch_offload_name(int offload)
{
    static const char *const names[] = {"in_host", "offloading", "offloaded", "uploading"};
    if (offload < 0 || offload >= (int)(sizeof names / sizeof names[0]))
        return NULL;
    return names[offload];
}

/*
 * Packed rows. A row is a fixed head, then what its head's codes say
 * follows, in this order: the local address, the remote address, the byte
 * counters, the scope ids, and (where rows have them) the fields only
 * Windows reports. Unaligned: read and written with memcpy.
 *
 * head (24 bytes): ident 8, inode 4, uid 4, local port 2, remote port 2,
 * proto 1, state 1, the two addresses' codes 1, flags 1.
 */
enum { HEAD_BYTES = 24, MAX_ROW_BYTES = 128 };

/* An address's code: how many of its bytes follow. */
enum {
    ADDR_NONE = 0, /* family 0, all zero: nothing */
    ADDR_V4 = 1,   /* family 4, bytes past the fourth zero: 4 bytes */
    ADDR_V6 = 2,   /* family 6: 16 bytes */
    ADDR_RAW = 3,  /* anything else: the family, then 16 bytes */
};

enum { HAS_BYTES = 1, HAS_SCOPES = 2 };

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static int addr_code(const ch_addr *a)
{
    if (a->family == 0 && all_zero(a->bytes, sizeof a->bytes))
        return ADDR_NONE;
    if (a->family == 4 && all_zero(a->bytes + 4, sizeof a->bytes - 4))
        return ADDR_V4;
    if (a->family == 6)
        return ADDR_V6;
    return ADDR_RAW;
}

static unsigned char *put_bytes(unsigned char *p, const void *v, size_t n)
{
    memcpy(p, v, n);
    return p + n;
}

static const unsigned char *get_bytes(const unsigned char *p, void *v, size_t n)
{
    memcpy(v, p, n);
    return p + n;
}

static unsigned char *put_addr(unsigned char *p, const ch_addr *a, int code)
{
    if (code == ADDR_V4)
        return put_bytes(p, a->bytes, 4);
    if (code == ADDR_V6)
        return put_bytes(p, a->bytes, 16);
    if (code == ADDR_RAW)
        return put_bytes(put_bytes(p, &a->family, 1), a->bytes, 16);
    return p;
}

static const unsigned char *get_addr(const unsigned char *p, ch_addr *a, int code)
{
    memset(a, 0, sizeof *a);
    if (code == ADDR_V4) {
        a->family = 4;
        return get_bytes(p, a->bytes, 4);
    }
    if (code == ADDR_V6) {
        a->family = 6;
        return get_bytes(p, a->bytes, 16);
    }
    if (code == ADDR_RAW)
        return get_bytes(get_bytes(p, &a->family, 1), a->bytes, 16);
    return p;
}

/* Packs row into out (MAX_ROW_BYTES); returns its length. Where rows have
 * the Windows fields, counters and scope ids are always kept, so that a
 * row finished after it was added (ch_sample_put) keeps its length. */
static size_t pack_row(const ch_sock *row, unsigned char *out)
{
    int local = addr_code(&row->local), remote = addr_code(&row->remote);
    uint8_t codes = (uint8_t)(local | remote << 2), flags = 0;
    if (CH_SOCK_OS_FIELDS || row->bytes_sent != -1 || row->bytes_received != -1)
        flags |= HAS_BYTES;
    if (CH_SOCK_OS_FIELDS || row->local_scope != 0 || row->remote_scope != 0)
        flags |= HAS_SCOPES;
    unsigned char *p = out;
    p = put_bytes(p, &row->ident, 8);
    p = put_bytes(p, &row->inode, 4);
    p = put_bytes(p, &row->uid, 4);
    p = put_bytes(p, &row->local_port, 2);
    p = put_bytes(p, &row->remote_port, 2);
    p = put_bytes(p, &row->proto, 1);
    p = put_bytes(p, &row->state, 1);
    p = put_bytes(p, &codes, 1);
    p = put_bytes(p, &flags, 1);
    p = put_addr(p, &row->local, local);
    p = put_addr(p, &row->remote, remote);
    if (flags & HAS_BYTES) {
        p = put_bytes(p, &row->bytes_sent, 8);
        p = put_bytes(p, &row->bytes_received, 8);
    }
    if (flags & HAS_SCOPES) {
        p = put_bytes(p, &row->local_scope, 4);
        p = put_bytes(p, &row->remote_scope, 4);
    }
#if CH_SOCK_OS_FIELDS
    p = put_bytes(p, &row->pid, 4);
    p = put_bytes(p, &row->offload, 1);
    p = put_bytes(p, &row->created, 8);
    p = put_bytes(p, &row->module, sizeof row->module);
#endif
    return (size_t)(p - out);
}

static ch_sock unpack_row(const unsigned char *p)
{
    ch_sock row = {0};
    uint8_t codes, flags;
    p = get_bytes(p, &row.ident, 8);
    p = get_bytes(p, &row.inode, 4);
    p = get_bytes(p, &row.uid, 4);
    p = get_bytes(p, &row.local_port, 2);
    p = get_bytes(p, &row.remote_port, 2);
    p = get_bytes(p, &row.proto, 1);
    p = get_bytes(p, &row.state, 1);
    p = get_bytes(p, &codes, 1);
    p = get_bytes(p, &flags, 1);
    p = get_addr(p, &row.local, codes & 3);
    p = get_addr(p, &row.remote, codes >> 2 & 3);
    row.bytes_sent = row.bytes_received = -1;
    if (flags & HAS_BYTES) {
        p = get_bytes(p, &row.bytes_sent, 8);
        p = get_bytes(p, &row.bytes_received, 8);
    }
    if (flags & HAS_SCOPES) {
        p = get_bytes(p, &row.local_scope, 4);
        p = get_bytes(p, &row.remote_scope, 4);
    }
#if CH_SOCK_OS_FIELDS
    p = get_bytes(p, &row.pid, 4);
    p = get_bytes(p, &row.offload, 1);
    p = get_bytes(p, &row.created, 8);
    get_bytes(p, &row.module, sizeof row.module);
#else
    (void)p;
#endif
    return row;
}

/* Forgets the packed rows a sampler dropped by lowering count. */
static void sync_count(ch_sample *s)
{
    if (s->npacked > s->count) {
        s->packed_len = s->at[s->count];
        s->npacked = s->count;
    }
}

static bool grow(void **p, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return true;
    size_t cap2 = *cap ? *cap : first;
    while (cap2 < need)
        cap2 *= 2;
    void *grown = realloc(*p, cap2 * size);
    if (grown == NULL)
        return false;
    *p = grown;
    *cap = cap2;
    return true;
}

/* Packs the staged row after the others. -1 when out of memory. */
static int pack_staged(ch_sample *s)
{
    sync_count(s);
    if (s->count == s->npacked)
        return 0;
    unsigned char row[MAX_ROW_BYTES];
    size_t n = pack_row(&s->staged, row);
    if (s->packed_len + n > UINT32_MAX || !grow((void **)&s->packed, &s->packed_cap, s->packed_len + n, 1, 64 * 1024) ||
        !grow((void **)&s->at, &s->at_cap, s->npacked + 2, sizeof *s->at, 1024))
        return -1;
    s->at[s->npacked++] = (uint32_t)s->packed_len;
    memcpy(s->packed + s->packed_len, row, n);
    s->packed_len += n;
    s->at[s->npacked] = (uint32_t)s->packed_len;
    return 0;
}

ch_sock *ch_sample_add(ch_sample *s)
{
    if (pack_staged(s) != 0)
        return NULL;
    memset(&s->staged, 0, sizeof s->staged);
#if CH_SOCK_OS_FIELDS
    s->staged.offload = -1;
#endif
    s->staged.bytes_sent = s->staged.bytes_received = -1;
    s->count++;
    return &s->staged;
}

ch_sock ch_sample_row(const ch_sample *s, size_t i)
{
    /* i < count: past the packed rows only the staged one (count lowered
     * below npacked leaves rows under it packed) */
    if (i >= s->npacked)
        return s->staged;
    return unpack_row(s->packed + s->at[i]);
}

size_t ch_sample_row_bytes(const ch_sample *s, size_t i)
{
    if (i >= s->npacked)
        return 0;
    return s->at[i + 1] - s->at[i];
}

int ch_sample_put(ch_sample *s, size_t i, const ch_sock *row)
{
    sync_count(s);
    if (i >= s->npacked) {
        s->staged = *row;
        return 0;
    }
    unsigned char packed[MAX_ROW_BYTES];
    size_t n = pack_row(row, packed), had = s->at[i + 1] - s->at[i];
    size_t len = s->packed_len - had + n;
    if (len > UINT32_MAX || !grow((void **)&s->packed, &s->packed_cap, len, 1, 64 * 1024))
        return -1;
    /* the rows after it move when it takes another length */
    memmove(s->packed + s->at[i] + n, s->packed + s->at[i + 1], s->packed_len - s->at[i + 1]);
    memcpy(s->packed + s->at[i], packed, n);
    for (size_t j = i + 1; j <= s->npacked; j++)
        s->at[j] = (uint32_t)(s->at[j] - had + n);
    s->packed_len = len;
    return 0;
}

void ch_sample_clear(ch_sample *s)
{
    s->count = 0;
    s->consumed = 0;
    s->npacked = s->packed_len = 0;
}

/* Shrinks the packed rows' room to what keep_rows rows and keep_bytes
 * bytes take; keeping more is never wrong, so a failed realloc is not one. */
static void shrink(ch_sample *s, size_t keep_rows, size_t keep_bytes)
{
    if (keep_bytes < s->packed_cap) {
        unsigned char *p = realloc(s->packed, keep_bytes);
        if (p != NULL) {
            s->packed = p;
            s->packed_cap = keep_bytes;
        }
    }
    if (keep_rows + 1 < s->at_cap) {
        uint32_t *at = realloc(s->at, (keep_rows + 1) * sizeof *at);
        if (at != NULL) {
            s->at = at;
            s->at_cap = keep_rows + 1;
        }
    }
}

void ch_sample_trim(ch_sample *s)
{
    sync_count(s);
    size_t rows = s->count * 2 > 1024 ? s->count * 2 : 1024;
    size_t bytes = s->packed_len * 2 > 64 * 1024 ? s->packed_len * 2 : 64 * 1024;
    if (s->at_cap >= 4 * rows || s->packed_cap >= 4 * bytes)
        shrink(s, rows, bytes);
}

void ch_sample_truncate(ch_sample *s, size_t n)
{
    sync_count(s);
    if (n >= s->count)
        return;
    if (n < s->npacked) {
        s->packed_len = s->at[n];
        s->npacked = n;
    }
    s->count = n;
    shrink(s, n > 1024 ? n : 1024, s->packed_len > 64 * 1024 ? s->packed_len : 64 * 1024);
}

void ch_sample_free(ch_sample *s)
{
    free(s->packed);
    free(s->at);
    s->packed = NULL;
    s->at = NULL;
    s->packed_len = s->packed_cap = s->at_cap = s->npacked = 0;
    s->count = s->consumed = 0; /* the consume hook stays */
}

bool ch_sock_same(const ch_sock *a, const ch_sock *b)
{
    return a->proto == b->proto && a->state == b->state && a->local_port == b->local_port &&
           a->remote_port == b->remote_port && memcmp(&a->local, &b->local, sizeof a->local) == 0 &&
           memcmp(&a->remote, &b->remote, sizeof a->remote) == 0 && a->local_scope == b->local_scope &&
           a->remote_scope == b->remote_scope && a->ident == b->ident && a->inode == b->inode && a->uid == b->uid &&
           a->bytes_sent == b->bytes_sent && a->bytes_received == b->bytes_received &&
           ch_sock_pid(a) == ch_sock_pid(b) && ch_sock_offload(a) == ch_sock_offload(b) &&
           ch_sock_created(a) == ch_sock_created(b) && ch_sock_module(a) == ch_sock_module(b);
}

bool ch_sock_has_remote(const ch_sock *s)
{
    return s->remote_port != 0 || !ch_addr_is_any(&s->remote);
}
