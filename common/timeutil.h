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
 * One syntax for every duration and time on both programs' command lines:
 * a number is decimal seconds unless a unit follows it ("0.2" is 200 ms,
 * "1764140000.250" is 250 ms past that epoch second), a unit may follow any
 * number, decimals included ("1.5s", "0.5h", "2.5m"), and a value finer
 * than a millisecond is refused, never rounded. Numbers are read digit by
 * digit: no sign, no exponent, no hexadecimal, no blank, and the point is
 * '.' whatever the locale, with a digit on each side ("0.5", not ".5" or "1.").
 *
 * The parsers return 0, or one of these reasons, so that a message can say
 * what was wrong with the value (ch_parse_problem).
 */
#define CH_PARSE_FORM (-1)  /* not of the expected form at all */
#define CH_PARSE_FINE (-2)  /* finer than a millisecond */
#define CH_PARSE_LARGE (-3) /* more than CH_DURATION_MAX */
#define CH_PARSE_YEARS (-4) /* a time outside the years 0000-9999 */

/* The longest duration: a time plus or minus it still fits in 64 bits. */
#define CH_DURATION_MAX (INT64_MAX / 4)

/*
 * The reason rc as the end of a message "OPTION: 'VALUE' ...", e.g. "is
 * finer than a millisecond"; for CH_PARSE_FORM (or any other code), not_form
 * ("is not a duration").
 */
const char *ch_parse_problem(int rc, const char *not_form);

/* The forms, for "(expected ...)" in messages and for help texts. */
#define CH_DURATION_FORMS                                                                  \
    "seconds like 0.2 or 1.5, or a number with a unit ms, s, m, h, d or w like 500ms, 1.5s," \
    " 2.5m or 1h30m"
#define CH_TIME_FORMS                                                                        \
    "RFC 3339 like 2026-11-24T10:00:00Z, epoch seconds like 1764140000 or 1764140000.250, a" \
    " time ago like -2h, 30m or 1.5h, or now"

/*
 * Parses a point in time: RFC 3339 ("2026-11-24T10:00:00Z",
 * "2026-11-24T10:00:00.250+01:00", "2026-11-24 10:00:00" taken as UTC,
 * "2026-11-24" as midnight UTC), epoch seconds ("1764000000",
 * "1764000000.250", "@1764000000"), "now", or a duration with a unit meaning
 * that long before now_ms ("-2h", "30m", "1.5h", "1d12h"; "-5" is refused:
 * a bare number is an epoch second, never a time ago). Returns 0 and sets
 * *out, or a CH_PARSE_* reason; CH_PARSE_YEARS for an instant outside the
 * years 0000-9999 (what ch_format_time can print back).
 */
int ch_parse_time(const char *s, int64_t now_ms, int64_t *out);

/*
 * Parses a duration: a number of seconds ("0.2", "90"), or numbers with units
 * ms, s, m, h, d, w ("500ms", "1.5s", "2.5m", "90d"), several of them largest
 * unit first, each unit once and a fraction only in the last ("1h30m",
 * "1d12h", "1h0.5m"; not "30m1h", "1h1h", "0.5h30m" or "1h30"). Returns 0 and
 * sets *out_ms (0 to CH_DURATION_MAX; callers check their own range), or a
 * CH_PARSE_* reason.
 */
int ch_parse_duration(const char *s, int64_t *out_ms);

/*
 * Parses a decimal integer in [min, max] with nothing after it.
 * Returns 0 and sets *out, or -1.
 */
int ch_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
