/* skus — look-ups in the compiled-in SKU table (see skus.h for why it is
 * compiled in, and src/tools/skugen.c for how it is built). */
#include "util/skus.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* Part numbers (skuPartNumber) of SKUs nobody pays per seat for, beyond
 * those whose name says so by a word (FREE, TRIAL, VIRAL, vTrial: see
 * skus_is_free). Each is in Microsoft's product names table (vendor/skus.csv,
 * its Product_Display_Name in the comment), and is documented by Microsoft as
 * free, a trial or self-service ("viral") sign-up, or is not a seat at all. */
static const char *const free_parts[] = {
	"POWER_BI_STANDARD",             /* Microsoft Fabric (Free) */
	"POWER_BI_STANDARD_FACULTY",     /* Microsoft Fabric (Free) for faculty */
	"POWER_BI_STANDARD_STUDENT",     /* Microsoft Fabric (Free) for student */
	"POWER_BI_INDIVIDUAL_USER",      /* Power BI: the individual (self-service) sign-up */
	"POWERAPPS_INDIVIDUAL_USER",     /* Power Apps and Logic Flows: the individual sign-up */
	"POWERAPPS_DEV",                 /* Microsoft Power Apps for Developer: free */
	"SMB_APPS",                      /* Business Apps (free) */
	"RIGHTSMANAGEMENT_ADHOC",        /* Rights Management Adhoc: free self-service sign-up */
	"WINDOWS_STORE",                 /* Windows Store for Business: free */
	"MICROSOFT_BUSINESS_CENTER",     /* Microsoft Business Center: free */
	"TEAMS_EXPLORATORY",             /* Microsoft Teams Exploratory: a free trial */
	"MS_TEAMS_IW",                   /* Microsoft Teams Trial */
	"STREAM",                        /* Microsoft Stream: the trial (STREAM_P2 and the rest are paid) */
	"FORMS_PRO",                     /* Dynamics 365 Customer Voice Trial */
	"DYN365_AI_SERVICE_INSIGHTS",    /* Dynamics 365 Customer Service Insights Trial */
	"D365_SALES_PRO_IW",             /* Dynamics 365 For Sales Professional Trial */
	"DYN365_REGULATORY_SERVICE",     /* Dynamics 365 Regulatory Service - Enterprise Edition Trial */
	"PROJECT_MADEIRA_PREVIEW_IW_SKU",/* Dynamics 365 Business Central for IWs: free */
	"SPZA_IW",                       /* App Connect IW: free */
	"PHONESYSTEM_VIRTUALUSER",       /* Microsoft Teams Phone Resource Account: free */
	"PHONESYSTEM_VIRTUALUSER_FACULTY",
	"PHONESYSTEM_VIRTUALUSER_GOV",
	"PHONESYSTEM_VIRTUALUSER_USGOV_GCCHIGH",
	"Microsoft_Teams_Rooms_Basic",   /* Microsoft Teams Rooms Basic: free (up to 25 rooms) */
	"Microsoft_Teams_Rooms_Basic_FAC",
	"Microsoft_Teams_Rooms_Basic_without_Audio_Conferencing",
	"MCOPSTNC",                      /* Communications Credits: a prepaid balance, not seats */
};

/* Does the part number hold word (case-insensitive) between '_' or its ends? */
static bool has_word(const char *s, size_t from, size_t to, const char *word)
{
	size_t n = strlen(word);
	for (size_t i = from; i + n <= to; i++)
		if ((i == from || s[i - 1] == '_') && (i + n == to || s[i + n] == '_') && strncasecmp(s + i, word, n) == 0)
			return true;
	return false;
}

bool skus_is_free(const char *part_number)
{
	if (!part_number) return false;
	size_t from, to;
	skus_trim_bounds(part_number, &from, &to);
	static const char *const words[] = { "FREE", "TRIAL", "VIRAL", "VTRIAL" };
	for (size_t i = 0; i < sizeof words / sizeof *words; i++)
		if (has_word(part_number, from, to, words[i])) return true;
	for (size_t i = 0; i < sizeof free_parts / sizeof *free_parts; i++)
		if (strlen(free_parts[i]) == to - from && strncasecmp(part_number + from, free_parts[i], to - from) == 0)
			return true;
	return false;
}
