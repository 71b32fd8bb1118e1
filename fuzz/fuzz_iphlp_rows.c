/*
 * libFuzzer target: an IP Helper table buffer, as GetExtendedTcpTable,
 * GetExtendedUdpTable or GetTcpTable2 would leave it, through the Windows
 * row conversion (recorder/windows/iphlp_rows.c, built on Linux against
 * fuzz/win_shim/). The first byte picks the layout (low 3 bits) and whether
 * the entry count is taken from the input as it is or set near the number of
 * rows that really fit (bit 3), with the second byte as the difference: a
 * claimed count that disagrees with the length given is the case to get
 * right. The rest is the buffer, in a heap block of exactly its size, so
 * AddressSanitizer sees any read past its end. The same bytes then go
 * through the offload matcher as a MIB_TCPTABLE2 / MIB_TCP6TABLE2.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <iphlpapi.h>

#include "iphlp_rows.h"

/* Where the rows of a layout start and how big one is, as Windows lays them out. */
static void geometry(enum ch_iphlp_layout layout, size_t *first, size_t *size)
{
    static const struct {
        size_t first, size;
    } g[] = {
        [CH_IPHLP_TCP4_MODULE] = {offsetof(MIB_TCPTABLE_OWNER_MODULE, table), sizeof(MIB_TCPROW_OWNER_MODULE)},
        [CH_IPHLP_TCP6_MODULE] = {offsetof(MIB_TCP6TABLE_OWNER_MODULE, table), sizeof(MIB_TCP6ROW_OWNER_MODULE)},
        [CH_IPHLP_UDP4_MODULE] = {offsetof(MIB_UDPTABLE_OWNER_MODULE, table), sizeof(MIB_UDPROW_OWNER_MODULE)},
        [CH_IPHLP_UDP6_MODULE] = {offsetof(MIB_UDP6TABLE_OWNER_MODULE, table), sizeof(MIB_UDP6ROW_OWNER_MODULE)},
        [CH_IPHLP_TCP4_PID] = {offsetof(MIB_TCPTABLE_OWNER_PID, table), sizeof(MIB_TCPROW_OWNER_PID)},
        [CH_IPHLP_TCP6_PID] = {offsetof(MIB_TCP6TABLE_OWNER_PID, table), sizeof(MIB_TCP6ROW_OWNER_PID)},
        [CH_IPHLP_UDP4_PID] = {offsetof(MIB_UDPTABLE_OWNER_PID, table), sizeof(MIB_UDPROW_OWNER_PID)},
        [CH_IPHLP_UDP6_PID] = {offsetof(MIB_UDP6TABLE_OWNER_PID, table), sizeof(MIB_UDP6ROW_OWNER_PID)},
    };
    *first = g[layout].first;
    *size = g[layout].size;
}

static int layout_tcp(enum ch_iphlp_layout l)
{
    return l == CH_IPHLP_TCP4_MODULE || l == CH_IPHLP_TCP6_MODULE || l == CH_IPHLP_TCP4_PID || l == CH_IPHLP_TCP6_PID;
}

static int layout_family(enum ch_iphlp_layout l)
{
    return l == CH_IPHLP_TCP6_MODULE || l == CH_IPHLP_UDP6_MODULE || l == CH_IPHLP_TCP6_PID ||
                   l == CH_IPHLP_UDP6_PID
               ? 6
               : 4;
}

/* Every row the converter made must be one the tracker can take. */
static void check_rows(enum ch_iphlp_layout layout, const ch_sample *s, uint32_t claimed)
{
    if (s->count != claimed)
        abort();
    for (size_t i = 0; i < s->count; i++) {
        ch_sock row = ch_sample_row(s, i);
        const ch_sock *r = &row;
        int family = layout_family(layout);
        if (r->proto != (layout_tcp(layout) ? CH_TCP : CH_UDP) || r->local.family != family ||
            r->remote.family != family || r->state >= CH_ST_COUNT)
            abort();
        if (!layout_tcp(layout) && (r->state != CH_ST_UNCONN || ch_sock_has_remote(r)))
            abort();
        if (r->state == CH_ST_LISTEN && ch_sock_has_remote(r))
            abort();
        if (family == 4 && (r->local_scope != 0 || r->remote_scope != 0))
            abort();
        if (r->ident >> 63 || r->ident != ch_iphlp_ident(r) || r->offload != -1)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    enum ch_iphlp_layout layout = (enum ch_iphlp_layout)(data[0] & 7);
    int set_count = data[0] & 8;
    int delta = (int8_t)data[1];
    size_t len = size - 2;
    /* NULL for an empty buffer: a table that was never filled. */
    uint8_t *buf = len ? malloc(len) : NULL;
    if (len && buf == NULL)
        return 0;
    if (len)
        memcpy(buf, data + 2, len);

    size_t first, row;
    geometry(layout, &first, &row);
    if (set_count && len >= sizeof(DWORD)) {
        int64_t fit = len >= first ? (int64_t)((len - first) / row) : 0;
        int64_t n = fit + delta;
        DWORD claimed = (DWORD)(n < 0 ? 0 : n);
        memcpy(buf, &claimed, sizeof claimed);
    }
    DWORD claimed = 0;
    if (len >= sizeof claimed)
        memcpy(&claimed, buf, sizeof claimed);
    int fits = len >= sizeof claimed && (claimed == 0 || (len >= first && claimed <= (len - first) / row));

    ch_sample s = {0};
    char err[256] = "";
    int rc = ch_iphlp_rows(layout, buf, len, &s, err, sizeof err);
    if (rc == 0) {
        if (!fits)
            abort(); /* rows made from bytes that were not there */
        check_rows(layout, &s, claimed);
    } else if (rc != -1 || fits || err[0] == '\0' || s.count != 0) {
        abort(); /* a table that fits must be taken; a refusal must say why */
    }

    /* The offload pass over the same bytes: it may only set offload states. */
    if (layout_tcp(layout)) {
        size_t before = s.count;
        ch_iphlp_offload(layout_family(layout), buf, len, &s, 0);
        if (s.count != before)
            abort();
        for (size_t i = 0; i < s.count; i++) {
            ch_sock row = ch_sample_row(&s, i);
            int offload = ch_sock_offload(&row);
            if (offload < -1 || offload > CH_OFFLOAD_UPLOADING)
                abort();
        }
    }
    ch_sample_free(&s);
    free(buf);
    return 0;
}
