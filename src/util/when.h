/* when — the times and durations operators type and read: durations
 * ("1h", "5m", "1h30m", "90s", "2d"), dates for --since ("2026-11-26",
 * "2026-11-26T09:30", "2026-11-26T09:30:00Z", or "7d" / "12h" meaning that
 * long ago), the store's ISO-8601 UTC timestamps to seconds and back, and
 * short human forms ("5 min ago", "in 42 min"). Pure functions of their
 * arguments (the clock is passed in), so they are unit-testable. */
#ifndef ENTRASYNC_WHEN_H
#define ENTRASYNC_WHEN_H

#include <stddef.h>
#include "util/util.h"

/* Parses a duration: one or more NUMBER UNIT pairs (units s, m, h, d; a
 * bare number is seconds), e.g. "1h30m", "45s", "2d". The number may have
 * a fraction ("1.5h"). *secs gets the total (> 0). Fails naming the text. */
int when_parse_duration(const char *s, double *secs, struct err *err);

/* Parses "YYYY-MM-DD[THH:MM[:SS]][Z]" as UTC (a space may replace the T),
 * giving seconds since the epoch. Returns -1 when s is not such a date. */
double when_parse_iso(const char *s);

/* Parses a --since value against now: a date as when_parse_iso takes, or
 * a duration meaning "that long before now". Writes the normalised
 * ISO-8601 UTC form ("2026-11-26T09:30:00Z", comparable as text with the
 * store's timestamps) into out (at least 21 bytes). */
int when_parse_since(const char *s, double now, char *out, size_t cap, struct err *err);

/* "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago" (t <= now), or
 * "in 42 s", "in 5 min" ... (t > now), into out. */
void when_relative(double t, double now, char *out, size_t cap);

/* A duration as "1h30m", "45s", "2d3h" (whole seconds) into out. */
void when_format_duration(double secs, char *out, size_t cap);

#endif
