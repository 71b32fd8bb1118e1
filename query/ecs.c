/*
 * ECS documents of lifetimes (see ecs.h).
 *
 * Which end is the source: ECS's source is the side that opened the
 * connection. The recorder does not see the SYN, so network.direction is
 * worked out from what it did see: a lifetime first seen in SYN_SENT is
 * egress and one first seen in SYN_RECV or NEW_SYN_RECV is ingress; other
 * TCP connections are ingress when a TCP listener held their local port
 * while they were open (an accepted socket shares its listener's port; the
 * listener may be first seen a sample after the connections it accepted,
 * so not only at the connection's first sample), else egress. UDP has no such evidence: no direction,
 * and the local end is the source. A TCP listener's local end is the
 * destination of what it will accept; any other lifetime without a remote
 * end (unconnected UDP) has its local end as the source.
 *
 * An IPv4 peer of a dual-stack socket (::ffff:a.b.c.d) is written as the
 * IPv4 address it is, with network.type ipv4: that is what a sensor on the
 * wire (Zeek, Suricata) records, and the Community ID must agree with it.
 */
#include "ecs.h"

#include <cjson/cJSON.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "codes.h"
#include "community_id.h"
#include "names.h"
#include "rowjson.h"
#include "utf8.h"
#include "timeutil.h"

/* Column numbers of ECS_COLUMNS. */
enum {
    C_ID, C_PROTO, C_FAMILY, C_LOCAL_ADDR, C_LOCAL_PORT, C_REMOTE_ADDR, C_REMOTE_PORT, C_STATE, C_STATES,
    C_FIRST_SEEN, C_LAST_SEEN, C_CLOSED_AT, C_CLOSE_REASON, C_HOLDERS, C_OWNER_SOURCE, C_SEEN_BY,
    C_OPENED_AFTER, C_BYTES_SENT, C_BYTES_RECEIVED, C_RUN_ID, C_SOCKET_UID, C_PROC_ID
};

enum { STATE_SYN_SENT = 2, STATE_SYN_RECV = 3, STATE_LISTEN = 10, STATE_NEW_SYN_RECV = 12 };
enum { PROTO_TCP = 6 };

/* The address cache is direct-mapped by addr_id, as many slots as the
 * dictionary has ids (a power of two; ids count up from 1, so none share a
 * slot) within these bounds: about 5 to 20 MB. With 65,536 slots, the
 * 100,000 remotes of a busy server's month missed a third of the time, a
 * statement each (a tenth of an export's CPU). */
#define ADDR_SLOTS_MIN 65536
#define ADDR_SLOTS_MAX 262144
#define RUN_SLOTS 256   /* a power of two */
#define PROC_SLOTS 4096 /* a power of two */
#define PORTS 65536

/* An address of the addrs dictionary, unmapped (see above), by addr_id. */
typedef struct {
    int64_t id; /* 0: empty */
    bool ok;    /* parsed; false for text that is no address */
    ch_addr addr;
    char text[CH_ADDR_TEXT];
} addr_slot;

/* A run: the host it recorded and its OS, split into ECS's host.os.*. */
typedef struct {
    int64_t run_id; /* 0: empty */
    char host[256];
    const char *os_type; /* "linux", "windows" or NULL */
    char os_name[32];
    char os_version[64];
    char *json; /* its host object */
    size_t json_len;
} run_slot;

/* A process of the processes table, by proc_id; text NULL when unknown. */
typedef struct {
    int64_t proc_id; /* 0: empty */
    int64_t pid, start, uid;
    bool has_uid;
    char *name, *path, *cmdline, *user;
    char *json, *user_json; /* its process and user objects, built for host */
    size_t json_len, user_json_len;
    char host[256];
} proc_slot;

/* When TCP listeners held a port: [start, end] intervals (end INT64_MAX
 * while open at the time it was read). */
typedef struct {
    int64_t start, end;
} span;

typedef struct {
    span *spans;
    int n, cap;
} port_spans;

struct ecs_writer {
    sqlite3 *db;
    sqlite3_stmt *addr_lookup, *run_lookup, *proc_lookup;
    char database_id[300];
    size_t database_id_len;
    addr_slot *addrs;      /* addr_mask + 1 slots */
    size_t addr_mask;
    run_slot runs[RUN_SLOTS];
    proc_slot procs[PROC_SLOTS];
    port_spans *listeners; /* PORTS entries */
    bool has_answers;      /* dns_answers has rows: the domain join is worth asking */
};

