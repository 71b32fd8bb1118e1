/*
 * A stand-in for the Windows IP Helper headers, so recorder/windows/iphlp_rows.c
 * (the Windows sampler's pure half) builds on Linux for fuzzing. It
 * declares only what that file uses, written from Microsoft's documentation
 * of each structure (learn.microsoft.com, tcpmib.h / udpmib.h /
 * tcpestats.h pages; iphlpapi.h includes tcpestats.h on Windows too).
 *
 * The layouts must be the ones Windows fills: DWORD is 32 bits there (LLP64)
 * but unsigned long is 64 bits on Linux, so the integer types are spelled
 * out; LARGE_INTEGER is 8-byte aligned, which puts 4 bytes of padding after
 * dwNumEntries in the tables whose rows hold one. The sizes checked at the
 * end are those of x64 Windows.
 */
#ifndef CH_FUZZ_IPHLPAPI_SHIM_H
#define CH_FUZZ_IPHLPAPI_SHIM_H

#include <stddef.h>
#include <stdint.h>

typedef uint32_t DWORD;
typedef int32_t LONG;
typedef uint32_t ULONG;
typedef uint8_t UCHAR;
typedef uint8_t BOOLEAN;
typedef uint64_t ULONGLONG;
typedef uint64_t ULONG64;
typedef int64_t LONGLONG;

typedef union {
    struct {
        DWORD LowPart;
        LONG HighPart;
    };
    LONGLONG QuadPart;
} LARGE_INTEGER;

typedef struct {
    union {
        UCHAR Byte[16];
        uint16_t Word[8];
    } u;
} IN6_ADDR;

#define ANY_SIZE 1
#define TCPIP_OWNING_MODULE_SIZE 16

#define NO_ERROR 0UL
#define ERROR_NOT_ENOUGH_MEMORY 8UL
#define ERROR_INSUFFICIENT_BUFFER 122UL

typedef enum {
    MIB_TCP_STATE_CLOSED = 1,
    MIB_TCP_STATE_LISTEN = 2,
    MIB_TCP_STATE_SYN_SENT = 3,
    MIB_TCP_STATE_SYN_RCVD = 4,
    MIB_TCP_STATE_ESTAB = 5,
    MIB_TCP_STATE_FIN_WAIT1 = 6,
    MIB_TCP_STATE_FIN_WAIT2 = 7,
    MIB_TCP_STATE_CLOSE_WAIT = 8,
    MIB_TCP_STATE_CLOSING = 9,
    MIB_TCP_STATE_LAST_ACK = 10,
    MIB_TCP_STATE_TIME_WAIT = 11,
    MIB_TCP_STATE_DELETE_TCB = 12,
} MIB_TCP_STATE;

typedef enum {
    TcpConnectionOffloadStateInHost = 0,
    TcpConnectionOffloadStateOffloading = 1,
    TcpConnectionOffloadStateOffloaded = 2,
    TcpConnectionOffloadStateUploading = 3,
    TcpConnectionOffloadStateMax = 4,
} TCP_CONNECTION_OFFLOAD_STATE;

/* GetExtendedTcpTable, TCP_TABLE_OWNER_MODULE_ALL, AF_INET / AF_INET6 */
typedef struct {
    DWORD dwState, dwLocalAddr, dwLocalPort, dwRemoteAddr, dwRemotePort, dwOwningPid;
    LARGE_INTEGER liCreateTimestamp;
    ULONGLONG OwningModuleInfo[TCPIP_OWNING_MODULE_SIZE];
} MIB_TCPROW_OWNER_MODULE;
typedef struct {
    DWORD dwNumEntries;
    MIB_TCPROW_OWNER_MODULE table[ANY_SIZE];
} MIB_TCPTABLE_OWNER_MODULE;

