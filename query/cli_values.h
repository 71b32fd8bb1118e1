/*
 * Parsing one command-line value: a time, a port, an address or prefix, a
 * state name. Each parser prints the one-line error naming the option, the
 * value and what was expected, and returns -1; the caller exits with 2.
 */
#ifndef CHQ_CLI_VALUES_H
#define CHQ_CLI_VALUES_H

#include <stdint.h>

#include "query.h"

int parse_time_value(const char *opt, const char *val, int64_t now, int64_t *out);
int parse_port_value(const char *opt, const char *val, int64_t *out);
int parse_pid_value(const char *opt, const char *val, int64_t *out);
int parse_count_value(const char *opt, const char *val, int64_t *out);
int parse_proto_value(const char *opt, const char *val, const char **out);
int parse_family_value(const char *opt, const char *val, int64_t *out);
int parse_state_value(const char *opt, const char *val, const char **out);
int parse_pattern_value(const char *opt, const char *val, const char **out);

/* Fills f's remote_* fields from "ADDR" or "ADDR/LEN". */
int parse_remote_value(const char *opt, const char *val, query_filters *f);

#endif
