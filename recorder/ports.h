/*
 * Port ranges in force over time: the ephemeral range the OS picks client
 * ports from, and reserved blocks (Linux ip_local_reserved_ports; Windows
 * persistent port reservations of the blocks given with --reservation).
 * With them, "which process used port N" can also say whether N was an
 * ephemeral port or lay in a reserved block at the time.
 *
 * ports_linux.c and ports_windows.c read what is in force; ports.c keeps
 * the port_ranges table in step, like lifetimes: a row per range from the
 * check that first saw it to the check that found it gone.
 */
#ifndef CH_PORTS_H
#define CH_PORTS_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

enum ch_range_kind { CH_RANGE_EPHEMERAL = 1, CH_RANGE_RESERVED = 2 };

typedef struct {
    uint8_t proto;   /* CH_TCP or CH_UDP */
    uint8_t kind;    /* enum ch_range_kind */
    uint16_t first;  /* first and last port, inclusive */
    uint16_t last;
    int64_t token;   /* Windows reservation token; -1 when none */
} ch_port_range;

/* A block the user asked to watch: --reservation tcp:5000:20. */
typedef struct {
    uint8_t proto;
    uint16_t first;
    uint16_t count;
} ch_port_block;

#define CH_MAX_RANGES 256

/*
 * Reads the ranges in force now into out (at most CH_MAX_RANGES) and sets
 * *n. Watched blocks found reserved are among them. *note, when set, says
 * once what could not be read (a missing Windows function). Returns 0, or
 * -1 with a message in err.
 */
int ch_ports_read(const ch_port_block *watch, size_t nwatch, ch_port_range *out, size_t *n, const char **note,
                  char *err, size_t errn);

/* Parses "tcp:5000:20" (protocol, first port, number of ports). 0 or -1. */
int ch_port_block_parse(const char *s, ch_port_block *out);

typedef struct ch_ports ch_ports;

/* Keeps port_ranges of db in step, checking every check_ms. */
ch_ports *ch_ports_new(sqlite3 *db, const ch_port_block *watch, size_t nwatch, int64_t check_ms);
void ch_ports_free(ch_ports *p);

/*
 * When a check is due at now: reads the ranges and writes what opened or
 * closed since the last check (nothing when nothing changed). Returns 0, or
 * -1 with a message in err; *note as for ch_ports_read.
 */
int ch_ports_step(ch_ports *p, int64_t now, const char **note, char *err, size_t errn);

#endif
