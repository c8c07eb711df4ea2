/* test_when — durations, --since dates, ISO-8601 parsing and the human
 * forms used by status, audit and the daemon. */
#include "t.h"
#include "util/when.h"

TEST(when_durations)
{
	struct err err;
	double s;
	CHECK_OK(when_parse_duration("1h", &s, &err), &err);
	CHECK(s == 3600);
	CHECK_OK(when_parse_duration("1h30m", &s, &err), &err);
	CHECK(s == 5400);
	CHECK_OK(when_parse_duration("90", &s, &err), &err);
	CHECK(s == 90);
	CHECK_OK(when_parse_duration("2s", &s, &err), &err);
	CHECK(s == 2);
	CHECK_OK(when_parse_duration("1.5h", &s, &err), &err);
	CHECK(s == 5400);
	CHECK_OK(when_parse_duration("2d", &s, &err), &err);
	CHECK(s == 172800);
	static const char *const bad[] = { "", "h", "1x", "1h30", "-5m", "1 h", "abc" };
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		CHECK(when_parse_duration(bad[i], &s, &err) < 0);
		CHECK(s == 0);
	}
	CHECK(when_parse_duration("0s", &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "more than zero");
	CHECK(when_parse_duration("1y", &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "invalid duration '1y'");
}

TEST(when_iso)
{
	CHECK(when_parse_iso("1970-01-01T00:00:00Z") == 0);
	CHECK(when_parse_iso("2026-11-26T09:30:00Z") == 1795685400);
	CHECK(when_parse_iso("2026-11-26 09:30") == 1795685400);
	CHECK(when_parse_iso("2026-11-26") == 1795651200);
	CHECK(when_parse_iso("2026-11-26T09:30:00.123Z") == 1795685400);
	CHECK(when_parse_iso("2026-02-31") < 0);
	CHECK(when_parse_iso("2026-13-01") < 0);
	CHECK(when_parse_iso("2026-11-26T25:00") < 0);
	CHECK(when_parse_iso("2026-11-26Tx") < 0);
	CHECK(when_parse_iso("26-11-2026") < 0);
	CHECK(when_parse_iso(NULL) < 0);
}

TEST(when_since)
{
	struct err err;
	char out[32];
	double now = 1795685400;   /* 2026-11-26T09:30:00Z */
	CHECK_OK(when_parse_since("2026-11-01", now, out, sizeof out, &err), &err);
	CHECK_STR(out, "2026-11-01T00:00:00Z");
	CHECK_OK(when_parse_since("7d", now, out, sizeof out, &err), &err);
	CHECK_STR(out, "2026-11-19T09:30:00Z");
	CHECK_OK(when_parse_since("90m", now, out, sizeof out, &err), &err);
	CHECK_STR(out, "2026-11-26T08:00:00Z");
	CHECK(when_parse_since("yesterday", now, out, sizeof out, &err) < 0);
	CHECK_CONTAINS(err.msg, "invalid date 'yesterday'");
}

TEST(when_human)
{
	char b[32];
	when_relative(100, 100.5, b, sizeof b);
	CHECK_STR(b, "just now");
	when_relative(100, 142, b, sizeof b);
	CHECK_STR(b, "42 s ago");
	when_relative(0, 5 * 60, b, sizeof b);
	CHECK_STR(b, "5 min ago");
	when_relative(7200, 0, b, sizeof b);
	CHECK_STR(b, "in 2 h");
	when_relative(0, 3 * 86400, b, sizeof b);
	CHECK_STR(b, "3 d ago");
	when_format_duration(5400, b, sizeof b);
	CHECK_STR(b, "1h30m");
	when_format_duration(0, b, sizeof b);
	CHECK_STR(b, "0s");
	when_format_duration(90061, b, sizeof b);
	CHECK_STR(b, "1d1h1m1s");
}
