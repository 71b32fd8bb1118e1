/*
 * A build without the DNS capture (names.h): Windows (not part of connhist's
 * names), or Linux without libpcap or ldns at build time. The recorder
 * records sockets as before, and the run's notes say why names are off.
 * CMake gives the reason as CH_NAMES_NONE_WHY and what --version says as
 * CH_NAMES_NONE_BUILD.
 */
#include "names.h"

#include <stdio.h>

const char *ch_names_build(void)
{
    return "DNS names: " CH_NAMES_NONE_BUILD;
}

ch_names *ch_names_open(char *why, size_t whyn)
{
    snprintf(why, whyn, "%s", CH_NAMES_NONE_WHY);
    return NULL;
}

void ch_names_close(ch_names *n)
{
    (void)n;
}

const ch_dns_answer *ch_names_take(ch_names *n, size_t *count)
{
    (void)n;
    *count = 0;
    return NULL;
}

void ch_names_settle(ch_names *n)
{
    (void)n;
}

int64_t ch_names_dropped(const ch_names *n)
{
    (void)n;
    return 0;
}

const char *ch_names_failed(const ch_names *n)
{
    (void)n;
    return NULL;
}
