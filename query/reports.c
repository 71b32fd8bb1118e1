/*
 * The table of reports: name, function, the filters each accepts and its
 * positional argument. A filter a report does not take is refused on the
 * command line rather than silently ignored.
 */
#include "names.h"
#include "query.h"

/* Filters that narrow a set of lifetimes; most reports take all of them. */
#define LIFETIME_FILTERS                                                                          \
    (OPT_REMOTE | OPT_REMOTE_PORT | OPT_LOCAL_PORT | OPT_PORT | OPT_PROTO | OPT_FAMILY | OPT_PID | \
     OPT_PROCESS | OPT_STATE | OPT_OPEN | OPT_REMOTE_NAME)
#define WINDOW (OPT_SINCE | OPT_UNTIL)

const report chq_reports[] = {
    {"connections", report_connections, WINDOW | LIFETIME_FILTERS | OPT_LIMIT, NULL, false},
    {"listeners", report_listeners,
     WINDOW | (LIFETIME_FILTERS & ~(OPT_REMOTE | OPT_REMOTE_PORT | OPT_REMOTE_NAME)) | OPT_LIMIT, NULL, false},
    {"at", report_at, (LIFETIME_FILTERS & ~OPT_OPEN) | OPT_LIMIT, "TIME", false},
    {"port", report_port, WINDOW | (LIFETIME_FILTERS & ~OPT_LOCAL_PORT) | OPT_LIMIT, "N", true},
    {"process", report_process, WINDOW | (LIFETIME_FILTERS & ~(OPT_PID | OPT_PROCESS)) | OPT_LIMIT,
     "PID|NAME", true},
    {"summary", report_summary, WINDOW | LIFETIME_FILTERS | OPT_TOP, NULL, true},
    {"timeline", report_timeline, WINDOW | LIFETIME_FILTERS | OPT_LIMIT, NULL, true},
    {"coverage", report_coverage, WINDOW, NULL, false},
    {"export", report_export,
     WINDOW | LIFETIME_FILTERS | OPT_LIMIT | OPT_FORMAT | OPT_FOLLOW | OPT_CURSOR, NULL, false},
    {"names", report_names, WINDOW | OPT_REMOTE_NAME | OPT_PID | OPT_PROCESS | OPT_LIMIT, NULL, false},
    {NULL, NULL, 0, NULL, false},
};
