/*
 * Option parsing for connhist-record. Every bad value is reported on one
 * line naming the option, the value and the expected form.
 */
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "names_source.h"
#include "owners.h"
#include "timeutil.h"

#define MIN_INTERVAL_MS 50
#define MAX_INTERVAL_MS (24 * 3600 * 1000LL)

static const char usage[] =
    "usage: connhist-record [--db PATH] [--interval DURATION] [--once] [--duration DURATION]\n"
    "                       [--retain DURATION] [--reservation PROTO:FIRST:COUNT]...\n"
    "                       [--sampler netlink|procfs] [--events auto|bpf|off] [--names auto|on|off]\n"
    "                       [--verbose]\n"
    "       connhist-record [--db PATH] --upgrade\n"
    "\n"
    "Samples this machine's TCP and UDP sockets and records their lifetimes in a\n"
    "SQLite database (read it with connhist-query or the sqlite3 shell).\n"
    "\n"
    "  --db PATH            database (default: $CONNHIST_DB, else /var/lib/connhist/connhist.db\n"
    "                       as root, else $XDG_STATE_HOME/connhist/connhist.db)\n"
    "  --interval DURATION  time between samples, 50ms to 24h (default 1s; with --once, the\n"
    "                       period the scheduler runs it at, default 60s); e.g. 0.2, 500ms, 2s, 1m\n"
    "  --once               take one sample, reconcile with the database, exit\n"
    "  --duration DURATION  stop after that long (default: until SIGINT/SIGTERM)\n"
    "  --retain DURATION    delete closed lifetimes and expired DNS answers older than that,\n"
    "                       at least 1m (e.g. 90d; default: keep all)\n"
    "  --reservation P:F:N  a port block to watch for a persistent reservation (Windows),\n"
    "                       e.g. tcp:5000:20; may be repeated. Linux records its reserved ports anyway\n"
    "  --sampler NAME       force netlink (sock_diag dumps) or procfs (default: as root the BPF\n"
    "                       socket iterators, else netlink, else procfs)\n"
    "  --events MODE        owners of sockets that open and close between samples, from kernel\n"
    "                       events (Linux, root, BPF): auto (default: where available, not\n"
    "                       with --once), bpf (required: do not start without them) or off;\n"
    "                       default $CONNHIST_EVENTS when set\n"
    "  --names MODE         DNS answers captured on every interface, joined to connections\n"
    "                       (Linux, root, libpcap): auto (default: where available, not with\n"
    "                       --once), on (required) or off; default $CONNHIST_NAMES when set\n"
    "  --verbose            one line per sample on stderr\n"
    "  --upgrade            upgrade the database to this program's schema version and exit,\n"
    "                       recording nothing (a normal start upgrades it too)\n"
    "  --help, --version\n"
    "\n"
    "DURATION: seconds (0.2, 1.5, 90) or a number with a unit ms, s, m, h, d or w\n"
    "(500ms, 1.5s, 2.5m, 90d, 1h30m); nothing finer than a millisecond.\n"
    "exit status: 0 ok, 1 could not start or go on recording, 2 bad command line.\n";

static int bad(const char *opt, const char *value, const char *expected)
{
    ch_message(stderr, "connhist-record: ", "%s: '%s' is not valid (expected %s)", opt, value, expected);
    return 2;
}

/* The value of option argv[*i] ("--x V" or "--x=V"), or NULL. */
static const char *value_of(int argc, char **argv, int *i, const char *name)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] != '\0')
        return NULL;
    if (*i + 1 >= argc)
        return "";
    return argv[++*i];
}

/* The range a duration option takes, and how to write its ends. */
typedef struct {
    const char *opt;
    int64_t min_ms, max_ms;
    const char *min_text, *max_text; /* max_text NULL: no bound but CH_DURATION_MAX */
} duration_range;

static const duration_range interval_rule = {"--interval", MIN_INTERVAL_MS, MAX_INTERVAL_MS, "50ms", "24h"};
static const duration_range duration_rule = {"--duration", 1, CH_DURATION_MAX, "1ms", NULL};
static const duration_range retain_rule = {"--retain", 60000, CH_DURATION_MAX, "1m", NULL};

