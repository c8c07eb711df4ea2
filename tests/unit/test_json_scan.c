/* test_json_scan — top-level members from JSON text: spans, types, early
 * stop, escapes in keys and strings, malformed text, and strings decoded
 * as cJSON decodes them (random round trips). */
#include "t.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/json_scan.h"

static const char user[] =
	" {\"id\":\"u1\",\"displayName\":\"Zo\\u00eb \\\"Z\\\" Ng\",\"nested\":{\"mail\":\"no@x\",\"a\":[1,{\"b\":[]}]},"
	"\"businessPhones\":[\"+1 425\"],\"accountEnabled\":false,\"n\":-12.5e+3,\"z\":null,"
	"\"mail\":\"zoe@example.com\",\"mail\":\"second@example.com\",\"userPrincipalName\":\"zoe@x.onmicrosoft.com\"} ";

static long scan_str(const struct json_scan_value *v, char *out, size_t cap)
{
	return json_scan_string(v, out, cap);
}

TEST(json_scan_finds_top_level_members_only)
{
	struct err err;
	const char *keys[] = { "mail", "accountEnabled", "displayName", "nope", "n", "z", "businessPhones", "nested" };
	struct json_scan_value v[8];
	REQUIRE_OK(json_scan_members(user, strlen(user), keys, 8, v, &err), &err);
	char s[128];
	CHECK_EQ_INT(v[0].type, JSON_SCAN_STRING);
	CHECK(scan_str(&v[0], s, sizeof s) == 15);
	CHECK_STR(s, "zoe@example.com");          /* the first occurrence, not the nested one */
	CHECK_EQ_INT(v[1].type, JSON_SCAN_FALSE);
	CHECK(v[1].len == 5 && memcmp(v[1].text, "false", 5) == 0);
	CHECK(scan_str(&v[2], s, sizeof s) > 0);
	CHECK_STR(s, "Zo\xc3\xab \"Z\" Ng");
	CHECK_EQ_INT(v[3].type, JSON_SCAN_ABSENT);
	CHECK_EQ_INT(v[4].type, JSON_SCAN_NUMBER);
	CHECK(v[4].len == 8 && memcmp(v[4].text, "-12.5e+3", 8) == 0);
	CHECK_EQ_INT(v[5].type, JSON_SCAN_NULL);
	CHECK_EQ_INT(v[6].type, JSON_SCAN_ARRAY);
	CHECK(v[6].len == 10 && v[6].text[0] == '[' && v[6].text[9] == ']');
	CHECK_EQ_INT(v[7].type, JSON_SCAN_OBJECT);
	CHECK(v[7].text[0] == '{' && v[7].text[v[7].len - 1] == '}');
	CHECK(scan_str(&v[1], s, sizeof s) == -1);   /* not a string */
}

TEST(json_scan_stops_after_the_last_key)
{
	struct err err;
	const char *keys[] = { "a" };
	struct json_scan_value v;
	/* garbage after the member looked for is not read */
	static const char text[] = "{\"a\":true, \"b\": nonsense";
	CHECK(json_scan_members(text, strlen(text), keys, 1, &v, &err) == 0);
	CHECK_EQ_INT(v.type, JSON_SCAN_TRUE);
	/* but it is when the key is further on, or absent */
	static const char later[] = "{\"b\": nonsense, \"a\":true}";
	CHECK(json_scan_members(later, strlen(later), keys, 1, &v, &err) == -1);
	CHECK_CONTAINS(err.msg, "invalid JSON at byte offset 6");
}

TEST(json_scan_keys_with_escapes)
{
	struct err err;
	static const char text[] = "{\"m\\u0061il\":\"x@y\",\"long\\/key\":1}";
	const char *keys[] = { "mail", "long/key" };
	struct json_scan_value v[2];
	REQUIRE_OK(json_scan_members(text, strlen(text), keys, 2, v, &err), &err);
	CHECK_EQ_INT(v[0].type, JSON_SCAN_STRING);
	CHECK_EQ_INT(v[1].type, JSON_SCAN_NUMBER);
}

static int no_op(void *ud, const char *key, const struct json_scan_value *v)
{
	return 0;
}

