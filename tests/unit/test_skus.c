/* test_skus — the blank rule shared by the SKU look-ups and skugen
 * (skus_trim.h): ASCII whitespace and NBSP at either end, nothing inside;
 * and the look-ups that use it. */
#include "t.h"

#include "util/skus.h"
#include "util/skus_trim.h"

/* s without its blanks, via skus_trim_bounds (buf of 64). */
static const char *trimmed(const char *s, char buf[64])
{
	size_t from = 99, to = 99;
	skus_trim_bounds(s, &from, &to);
	if (from > to || to > strlen(s) || to - from >= 64) return "(bad bounds)";
	memcpy(buf, s + from, to - from);
	buf[to - from] = '\0';
	return buf;
}

TEST(skus_trim_bounds_blanks_at_the_ends)
{
	char b[64];
	CHECK_STR(trimmed("E5", b), "E5");
	CHECK_STR(trimmed(" \tE5\r\n", b), "E5");
	CHECK_STR(trimmed("\xc2\xa0" "E5" "\xc2\xa0 \xc2\xa0", b), "E5");
	CHECK_STR(trimmed(" A \xc2\xa0 B\t", b), "A \xc2\xa0 B");          /* inside: kept */
	CHECK_STR(trimmed("", b), "");
	CHECK_STR(trimmed(" \xc2\xa0\t", b), "");
	CHECK_STR(trimmed("E5\xc2", b), "E5\xc2");                          /* half an NBSP: not a blank */
	CHECK_STR(trimmed("\xa0" "E5", b), "\xa0" "E5");
	size_t from, to;
	skus_trim_bounds("  ", &from, &to);
	CHECK_EQ_INT(to - from, 0);
	/* the look-ups apply it */
	CHECK(skus_find("\xc2\xa0 c7df2760-2c81-4ef7-b578-5b5392b571df\t") != NULL);
	CHECK(skus_find_part(" \xc2\xa0" "ENTERPRISEPREMIUM\xc2\xa0") != NULL);
	CHECK(skus_find_part(" \xc2\xa0 ") == NULL);
}

/* The SKUs nobody pays per seat for (free, trial, viral sign-ups, credits)
 * are not billable by default, so their 10,000 seats are never "unused". */
TEST(skus_free_by_default)
{
	static const char *const free_parts[] = {
		"FLOW_FREE", "TEAMS_FREE", "POWER_BI_STANDARD", "POWERAPPS_VIRAL", "RIGHTSMANAGEMENT_ADHOC", "WINDOWS_STORE",
		"TEAMS_EXPLORATORY", "STREAM", "MCOPSTNC", "CCIBOTS_PRIVPREV_VIRAL", "DYN365_RETAIL_TRIAL",
		"Dynamics_365_Sales_Premium_Viral_Trial", "Power_Pages_vTrial_for_Makers", "POWERAPPS_DEV",
		"PHONESYSTEM_VIRTUALUSER", "Microsoft_Teams_Rooms_Basic", " FLOW_FREE ",
	};
	for (size_t i = 0; i < sizeof free_parts / sizeof *free_parts; i++)
		if (!skus_is_free(free_parts[i])) t_fail(__FILE__, __LINE__, "%s should be free", free_parts[i]);
	static const char *const paid[] = { "SPE_E3", "ENTERPRISEPACK", "O365_BUSINESS_PREMIUM", "STREAM_P2",
	                                    "POWER_BI_PRO", "MCOEV", "FREEDOM_E9", "" };
	for (size_t i = 0; i < sizeof paid / sizeof *paid; i++)
		if (skus_is_free(paid[i])) t_fail(__FILE__, __LINE__, "%s should be billable", paid[i]);
	CHECK(!skus_is_free(NULL));
}
