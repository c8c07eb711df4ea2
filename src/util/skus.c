/* skus — look-ups in the compiled-in SKU table (see skus.h for why it is
 * compiled in, and src/tools/skugen.c for how it is built). */
#include "util/skus.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util/skus_trim.h"

/* Copies s into out (cap bytes) without surrounding blanks (skus_trim.h),
 * lower-cased when lower is set. Returns false when it does not fit. */
static int normalise(const char *s, char *out, size_t cap, int lower)
{
	size_t i, n;
	skus_trim_bounds(s, &i, &n);
	if (n - i + 1 > cap) return 0;
	for (size_t k = i; k < n; k++)
		out[k - i] = lower ? (char)tolower((unsigned char)s[k]) : s[k];
	out[n - i] = '\0';
	return 1;
}

static int cmp_key(const void *key, const void *elem)
{
	return strcmp((const char *)key, ((const struct sku_info *)elem)->sku_id);
}

const struct sku_info *skus_find(const char *sku_id)
{
	char key[64];
	if (!sku_id || !normalise(sku_id, key, sizeof key, 1)) return NULL;
	return bsearch(key, skus_table, skus_table_len, sizeof skus_table[0], cmp_key);
}

const struct sku_info *skus_find_part(const char *part_number)
{
	char key[160];
	if (!part_number || !normalise(part_number, key, sizeof key, 0) || !key[0]) return NULL;
	for (size_t i = 0; i < skus_table_len; i++)
		if (strcmp(skus_table[i].part_number, key) == 0) return &skus_table[i];
	return NULL;
}

const char *skus_friendly_name(const char *sku_id, const char *part_number)
{
	const struct sku_info *s = skus_find(sku_id);
	if (!s) s = skus_find_part(part_number);
	if (s) return s->name;
	if (part_number && *part_number) return part_number;
	if (sku_id && *sku_id) return sku_id;
	return "unknown SKU";
}
