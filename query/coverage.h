/*
 * When was the recorder watching? Heartbeat spans, merged and clipped to the
 * report's window, give the time covered and the gaps nobody watched. Every
 * report's header carries this, since "no connection to X" only means
 * something for the times that were recorded.
 */
#ifndef CHQ_COVERAGE_H
#define CHQ_COVERAGE_H

#include <cjson/cJSON.h>

#include "qsql.h"
#include "query.h"

/*
 * Builds the header's "coverage" object: covered_ms, window_ms, fraction,
 * runs, gaps, recording_now, last_sample, pruned_before, pruned. Returns 0, or -1 after a message.
 */
int coverage_json(query_ctx *c, cJSON **out);

/* Appends " AND ..." keeping the runs r whose time overlaps the window. */
void coverage_runs_where(qsql *q, const query_filters *f);

#endif