TEST(json_scan_rejects_malformed_text)
{
	static const char *const bad[] = {
		"", "   ", "[1]", "\"s\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1 \"b\":2}",
		"{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":-}", "{\"a\":tru}", "{\"a\":nul}",
		"{\"a\":\"x}", "{\"a\":\"x\\\"}", "{\"a\":[1,2}",
		"{\"a\":{\"b\":1]}", "{\"a\":[1,]}", "{a:1}", "{\"a\":1}}", "{\"a\":1} x", "{\"a\":+1}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct err err = {0};
		int rc = json_scan_each_member(bad[i], strlen(bad[i]), no_op, NULL, &err);
		if (rc != -1) t_fail(__FILE__, __LINE__, "accepted malformed %s", bad[i]);
		else CHECK_CONTAINS(err.msg, "invalid JSON at byte offset");
	}
	/* nesting: the object and JSON_SCAN_DEPTH - 1 arrays is the most */
	struct buf b = {0};
	struct err err;
	for (int extra = 0; extra < 2; extra++) {
		buf_reset(&b);
		buf_adds(&b, "{\"a\":");
		for (int i = 0; i < JSON_SCAN_DEPTH - 1 + extra; i++) buf_addc(&b, '[');
		for (int i = 0; i < JSON_SCAN_DEPTH - 1 + extra; i++) buf_addc(&b, ']');
		buf_addc(&b, '}');
		CHECK(json_scan_each_member(b.data, b.len, no_op, NULL, &err) == (extra ? -1 : 0));
	}
	buf_free(&b);
}

static int count_member(void *ud, const char *key, const struct json_scan_value *v)
{
	struct buf *b = ud;
	buf_printf(b, "%s:%d;", key, (int)v->type);
	return strcmp(key, "stop") == 0 ? 7 : 0;
}

static int tally_member(void *ud, const char *key, const struct json_scan_value *v)
{
	int **n = ud;
	(void)v;
	(*n[key ? 1 : 0])++;
	return 0;
}

TEST(json_scan_each_member_in_order)
{
	struct err err;
	struct buf b = {0};
	static const char text[] = "\n{ \"a\" : [ ] , \"b\":{},\"c\":\"\",\"d\":0,\"e\":true }\t";
	REQUIRE_OK(json_scan_each_member(text, strlen(text), count_member, &b, &err), &err);
	CHECK_STR(b.data, "a:6;b:7;c:5;d:4;e:3;");
	buf_reset(&b);
	REQUIRE_OK(json_scan_each_member("{}", 2, count_member, &b, &err), &err);
	CHECK_STR(b.data, "");
	static const char stop[] = "{\"x\":1,\"stop\":2,\"y\":3}";
	CHECK(json_scan_each_member(stop, strlen(stop), count_member, &b, &err) == 7);
	CHECK_STR(b.data, "x:4;stop:4;");
	/* a name too long to hand over comes as NULL, never silently skipped */
	buf_reset(&b);
	buf_adds(&b, "{\"a\":1,\"");
	for (int i = 0; i < 300; i++) buf_addc(&b, 'k');
	buf_adds(&b, "\":2}");
	int nulls = 0, named = 0;
	REQUIRE_OK(json_scan_each_member(b.data, b.len, tally_member, (int *[]){ &nulls, &named }, &err), &err);
	CHECK_EQ_INT(nulls, 1);
	CHECK_EQ_INT(named, 1);
	buf_free(&b);
}

/* Appends "index:type:text;" for each element; stops (returns 7) at "stop". */
static int note_element(void *ud, size_t i, const struct json_scan_value *v)
{
	struct buf *b = ud;
	buf_printf(b, "%zu:%d:%.*s;", i, (int)v->type, (int)v->len, v->text);
	return v->len == 6 && !memcmp(v->text, "\"stop\"", 6) ? 7 : 0;
}

TEST(json_scan_each_element_in_order)
{
	struct err err;
	struct buf b = {0};
	static const char text[] = " [ {\"a\":[1,2]} , \"x\\\"]\",-1.5e3,null,[] ]\n";
	REQUIRE_OK(json_scan_each_element(text, strlen(text), note_element, &b, &err), &err);
	char want[200];
	snprintf(want, sizeof want, "0:%d:{\"a\":[1,2]};1:%d:\"x\\\"]\";2:%d:-1.5e3;3:%d:null;4:%d:[];", JSON_SCAN_OBJECT,
	         JSON_SCAN_STRING, JSON_SCAN_NUMBER, JSON_SCAN_NULL, JSON_SCAN_ARRAY);
	CHECK_STR(b.data, want);
	buf_reset(&b);
	REQUIRE_OK(json_scan_each_element("[]", 2, note_element, &b, &err), &err);
	CHECK(b.len == 0);
	static const char stop[] = "[1,\"stop\",3]";
	CHECK(json_scan_each_element(stop, strlen(stop), note_element, &b, &err) == 7);
	/* malformed: each names its byte offset */
	static const char *const bad[] = { "[1,]", "[1 2]", "[1", "{\"a\":1}", "[1] x", "[01]", "", "[tru]" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		buf_reset(&b);
		CHECK(json_scan_each_element(bad[i], strlen(bad[i]), note_element, &b, &err) == -1);
		CHECK(strstr(err.msg, "invalid JSON at byte offset") != NULL);
	}
	buf_free(&b);
}

