/* test_util — util and log: buffers, errors, strings, dates, redaction. */
#include "t.h"
#include "util/util.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

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

/* Case folded beyond ASCII (Latin, Greek, Cyrillic), one code point to
 * one; stray bytes only equal themselves. */
TEST(util_ieq_utf8)
{
	CHECK(str_ieq_utf8("Ærø Bådebyggeri ApS", "ÆRØ BÅDEBYGGERI APS"));
	CHECK(str_ieq_utf8("Łódź Żółć", "ŁÓDŹ ŻÓŁĆ"));
	CHECK(str_ieq_utf8("Ÿves", "ÿVES"));
	CHECK(str_ieq_utf8("ΑΘΉΝΑ", "αθήνα"));
	CHECK(str_ieq_utf8("МОСКВА Ёж", "москва ёж"));
	CHECK(str_ieq_utf8("Contoso.COM", "contoso.com"));
	CHECK(!str_ieq_utf8("Ærø", "Aero"));
	CHECK(!str_ieq_utf8("Æ", "\xC6"));            /* a stray byte is not the letter it would be in Latin-1 */
	CHECK(str_ieq_utf8("a\xC6" "b", "A\xC6" "B"));
	CHECK(!str_ieq_utf8("abc", "ab"));
	CHECK(!str_ieq_utf8("×", "÷"));
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

/* text_digest_hex of text[0..n) from the initial state, in a static buffer. */
static const char *digest_of(const char *text, size_t n)
{
	static char hex[33];
	uint64_t st[2] = TEXT_DIGEST_INIT;
	text_digest_next(st, text, n);
	text_digest_hex(st, hex);
	return hex;
}

TEST(util_text_digest)
{
	/* a page-like text: every one-byte change, at every position, at every
	 * length around the 32-byte blocks and 8-byte words, changes the digest */
	char text[100], was[33];
	for (size_t i = 0; i < sizeof text; i++) text[i] = (char)('0' + i % 64);
	int same = 0;
	for (size_t n = 1; n <= sizeof text; n++) {
		snprintf(was, sizeof was, "%s", digest_of(text, n));
		CHECK_EQ_INT(strlen(was), 32);
		for (size_t pos = 0; pos < n; pos++) {
			char keep = text[pos];
			text[pos] = (char)(keep ^ 0x20);
			same += !strcmp(digest_of(text, n), was);
			text[pos] = keep;
		}
		/* the same text, one byte shorter or with a NUL added: another digest */
		same += !strcmp(digest_of(text, n - 1), was);
		if (n < sizeof text) {
			char z = text[n];
			text[n] = '\0';
			same += !strcmp(digest_of(text, n + 1), was);
			text[n] = z;
		}
		/* and the same one again: the same digest */
		CHECK_STR(digest_of(text, n), was);
	}
	CHECK_EQ_INT(same, 0);
	/* a chain depends on the order and the cut of its texts */
	uint64_t ab[2] = TEXT_DIGEST_INIT, ba[2] = TEXT_DIGEST_INIT, whole[2] = TEXT_DIGEST_INIT;
	text_digest_next(ab, "page one", 8);
	text_digest_next(ab, "page two", 8);
	text_digest_next(ba, "page two", 8);
	text_digest_next(ba, "page one", 8);
	text_digest_next(whole, "page onepage two", 16);
	CHECK(memcmp(ab, ba, sizeof ab) != 0);
	CHECK(memcmp(ab, whole, sizeof ab) != 0);
	/* two pages of 1,000 GUID members that differ in one id's digit: apart */
	struct buf a = { 0 }, b = { 0 };
	for (int i = 0; i < 1000; i++)
		buf_printf(&a, "{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"%08x-604b-40ac-a9d7-9fd97c0b779f\"},", i);
	buf_add(&b, a.data, a.len);
	b.data[500 * 80 + 40] ^= 1;
	CHECK(memcmp(a.data, b.data, a.len) != 0);
	char da[33];
	snprintf(da, sizeof da, "%s", digest_of(a.data, a.len));
	CHECK(strcmp(da, digest_of(b.data, b.len)) != 0);
	buf_free(&a);
	buf_free(&b);
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

/* A registered secret that a server echoed near the end of a message too
 * long for struct err: redacted before the cut, so no fragment of it stays
 * (a fragment is no longer recognised by a later redaction). */
TEST(err_set_redacts_before_it_cuts)
{
	log_secret_add("Xq7Q~entrasync.fake-demo-secret_0001");
	struct err e;
	char pad[1100];
	for (size_t at = 990; at < 1030; at += 3) {   /* the secret across the 1024-byte cut */
		memset(pad, 'x', at);
		pad[at] = '\0';
		err_set(&e, "%s Xq7Q~entrasync.fake-demo-secret_0001 more", pad);
		CHECK(!strstr(e.msg, "Xq7Q~entrasync"));
		CHECK(!strstr(e.msg, "Xq7Q"));
		CHECK(strlen(e.msg) >= 990);
	}
	err_set(&e, "short %s", "Xq7Q~entrasync.fake-demo-secret_0001");
	CHECK_STR(e.msg, "short [REDACTED]");
	log_secrets_clear();
}

/* A bearer token at the very end of the text: the redaction stops at its
 * end (it used to take the NUL for a token character and read on: here
 * into what follows in the buffer). */
TEST(log_redact_token_at_the_end)
{
	static const char text[] = "x Bearer abcd\0efgh-ij zz";
	struct buf out = {0};
	log_redact(text, &out);
	CHECK_STR(out.data, "x Bearer [REDACTED]");
	buf_free(&out);
}

TEST(util_str_hash)
{
	CHECK(str_hash("Contoso.OnMicrosoft.com", true) == str_hash("contoso.onmicrosoft.com", true));
	CHECK(str_hash("Contoso.OnMicrosoft.com", false) != str_hash("contoso.onmicrosoft.com", false));
	CHECK(str_hash("policies/a.lua", false) != str_hash("policies/b.lua", false));
	CHECK(str_hash("", false) == 0xcbf29ce484222325u);    /* FNV-1a's offset basis */
	CHECK(str_hash("a", false) == 0xaf63dc4c8601ec8cu);   /* FNV-1a 64 of "a" */
}

/* The string index: case folded or exact, values replaced, grown past its
 * first sizes, nothing found in an empty one. */
TEST(util_str_index)
{
	struct str_index folded = { .fold = true }, exact = { 0 };
	CHECK(str_index_get(&folded, "x") == STR_INDEX_NONE);
	char keys[700][32];
	for (size_t i = 0; i < 700; i++) {
		snprintf(keys[i], sizeof keys[i], "Tenant-%zu.example", i);
		str_index_put(&folded, keys[i], i);
		str_index_put(&exact, keys[i], i);
	}
	CHECK_EQ_INT(folded.n, 700);
	char probe[32];
	for (size_t i = 0; i < 700; i++) {
		snprintf(probe, sizeof probe, "TENANT-%zu.EXAMPLE", i);
		CHECK(str_index_get(&folded, probe) == i);
		CHECK(str_index_get(&exact, probe) == STR_INDEX_NONE);
		CHECK(str_index_get(&exact, keys[i]) == i);
	}
	str_index_put(&folded, "tenant-5.example", 9999);   /* the same key, folded: replaced, not added */
	CHECK_EQ_INT(folded.n, 700);
	CHECK(str_index_get(&folded, keys[5]) == 9999);
	CHECK(str_index_get(&folded, "Tenant-700.example") == STR_INDEX_NONE);
	str_index_free(&folded);
	str_index_free(&exact);
	CHECK(folded.fold && folded.n == 0 && str_index_get(&folded, "x") == STR_INDEX_NONE);
}

TEST(text_is_utf16_by_mark_or_nul)
{
	CHECK(text_is_utf16("\xFF\xFEr\0e\0", 6));          /* little-endian mark */
	CHECK(text_is_utf16("\xFE\xFF\0r\0e", 6));          /* big-endian mark */
	CHECK(text_is_utf16("r\0e\0t\0", 6));               /* no mark, NULs between ASCII */
	CHECK(!text_is_utf16("return {}", 9));
	CHECK(!text_is_utf16("\xEF\xBB\xBFreturn {}", 12)); /* UTF-8 with its mark */
	CHECK(!text_is_utf16("\xFF", 1));
	CHECK(!text_is_utf16("", 0));
}

TEST(time_day_is_the_utc_day)
{
	char day[16];
	time_day(0, day, sizeof day);
	CHECK_STR(day, "1970-01-01");
	time_day(1796663662.9, day, sizeof day);    /* 2026-12-07T17:14:22Z */
	CHECK_STR(day, "2026-12-07");
	time_day(1796687999.5, day, sizeof day);    /* the day's last second */
	CHECK_STR(day, "2026-12-07");
}

/* Text from Microsoft or a customer printed on a terminal: no escape
 * sequence, no line of its own (C0, DEL, C1 and bytes that are not UTF-8
 * become '?'); other UTF-8 is kept. */
/* A message on one line: line breaks as " | ", tabs as spaces, a Lua
 * traceback folded to its Lua frames; other controls still '?'. */
TEST(term_message_folds_lines_and_tracebacks)
{
	char *s = str_term_message("policy error in on_leave(): pol3.lua:6: attempt to index a nil value (field 'nothing')\n"
	                           "stack traceback:\n\t[C]: in ?\n\tpol3.lua:6: in function <pol3.lua:4>\n"
	                           "\tpol3.lua:12: in local 'helper'\n\t[C]: in ?");
	CHECK_STR(s, "policy error in on_leave(): pol3.lua:6: attempt to index a nil value (field 'nothing') "
	             "(traceback: pol3.lua:6: in function <pol3.lua:4>; pol3.lua:12: in local 'helper')");
	free(s);
	s = str_term_message("Syncro said:\nName can't be blank\tand\x1b[31m more");
	CHECK_STR(s, "Syncro said: | Name can't be blank and?[31m more");
	free(s);
	s = str_term_message("only C frames\nstack traceback:\n\t[C]: in ?");
	CHECK_STR(s, "only C frames");
	free(s);
	CHECK(str_term_message(NULL) == NULL);
}

TEST(term_safe_replaces_control_characters)
{
	char *s = str_term_safe("Contoso\x1b]0;pwned\x07\x1b[2J\nok - forged\tline\x7f");
	CHECK_STR(s, "Contoso?]0;pwned??[2J?ok - forged?line?");
	free(s);
	s = str_term_safe("C1 \xc2\x9b" "31m and \xc2\x85 next, caf\xc3\xa9 \xe2\x82\xac ok, bad \xff\xc3 end");
	CHECK_STR(s, "C1 ?31m and ? next, caf\xc3\xa9 \xe2\x82\xac ok, bad ?? end");
	free(s);
	CHECK(str_term_safe(NULL) == NULL);
	struct buf b = { 0 };
	buf_adds(&b, "[");
	buf_add_term(&b, "a\rb");
	buf_add_term(&b, NULL);
	buf_adds(&b, "]");
	CHECK_STR(b.data, "[a?b]");
	buf_free(&b);
}
