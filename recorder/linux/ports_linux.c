/*
 * Port ranges on Linux: net.ipv4.ip_local_port_range (the ephemeral range)
 * and net.ipv4.ip_local_reserved_ports (ports kept out of it, "8080,9000-9010").
 * Both apply to TCP and UDP, IPv4 and IPv6. Reservations are complete here,
 * so watched blocks add nothing: a block is reserved when its ports are in
 * the list.
 */
#define _POSIX_C_SOURCE 200809L
#include "ports.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

#define RANGE_FILE "/proc/sys/net/ipv4/ip_local_port_range"
#define RESERVED_FILE "/proc/sys/net/ipv4/ip_local_reserved_ports"

static int read_text(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    size_t got = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[got] = '\0';
    return 0;
}

/* Adds the range for TCP and for UDP. */
static int add_both(ch_port_range *out, size_t *n, int kind, long first, long last)
{
    if (first < 1 || last > 65535 || first > last)
        return -1;
    for (int proto = CH_TCP; proto <= CH_UDP; proto++) {
        if (*n == CH_MAX_RANGES)
            return 0; /* more than we keep: the rest is left out */
        out[(*n)++] = (ch_port_range){(uint8_t)proto, (uint8_t)kind, (uint16_t)first, (uint16_t)last, -1};
    }
    return 0;
}

/* "8080,9000-9010" into reserved ranges. */
static int parse_reserved(const char *text, ch_port_range *out, size_t *n)
{
    const char *p = text;
    while (*p != '\0' && *p != '\n') {
        char *end;
        long first = strtol(p, &end, 10), last = first;
        if (end == p)
            return -1;
        if (*end == '-') {
            p = end + 1;
            last = strtol(p, &end, 10);
            if (end == p)
                return -1;
        }
        if (add_both(out, n, CH_RANGE_RESERVED, first, last) != 0)
            return -1;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

int ch_ports_read(const ch_port_block *watch, size_t nwatch, ch_port_range *out, size_t *n, const char **note,
                  char *err, size_t errn)
{
    (void)watch;
    (void)nwatch;
    *n = 0;
    *note = NULL;
    char buf[65536];
    long first, last;
    if (read_text(RANGE_FILE, buf, sizeof buf) != 0 || sscanf(buf, "%ld %ld", &first, &last) != 2 ||
        add_both(out, n, CH_RANGE_EPHEMERAL, first, last) != 0) {
        snprintf(err, errn, "cannot read the ephemeral port range from %s: %s", RANGE_FILE, strerror(errno));
        return -1;
    }
    /* Older kernels and some containers have no reserved-ports file: none reserved. */
    if (read_text(RESERVED_FILE, buf, sizeof buf) == 0 && parse_reserved(buf, out, n) != 0) {
        snprintf(err, errn, "cannot parse %s: '%.60s'", RESERVED_FILE, buf);
        return -1;
    }
    return 0;
}