typedef struct {
    UCHAR ucLocalAddr[16];
    DWORD dwLocalScopeId, dwLocalPort;
    UCHAR ucRemoteAddr[16];
    DWORD dwRemoteScopeId, dwRemotePort, dwState, dwOwningPid;
    LARGE_INTEGER liCreateTimestamp;
    ULONGLONG OwningModuleInfo[TCPIP_OWNING_MODULE_SIZE];
} MIB_TCP6ROW_OWNER_MODULE;
typedef struct {
    DWORD dwNumEntries;
    MIB_TCP6ROW_OWNER_MODULE table[ANY_SIZE];
} MIB_TCP6TABLE_OWNER_MODULE;

/* GetExtendedUdpTable, UDP_TABLE_OWNER_MODULE */
typedef struct {
    DWORD dwLocalAddr, dwLocalPort, dwOwningPid;
    LARGE_INTEGER liCreateTimestamp;
    union {
        struct {
            int SpecificPortBind : 1;
        };
        int dwFlags;
    };
    ULONGLONG OwningModuleInfo[TCPIP_OWNING_MODULE_SIZE];
} MIB_UDPROW_OWNER_MODULE;
typedef struct {
    DWORD dwNumEntries;
    MIB_UDPROW_OWNER_MODULE table[ANY_SIZE];
} MIB_UDPTABLE_OWNER_MODULE;

typedef struct {
    UCHAR ucLocalAddr[16];
    DWORD dwLocalScopeId, dwLocalPort, dwOwningPid;
    LARGE_INTEGER liCreateTimestamp;
    union {
        struct {
            int SpecificPortBind : 1;
        };
        int dwFlags;
    };
    ULONGLONG OwningModuleInfo[TCPIP_OWNING_MODULE_SIZE];
} MIB_UDP6ROW_OWNER_MODULE;
typedef struct {
    DWORD dwNumEntries;
    MIB_UDP6ROW_OWNER_MODULE table[ANY_SIZE];
} MIB_UDP6TABLE_OWNER_MODULE;

/* The _OWNER_PID classes: the same rows without timestamp and module. */
typedef struct {
    DWORD dwState, dwLocalAddr, dwLocalPort, dwRemoteAddr, dwRemotePort, dwOwningPid;
} MIB_TCPROW_OWNER_PID;
typedef struct {
    DWORD dwNumEntries;
    MIB_TCPROW_OWNER_PID table[ANY_SIZE];
} MIB_TCPTABLE_OWNER_PID;

typedef struct {
    UCHAR ucLocalAddr[16];
    DWORD dwLocalScopeId, dwLocalPort;
    UCHAR ucRemoteAddr[16];
    DWORD dwRemoteScopeId, dwRemotePort, dwState, dwOwningPid;
} MIB_TCP6ROW_OWNER_PID;
typedef struct {
    DWORD dwNumEntries;
    MIB_TCP6ROW_OWNER_PID table[ANY_SIZE];
} MIB_TCP6TABLE_OWNER_PID;

typedef struct {
    DWORD dwLocalAddr, dwLocalPort, dwOwningPid;
} MIB_UDPROW_OWNER_PID;
typedef struct {
    DWORD dwNumEntries;
    MIB_UDPROW_OWNER_PID table[ANY_SIZE];
} MIB_UDPTABLE_OWNER_PID;

typedef struct {
    UCHAR ucLocalAddr[16];
    DWORD dwLocalScopeId, dwLocalPort, dwOwningPid;
} MIB_UDP6ROW_OWNER_PID;
typedef struct {
    DWORD dwNumEntries;
    MIB_UDP6ROW_OWNER_PID table[ANY_SIZE];
} MIB_UDP6TABLE_OWNER_PID;

/* GetTcpTable2 / GetTcp6Table2 */
typedef struct {
    DWORD dwState, dwLocalAddr, dwLocalPort, dwRemoteAddr, dwRemotePort, dwOwningPid;
    TCP_CONNECTION_OFFLOAD_STATE dwOffloadState;
} MIB_TCPROW2;
typedef struct {
    DWORD dwNumEntries;
    MIB_TCPROW2 table[ANY_SIZE];
} MIB_TCPTABLE2;