/* Appends "i:id:status:body;" (absent: "-") for each record. */
static int note_record(void *ud, size_t i, const struct json_scan_value *v)
{
	struct buf *b = ud;
	char line[200];
	snprintf(line, sizeof line, "%zu:%.*s:%.*s:%.*s;", i, v[0].type ? (int)v[0].len : 1, v[0].type ? v[0].text : "-",
	         v[1].type ? (int)v[1].len : 1, v[1].type ? v[1].text : "-", v[2].type ? (int)v[2].len : 1,
	         v[2].type ? v[2].text : "-");
	buf_adds(b, line);
	return v[0].type == JSON_SCAN_STRING && !strncmp(v[0].text, "\"stop\"", 6) ? 9 : 0;
}

TEST(json_scan_each_record_in_one_pass)
{
	struct err err;
	struct buf b = {0};
	static const char *const keys[] = { "id", "status", "body" };
	bool found = false;
	/* a $batch answer: parts in any order, keys in any order, nested
	 * bodies, an element that is not an object, members around the list */
	static const char text[] = "{\"x\":{\"responses\":[9]}, \"responses\" : [ {\"status\":200,\"id\":\"a\","
		"\"body\":{\"value\":[{\"id\":\"in\"}]}} , 7, {\"id\":\"b\",\"headers\":{\"Retry-After\":\"1\"},"
		"\"status\":429}, {} ], \"tail\": \"\\\"]\" }\n";
	REQUIRE_OK(json_scan_each_record(text, strlen(text), "responses", keys, 3, NULL, note_record, &b, &found, &err), &err);
	CHECK(found);
	CHECK_STR(b.data, "0:\"a\":200:{\"value\":[{\"id\":\"in\"}]};1:-:-:-;2:\"b\":429:-;3:-:-:-;");
	/* no such member, or not an array: nothing called, not found */
	static const char *const absent[] = { "{}", "{\"responses\":{\"id\":\"a\"}}", "{\"other\":[{\"id\":\"a\"}]}" };
	for (size_t i = 0; i < sizeof absent / sizeof *absent; i++) {
		buf_reset(&b);
		REQUIRE_OK(json_scan_each_record(absent[i], strlen(absent[i]), "responses", keys, 3, NULL, note_record, &b, &found,
		                                 &err), &err);
		CHECK(!found && b.len == 0);
	}
	/* fn's non-zero result stops the scan and is returned */
	static const char stop[] = "{\"responses\":[{\"id\":\"stop\"},{\"id\":\"never\"}]}";
	buf_reset(&b);
	CHECK(json_scan_each_record(stop, strlen(stop), "responses", keys, 3, NULL, note_record, &b, &found, &err) == 9);
	CHECK(strstr(b.data, "never") == NULL);
	/* malformed anywhere (inside a body, after the list, after the
	 * object): -1 naming the byte offset */
	static const char *const bad[] = { "{\"responses\":[{\"id\":\"a\",\"body\":{\"v\":[1,]}}]}",
		"{\"responses\":[{\"id\":\"a\"}],}", "{\"responses\":[]} x", "{\"responses\":[{\"id\":\"a\"}",
		"[{\"id\":\"a\"}]", "{\"responses\":[{\"id\" \"a\"}]}" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		buf_reset(&b);
		CHECK(json_scan_each_record(bad[i], strlen(bad[i]), "responses", keys, 3, NULL, note_record, &b, &found, &err) == -1);
		CHECK(strstr(err.msg, "invalid JSON at byte offset") != NULL);
	}
	buf_free(&b);
}

/* Appends each element as the scan spanned it (vals[1]: after the one key). */
static int note_record_span(void *ud, size_t i, const struct json_scan_value *v)
{
	struct buf *b = ud;
	buf_printf(b, "%zu:%.*s|", i, (int)v[1].len, v[1].text);
	return 0;
}

