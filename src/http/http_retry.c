/* http_retry — the pure parts of the HTTP retry policy (see http.h): the
 * backoff delay with full jitter and the Retry-After parser. No I/O, no
 * state, so the unit tests can check them exactly. */
#include "http/http.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>

double http_backoff_delay(const struct http_retry_policy *p, int retry, double u)
{
	double base = p && p->backoff_base > 0 ? p->backoff_base : 0.5;
	double max = p && p->backoff_max > 0 ? p->backoff_max : 30.0;
	if (retry < 1) retry = 1;
	if (u < 0) u = 0;
	if (u >= 1) u = nextafter(1.0, 0.0);
	/* base * 2^(retry-1), without overflowing for large retry numbers */
	double ceiling = retry > 60 ? max : base * ldexp(1.0, retry - 1);
	if (ceiling > max) ceiling = max;
	return ceiling * u;
}

double http_parse_retry_after(const char *value, double now_wall)
{
	if (!value) return -1;
	while (*value == ' ' || *value == '\t') value++;
	if (!*value) return -1;
	if (isdigit((unsigned char)*value) || *value == '.') {
		char *end;
		double secs = strtod(value, &end);
		if (end == value) return -1;
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
		if (*end || !isfinite(secs) || secs < 0) return -1;
		return secs;
	}
	double when = time_parse_http_date(value);
	if (when < 0) return -1;
	return when > now_wall ? when - now_wall : 0.0;
}
