/* report_fmt — numbers as the reports print them, without printf: the text
 * of "%.Nf" (N = 0..4) byte for byte, for the hundreds of thousands of
 * chart coordinates and CSV cells a large report writes (printf's exact
 * multi-precision path was most of the HTML report's time). */
#include "report/report.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Above this |v| x 10^N, or for NaN and infinities, printf does it. */
#define FMT_FAST_LIMIT 4503599627370496.0   /* 2^52: every double below has an ulp <= 0.5 */

/* The contract (report.h): out holds REPORT_FMT_CAP bytes.
 *
 * Exactness: printf rounds the exact binary value of v to N decimals, ties
 * to even. Here x = |v| x 10^N rounded, and e = the exact rounding error
 * of that product (fma), so |v| x 10^N = x + e exactly, with |e| <= ulp(x)/2.
 * Below 2^52, x's ulp is at most 0.5, so frac = x - floor(x) and 0.5 are
 * both multiples of it: when frac != 0.5 they differ by a whole ulp, more
 * than |e|, and frac alone decides; when frac == 0.5 the sign of e decides,
 * and e == 0 is a true tie (to even). */
size_t report_fmt_fixed(char *out, double v, int decimals)
{
	static const double scale[] = { 1, 10, 100, 1000, 10000 };
	if (decimals < 0 || decimals > 4 || !isfinite(v) || fabs(v) * scale[decimals] >= FMT_FAST_LIMIT) {
		int n = snprintf(out, REPORT_FMT_CAP, "%.*f", decimals, v);
		return n < 0 ? 0 : (size_t)n < REPORT_FMT_CAP ? (size_t)n : REPORT_FMT_CAP - 1;
	}
	double a = fabs(v), x = a * scale[decimals];
	double e = fma(a, scale[decimals], -x);
	double f = floor(x), frac = x - f;
	uint64_t n = (uint64_t)f;
	if (frac > 0.5 || (frac == 0.5 && (e > 0 || (e == 0 && (n & 1))))) n++;
	char tmp[32];
	size_t k = 0;
	for (int d = 0; d < decimals; d++) {            /* the decimals, last first */
		tmp[k++] = (char)('0' + n % 10);
		n /= 10;
	}
	if (decimals) tmp[k++] = '.';
	do {
		tmp[k++] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	size_t len = 0;
	if (signbit(v)) out[len++] = '-';               /* as printf: "-0.0" for -0.04 */
	while (k) out[len++] = tmp[--k];
	out[len] = '\0';
	return len;
}

void report_add_fixed(struct buf *out, double v, int decimals)
{
	char s[REPORT_FMT_CAP];
	buf_add(out, s, report_fmt_fixed(s, v, decimals));
}
