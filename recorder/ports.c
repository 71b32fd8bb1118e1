/*
 * Keeping port_ranges in step (see ports.h). A check compares the ranges in
 * force with the rows still open and writes only the difference, so an
 * unchanged configuration costs no writes. The first check of a run also
 * closes what an earlier run left open and is no longer in force.
 */
#include "ports.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"
#include "timeutil.h"

typedef struct {
    ch_port_range r;
    int64_t range_id;
    bool present;  /* seen by the current check */
} open_range;

struct ch_ports {
    sqlite3 *db;
    ch_port_block watch[CH_MAX_RANGES];
    size_t nwatch;
    int64_t check_ms;
    int64_t next_check;
    int64_t last_check;     /* -1 before the first check of this run */
    open_range open[CH_MAX_RANGES];
    size_t nopen;
    bool loaded;
};

int ch_port_block_parse(const char *s, ch_port_block *out)
{
    char proto[8];
    int used = 0;
    long long first, count;
    if (sscanf(s, "%3[a-z]:%lld:%lld%n", proto, &first, &count, &used) != 3 || s[used] != '\0')
        return -1;
    if ((strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0) || first < 1 || count < 1 ||
        first + count - 1 > 65535)
        return -1;
    *out = (ch_port_block){strcmp(proto, "tcp") == 0 ? CH_TCP : CH_UDP, (uint16_t)first, (uint16_t)count};
    return 0;
}

ch_ports *ch_ports_new(sqlite3 *db, const ch_port_block *watch, size_t nwatch, int64_t check_ms)
{
    ch_ports *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->db = db;
    p->nwatch = nwatch < CH_MAX_RANGES ? nwatch : CH_MAX_RANGES;
    memcpy(p->watch, watch, p->nwatch * sizeof *watch);
    p->check_ms = check_ms;
    p->last_check = -1;
    return p;
}

void ch_ports_free(ch_ports *p)
{
    free(p);
}

static const char *kind_name(int kind)
{
    return kind == CH_RANGE_RESERVED ? "reserved" : "ephemeral";
}

static bool same_range(const ch_port_range *a, const ch_port_range *b)
{
    return a->proto == b->proto && a->kind == b->kind && a->first == b->first && a->last == b->last &&
           a->token == b->token;
}

/* The rows an earlier run left open, as the state to compare with. */
static int load_open(ch_ports *p)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT range_id, proto, kind, first_port, last_port, COALESCE(token, -1)"
                      " FROM port_ranges WHERE closed_at IS NULL LIMIT 256";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    p->nopen = 0;
    while (sqlite3_step(st) == SQLITE_ROW && p->nopen < CH_MAX_RANGES) {
        open_range *o = &p->open[p->nopen++];
        o->range_id = sqlite3_column_int64(st, 0);
        o->r.proto = strcmp((const char *)sqlite3_column_text(st, 1), "udp") == 0 ? CH_UDP : CH_TCP;
        o->r.kind = strcmp((const char *)sqlite3_column_text(st, 2), "reserved") == 0 ? CH_RANGE_RESERVED
                                                                                       : CH_RANGE_EPHEMERAL;
        o->r.first = (uint16_t)sqlite3_column_int(st, 3);
        o->r.last = (uint16_t)sqlite3_column_int(st, 4);
        o->r.token = sqlite3_column_int64(st, 5);
    }
    return sqlite3_finalize(st) == SQLITE_OK ? 0 : -1;
}

static int insert_range(ch_ports *p, const ch_port_range *r, int64_t now)
{
    sqlite3_stmt *st;
    const char *sql = "INSERT INTO port_ranges(proto, kind, first_port, last_port, token, first_seen)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, r->proto == CH_UDP ? "udp" : "tcp", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind_name(r->kind), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, r->first);
    sqlite3_bind_int(st, 4, r->last);
    if (r->token >= 0)
        sqlite3_bind_int64(st, 5, r->token);
    sqlite3_bind_int64(st, 6, now);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Closes a row: last seen by the previous check of this run (unknown when
 * an earlier run left it open), found gone now. */
static int close_range(ch_ports *p, int64_t range_id, int64_t now)
{
    sqlite3_stmt *st;
    const char *sql = "UPDATE port_ranges SET closed_at = ?2, last_seen = ?3 WHERE range_id = ?1";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, range_id);
    sqlite3_bind_int64(st, 2, now);
    if (p->last_check >= 0)
        sqlite3_bind_int64(st, 3, p->last_check);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Writes the difference between the open rows and the ranges read. */
static int write_changes(ch_ports *p, const ch_port_range *now_r, size_t n, int64_t now)
{
    for (size_t i = 0; i < p->nopen; i++)
        p->open[i].present = false;
    for (size_t j = 0; j < n; j++) {
        bool known = false;
        for (size_t i = 0; i < p->nopen && !known; i++)
            if (same_range(&p->open[i].r, &now_r[j]))
                known = p->open[i].present = true;
        if (!known && insert_range(p, &now_r[j], now) != 0)
            return -1;
    }
    for (size_t i = 0; i < p->nopen; i++)
        if (!p->open[i].present && close_range(p, p->open[i].range_id, now) != 0)
            return -1;
    return 0;
}

int ch_ports_step(ch_ports *p, int64_t now, const char **note, char *err, size_t errn)
{
    *note = NULL;
    if (p->last_check >= 0 && now < p->next_check)
        return 0;
    p->next_check = now + p->check_ms;
    ch_port_range ranges[CH_MAX_RANGES];
    size_t n;
    if (ch_ports_read(p->watch, p->nwatch, ranges, &n, note, err, errn) != 0)
        return -1;
    int rc = sqlite3_exec(p->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK && (!p->loaded ? load_open(p) : 0) == 0 && write_changes(p, ranges, n, now) == 0 &&
        sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
        p->loaded = true;
        p->last_check = now;
        return load_open(p); /* the new row ids */
    }
    snprintf(err, errn, "cannot record port ranges, will retry: %s", sqlite3_errmsg(p->db));
    if (!sqlite3_get_autocommit(p->db))
        sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}
