/*
 * The command line: global options, the report name and its argument, and
 * the filters, in any order. Every value is parsed and checked here, before
 * the database is opened, so a typo costs exit code 2 and one line on
 * stderr, never a half-printed report.
 */
#include <stdio.h>
#include <string.h>

#include "cli_values.h"
#include "names.h"
#include "query.h"
#include "timeutil.h"
#include "usage.h"

typedef int (*value_parser)(query_opts *o, const char *opt, const char *val);

typedef struct {
    const char *name;
    unsigned bit;          /* OPT_* for filters; 0 for global options */
    bool takes_value;
    value_parser parse;
} option_def;

static int set_db(query_opts *o, const char *opt, const char *val)
{
    if (*val == '\0') {
        chq_error("%s: '' is not a path (expected the database file)", opt);
        return -1;
    }
    if (o->ndb == CHQ_MAX_DBS) {
        chq_error("%s: '%s' is one database too many (at most %d --db; put more in a directory and pass --db DIR)",
                  opt, val, CHQ_MAX_DBS);
        return -1;
    }
    o->db_paths[o->ndb++] = val;
    o->db_path = val;
    return 0;
}

static int set_partial(query_opts *o, const char *opt, const char *val)
{
    (void)opt, (void)val;
    o->partial = true;
    return 0;
}

static int set_output(query_opts *o, const char *opt, const char *val)
{
    if (*val == '\0') {
        chq_error("%s: '' is not a path (expected the file to write)", opt);
        return -1;
    }
    o->output = val;
    return 0;
}

static int set_html(query_opts *o, const char *opt, const char *val)
{
    (void)opt, (void)val;
    o->html = true;
    return 0;
}

static int set_ndjson(query_opts *o, const char *opt, const char *val)
{
    (void)opt, (void)val;
    o->mode = JW_NDJSON;
    return 0;
}

static int set_pretty(query_opts *o, const char *opt, const char *val)
{
    (void)opt, (void)val;
    if (o->mode != JW_NDJSON) /* ndjson lines stay one line each */
        o->mode = JW_PRETTY;
    return 0;
}

static int set_since(query_opts *o, const char *opt, const char *val)
{
    return parse_time_value(opt, val, o->now, &o->f.since);
}

static int set_until(query_opts *o, const char *opt, const char *val)
{
    return parse_time_value(opt, val, o->now, &o->f.until);
}

static int set_remote(query_opts *o, const char *opt, const char *val)
{
    return parse_remote_value(opt, val, &o->f);
}

static int set_remote_port(query_opts *o, const char *opt, const char *val)
{
    return parse_port_value(opt, val, &o->f.remote_port);
}

static int set_local_port(query_opts *o, const char *opt, const char *val)
{
    return parse_port_value(opt, val, &o->f.local_port);
}

static int set_port(query_opts *o, const char *opt, const char *val)
{
    return parse_port_value(opt, val, &o->f.port);
}

static int set_proto(query_opts *o, const char *opt, const char *val)
{
    return parse_proto_value(opt, val, &o->f.proto);
}

static int set_family(query_opts *o, const char *opt, const char *val)
{
    return parse_family_value(opt, val, &o->f.family);
}

static int set_pid(query_opts *o, const char *opt, const char *val)
{
    return parse_pid_value(opt, val, &o->f.pid);
}

static int set_process(query_opts *o, const char *opt, const char *val)
{
    return parse_pattern_value(opt, val, &o->f.process);
}

static int set_remote_name(query_opts *o, const char *opt, const char *val)
{
    return names_parse_pattern(opt, val, &o->f.remote_name);
}

static int set_state(query_opts *o, const char *opt, const char *val)
{
    return parse_state_value(opt, val, &o->f.state);
}

static int set_nothing(query_opts *o, const char *opt, const char *val)
{
    (void)o, (void)opt, (void)val;
    return 0; /* a flag whose bit says it all (--open) */
}

static int set_limit(query_opts *o, const char *opt, const char *val)
{
    return parse_count_value(opt, val, &o->f.limit);
}

static int set_top(query_opts *o, const char *opt, const char *val)
{
    return parse_count_value(opt, val, &o->f.top);
}