/* Parses v (see ch_parse_duration) within r; 2 after a one-line message. */
static int parse_duration_opt(const duration_range *r, const char *v, int64_t *out)
{
    int64_t ms = 0;
    int rc = ch_parse_duration(v, &ms);
    char problem[64], expected[32];
    if (rc == 0 && ms >= r->min_ms && ms <= r->max_ms) {
        *out = ms;
        return 0;
    }
    if (rc != 0)
        snprintf(problem, sizeof problem, "%s", ch_parse_problem(rc, "is not a duration"));
    else if (ms < r->min_ms)
        snprintf(problem, sizeof problem, "is less than %s", r->min_text);
    else
        snprintf(problem, sizeof problem, "is more than %s", r->max_text);
    if (r->max_text != NULL)
        snprintf(expected, sizeof expected, "%s to %s", r->min_text, r->max_text);
    else
        snprintf(expected, sizeof expected, "at least %s", r->min_text);
    ch_message(stderr, "connhist-record: ", "%s: '%s' %s (expected a duration of %s: %s)", r->opt, v, problem,
               expected, CH_DURATION_FORMS);
    return 2;
}

static int parse_events(const char *v, int *out)
{
    static const char *const names[] = {[CH_EVENTS_AUTO] = "auto", [CH_EVENTS_BPF] = "bpf", [CH_EVENTS_OFF] = "off"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

int ch_record_parse_options(int argc, char **argv, ch_record_options *o)
{
    memset(o, 0, sizeof *o);
    int64_t interval = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int rc = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("connhist-record %s\n%s\n%s\n", CONNHIST_VERSION, ch_owner_events_build(), ch_names_build());
            return 1;
        } else if (strcmp(a, "--once") == 0) {
            o->once = true;
        } else if (strcmp(a, "--upgrade") == 0) {
            o->upgrade = true;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o->verbose = true;
        } else if ((v = value_of(argc, argv, &i, "--db")) != NULL) {
            if (*v == '\0')
                return bad("--db", v, "a file path");
            o->db = v;
        } else if ((v = value_of(argc, argv, &i, "--interval")) != NULL) {
            rc = parse_duration_opt(&interval_rule, v, &interval);
        } else if ((v = value_of(argc, argv, &i, "--duration")) != NULL) {
            rc = parse_duration_opt(&duration_rule, v, &o->duration_ms);
        } else if ((v = value_of(argc, argv, &i, "--reservation")) != NULL) {
            if (o->nwatch == CH_MAX_WATCH)
                return bad("--reservation", v, "at most 64 blocks");
            if (ch_port_block_parse(v, &o->watch[o->nwatch++]) != 0)
                return bad("--reservation", v, "PROTO:FIRST:COUNT, e.g. tcp:5000:20");
        } else if ((v = value_of(argc, argv, &i, "--retain")) != NULL) {
            rc = parse_duration_opt(&retain_rule, v, &o->retain_ms);
        } else if ((v = value_of(argc, argv, &i, "--sampler")) != NULL) {
            if (strcmp(v, "netlink") != 0 && strcmp(v, "procfs") != 0)
                return bad("--sampler", v, "netlink or procfs");
            o->sampler = v;
        } else if ((v = value_of(argc, argv, &i, "--events")) != NULL) {
            if (parse_events(v, &o->events) != 0)
                return bad("--events", v, "auto, bpf or off");
            o->events_given = true;
        } else if ((v = value_of(argc, argv, &i, "--names")) != NULL) {
            if (ch_names_parse_mode(v, &o->names) != 0)
                return bad("--names", v, "auto, on or off");
            o->names_given = true;
        } else {
            ch_message(stderr, "connhist-record: ", "unknown option '%s' (see connhist-record --help)", a);
            return 2;
        }
        if (rc != 0)
            return rc;
    }
    if (o->upgrade && (o->once || interval || o->duration_ms || o->nwatch || o->retain_ms || o->sampler ||
                       o->events_given || o->names_given)) {
        fprintf(stderr, "connhist-record: --upgrade records nothing: it takes --db only (and --verbose)\n");
        return 2;
    }
    if (o->once && o->duration_ms > 0) {
        fprintf(stderr, "connhist-record: --once and --duration '%lld ms' exclude each other\n", (long long)o->duration_ms);
        return 2;
    }
    const char *env = getenv("CONNHIST_EVENTS"); /* the default of --events, as CONNHIST_DB is of --db */
    if (!o->events_given && env != NULL && *env != '\0' && parse_events(env, &o->events) != 0)
        return bad("CONNHIST_EVENTS", env, "auto, bpf or off");
    env = getenv("CONNHIST_NAMES");
    if (!o->names_given && env != NULL && *env != '\0' && ch_names_parse_mode(env, &o->names) != 0)
        return bad("CONNHIST_NAMES", env, "auto, on or off");
    o->interval_ms = interval ? interval : o->once ? 60000 : 1000;
    return 0;
}
