/*
 * Port ranges on Windows. There is no call that lists persistent port
 * reservations, only LookupPersistentTcpPortReservation / ...Udp... for a
 * block named exactly as it was created, so the recorder watches the blocks
 * given with --reservation. Both functions are looked up at run time: they
 * are missing before Vista and under Wine, and then nothing is recorded and
 * a note says so once. The ephemeral range is not read (no documented call
 * gives it): it stays unknown rather than assumed.
 */
#include "ports.h"

#include <winsock2.h>
#include <windows.h>
#include <iphlpapi.h>

#include "sample.h"

typedef ULONG(WINAPI *lookup_fn)(USHORT start, USHORT count, PULONG64 token);

static lookup_fn find_lookup(int proto)
{
    HMODULE lib = GetModuleHandleW(L"iphlpapi.dll");
    const char *name = proto == CH_UDP ? "LookupPersistentUdpPortReservation" : "LookupPersistentTcpPortReservation";
    return lib != NULL ? (lookup_fn)(void (*)(void))GetProcAddress(lib, name) : NULL;
}

int ch_ports_read(const ch_port_block *watch, size_t nwatch, ch_port_range *out, size_t *n, const char **note,
                  char *err, size_t errn)
{
    static int noted;
    (void)err;
    (void)errn;
    *n = 0;
    *note = NULL;
    for (size_t i = 0; i < nwatch && *n < CH_MAX_RANGES; i++) {
        lookup_fn lookup = find_lookup(watch[i].proto);
        if (lookup == NULL) {
            if (!noted++)
                *note = "LookupPersistent*PortReservation is not available: port reservations not recorded";
            continue;
        }
        ULONG64 token = 0;
        /* The start port goes in network byte order. */
        if (lookup(htons(watch[i].first), watch[i].count, &token) != NO_ERROR)
            continue; /* ERROR_NOT_FOUND: not reserved now */
        out[(*n)++] = (ch_port_range){watch[i].proto, CH_RANGE_RESERVED, watch[i].first,
                                      (uint16_t)(watch[i].first + watch[i].count - 1), (int64_t)token};
    }
    return 0;
}