static int set_format(query_opts *o, const char *opt, const char *val)
{
    if (strcmp(val, "ecs") != 0) {
        chq_error("%s: '%s' is not an export format (expected ecs)", opt, val);
        return -1;
    }
    o->format = val;
    return 0;
}

/* A file path into *out; "" is refused, naming what was expected. */
static int take_path(const char *opt, const char *val, const char *what, const char **out)
{
    if (*val == '\0') {
        chq_error("%s: '' is not a path (expected %s)", opt, what);
        return -1;
    }
    *out = val;
    return 0;
}

static int set_cursor(query_opts *o, const char *opt, const char *val)
{
    return take_path(opt, val, "the cursor file", &o->cursor);
}

static const option_def options[] = {
    {"--db", 0, true, set_db},
    {"--output", 0, true, set_output},
    {"--html", 0, false, set_html},
    {"--ndjson", 0, false, set_ndjson},
    {"--pretty", 0, false, set_pretty},
    {"--partial", 0, false, set_partial},
    {"--since", OPT_SINCE, true, set_since},
    {"--until", OPT_UNTIL, true, set_until},
    {"--remote", OPT_REMOTE, true, set_remote},
    {"--remote-port", OPT_REMOTE_PORT, true, set_remote_port},
    {"--local-port", OPT_LOCAL_PORT, true, set_local_port},
    {"--port", OPT_PORT, true, set_port},
    {"--proto", OPT_PROTO, true, set_proto},
    {"--family", OPT_FAMILY, true, set_family},
    {"--pid", OPT_PID, true, set_pid},
    {"--process", OPT_PROCESS, true, set_process},
    {"--state", OPT_STATE, true, set_state},
    {"--remote-name", OPT_REMOTE_NAME, true, set_remote_name},
    {"--open", OPT_OPEN, false, set_nothing},
    {"--limit", OPT_LIMIT, true, set_limit},
    {"--top", OPT_TOP, true, set_top},
    {"--format", OPT_FORMAT, true, set_format},
    {"--follow", OPT_FOLLOW, false, set_nothing},
    {"--cursor", OPT_CURSOR, true, set_cursor},
    {NULL, 0, false, NULL},
};

static const option_def *find_option(const char *name, size_t len)
{
    for (const option_def *d = options; d->name != NULL; d++) {
        if (strlen(d->name) == len && strncmp(d->name, name, len) == 0)
            return d;
    }
    return NULL;
}

static const char *option_name(unsigned bit)
{
    for (const option_def *d = options; d->name != NULL; d++) {
        if (d->bit == bit)
            return d->name;
    }
    return "?";
}

/* Handles argv[*i], an option "--name", "--name value" or "--name=value". */
static int take_option(int argc, char **argv, int *i, query_opts *o)
{
    const char *arg = argv[*i];
    const char *eq = strchr(arg, '=');
    size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
    const option_def *d = find_option(arg, len);
    if (d == NULL) {
        chq_error("unknown option '%.*s' (see connhist-query --help)", (int)len, arg);
        return -1;
    }
    const char *val = eq != NULL ? eq + 1 : "";
    if (d->takes_value && eq == NULL) {
        if (*i + 1 >= argc) {
            chq_error("%s: missing value (see connhist-query --help)", d->name);
            return -1;
        }
        val = argv[++*i];
    } else if (!d->takes_value && eq != NULL) {
        chq_error("%s: takes no value, got '%s'", d->name, val);
        return -1;
    }
    o->f.given |= d->bit;
    return d->parse(o, d->name, val);
}

static const report *find_report(const char *name)
{
    for (const report *r = chq_reports; r->name != NULL; r++) {
        if (strcmp(r->name, name) == 0)
            return r;
    }
    return NULL;
}

/* The report name, then its argument; anything more is an error. */
static int take_positional(const char *arg, const char **report_arg, query_opts *o)
{
    if (o->report == NULL) {
        o->report = find_report(arg);
        if (o->report == NULL) {
            chq_error("'%s' is not a report (expected %s)", arg, usage_report_names());
            return -1;
        }
    } else if (o->report->arg != NULL && *report_arg == NULL) {
        *report_arg = arg;
    } else {
        chq_error("unexpected argument '%s' (see connhist-query --help)", arg);
        return -1;
    }
    return 0;
}

