/*
 * Times as connhist keeps them: integers of milliseconds since 1970 UTC,
 * RFC 3339 text for people, and the parsers for what users type on the
 * command line (absolute times, epoch seconds, relative forms, durations).
 */
#ifndef CH_TIMEUTIL_H
#define CH_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Wall-clock time now, ms since the epoch, UTC. */
int64_t ch_now_ms(void);

/* A monotonic clock in ms: for scheduling, immune to wall-clock jumps. */
int64_t ch_mono_ms(void);

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (at least CH_TIME_TEXT bytes). */
#define CH_TIME_TEXT 64
void ch_format_time(int64_t ms, char *out);

/*
 * Parses a point in time: RFC 3339 ("2026-11-24T10:00:00Z",
 * "2026-11-24T10:00:00.250+01:00", "2026-11-24 10:00:00" taken as UTC,
 * "2026-11-24" as midnight UTC), epoch seconds ("1764000000", "@1764000000"),
 * "now", or a relative form meaning that long before now_ms ("-2h", "30m",
 * "1d12h"). Returns 0 and sets *out, or -1 when s is none of these or
 * falls outside the years 0000-9999 (what ch_format_time can print back).
 */
int ch_parse_time(const char *s, int64_t now_ms, int64_t *out);

/*
 * Parses a duration: a number with a unit, units may be chained
 * ("500ms", "1s", "30m", "2h", "90d", "1h30m", "1w"). A bare number is
 * seconds. Returns 0 and sets *out_ms (> 0), or -1.
 */
int ch_parse_duration(const char *s, int64_t *out_ms);

/*
 * Parses a decimal integer in [min, max] with nothing after it.
 * Returns 0 and sets *out, or -1.
 */
int ch_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
