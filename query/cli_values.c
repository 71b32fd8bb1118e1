/*
 * Value parsers for the command line (see cli_values.h). They lean on the
 * shared parsers in common/ so the recorder and the query tool accept the
 * same times and addresses.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli_values.h"

#include <string.h>
#include <strings.h>

#include "addr.h"
#include "timeutil.h"

#define MAX_COUNT 1000000000

static int bad(const char *opt, const char *val, const char *what)
{
    chq_error("%s: '%s' is not %s", opt, val, what);
    return -1;
}

int parse_time_value(const char *opt, const char *val, int64_t now, int64_t *out)
{
    int rc = ch_parse_time(val, now, out);
    if (rc == 0)
        return 0;
    chq_error("%s: '%s' %s (expected a time: %s)", opt, val, ch_parse_problem(rc, "is not a time"), CH_TIME_FORMS);
    return -1;
}

int parse_port_value(const char *opt, const char *val, int64_t *out)
{
    return ch_parse_int(val, 0, 65535, out) == 0 ? 0 : bad(opt, val, "a port (expected 0-65535)");
}

int parse_pid_value(const char *opt, const char *val, int64_t *out)
{
    return ch_parse_int(val, 0, INT32_MAX, out) == 0 ? 0
                                                     : bad(opt, val, "a pid (expected 0-2147483647)");
}

int parse_count_value(const char *opt, const char *val, int64_t *out)
{
    return ch_parse_int(val, 0, MAX_COUNT, out) == 0 ? 0
                                                     : bad(opt, val, "a count (expected 0-1000000000)");
}

int parse_proto_value(const char *opt, const char *val, const char **out)
{
    if (strcasecmp(val, "tcp") == 0)
        *out = "tcp";
    else if (strcasecmp(val, "udp") == 0)
        *out = "udp";
    else
        return bad(opt, val, "a protocol (expected tcp or udp)");
    return 0;
}

int parse_family_value(const char *opt, const char *val, int64_t *out)
{
    if (strcmp(val, "4") == 0)
        *out = 4;
    else if (strcmp(val, "6") == 0)
        *out = 6;
    else
        return bad(opt, val, "an address family (expected 4 or 6)");
    return 0;
}

/* The states the recorder writes (schema: lifetimes.state). */
static const char *const known_states[] = {
    "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
    "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "UNCONN", NULL,
};

int parse_state_value(const char *opt, const char *val, const char **out)
{
    for (int i = 0; known_states[i] != NULL; i++) {
        if (strcasecmp(val, known_states[i]) == 0) {
            *out = known_states[i];
            return 0;
        }
    }
    return bad(opt, val,
               "a socket state (expected ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1, FIN_WAIT2,"
               " TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, CLOSING, NEW_SYN_RECV or UNCONN)");
}

int parse_pattern_value(const char *opt, const char *val, const char **out)
{
    if (*val == '\0')
        return bad(opt, val, "a process name (expected a name or a GLOB pattern like 'ngin*')");
    *out = val;
    return 0;
}

/* 10.0.0.5 <-> ::ffff:10.0.0.5: dual-stack sockets report IPv4 peers mapped. */
static void other_spelling(const ch_addr *a, char *out)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    out[0] = '\0';
    ch_addr other = {0};
    if (a->family == 4) {
        other.family = 6;
        memcpy(other.bytes, mapped, 12);
        memcpy(other.bytes + 12, a->bytes, 4);
    } else if (memcmp(a->bytes, mapped, 12) == 0) {
        other.family = 4;
        memcpy(other.bytes, a->bytes + 12, 4);
    } else {
        return;
    }
    ch_addr_format(&other, out);
}

int parse_remote_value(const char *opt, const char *val, query_filters *f)
{
    if (ch_prefix_parse(val, &f->remote_net, &f->remote_len) != 0)
        return bad(opt, val,
                   "an address or prefix (expected e.g. 10.0.0.5, 10.0.0.0/8, 2001:db8::1 or 2001:db8::/32)");
    ch_addr_format(&f->remote_net, f->remote_text);
    other_spelling(&f->remote_net, f->remote_alt);
    return 0;
}
