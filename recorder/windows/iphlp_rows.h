/*
 * Rows from Windows IP Helper tables: the pure half of the Windows sampler.
 * It turns the buffers GetExtendedTcpTable, GetExtendedUdpTable and
 * GetTcpTable2 fill into neutral rows, and runs the size-then-fill loop
 * those functions need, with the table fetch passed in. Nothing here calls
 * Windows, so tests build the buffers themselves and drive every path.
 *
 * It also does the pure half of the TCP byte counters: the row that names
 * a connection to Get/SetPerTcp*ConnectionEStats, and the counters from
 * what they return.
 *
 * Only the IP Helper types are used (iphlpapi.h, which includes
 * tcpestats.h); this header is included by Windows files only (and by the
 * fuzz build, against fuzz/win_shim/).
 */
#ifndef CH_IPHLP_ROWS_H
#define CH_IPHLP_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <winsock2.h>
#include <ws2ipdef.h>
#include <iphlpapi.h>

#include "sample.h"

/* Which row layout a table buffer holds. */
enum ch_iphlp_layout {
    CH_IPHLP_TCP4_MODULE, /* MIB_TCPTABLE_OWNER_MODULE */
    CH_IPHLP_TCP6_MODULE, /* MIB_TCP6TABLE_OWNER_MODULE */
    CH_IPHLP_UDP4_MODULE, /* MIB_UDPTABLE_OWNER_MODULE */
    CH_IPHLP_UDP6_MODULE, /* MIB_UDP6TABLE_OWNER_MODULE */
    CH_IPHLP_TCP4_PID,    /* MIB_TCPTABLE_OWNER_PID */
    CH_IPHLP_TCP6_PID,    /* MIB_TCP6TABLE_OWNER_PID */
    CH_IPHLP_UDP4_PID,    /* MIB_UDPTABLE_OWNER_PID */
    CH_IPHLP_UDP6_PID,    /* MIB_UDP6TABLE_OWNER_PID */
};

/*
 * Appends one neutral row per table entry of buf (len bytes, as filled).
 * Ports come in network byte order in the low 16 bits of a DWORD;
 * liCreateTimestamp (a FILETIME, 0 on Wine) becomes row->created, and the
 * row's identity is a hash of it, the addresses and the pid — or 0 (the
 * tracker then keys the row by its addresses) when both creation time and
 * pid are 0, as for TIME_WAIT rows, so a connection that moves to
 * TIME_WAIT keeps its lifetime. Returns 0; -1 when the buffer is shorter
 * than its entry count says (err says so) or out of memory.
 */
int ch_iphlp_rows(enum ch_iphlp_layout layout, const void *buf, size_t len, ch_sample *out, char *err, size_t errn);

/*
 * Sets the offload state of the TCP rows out->rows[from..] from a
 * MIB_TCPTABLE2 (family 4) or MIB_TCP6TABLE2 (family 6) buffer, matching by
 * addresses, ports and scope ids. Rows not in that table keep -1.
 */
void ch_iphlp_offload(int family, const void *buf, size_t len, ch_sample *out, size_t from);

/* The identity hash described above; 0 when created and pid are both 0. */
uint64_t ch_iphlp_ident(const ch_sock *row);

/* ms since 1970 UTC of a FILETIME count of 100 ns since 1601; 0 (unknown)
 * for 0 and for any time not after 1970. */
int64_t ch_iphlp_filetime_ms(int64_t filetime);

/*
 * Whether the extended statistics of row can be asked for: a TCP connection
 * with a peer and a live TCB (not LISTEN, TIME_WAIT, CLOSE or an unknown
 * state, which estats has nothing for).
 */
bool ch_iphlp_estats_wanted(const ch_sock *row);

/*
 * The MIB_TCPROW (IPv4) or MIB_TCP6ROW (IPv6) naming row's connection, as
 * GetPerTcp*ConnectionEStats and SetPerTcp*ConnectionEStats take it: the
 * addresses and scope ids as the tables gave them, the ports back in
 * network byte order in the low 16 bits (high bits zero), the state.
 * Returns 0, or -1 (out untouched) when row is not TCP of that family.
 */
int ch_iphlp_tcp_row(const ch_sock *row, MIB_TCPROW *out);
int ch_iphlp_tcp6_row(const ch_sock *row, MIB_TCP6ROW *out);

/*
 * Sets row->bytes_sent and row->bytes_received from what
 * GetPerTcp*ConnectionEStats(TcpConnectionEstatsData) filled in: rw says
 * whether collection is enabled, rod holds the counters only if it is.
 * Both stay -1 (unknown, stored NULL) when it is not, and a count beyond
 * INT64_MAX is unknown too. Which counters, and why: see iphlp_rows.c.
 */
void ch_iphlp_estats_bytes(const TCP_ESTATS_DATA_RW_v0 *rw, const TCP_ESTATS_DATA_ROD_v0 *rod, ch_sock *row);

/*
 * A table fetch: fills buf (*size bytes) and returns NO_ERROR, or returns
 * ERROR_INSUFFICIENT_BUFFER with *size set to what it needs, or another
 * Win32 error. ctx is the caller's.
 */
typedef unsigned long (*ch_iphlp_fetch)(void *ctx, void *buf, unsigned long *size);

/* A buffer reused across samples. */
typedef struct {
    void *data;
    unsigned long cap;  /* bytes allocated */
    unsigned long len;  /* bytes of the last fill */
} ch_iphlp_buf;

#define CH_IPHLP_TRIES 8

/*
 * The size/fill race: the table can grow between the call that says how
 * big it is and the call that fills it. Asks, allocates what was asked plus
 * a quarter of slack, fills, and on ERROR_INSUFFICIENT_BUFFER starts again,
 * at most CH_IPHLP_TRIES times. Returns NO_ERROR, the last error, or
 * ERROR_INSUFFICIENT_BUFFER when the table kept outgrowing the buffer
 * (transient: the caller tries again next sample), or ERROR_NOT_ENOUGH_MEMORY.
 */
unsigned long ch_iphlp_fill(ch_iphlp_fetch fetch, void *ctx, ch_iphlp_buf *b);

void ch_iphlp_buf_free(ch_iphlp_buf *b);

#endif