TEST(json_scan_each_record_also_reads_the_members_beside)
{
	struct err err;
	struct buf b = {0};
	static const char *const keys[] = { "day" };
	static const char *const also[] = { "@odata.nextLink", "@odata.count" };
	struct json_scan_value out[2];
	bool found;
	/* the link before the list, in Graph's order; an element that is no
	 * object spanned too; a nested "@odata.nextLink" not taken */
	static const char before[] = "{\"@odata.nextLink\":\"https://x/next\",\"value\":[ {\"day\":1,"
		"\"@odata.nextLink\":\"inner\"} ,2,{\"day\":[3]}]}";
	REQUIRE_OK(json_scan_each_record_also(before, strlen(before), "value", keys, 1, NULL, note_record_span, &b, &found,
	                                      also, 2, out, &err), &err);
	CHECK(found);
	CHECK_STR(b.data, "0:{\"day\":1,\"@odata.nextLink\":\"inner\"}|1:2|2:{\"day\":[3]}|");
	CHECK_EQ_INT(out[0].type, JSON_SCAN_STRING);
	CHECK_EQ_INT((int)out[0].len, 16);
	CHECK(!strncmp(out[0].text, "\"https://x/next\"", out[0].len));
	CHECK_EQ_INT(out[1].type, JSON_SCAN_ABSENT);
	/* after the list, and a count; the first occurrence wins */
	static const char after[] = "{\"value\":[],\"@odata.count\":7,\"@odata.nextLink\":\"n1\",\"@odata.nextLink\":\"n2\"}";
	buf_reset(&b);
	REQUIRE_OK(json_scan_each_record_also(after, strlen(after), "value", keys, 1, NULL, note_record_span, &b, &found,
	                                      also, 2, out, &err), &err);
	CHECK(found && b.len == 0);
	CHECK(out[0].type == JSON_SCAN_STRING && !strncmp(out[0].text, "\"n1\"", out[0].len));
	CHECK(out[1].type == JSON_SCAN_NUMBER && out[1].len == 1 && out[1].text[0] == '7');
	/* malformed after the list: -1, as json_scan_each_record */
	static const char bad[] = "{\"value\":[{\"day\":1}],\"@odata.nextLink\":}";
	CHECK(json_scan_each_record_also(bad, strlen(bad), "value", keys, 1, NULL, note_record_span, &b, &found, also, 2, out,
	                                 &err) == -1);
	buf_free(&b);
}

/* A reader for "body" (key 2) that takes an object whose id (read before
 * it) starts with 'm': it finds the object's end by brackets (the test's
 * bodies hold no brackets in strings) and notes what it took. */
static size_t read_m_body(void *ud, size_t i, const struct json_scan_value *vals, const char *p, size_t left)
{
	struct buf *b = ud;
	if (vals[0].type != JSON_SCAN_STRING || vals[0].text[1] != 'm' || *p != '{') return 0;
	int depth = 0;
	for (size_t k = 0; k < left; k++) {
		depth += p[k] == '{' || p[k] == '[';
		depth -= p[k] == '}' || p[k] == ']';
		if (depth == 0) {
			buf_printf(b, "read %zu:%.*s;", i, (int)k + 1, p);
			return k + 1;
		}
	}
	return 0;
}

TEST(json_scan_each_record_with_a_reader)
{
	struct err err;
	struct buf b = {0}, got = {0};
	static const char *const keys[] = { "id", "status", "body" };
	bool found = false;
	static const char text[] = "{\"responses\":[{\"id\":\"m1\",\"status\":200,\"body\":{\"value\":[1,{\"a\":2}]}},"
		"{\"id\":\"g1\",\"body\":{\"v\":3}},{\"body\":{\"late\":1},\"id\":\"m2\"}]}";
	const struct json_scan_reader reader = { .key = 2, .read = read_m_body, .ud = &got };
	REQUIRE_OK(json_scan_each_record(text, strlen(text), "responses", keys, 3, &reader, note_record, &b, &found, &err),
	           &err);
	CHECK(found);
	/* m1's body read by the reader, with the same span as a scan's; g1's
	 * and m2's (its id after its body) skipped as usual */
	CHECK_STR(got.data, "read 0:{\"value\":[1,{\"a\":2}]};");
	CHECK_STR(b.data, "0:\"m1\":200:{\"value\":[1,{\"a\":2}]};1:\"g1\":-:{\"v\":3};2:\"m2\":-:{\"late\":1};");
	/* malformed text after a value the reader took is still refused */
	static const char bad[] = "{\"responses\":[{\"id\":\"m1\",\"body\":{\"v\":1}} x]}";
	CHECK(json_scan_each_record(bad, strlen(bad), "responses", keys, 3, &reader, note_record, &b, &found, &err) == -1);
	buf_free(&b);
	buf_free(&got);
}