static bool is_null(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL;
}

/* ---- the database's identity, its addresses and runs -------------------- */

static int read_database_id(ecs_writer *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(e->db, "SELECT host, started_at FROM runs ORDER BY run_id LIMIT 1", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(e->database_id, sizeof e->database_id, "%s:%lld", (const char *)sqlite3_column_text(st, 0),
                 (long long)sqlite3_column_int64(st, 1));
    e->database_id_len = strlen(e->database_id);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* The address of addr_id id, or NULL when the dictionary has none. */
static const addr_slot *address(ecs_writer *e, int64_t id)
{
    addr_slot *s = &e->addrs[(uint64_t)id & e->addr_mask];
    if (s->id == id && id != 0)
        return s;
    sqlite3_bind_int64(e->addr_lookup, 1, id);
    const char *text = sqlite3_step(e->addr_lookup) == SQLITE_ROW
                           ? (const char *)sqlite3_column_text(e->addr_lookup, 0)
                           : NULL;
    if (text == NULL) {
        sqlite3_reset(e->addr_lookup);
        return NULL;
    }
    s->id = id;
    s->ok = ch_addr_parse(text, &s->addr) == 0;
    if (s->ok && s->addr.family == 6 && memcmp(s->addr.bytes, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
        s->addr.family = 4;
        memmove(s->addr.bytes, s->addr.bytes + 12, 4);
        memset(s->addr.bytes + 4, 0, 12);
    }
    if (s->ok)
        ch_addr_format(&s->addr, s->text);
    else
        snprintf(s->text, sizeof s->text, "%s", text);
    sqlite3_reset(e->addr_lookup);
    return s;
}

/* Splits runs.os ("Linux 6.1.0-18-amd64", "Windows 10.0.19045"). */
static void split_os(run_slot *r, const char *os)
{
    const char *space = strchr(os, ' ');
    const char *version = space != NULL ? space + 1 : "";
    size_t name_len = space != NULL ? (size_t)(space - os) : strlen(os);
    r->os_type = NULL;
    if (name_len == 5 && strncmp(os, "Linux", 5) == 0)
        r->os_type = "linux";
    else if (name_len == 7 && strncmp(os, "Windows", 7) == 0)
        r->os_type = "windows";
    snprintf(r->os_name, sizeof r->os_name, "%.*s", (int)name_len, os);
    snprintf(r->os_version, sizeof r->os_version, "%s", version);
}

/* Adds text (when known) under key; bytes that are not UTF-8 become U+FFFD. */
static void add_text(cJSON *o, const char *key, const char *text)
{
    if (text != NULL && *text != '\0')
        json_add_text(o, key, text);
}

/* The compact JSON text of o (freed), with its length; NULL when out of memory. */
static char *print_free(cJSON *o, size_t *len)
{
    char *text = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    *len = text != NULL ? strlen(text) : 0;
    return text;
}

/* host.*: the name and the OS of a run, built once per run. */
static char *host_json(const run_slot *r, size_t *len)
{
    cJSON *o = cJSON_CreateObject(), *os = cJSON_CreateObject();
    add_text(o, "name", r->host);
    add_text(os, "type", r->os_type);
    add_text(os, "name", r->os_name);
    /* Linux: runs.os holds the kernel release; Windows: its version. */
    add_text(os, r->os_type != NULL && strcmp(r->os_type, "windows") == 0 ? "version" : "kernel", r->os_version);
    if (o == NULL || os == NULL || !cJSON_AddItemToObject(o, "os", os)) {
        cJSON_Delete(os);
        cJSON_Delete(o);
        return NULL;
    }
    return print_free(o, len);
}

/* The run run_id, or NULL when it is not in the database. */
static const run_slot *run(ecs_writer *e, int64_t run_id)
{
    run_slot *r = &e->runs[(uint64_t)run_id & (RUN_SLOTS - 1)];
    if (r->run_id == run_id && run_id != 0)
        return r;
    sqlite3_bind_int64(e->run_lookup, 1, run_id);
    const run_slot *found = NULL;
    cJSON_free(r->json);
    r->json = NULL;
    r->run_id = 0;
    if (sqlite3_step(e->run_lookup) == SQLITE_ROW) {
        snprintf(r->host, sizeof r->host, "%s", (const char *)sqlite3_column_text(e->run_lookup, 0));
        split_os(r, (const char *)sqlite3_column_text(e->run_lookup, 1));
        r->json = host_json(r, &r->json_len);
        if (r->json != NULL) {
            r->run_id = run_id;
            found = r;
        }
    }
    sqlite3_reset(e->run_lookup);
    return found;
}

static char *copy_text(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    if (t == NULL)
        return NULL;
    size_t n = strlen(t) + 1;
    char *copy = malloc(n);
    if (copy != NULL)
        memcpy(copy, t, n);
    return copy;
}

static void free_proc(proc_slot *p)
{
    free(p->name);
    free(p->path);
    free(p->cmdline);
    free(p->user);
    cJSON_free(p->json);
    cJSON_free(p->user_json);
    memset(p, 0, sizeof *p);
}

/* process.* and user.* of p, for the host it ran on (process.entity_id is
 * HOST:PID:START_MS, the same in every database of the host). */
static int build_process_json(proc_slot *p, const char *host)
{
    cJSON_free(p->json);
    cJSON_free(p->user_json);
    p->json = p->user_json = NULL;
    snprintf(p->host, sizeof p->host, "%s", host);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "pid", (double)p->pid);
    add_text(o, "name", p->name);
    add_text(o, "executable", p->path);
    add_text(o, "command_line", p->cmdline);
    json_add_time(o, "start", true, p->start);
    char entity[sizeof p->host + 48];
    snprintf(entity, sizeof entity, "%s:%lld:%lld", host, (long long)p->pid, (long long)p->start);
    add_text(o, "entity_id", entity);
    p->json = print_free(o, &p->json_len);
    if (p->has_uid) {
        cJSON *u = cJSON_CreateObject();
        char uid[24];
        snprintf(uid, sizeof uid, "%lld", (long long)p->uid);
        add_text(u, "id", uid);
        add_text(u, "name", p->user);
        p->user_json = print_free(u, &p->user_json_len);
    }
    return p->json != NULL && (!p->has_uid || p->user_json != NULL) ? 0 : -1;
}

/* The process proc_id with its JSON for host, or NULL when it is not in
 * the database. */
static const proc_slot *process(ecs_writer *e, int64_t proc_id, const char *host)
{
    proc_slot *p = &e->procs[(uint64_t)proc_id & (PROC_SLOTS - 1)];
    if (p->proc_id == proc_id && proc_id != 0) {
        if (strcmp(p->host, host) != 0 && build_process_json(p, host) != 0) {
            free_proc(p);
            return NULL;
        }
        return p;
    }
    free_proc(p);
    sqlite3_stmt *st = e->proc_lookup;
    sqlite3_bind_int64(st, 1, proc_id);
    const proc_slot *found = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        p->proc_id = proc_id;
        p->pid = sqlite3_column_int64(st, 0);
        p->start = sqlite3_column_int64(st, 1);
        p->name = copy_text(st, 2);
        p->path = copy_text(st, 3);
        p->cmdline = copy_text(st, 4);
        p->user = copy_text(st, 5);
        p->has_uid = sqlite3_column_type(st, 6) != SQLITE_NULL;
        p->uid = sqlite3_column_int64(st, 6);
        found = p;
    }
    sqlite3_reset(st);
    if (found != NULL && build_process_json(p, host) != 0) {
        free_proc(p);
        found = NULL;
    }
    return found;
}

/* ---- listeners, for the direction --------------------------------------- */

static int add_listener(ecs_writer *e, int64_t port, int64_t start, int64_t end)
{
    if (port < 0 || port >= PORTS)
        return 0;
    port_spans *p = &e->listeners[port];
    for (int i = 0; i < p->n; i++) {
        if (p->spans[i].start == start) { /* learnt again (follow mode): the newer end wins */
            p->spans[i].end = end;
            return 0;
        }
    }
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 2;
        span *grown = realloc(p->spans, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        p->spans = grown;
        p->cap = cap;
    }
    p->spans[p->n++] = (span){start, end};
    return 0;
}

/* Whether any DNS answer is recorded: without, no lifetime has a domain
 * and the join is not asked (the throughput of a database without names). */
static int check_answers(ecs_writer *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(e->db, "SELECT EXISTS (SELECT 1 FROM dns_answers)", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    e->has_answers = rc == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int ecs_learn_listeners(ecs_writer *e, int64_t min_id)
{
    sqlite3_stmt *st;
    if (check_answers(e) != 0)
        return -1;
    if (sqlite3_prepare_v2(e->db,
                           "SELECT local_port, first_seen, first_seen + closed_after FROM lifetimes"
                           " WHERE lifetime_id >= ?1 AND proto = 6 AND state = 10 AND remote_addr_id IS NULL",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, min_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t end = sqlite3_column_type(st, 2) == SQLITE_NULL ? INT64_MAX : sqlite3_column_int64(st, 2);
        if (add_listener(e, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), end) != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Whether a TCP listener held port at some moment of [from, to]. */
static bool listened(const ecs_writer *e, int64_t port, int64_t from, int64_t to)
{
    if (port < 0 || port >= PORTS)
        return false;
    const port_spans *p = &e->listeners[port];
    for (int i = 0; i < p->n; i++) {
        if (p->spans[i].start <= to && from <= p->spans[i].end)
            return true;
    }
    return false;
}

/* 1 ingress, 0 egress, -1 unknown (see the top of this file). */
static int direction(const ecs_writer *e, sqlite3_stmt *st)
{
    if (sqlite3_column_int64(st, C_PROTO) != PROTO_TCP || sqlite3_column_type(st, C_REMOTE_ADDR) == SQLITE_NULL)
        return -1;
    int first[16];
    int n = codes_unpack_states(sqlite3_column_int64(st, C_STATES), first);
    if (n > 0 && first[0] == STATE_SYN_SENT)
        return 0;
    if (n > 0 && (first[0] == STATE_SYN_RECV || first[0] == STATE_NEW_SYN_RECV))
        return 1;
    int64_t to = is_null(st, C_CLOSED_AT) ? INT64_MAX : sqlite3_column_int64(st, C_CLOSED_AT);
    return listened(e, sqlite3_column_int64(st, C_LOCAL_PORT), sqlite3_column_int64(st, C_FIRST_SEEN), to);
}

/* ---- writing ------------------------------------------------------------- */

/* The member key: the column's number, its text or time, left out when NULL. */
static void opt_int(jw *w, const char *key, sqlite3_stmt *st, int col)
{
    if (!is_null(st, col))
        jw_int(w, key, sqlite3_column_int64(st, col));
}

static void opt_time(jw *w, const char *key, sqlite3_stmt *st, int col)
{
    if (!is_null(st, col))
        jw_time(w, key, true, sqlite3_column_int64(st, col));
}

static void opt_code(jw *w, const char *key, enum code_field field, sqlite3_stmt *st, int col)
{
    const char *name = is_null(st, col) ? NULL : code_name(field, sqlite3_column_int64(st, col));
    if (name != NULL)
        jw_text(w, key, name);
}

/* Writes v in decimal at p (room for 21 bytes); returns the end. Used for
 * every document's ids, where snprintf showed in profiles. */
static char *put_decimal(char *p, int64_t v)
{
    char digits[21];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *p++ = '-';
    while (n > 0)
        *p++ = digits[--n];
    return p;
}

/* A number as ECS keyword text (network.iana_number, user.id). */
static void int_text(jw *w, const char *key, int64_t v)
{
    char text[24];
    jw_text_n(w, key, text, (size_t)(put_decimal(text, v) - text));
}

/* One end: source or destination. bytes_col: what this end sent (-1 none);
 * domain: its DNS name (the remote end's, see remote_domain), or NULL. */
static void put_end(jw *w, const char *key, const addr_slot *a, sqlite3_stmt *st, int port_col, int bytes_col,
                    const char *domain)
{
    if (a == NULL)
        return;
    jw_open(w, key, false);
    jw_text(w, "ip", a->text);
    opt_int(w, "port", st, port_col);
    if (bytes_col >= 0)
        opt_int(w, "bytes", st, bytes_col);
    if (domain != NULL)
        jw_text(w, "domain", domain);
    jw_close(w);
}

/* The remote end's name: the first of the lifetime's remote_names
 * (query/names.c: the name asked most recently for the remote address and
 * still in force when the lifetime opened, its own process's answers
 * first), if shorter than 256 bytes. NULL when none is known. */
static const char *remote_domain(const ecs_writer *e, sqlite3_stmt *st, const proc_slot *p)
{
    if (!e->has_answers || is_null(st, C_REMOTE_ADDR))
        return NULL;
    return names_remote_domain(e->db, sqlite3_column_int64(st, C_REMOTE_ADDR), sqlite3_column_int64(st, C_FIRST_SEEN),
                               p != NULL ? &p->pid : NULL, p != NULL ? &p->start : NULL, 256);
}

static void put_event(ecs_writer *e, jw *w, sqlite3_stmt *st, const char *first_seen)
{
    bool closed = !is_null(st, C_CLOSED_AT);
    char id[sizeof e->database_id + 24];
    memcpy(id, e->database_id, e->database_id_len);
    char *end = id + e->database_id_len;
    *end++ = ':';
    end = put_decimal(end, sqlite3_column_int64(st, C_ID));
    jw_open(w, "event", false);
    jw_text(w, "kind", "event");
    jw_open_flat(w, "category");
    jw_text(w, NULL, "network");
    jw_close(w);
    jw_open_flat(w, "type");
    jw_text(w, NULL, "connection");
    jw_text(w, NULL, closed ? "end" : "start");
    jw_close(w);
    jw_text(w, "action", closed ? "socket-closed" : "socket-opened");
    jw_text(w, "module", "connhist");
    jw_text(w, "dataset", "connhist.lifetime");
    jw_text_n(w, "id", id, (size_t)(end - id));
    jw_text(w, "start", first_seen);
    if (closed) {
        jw_time(w, "end", true, sqlite3_column_int64(st, C_CLOSED_AT));
        int64_t ms = sqlite3_column_int64(st, C_CLOSED_AT) - sqlite3_column_int64(st, C_FIRST_SEEN);
        jw_int(w, "duration", ms * 1000000); /* ECS durations are in nanoseconds */
    }
    jw_close(w);
}

static void put_network(jw *w, sqlite3_stmt *st, const addr_slot *local, const addr_slot *remote, int dir)
{
    int64_t proto = sqlite3_column_int64(st, C_PROTO);
    jw_open(w, "network", false);
    const char *transport = code_name(CODE_PROTO, proto);
    if (transport != NULL)
        jw_text(w, "transport", transport);
    int64_t family = local != NULL && local->ok ? local->addr.family : sqlite3_column_int64(st, C_FAMILY);
    jw_text(w, "type", family == 4 ? "ipv4" : "ipv6");
    int_text(w, "iana_number", proto);
    if (dir >= 0)
        jw_text(w, "direction", dir ? "ingress" : "egress");
    char cid[COMMUNITY_ID_TEXT];
    if (local != NULL && remote != NULL && local->ok && remote->ok && !is_null(st, C_REMOTE_PORT) &&
        community_id_v1(0, (uint8_t)proto, &local->addr, (uint16_t)sqlite3_column_int64(st, C_LOCAL_PORT),
                        &remote->addr, (uint16_t)sqlite3_column_int64(st, C_REMOTE_PORT), cid) == 0)
        jw_text(w, "community_id", cid);
    jw_close(w);
}

/* process.*, user.* and host.*: who held the socket, on which machine.
 * The objects of a process and of a run are built once and reused. */
static void put_owner(jw *w, sqlite3_stmt *st, const run_slot *r, const proc_slot *p, int uid_col)
{
    if (p != NULL)
        jw_raw(w, "process", p->json, p->json_len);
    if (p != NULL && p->user_json != NULL) {
        jw_raw(w, "user", p->user_json, p->user_json_len);
    } else if (uid_col >= 0 && !is_null(st, uid_col)) { /* no process: the socket's owner as the kernel says */
        jw_open(w, "user", false);
        int_text(w, "id", sqlite3_column_int64(st, uid_col));
        jw_close(w);
    }
    if (r != NULL)
        jw_raw(w, "host", r->json, r->json_len);
}

/* connhist.*: what ECS has no field for. */
static void put_connhist(jw *w, sqlite3_stmt *st)
{
    jw_open(w, "connhist", false);
    jw_int(w, "lifetime_id", sqlite3_column_int64(st, C_ID));
    opt_code(w, "state", CODE_STATE, st, C_STATE);
    put_states(w, st, C_STATES, C_ID, false);
    if (!is_null(st, C_CLOSED_AT))
        opt_time(w, "last_seen", st, C_LAST_SEEN); /* an open lifetime's moves with every sample */
    opt_code(w, "close_reason", CODE_CLOSE_REASON, st, C_CLOSE_REASON);
    opt_int(w, "holders", st, C_HOLDERS);
    opt_code(w, "owner_source", CODE_OWNER_SOURCE, st, C_OWNER_SOURCE);
    opt_code(w, "seen_by", CODE_SEEN_BY, st, C_SEEN_BY);
    opt_time(w, "opened_after", st, C_OPENED_AFTER);
    jw_int(w, "socket_family", sqlite3_column_int64(st, C_FAMILY));
    jw_close(w);
}

void ecs_put(ecs_writer *e, jw *w, sqlite3_stmt *st)
{
    /* A copy of the local end: the remote's lookup may take the same slot. */
    addr_slot local_copy;
    const addr_slot *local = address(e, sqlite3_column_int64(st, C_LOCAL_ADDR));
    if (local != NULL) {
        local_copy = *local;
        local = &local_copy;
    }
    const addr_slot *remote = is_null(st, C_REMOTE_ADDR) ? NULL : address(e, sqlite3_column_int64(st, C_REMOTE_ADDR));
    int dir = direction(e, st);
    const run_slot *r = run(e, sqlite3_column_int64(st, C_RUN_ID));
    const proc_slot *p = is_null(st, C_PROC_ID)
                             ? NULL
                             : process(e, sqlite3_column_int64(st, C_PROC_ID), r != NULL ? r->host : "");
    const char *domain = remote_domain(e, st, p);
    bool listener = remote == NULL && sqlite3_column_int64(st, C_PROTO) == PROTO_TCP &&
                    sqlite3_column_int64(st, C_STATE) == STATE_LISTEN;
    if (listener) /* seen now: rows after it may have been accepted by it */
        add_listener(e, sqlite3_column_int64(st, C_LOCAL_PORT), sqlite3_column_int64(st, C_FIRST_SEEN),
                     is_null(st, C_CLOSED_AT) ? INT64_MAX : sqlite3_column_int64(st, C_CLOSED_AT));

    char first_seen[CH_TIME_TEXT]; /* @timestamp and event.start */
    ch_format_time(sqlite3_column_int64(st, C_FIRST_SEEN), first_seen);
    jw_open(w, NULL, false);
    jw_text(w, "@timestamp", first_seen);
    put_event(e, w, st, first_seen);
    if (dir == 1 || listener) { /* the local end is the destination */
        put_end(w, "source", remote, st, C_REMOTE_PORT, C_BYTES_RECEIVED, domain);
        put_end(w, "destination", local, st, C_LOCAL_PORT, C_BYTES_SENT, NULL);
    } else {
        put_end(w, "source", local, st, C_LOCAL_PORT, C_BYTES_SENT, NULL);
        put_end(w, "destination", remote, st, C_REMOTE_PORT, C_BYTES_RECEIVED, domain);
    }
    put_network(w, st, local, remote, dir);
    put_owner(w, st, r, p, C_SOCKET_UID);
    if (local != NULL) {
        jw_open(w, "related", false);
        jw_open_flat(w, "ip");
        jw_text(w, NULL, local->text);
        if (remote != NULL && strcmp(remote->text, local->text) != 0)
            jw_text(w, NULL, remote->text);
        jw_close(w);
        jw_close(w);
    }
    put_connhist(w, st);
    jw_close(w);
}

/* ---- DNS answers ----------------------------------------------------------- */

/* Column numbers of ECS_ANSWER_COLUMNS. */
enum {
    A_ID, A_QNAME, A_RNAME, A_TYPE, A_ADDR, A_TARGET, A_TTL, A_FIRST_SEEN, A_LAST_SEEN, A_EXPIRES, A_TIMES_SEEN,
    A_RESOLVER, A_CLIENT, A_CLIENT_PORT, A_PROTO, A_PROC_ID, A_RUN_ID, A_QTYPE
};

enum { DNS_PORT = 53 }; /* the capture takes only responses from port 53 (recorder/linux/names_pcap.c) */

/* event.*: one answer, seen from first_seen to last_seen. */
static void put_answer_event(ecs_writer *e, jw *w, sqlite3_stmt *st, const char *first_seen)
{
    char id[sizeof e->database_id + 32];
    memcpy(id, e->database_id, e->database_id_len);
    char *end = id + e->database_id_len;
    memcpy(end, ":dns:", 5); /* lifetimes' ids have the number right after the database's */
    end = put_decimal(end + 5, sqlite3_column_int64(st, A_ID));
    jw_open(w, "event", false);
    jw_text(w, "kind", "event");
    jw_open_flat(w, "category");
    jw_text(w, NULL, "network");
    jw_close(w);
    jw_open_flat(w, "type");
    jw_text(w, NULL, "protocol");
    jw_close(w);
    jw_text(w, "action", "dns-answer");
    jw_text(w, "module", "connhist");
    jw_text(w, "dataset", "connhist.dns");
    jw_text_n(w, "id", id, (size_t)(end - id));
    jw_text(w, "start", first_seen);
    jw_time(w, "end", true, sqlite3_column_int64(st, A_LAST_SEEN));
    int64_t ms = sqlite3_column_int64(st, A_LAST_SEEN) - sqlite3_column_int64(st, A_FIRST_SEEN);
    jw_int(w, "duration", ms * 1000000);
    jw_close(w);
}

/* The mnemonic of DNS type number code (RFC 1035, 3596, 9460...), or its
 * RFC 3597 form "TYPE<n>" for the others, into out. */
static const char *dns_type_text(int64_t code, char out[16])
{
    static const struct {
        int code;
        const char *name;
    } known[] = {{1, "A"},     {2, "NS"},    {5, "CNAME"}, {6, "SOA"},    {12, "PTR"},   {15, "MX"},
                 {16, "TXT"},  {28, "AAAA"}, {33, "SRV"},  {35, "NAPTR"}, {64, "SVCB"},  {65, "HTTPS"},
                 {255, "ANY"}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].code == code)
            return known[i].name;
    snprintf(out, 16, "TYPE%d", (int)(code & 0xffff));
    return out;
}

/* dns.*: the question (its name; its type when the recorder kept it: a
 * database of an older connhist has none, and it is left out, not
 * guessed from the record) and the one record. */
static void put_dns(jw *w, sqlite3_stmt *st, const addr_slot *resolved)
{
    int64_t code = sqlite3_column_int64(st, A_TYPE); /* codes 'dns_type' */
    const char *type = code == 1 ? "A" : code == 28 ? "AAAA" : code == 5 ? "CNAME" : NULL;
    jw_open(w, "dns", false);
    jw_text(w, "type", "answer");
    jw_open(w, "question", false);
    jw_text(w, "name", (const char *)sqlite3_column_text(st, A_QNAME));
    char qtype[16];
    if (!is_null(st, A_QTYPE))
        jw_text(w, "type", dns_type_text(sqlite3_column_int64(st, A_QTYPE), qtype));
    jw_close(w);
    jw_open(w, "answers", true);
    jw_open(w, NULL, false);
    jw_text(w, "name", (const char *)sqlite3_column_text(st, A_RNAME));
    if (type != NULL)
        jw_text(w, "type", type);
    jw_text(w, "class", "IN");
    if (resolved != NULL)
        jw_text(w, "data", resolved->text);
    else if (!is_null(st, A_TARGET))
        jw_text(w, "data", (const char *)sqlite3_column_text(st, A_TARGET));
    jw_int(w, "ttl", sqlite3_column_int64(st, A_TTL));
    jw_close(w);
    jw_close(w);
    if (resolved != NULL) {
        jw_open_flat(w, "resolved_ip");
        jw_text(w, NULL, resolved->text);
        jw_close(w);
    }
    jw_close(w);
}

/* client.* (who asked), server.* (the resolver) and network.*. */
static void put_dns_ends(jw *w, sqlite3_stmt *st, const addr_slot *client, const addr_slot *server)
{
    if (client != NULL) {
        jw_open(w, "client", false);
        jw_text(w, "ip", client->text);
        jw_int(w, "port", sqlite3_column_int64(st, A_CLIENT_PORT));
        jw_close(w);
    }
    if (server != NULL) {
        jw_open(w, "server", false);
        jw_text(w, "ip", server->text);
        jw_int(w, "port", DNS_PORT);
        jw_close(w);
    }
    int64_t proto = sqlite3_column_int64(st, A_PROTO);
    jw_open(w, "network", false);
    const char *transport = code_name(CODE_PROTO, proto);
    if (transport != NULL)
        jw_text(w, "transport", transport);
    if (client != NULL && client->ok)
        jw_text(w, "type", client->addr.family == 4 ? "ipv4" : "ipv6");
    int_text(w, "iana_number", proto);
    jw_text(w, "protocol", "dns");
    jw_close(w);
}

/* related.ip: every distinct address of the document. */
static void put_related(jw *w, const addr_slot *const *addrs, int n)
{
    bool open = false;
    for (int i = 0; i < n; i++) {
        bool repeat = addrs[i] == NULL;
        for (int j = 0; !repeat && j < i; j++)
            repeat = addrs[j] != NULL && strcmp(addrs[j]->text, addrs[i]->text) == 0;
        if (repeat)
            continue;
        if (!open) {
            jw_open(w, "related", false);
            jw_open_flat(w, "ip");
            open = true;
        }
        jw_text(w, NULL, addrs[i]->text);
    }
    if (open) {
        jw_close(w);
        jw_close(w);
    }
}

void ecs_put_answer(ecs_writer *e, jw *w, sqlite3_stmt *st)
{
    /* Copies: the three lookups may take the same cache slot. */
    addr_slot ends[3];
    const addr_slot *a[3] = {NULL, NULL, NULL}; /* client, server, resolved address */
    const int cols[3] = {A_CLIENT, A_RESOLVER, A_ADDR};
    for (int i = 0; i < 3; i++) {
        const addr_slot *found = is_null(st, cols[i]) ? NULL : address(e, sqlite3_column_int64(st, cols[i]));
        if (found != NULL) {
            ends[i] = *found;
            a[i] = &ends[i];
        }
    }
    const run_slot *r = run(e, sqlite3_column_int64(st, A_RUN_ID));
    const proc_slot *p = is_null(st, A_PROC_ID)
                             ? NULL
                             : process(e, sqlite3_column_int64(st, A_PROC_ID), r != NULL ? r->host : "");
    char first_seen[CH_TIME_TEXT];
    ch_format_time(sqlite3_column_int64(st, A_FIRST_SEEN), first_seen);
    jw_open(w, NULL, false);
    jw_text(w, "@timestamp", first_seen);
    put_answer_event(e, w, st, first_seen);
    put_dns(w, st, a[2]);
    put_dns_ends(w, st, a[0], a[1]);
    put_owner(w, st, r, p, -1);
    put_related(w, a, 3);
    jw_open(w, "connhist", false);
    jw_int(w, "answer_id", sqlite3_column_int64(st, A_ID));
    jw_int(w, "times_seen", sqlite3_column_int64(st, A_TIMES_SEEN));
    jw_time(w, "expires", true, sqlite3_column_int64(st, A_EXPIRES));
    jw_close(w);
    jw_close(w);
}

/* ---- setup --------------------------------------------------------------- */

const char *ecs_database_id(const ecs_writer *e)
{
    return e->database_id;
}

/* The address cache, sized for the dictionary as it is now. */
static int alloc_addrs(ecs_writer *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(e->db, "SELECT COALESCE(MAX(addr_id), 0) FROM addrs", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int64_t max_id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    size_t slots = ADDR_SLOTS_MIN;
    while (slots < ADDR_SLOTS_MAX && (int64_t)slots <= max_id)
        slots *= 2;
    e->addrs = calloc(slots, sizeof *e->addrs);
    e->addr_mask = slots - 1;
    return e->addrs != NULL ? 0 : -1;
}

int ecs_open(sqlite3 *db, ecs_writer **out)
{
    ecs_writer *e = calloc(1, sizeof *e);
    *out = e;
    if (e == NULL)
        return -1;
    e->db = db;
    e->listeners = calloc(PORTS, sizeof *e->listeners);
    if (e->listeners == NULL || alloc_addrs(e) != 0 ||
        sqlite3_prepare_v2(db, "SELECT addr FROM addrs WHERE addr_id = ?1", -1, &e->addr_lookup, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT host, os FROM runs WHERE run_id = ?1", -1, &e->run_lookup, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT pid, start_time, name, path, cmdline, user, uid FROM processes"
                               " WHERE proc_id = ?1", -1, &e->proc_lookup, NULL) != SQLITE_OK ||
        read_database_id(e) != 0 || ecs_learn_listeners(e, 0) != 0)
        return -1;
    return 0;
}

void ecs_close(ecs_writer *e)
{
    if (e == NULL)
        return;
    sqlite3_finalize(e->addr_lookup);
    sqlite3_finalize(e->run_lookup);
    sqlite3_finalize(e->proc_lookup);
    for (int i = 0; i < PROC_SLOTS; i++)
        free_proc(&e->procs[i]);
    for (int i = 0; i < RUN_SLOTS; i++)
        cJSON_free(e->runs[i].json);
    if (e->listeners != NULL) {
        for (int i = 0; i < PORTS; i++)
            free(e->listeners[i].spans);
        free(e->listeners);
    }
    free(e->addrs);
    free(e);
}
