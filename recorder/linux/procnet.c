/*
 * Parser for the kernel's /proc/net socket tables. The kernel prints each
 * address as the raw in-memory 32-bit words of the network-order address in
 * hex (so on little-endian machines 127.0.0.1 reads "0100007F"), and ports in
 * host order. Columns, per proc(5): sl, local, remote, st, tx:rx queues,
 * timer, retransmits, uid, timeout, inode, ...
 */
#define _POSIX_C_SOURCE 200809L
#include "procnet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses n hex digits at *p into *v, advancing *p. */
static int hex_word(const char **p, int n, uint32_t *v)
{
    uint32_t x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        x = x << 4 | (uint32_t)d;
    }
    *p += n;
    *v = x;
    return 0;
}

/* "ADDR:PORT" where ADDR is 8 (IPv4) or 32 (IPv6) hex digits. */
static int parse_endpoint(const char **p, int family, ch_addr *addr, uint16_t *port)
{
    addr->family = family;
    int words = family == 6 ? 4 : 1;
    for (int i = 0; i < words; i++) {
        uint32_t w;
        if (hex_word(p, 8, &w) != 0)
            return -1;
        /* The word is the address bytes as this machine stores them. */
        memcpy(addr->bytes + 4 * i, &w, 4);
    }
    uint32_t port32;
    if (*(*p)++ != ':' || hex_word(p, 4, &port32) != 0)
        return -1;
    *port = (uint16_t)port32;
    return 0;
}

static void skip_spaces(const char **p)
{
    while (**p == ' ')
        (*p)++;
}

/* Skips one whitespace-separated field. */
static void skip_field(const char **p)
{
    skip_spaces(p);
    while (**p != ' ' && **p != '\0' && **p != '\n')
        (*p)++;
}

static int parse_decimal(const char **p, uint64_t *v)
{
    skip_spaces(p);
    char *end;
    errno = 0;
    unsigned long long x = strtoull(*p, &end, 10);
    if (end == *p || errno != 0)
        return -1;
    *p = end;
    *v = x;
    return 0;
}

int ch_procnet_parse_line(const char *line, int proto, int family, ch_sock *out)
{
    const char *p = line;
    skip_spaces(&p);
    if (strncmp(p, "sl", 2) == 0)
        return 0;
    memset(out, 0, sizeof *out);
    out->bytes_sent = out->bytes_received = -1; /* /proc/net has no byte counters */
    out->proto = (uint8_t)proto;
    skip_field(&p); /* "N:" slot number */
    skip_spaces(&p);
    if (parse_endpoint(&p, family, &out->local, &out->local_port) != 0)
        return -1;
    skip_spaces(&p);
    if (parse_endpoint(&p, family, &out->remote, &out->remote_port) != 0)
        return -1;
    skip_spaces(&p);
    uint32_t st;
    if (hex_word(&p, 2, &st) != 0 || st == 0 || st >= CH_ST_UNCONN)
        return -1;
    out->state = (uint8_t)st;
    /* UDP reuses TCP_CLOSE for a socket with no peer. */
    if (proto == CH_UDP && st == CH_ST_CLOSE)
        out->state = CH_ST_UNCONN;
    skip_field(&p); /* tx_queue:rx_queue */
    skip_field(&p); /* tr:tm->when */
    skip_field(&p); /* retrnsmt */
    uint64_t uid, timeout, inode;
    if (parse_decimal(&p, &uid) != 0 || parse_decimal(&p, &timeout) != 0 || parse_decimal(&p, &inode) != 0)
        return -1;
    out->uid = uid < CH_UID_UNKNOWN ? (uint32_t)uid : CH_UID_UNKNOWN;
    out->inode = inode <= UINT32_MAX ? (uint32_t)inode : 0; /* socket inodes are 32-bit */
    out->ident = inode; /* 0 in TIME_WAIT: the tracker matches those by address */
    return 1;
}

static int read_table(const char *path, int proto, int family, ch_sample *out, char *err, size_t errn)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT ? 1 : -1;
    char line[512];
    int rc = 0;
    unsigned long lineno = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        ch_sock row;
        int r = ch_procnet_parse_line(line, proto, family, &row);
        if (r < 0) {
            snprintf(err, errn, "%s line %lu: malformed socket row", path, lineno);
            rc = -1;
            break;
        }
        if (r == 0)
            continue;
        ch_sock *slot = ch_sample_add(out);
        if (slot == NULL) {
            snprintf(err, errn, "out of memory reading %s", path);
            rc = -1;
            break;
        }
        *slot = row;
    }
    fclose(f);
    return rc;
}

int ch_procnet_read(const char *dir, ch_sample *out, char *err, size_t errn)
{
    static const struct { const char *name; int proto, family; } tables[] = {
        {"tcp", CH_TCP, 4}, {"tcp6", CH_TCP, 6}, {"udp", CH_UDP, 4}, {"udp6", CH_UDP, 6},
    };
    int read_any = 0;
    err[0] = '\0';
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, tables[i].name);
        int rc = read_table(path, tables[i].proto, tables[i].family, out, err, errn);
        if (rc < 0) {
            if (err[0] == '\0')
                snprintf(err, errn, "cannot read %s: %s", path, strerror(errno));
            return -1;
        }
        read_any |= rc == 0;
    }
    if (!read_any) {
        snprintf(err, errn, "no socket tables under %s", dir);
        return -1;
    }
    return 0;
}