TEST(json_scan_strings_strict_escapes_and_controls)
{
	static const char *const good[] = {
		"{\"a\":\"plain\",\"b\":[1,\"x\"]}", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u00e9\\uD83D\\ude00\"",
		"{\n  \"a\": 1\n}", "[]", "\"caf\xc3\xa9\"",
	};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		if (!json_scan_strings_strict(good[i], strlen(good[i]))) t_fail(__FILE__, __LINE__, "refused %s", good[i]);
	static const char *const bad[] = {
		"\"tab\there\"", "{\"a\":\"line\nbreak\"}", "\"\\x41\"", "\"\\u12G4\"", "\"\\u12\"", "\"cut", "\"\\",
		"\"\x01\"",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (json_scan_strings_strict(bad[i], strlen(bad[i]))) t_fail(__FILE__, __LINE__, "accepted %s", bad[i]);
}

TEST(json_scan_string_escapes_and_buffers)
{
	struct json_scan_value v = { JSON_SCAN_STRING, "\"a\\n\\t\\\\\\/\\b\\f\\r\\u20ac\\ud83d\\ude00\\udc00x\"", 0 };
	v.len = strlen(v.text);
	char s[64];
	long n = json_scan_string(&v, s, sizeof s);
	static const char want[] = "a\n\t\\/\b\f\r\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbdx";
	CHECK_EQ_INT(n, (long)strlen(want));
	CHECK_STR(s, want);
	/* a buffer of v.len bytes always suffices; a shorter one fails cleanly */
	char exact[64];
	CHECK(json_scan_string(&v, exact, v.len) == n);
	CHECK(json_scan_string(&v, s, (size_t)n) == -1 && s[0] == '\0');
	struct buf b = {0};
	CHECK(json_scan_string_buf(&v, &b) == n);
	CHECK_STR(b.data, want);
	/* decoding checks what skipping did not */
	static const char *const bad[] = { "\"\\x\"", "\"\\u12g4\"", "\"tab\there\"", "\"\\u12\"", "\"\\\"" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct json_scan_value bv = { JSON_SCAN_STRING, bad[i], strlen(bad[i]) };
		if (json_scan_string(&bv, s, sizeof s) != -1) t_fail(__FILE__, __LINE__, "decoded malformed %s", bad[i]);
	}
	struct json_scan_value num = { JSON_SCAN_NUMBER, "12", 2 };
	CHECK(json_scan_string_buf(&num, &b) == -1 && b.data[0] == '\0');
	buf_free(&b);
}

/* Random strings (any code point, control characters included) printed by
 * cJSON decode back to what cJSON parses. */
TEST(json_scan_strings_agree_with_cjson)
{
	unsigned seed = 12345;
	struct buf src = {0};
	for (int round = 0; round < 2000; round++) {
		buf_reset(&src);
		int n = (int)((seed = seed * 1103515245 + 12345) >> 16) % 24;
		for (int i = 0; i < n; i++) {
			seed = seed * 1103515245 + 12345;
			unsigned long cp = (seed >> 8) % 4 == 0 ? (seed >> 12) % 0x20 + 1
			                   : (seed >> 8) % 4 == 1 ? (seed >> 12) % 0x80 + 1
			                   : (seed >> 12) % 0x10FFFF + 1;
			if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'q';
			char u[4];
			size_t k = cp < 0x80 ? (u[0] = (char)cp, 1)
			           : cp < 0x800 ? (u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63)), 2)
			           : cp < 0x10000 ? (u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 63)),
			                             u[2] = (char)(0x80 | (cp & 63)), 3)
			                          : (u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 63)),
			                             u[2] = (char)(0x80 | (cp >> 6 & 63)), u[3] = (char)(0x80 | (cp & 63)), 4);
			buf_add(&src, u, k);
		}
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "k", src.data);
		char *text = cJSON_PrintUnformatted(o);
		const char *keys[] = { "k" };
		struct json_scan_value v;
		struct err err;
		char out[256];
		if (json_scan_members(text, strlen(text), keys, 1, &v, &err) != 0 || json_scan_string(&v, out, sizeof out) < 0 ||
		    strcmp(out, src.data) != 0)
			t_fail(__FILE__, __LINE__, "round %d: %s", round, text);
		cJSON_free(text);
		cJSON_Delete(o);
	}
	buf_free(&src);
}