/* Applies the report's argument: the at instant, a port, a pid or a name. */
static int apply_report_arg(query_opts *o, const char *val)
{
    const report *r = o->report;
    if (r->arg == NULL)
        return 0;
    if (val == NULL) {
        chq_error("%s: missing %s (see connhist-query --help)", r->name, r->arg);
        return -1;
    }
    query_filters *f = &o->f;
    if (r->run == report_at) {
        if (parse_time_value(r->name, val, o->now, &o->at) != 0)
            return -1;
        f->since = f->until = o->at; /* the window is that instant */
        f->given |= OPT_SINCE | OPT_UNTIL;
    } else if (r->run == report_port) {
        f->given |= OPT_LOCAL_PORT;
        return parse_port_value(r->name, val, &f->local_port);
    } else if (ch_parse_int(val, 0, INT32_MAX, &f->pid) == 0) {
        f->given |= OPT_PID; /* process: a number is a pid ... */
    } else {
        f->given |= OPT_PROCESS; /* ... anything else a name pattern */
        return parse_pattern_value(r->name, val, &f->process);
    }
    return 0;
}

/* Checks what only makes sense once everything is read. */
static int finish(query_opts *o, const char *report_arg)
{
    if (o->report == NULL) {
        chq_error("missing report name (expected %s)", usage_report_names());
        return -1;
    }
    unsigned extra = o->f.given & ~o->report->options;
    for (unsigned bit = 1; extra != 0; bit <<= 1) {
        if (extra & bit) {
            chq_error("%s: not an option of the '%s' report (see connhist-query --help)",
                      option_name(bit), o->report->name);
            return -1;
        }
    }
    if (o->html && o->report->run != report_timeline && o->report->run != report_process) {
        chq_error("--html: the '%s' report has no page (expected timeline or process)", o->report->name);
        return -1;
    }
    if (o->html && o->mode != JW_COMPACT) {
        chq_error("--html: a page has no %s form", o->mode == JW_NDJSON ? "--ndjson" : "--pretty");
        return -1;
    }
    if (apply_report_arg(o, report_arg) != 0 || (o->report->run == report_export && export_check_args(o) != 0))
        return -1;
    if (!(o->f.given & OPT_UNTIL))
        o->f.until = o->now;
    if ((o->f.given & OPT_SINCE) && o->f.since > o->f.until) {
        char since[CH_TIME_TEXT], until[CH_TIME_TEXT];
        ch_format_time(o->f.since, since);
        ch_format_time(o->f.until, until);
        chq_error("--since %s is after --until %s: the window is empty", since, until);
        return -1;
    }
    if (!(o->f.given & OPT_TOP))
        o->f.top = 10;
    return 0;
}

int chq_parse_args(int argc, char **argv, query_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mode = JW_COMPACT;
    o->now = ch_now_ms();
    const char *report_arg = NULL;
    bool only_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_positional || strncmp(arg, "--", 2) != 0) {
            if (strcmp(arg, "-h") == 0 && !only_positional) {
                usage_print(stdout);
                return -1;
            }
            if (strcmp(arg, "-o") == 0 && !only_positional) { /* short for --output */
                if (i + 1 >= argc) {
                    chq_error("-o: missing value (see connhist-query --help)");
                    return 2;
                }
                if (set_output(o, arg, argv[++i]) != 0)
                    return 2;
                continue;
            }
            if (take_positional(arg, &report_arg, o) != 0)
                return 2;
        } else if (strcmp(arg, "--") == 0) {
            only_positional = true;
        } else if (strcmp(arg, "--help") == 0) {
            usage_print(stdout);
            return -1;
        } else if (strcmp(arg, "--version") == 0) {
            printf("connhist-query %s\n", CONNHIST_VERSION);
            return -1;
        } else if (take_option(argc, argv, &i, o) != 0) {
            return 2;
        }
    }
    return finish(o, report_arg) == 0 ? 0 : 2;
}
