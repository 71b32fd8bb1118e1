/*
 * What connhist-query knows once the command line is read: the report to
 * run, its window and filters (already parsed and checked), and the open
 * read-only database. Every report is a function of this context.
 */
#ifndef CHQ_QUERY_H
#define CHQ_QUERY_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "db.h"
#include "jsonw.h"

/* The filters and options a report may accept, as bits of a mask. */
enum {
    OPT_SINCE = 1u << 0,
    OPT_UNTIL = 1u << 1,
    OPT_REMOTE = 1u << 2,
    OPT_REMOTE_PORT = 1u << 3,
    OPT_LOCAL_PORT = 1u << 4,
    OPT_PORT = 1u << 5,
    OPT_PROTO = 1u << 6,
    OPT_FAMILY = 1u << 7,
    OPT_PID = 1u << 8,
    OPT_PROCESS = 1u << 9,
    OPT_STATE = 1u << 10,
    OPT_OPEN = 1u << 11,
    OPT_LIMIT = 1u << 12,
    OPT_TOP = 1u << 13,
    OPT_FORMAT = 1u << 14,           /* export */
    OPT_FOLLOW = 1u << 15,
    OPT_CURSOR = 1u << 16,
    OPT_REMOTE_NAME = 1u << 17,
};

/* Filters; a field counts only when its bit is set in `given`. */
typedef struct {
    unsigned given;
    int64_t since, until;            /* until is always set (default: now) */
    ch_addr remote_net;
    int remote_len;
    char remote_text[CH_ADDR_TEXT];  /* canonical text of remote_net */
    char remote_alt[CH_ADDR_TEXT];   /* the same address in the other spelling, or "" */
    int64_t remote_port, local_port, port, pid, family, limit, top;
    const char *proto;               /* "tcp" or "udp" */
    const char *process;             /* GLOB pattern on the process name */
    const char *remote_name;         /* --remote-name: GLOB pattern on DNS names, lower case */
    const char *state;               /* a known state name, upper case */
    int64_t oldest;                  /* first_seen of the oldest lifetime (INT64_MAX: none) */
    bool window_kept;                /* the window's ids are in temp.chq_window (filter_keep_window) */
} query_filters;

struct report;

/* At most this many --db options; more databases go in a directory. */
#define CHQ_MAX_DBS 256

typedef struct {
    const struct report *report;
    const char *db_path;             /* --db (the last one), or NULL for the default */
    int ndb;                         /* how many --db were given */
    const char *db_paths[CHQ_MAX_DBS];
    bool partial;                    /* --partial: report on the databases not refused */
    const char *output;              /* --output, or NULL for standard output */
    bool html;                       /* --html: the timeline page, not JSON */
    enum jw_mode mode;
    int64_t now;                     /* one "now" for the whole run */
    int64_t at;                      /* the at report's instant */
    const char *format;              /* export: --format (only "ecs") */
    const char *cursor;              /* export: --cursor FILE, or NULL */
    query_filters f;
} query_opts;

typedef struct {
    sqlite3 *db;
    const query_opts *o;
    const char *db_path;
    jw *w;
    bool has_last_sample;
    int64_t last_sample;             /* newest heartbeat: v_last_sample */
} query_ctx;

/* A report: writes its JSON after the header; 0, or -1 after a message. */
typedef int (*report_fn)(query_ctx *c, cJSON *header);

typedef struct report {
    const char *name;
    report_fn run;
    unsigned options;                /* OPT_* bits it accepts */
    const char *arg;                 /* its positional argument, or NULL */
    bool keep_window;                /* runs many windowed queries: find the window once */
} report;

/* The reports, in the order --help lists them; NULL-terminated by name. */
extern const report chq_reports[];

/* The whole program: parses argv, runs the report, returns the exit code. */
int chq_main(int argc, char **argv);

/* Parses argv into o. Returns 0 to run, 2 after a message, -1 when done
 * (--help or --version printed). */
int chq_parse_args(int argc, char **argv, query_opts *o);

/* Prints "connhist-query: FORMAT" and a newline to stderr. */
void chq_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports a failed SQL step on c's database; returns -1. */
int chq_sql_fail(query_ctx *c, const char *what);

/*
 * Readies an open database for o's report: the codes, the SQL functions,
 * the oldest lifetime, the window (for reports that keep it) and the newest
 * sample. Returns 0, or -1 after a message.
 */
int chq_ready(query_ctx *c, query_opts *o);

/* Reads the newest sample of any run into c. Returns 0, or -1 after a message. */
int chq_read_last_sample(query_ctx *c);

/* Starts the document: the outer object and the header (which it frees).
 * Inside a section of a report over several databases (multidb.c), where
 * both are written already, it only frees the header. */
void chq_start(query_ctx *c, cJSON *header);

int report_connections(query_ctx *c, cJSON *header);
int report_listeners(query_ctx *c, cJSON *header);
int report_at(query_ctx *c, cJSON *header);
int report_port(query_ctx *c, cJSON *header);
int report_process(query_ctx *c, cJSON *header);
int report_summary(query_ctx *c, cJSON *header);
int report_timeline(query_ctx *c, cJSON *header);
int report_coverage(query_ctx *c, cJSON *header);
int report_export(query_ctx *c, cJSON *header);
/* The options export refuses together (--follow, --cursor); 0, or -1 after a message. */
int export_check_args(const query_opts *o);

/* Adds the at report's "note" (null, or why nothing is known at the instant). */
void report_at_note(query_ctx *c, cJSON *header);
int report_names(query_ctx *c, cJSON *header);

#endif