typedef struct {
    IN6_ADDR LocalAddr;
    DWORD dwLocalScopeId, dwLocalPort;
    IN6_ADDR RemoteAddr;
    DWORD dwRemoteScopeId, dwRemotePort;
    MIB_TCP_STATE State;
    DWORD dwOwningPid;
    TCP_CONNECTION_OFFLOAD_STATE dwOffloadState;
} MIB_TCP6ROW2;
typedef struct {
    DWORD dwNumEntries;
    MIB_TCP6ROW2 table[ANY_SIZE];
} MIB_TCP6TABLE2;

/* GetPerTcpConnectionEStats / SetPerTcpConnectionEStats name a connection
 * by these (tcpmib.h; the IPv4 state is a union of DWORD and enum). */
typedef struct {
    union {
        DWORD dwState;
        MIB_TCP_STATE State;
    };
    DWORD dwLocalAddr, dwLocalPort, dwRemoteAddr, dwRemotePort;
} MIB_TCPROW;

typedef struct {
    MIB_TCP_STATE State;
    IN6_ADDR LocalAddr;
    DWORD dwLocalScopeId, dwLocalPort;
    IN6_ADDR RemoteAddr;
    DWORD dwRemoteScopeId, dwRemotePort;
} MIB_TCP6ROW;

/* TcpConnectionEstatsData (tcpestats.h): read/write and read-only dynamic. */
typedef struct {
    BOOLEAN EnableCollection;
} TCP_ESTATS_DATA_RW_v0;

typedef struct {
    ULONG64 DataBytesOut, DataSegsOut, DataBytesIn, DataSegsIn, SegsOut, SegsIn;
    ULONG SoftErrors, SoftErrorReason, SndUna, SndNxt, SndMax;
    ULONG64 ThruBytesAcked;
    ULONG RcvNxt;
    ULONG64 ThruBytesReceived;
} TCP_ESTATS_DATA_ROD_v0;

/* What x64 Windows has: a shim that drifts from it would fuzz another layout. */
_Static_assert(sizeof(MIB_TCPROW_OWNER_MODULE) == 160, "MIB_TCPROW_OWNER_MODULE");
_Static_assert(sizeof(MIB_TCP6ROW_OWNER_MODULE) == 192, "MIB_TCP6ROW_OWNER_MODULE");
_Static_assert(sizeof(MIB_UDPROW_OWNER_MODULE) == 160, "MIB_UDPROW_OWNER_MODULE");
_Static_assert(sizeof(MIB_UDP6ROW_OWNER_MODULE) == 176, "MIB_UDP6ROW_OWNER_MODULE");
_Static_assert(sizeof(MIB_TCPROW_OWNER_PID) == 24 && sizeof(MIB_TCP6ROW_OWNER_PID) == 56, "owner pid rows");
_Static_assert(sizeof(MIB_UDPROW_OWNER_PID) == 12 && sizeof(MIB_UDP6ROW_OWNER_PID) == 28, "owner pid rows");
_Static_assert(sizeof(MIB_TCPROW2) == 28 && sizeof(MIB_TCP6ROW2) == 60, "table2 rows");
_Static_assert(offsetof(MIB_TCPTABLE_OWNER_MODULE, table) == 8, "padding before the first row");
_Static_assert(offsetof(MIB_TCPTABLE_OWNER_PID, table) == 4, "no padding before the first row");
_Static_assert(sizeof(MIB_TCPROW) == 20 && sizeof(MIB_TCP6ROW) == 52, "estats connection rows");
_Static_assert(offsetof(MIB_TCP6ROW, dwRemotePort) == 48, "MIB_TCP6ROW");
_Static_assert(sizeof(TCP_ESTATS_DATA_RW_v0) == 1 && sizeof(TCP_ESTATS_DATA_ROD_v0) == 96, "estats data");
_Static_assert(offsetof(TCP_ESTATS_DATA_ROD_v0, ThruBytesAcked) == 72, "padding after SndMax");
_Static_assert(offsetof(TCP_ESTATS_DATA_ROD_v0, ThruBytesReceived) == 88, "padding after RcvNxt");

#endif
