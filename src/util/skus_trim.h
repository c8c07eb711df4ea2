/* skus_trim — the one rule for the blanks around a SKU value, shared by the
 * runtime look-ups (src/util/skus.c) and the build tool that makes their table
 * (src/tools/skugen.c, built on its own: header only, no other include of
 * the project). Blanks: ASCII whitespace and U+00A0 (UTF-8 C2 A0), which
 * Microsoft's CSV carries around some String_Id values. */
#ifndef ENTRASYNC_SKUS_TRIM_H
#define ENTRASYNC_SKUS_TRIM_H

#include <ctype.h>
#include <string.h>

/* The bounds of s without blanks at either end: s[*from .. *to) (both 0
 * for an all-blank s). */
static inline void skus_trim_bounds(const char *s, size_t *from, size_t *to)
{
	size_t n = strlen(s), i = 0;
	for (;;) {
		if (i < n && isspace((unsigned char)s[i])) i++;
		else if (i + 1 < n && (unsigned char)s[i] == 0xC2 && (unsigned char)s[i + 1] == 0xA0) i += 2;
		else break;
	}
	for (;;) {
		if (n > i && isspace((unsigned char)s[n - 1])) n--;
		else if (n >= i + 2 && (unsigned char)s[n - 2] == 0xC2 && (unsigned char)s[n - 1] == 0xA0) n -= 2;
		else break;
	}
	*from = i;
	*to = n;
}

#endif
