/*
 * libFuzzer target: one line of /proc/net/{tcp,tcp6,udp,udp6}. The first
 * byte picks the table (protocol and family), the rest is the line. A row
 * the parser accepts must be a row the tracker can take: its state in
 * range and its addresses of the table's family.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_text.h"
#include "procnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int proto = data[0] & 1 ? CH_UDP : CH_TCP;
    int family = data[0] & 2 ? 6 : 4;
    char *line = fuzz_cstring(data + 1, size - 1); /* as fgets leaves it */
    if (line == NULL)
        return 0;
    ch_sock row;
    int rc = ch_procnet_parse_line(line, proto, family, &row);
    if (rc < -1 || rc > 1)
        abort();
    if (rc == 1 && (row.state == CH_ST_UNKNOWN || row.state >= CH_ST_COUNT || row.proto != proto ||
                    row.local.family != family || row.remote.family != family))
        abort();
    free(line);
    return 0;
}
