/* test_report_fmt — report_fmt_fixed (src/report/report_fmt.c) against snprintf's
 * "%.Nf": the reports' byte-identical output rests on it. Random values
 * over many magnitudes, the exact ties and near-ties of each precision,
 * signs, zeros, and what goes to the fallback. */
#include "t.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "report/report.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Compares one value at every precision; counts mismatches (reports the first few). */
static int compare(double v, int *shown)
{
	int bad = 0;
	for (int d = 0; d <= 4; d++) {
		char want[REPORT_FMT_CAP], got[REPORT_FMT_CAP];
		snprintf(want, sizeof want, "%.*f", d, v);
		size_t n = report_fmt_fixed(got, v, d);
		if (strcmp(want, got) != 0 || n != strlen(want)) {
			bad++;
			if ((*shown)++ < 5) fprintf(stderr, "  %.17g at %d: want %s, got %s\n", v, d, want, got);
		}
	}
	return bad;
}

TEST(report_fmt_fixed_matches_printf)
{
	int bad = 0, shown = 0;
	/* random magnitudes: mantissa and exponent uniform */
	for (int i = 0; i < 40000; i++) {
		double m = (double)(rng() >> 11) / 9007199254740992.0;          /* [0, 1) */
		int ex = (int)(rng() % 40) - 12;
		double v = ldexp(m, ex * 2);
		if (rng() & 1) v = -v;
		bad += compare(v, &shown);
	}
	/* the values charts and scores hold: hundredths, tenths, ties and their neighbours */
	for (int i = -20000; i <= 20000; i++) {
		double base[] = { i / 1000.0, i / 100.0, i / 20.0, i / 200.0, i / 2000.0, i * 0.5, i * 0.25 + 0.125 };
		for (size_t k = 0; k < sizeof base / sizeof base[0]; k++) {
			bad += compare(base[k], &shown);
			bad += compare(nextafter(base[k], INFINITY), &shown);
			bad += compare(nextafter(base[k], -INFINITY), &shown);
		}
	}
	/* the SVG arithmetic itself */
	for (int k = 0; k < 300; k++)
		for (int p = 0; p < 100; p++)
			bad += compare(14 + 158.0 * (1 - (30 + p * 0.5 - 25.0) / 60.0) + k * 1e-3, &shown);
	double special[] = { 0.0, -0.0, 0.5, 1.5, 2.5, -0.5, -2.5, 0.05, 0.15, 0.25, 0.35, 0.45, 0.005, 0.015,
	                     0.125, 0.375, 1e-300, -1e-300, 4503599627370495.5, 4503599627370496.0, 1e15, 1e16,
	                     -1e16, 1e300, -1e300, 123456789.125, 9.995, 99.995, 0.00005, 0.00015 };
	for (size_t k = 0; k < sizeof special / sizeof special[0]; k++) bad += compare(special[k], &shown);
	CHECK_EQ_INT(bad, 0);

	char s[REPORT_FMT_CAP];
	report_fmt_fixed(s, NAN, 2);
	char want[64];
	snprintf(want, sizeof want, "%.2f", NAN);
	CHECK_STR(s, want);
	report_fmt_fixed(s, -INFINITY, 1);
	snprintf(want, sizeof want, "%.1f", -INFINITY);
	CHECK_STR(s, want);
	report_fmt_fixed(s, 2.5, 7);                 /* beyond 4 decimals: printf's */
	CHECK_STR(s, "2.5000000");
	struct buf b = {0};
	report_add_fixed(&b, 97.125, 2);
	buf_addc(&b, ',');
	report_add_fixed(&b, -0.04, 1);
	CHECK_STR(b.data, "97.12,-0.0");
	buf_free(&b);
}
