/*
 * The "header" object every report starts with: which report, which host
 * and database, when, over which window, with which filters, and how much
 * of that window was actually recorded.
 */
#ifndef CHQ_HEADER_H
#define CHQ_HEADER_H

#include <cjson/cJSON.h>

#include "query.h"

/* Builds the header; returns 0, or -1 after a message. */
int header_json(query_ctx *c, cJSON **out);

#endif
