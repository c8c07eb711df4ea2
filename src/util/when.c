/* when — durations, --since dates, ISO-8601 timestamps and relative
 * times for the operator commands (see when.h). No clock reads here. */
#include "util/when.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int when_parse_duration(const char *s, double *secs, struct err *err)
{
	double total = 0;
	const char *p = s;
	*secs = 0;
	if (!s || !*s) return err_set(err, "empty duration (expected e.g. 1h, 30m, 90s, 1h30m)");
	while (*p) {
		char *end;
		if (!isdigit((unsigned char)*p) && *p != '.') goto bad;
		double v = strtod(p, &end);
		if (end == p || !isfinite(v) || v < 0) goto bad;
		p = end;
		double unit = 1;
		switch (*p) {
		case 's': unit = 1; p++; break;
		case 'm': unit = 60; p++; break;
		case 'h': unit = 3600; p++; break;
		case 'd': unit = 86400; p++; break;
		case '\0': if (p != s + strspn(s, "0123456789.")) goto bad; break; /* bare number: whole text */
		default: goto bad;
		}
		total += v * unit;
	}
	if (!(total > 0)) return err_set(err, "duration '%s' must be more than zero", s);
	*secs = total;
	return 0;
bad:
	return err_set(err, "invalid duration '%s' (expected e.g. 1h, 30m, 90s, 1h30m)", s);
}

/* Reads exactly n digits at *p into *v; moves *p. */
static int digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i])) return -1;
		*v = *v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return 0;
}

double when_parse_iso(const char *s)
{
	int y, mo, d, h = 0, mi = 0, se = 0;
	const char *p = s;
	if (!s || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
		return -1;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi)) return -1;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &se)) return -1;
			if (*p == '.') /* fractional seconds: ignored */
				while (isdigit((unsigned char)*++p)) {}
		}
	}
	if (*p == 'Z') p++;
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return -1;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
	                 .tm_sec = se };
	time_t t = timegm(&tm);
	if (tm.tm_mday != d || tm.tm_mon != mo - 1) return -1;  /* 2026-02-31 normalised away: refuse */
	return (double)t;
}

int when_parse_since(const char *s, double now, char *out, size_t cap, struct err *err)
{
	double t = when_parse_iso(s);
	if (t < 0) {
		double ago;
		struct err ignored;
		if (!s || !*s || !isdigit((unsigned char)*s) || when_parse_duration(s, &ago, &ignored) != 0)
			return err_set(err, "invalid date '%s' (expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS]Z, or an age "
			               "like 7d or 12h)", s ? s : "");
		t = floor(now - ago);
	}
	time_iso8601(t, out, cap);
	return 0;
}

void when_relative(double t, double now, char *out, size_t cap)
{
	double d = fabs(now - t), v;
	const char *unit;
	if (d < 1.5) {
		snprintf(out, cap, "%s", t <= now ? "just now" : "in a moment");
		return;
	}
	if (d < 90) v = d, unit = "s";
	else if (d < 90 * 60) v = floor(d / 60 + 0.5), unit = "min";
	else if (d < 36 * 3600) v = floor(d / 3600 + 0.5), unit = "h";
	else v = floor(d / 86400 + 0.5), unit = "d";
	if (t <= now) snprintf(out, cap, "%.0f %s ago", v, unit);
	else snprintf(out, cap, "in %.0f %s", v, unit);
}

void when_format_duration(double secs, char *out, size_t cap)
{
	long long s = secs > 0 ? (long long)(secs + 0.5) : 0;
	static const struct { long long n; char u; } units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };
	size_t len = 0;
	if (cap) out[0] = '\0';
	if (s == 0) {
		snprintf(out, cap, "0s");
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(units) && len < cap; i++) {
		if (s < units[i].n) continue;
		int w = snprintf(out + len, cap - len, "%lld%c", s / units[i].n, units[i].u);
		if (w < 0) return;
		len += (size_t)w;
		s %= units[i].n;
	}
}
