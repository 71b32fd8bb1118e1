/*
 * Help text (see usage.h). The long form of everything lives in
 * query/README.md; this is the reminder a user needs at the terminal.
 */
#include "usage.h"

#include <string.h>

#include "query.h"

static const char usage_text[] =
    "usage: connhist-query [--db PATH]... [--partial] [--ndjson] [--pretty] REPORT [ARG] [options]\n"
    "\n"
    "Reads the connhist database (read-only) and prints a JSON report.\n"
    "\n"
    "reports:\n"
    "  connections          socket lifetimes overlapping the window\n"
    "  listeners            listening TCP and bound unconnected UDP sockets\n"
    "  at TIME              what was open at that instant\n"
    "  port N               every lifetime on local port N, oldest first\n"
    "  process PID|NAME     a process (or a GLOB on names): its sockets and remotes\n"
    "  summary              counts, top remotes and processes, what was new\n"
    "  timeline             opens, state changes and closes in time order\n"
    "  coverage             the recorder's runs and the gaps nobody watched\n"
    "  export --format ecs  lifetimes as ECS documents, one a line, for Elasticsearch/OpenSearch:\n"
    "                       [--cursor FILE] only what is new since; [--follow] keep going;\n"
    "                       [--output FILE] append to FILE (synced, torn lines cut on restart)\n"
    "  names                DNS answers captured: what was resolved, when, to what, by whom\n"
    "\n"
    "global options:\n"
    "  --db PATH            database (default: $CONNHIST_DB, else the recorder's default);\n"
    "                       several --db, or a directory of databases: one report over\n"
    "                       all of them, each row with its host\n"
    "  --partial            with several databases: report on those not refused\n"
    "  --ndjson             a header line, then one JSON object per line\n"
    "  --pretty             indented JSON\n"
    "  --html               timeline, process: a self-contained HTML timeline page\n"
    "  --output PATH, -o PATH  write to PATH instead of standard output\n"
    "  --help, --version\n"
    "\n"
    "filters (where the report takes them):\n"
    "  --since TIME         window start (default: the beginning)\n"
    "  --until TIME         window end (default: now)\n"
    "  --remote ADDR[/LEN]  remote address or prefix (IPv4 also matches ::ffff:a.b.c.d)\n"
    "  --remote-port N, --local-port N, --port N (either side)\n"
    "  --proto tcp|udp      --family 4|6\n"
    "  --pid N              --process NAME (GLOB on the process name)\n"
    "  --remote-name GLOB   a name resolved to the remote address before it opened\n"
    "  --state STATE        a state the socket went through (ESTABLISHED, LISTEN, ...)\n"
    "  --open               still open at the newest sample\n"
    "  --limit N            at most N items      --top N  summary list length (10)\n"
    "\n"
    "TIME: RFC 3339 (2026-11-24T10:00:00Z), epoch seconds (1764140000, 1764140000.250),\n"
    "a time ago with a unit ms, s, m, h, d or w (-2h, 30m, 1.5h, 1d12h), or now; nothing\n"
    "finer than a millisecond.\n"
    "exit status: 0 ok, 1 database missing or unusable, 2 bad command line.\n";

void usage_print(FILE *f)
{
    fputs(usage_text, f);
}

const char *usage_report_names(void)
{
    static char names[256];
    if (names[0] != '\0')
        return names;
    for (const report *r = chq_reports; r->name != NULL; r++) {
        if (names[0] != '\0')
            strncat(names, ", ", sizeof names - strlen(names) - 1);
        strncat(names, r->name, sizeof names - strlen(names) - 1);
    }
    return names;
}
