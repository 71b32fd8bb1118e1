/*
 * connhist-record's command line.
 */
#ifndef CH_RECORD_OPTIONS_H
#define CH_RECORD_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "ports.h"

#define CH_MAX_WATCH 64

/* --events: the kernel event source of socket owners (owners.h). */
enum ch_events_mode {
    CH_EVENTS_AUTO, /* where it loads; else noted in the run and sampled without */
    CH_EVENTS_BPF,  /* required: the recorder does not start without it */
    CH_EVENTS_OFF,
};

typedef struct {
    const char *db;          /* NULL: the default path */
    int64_t interval_ms;
    bool once;
    int64_t duration_ms;     /* 0: until stopped */
    int64_t retain_ms;       /* 0: keep everything */
    const char *sampler;     /* NULL: best available */
    int events;              /* enum ch_events_mode */
    bool events_given;       /* --events was on the command line */
    int names;               /* enum ch_names_mode (names_source.h) */
    bool names_given;
    ch_port_block watch[CH_MAX_WATCH]; /* --reservation blocks */
    size_t nwatch;
    bool verbose;
    bool upgrade;            /* --upgrade: bring the schema up to date, record nothing */
} ch_record_options;

/*
 * Parses argv. Returns 0 to run, 1 when --help or --version was printed
 * (exit 0), 2 after printing a one-line error (exit 2).
 */
int ch_record_parse_options(int argc, char **argv, ch_record_options *o);

#endif
