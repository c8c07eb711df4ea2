/* test_util — util and log: buffers, errors, strings, dates, redaction. */
#include "t.h"
#include "util.h"
#include "log.h"

#include <stdlib.h>

TEST(util_buf_and_err)
{
	struct buf b = {0};
	for (int i = 0; i < 1000; i++) buf_printf(&b, "%d,", i);
	CHECK(b.len > 3000);
	CHECK(str_starts(b.data, "0,1,2,"));
	buf_free(&b);
	struct err e;
	CHECK_EQ_INT(err_set(&e, "bad %s", "thing"), -1);
	err_prefix(&e, "config.lua:%d", 3);
	CHECK_STR(e.msg, "config.lua:3: bad thing");
}

TEST(util_edit_distance)
{
	CHECK_EQ_INT(str_edit_distance("tenant", "tenants"), 1);
	CHECK_EQ_INT(str_edit_distance("chekc", "check"), 2);
	CHECK_EQ_INT(str_edit_distance("", "abc"), 3);
	CHECK(str_ieq("Contoso.COM", "contoso.com"));
}

/* The one GUID check (config tenant ids, action targets, group refs, the
 * member pages' fast path). */
TEST(util_guid)
{
	CHECK(str_is_guid("6babcaad-604b-40ac-a9d7-9fd97c0b779f"));
	CHECK(str_is_guid("EFCCB6F7-5641-4E0E-BD10-B4976E1BF68E"));
	CHECK(!str_is_guid("6babcaad-604b-40ac-a9d7-9fd97c0b779"));     /* short */
	CHECK(!str_is_guid("6babcaad-604b-40ac-a9d7-9fd97c0b779fa"));   /* long */
	CHECK(!str_is_guid("6babcaad0604b-40ac-a9d7-9fd97c0b779f"));    /* a dash missing */
	CHECK(!str_is_guid("6babcaad-604b-40ac-a9d7-9fd97c0b77zf"));    /* not hex */
	CHECK(!str_is_guid(""));
	CHECK(guid_at("6babcaad-604b-40ac-a9d7-9fd97c0b779f\"}"));        /* need not end there */
	CHECK(!guid_at("6babcaad-604b"));                                 /* stops at the NUL */
	/* guid_at_36 (SSE2, reads 36 bytes) agrees with guid_at on every byte
	 * value at every position of a GUID */
	char g[37] = "6babcaad-604b-40ac-a9d7-9fd97c0b779f";
	CHECK(guid_at_36(g));
	int disagree = 0, accepted = 0;
	for (int pos = 0; pos < 36; pos++) {
		char keep = g[pos];
		for (int c = 0; c < 256; c++) {
			g[pos] = (char)c;
			if (guid_at_36(g) != guid_at(g)) disagree++;
			accepted += guid_at_36(g);
		}
		g[pos] = keep;
	}
	CHECK_EQ_INT(disagree, 0);
	CHECK_EQ_INT(accepted, 32 * 22 + 4);   /* 22 hex bytes at the digits' places, '-' at the dashes' */
	CHECK(!guid_at("6babcaad-604b-40ac-a9d7-"));                      /* dashes in place, then the NUL */
	CHECK(!guid_at("6babcaad-604b-40ac-a9d7-9fd97c0b779-"));          /* a dash where a digit goes */
	CHECK(!guid_at("6babcaad-604b-40ac-a9d7-9fd97c0b779\0"));
}

TEST(util_http_date)
{
	CHECK_EQ_INT((long long)time_parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"), 1445412480LL);
	CHECK(time_parse_http_date("not a date") < 0);
}

TEST(log_redacts_secrets)
{
	struct buf out = {0};
	log_secret_add("s3cr3t-value-xyz");
	log_redact("client_id=abc&client_secret=hunter22&scope=x s3cr3t-value-xyz "
	           "Authorization: Bearer eyJ0eXAi.abc.def {\"access_token\":\"tok123\"}", &out);
	CHECK(!strstr(out.data, "hunter22"));
	CHECK(!strstr(out.data, "s3cr3t-value-xyz"));
	CHECK(!strstr(out.data, "eyJ0eXAi"));
	CHECK(!strstr(out.data, "tok123"));
	CHECK_CONTAINS(out.data, "client_id=abc");
	CHECK_CONTAINS(out.data, "scope=x");
	buf_free(&out);
	struct err e;
	err_set(&e, "token request failed: client_secret=hunter22");
	log_redact_err(&e);
	CHECK(!strstr(e.msg, "hunter22"));
	log_secrets_clear();
}
