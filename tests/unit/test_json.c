/* test_json — JSON <-> Lua conversion (src/script/lua_json.c): UTF-8 kept intact,
 * null distinct from absent, integers exact up to 2^53, depth limit,
 * malformed input reported with its position, round trips, encode errors.
 * C API checks use a bare Lua state; Lua-level checks run in the sandbox. */
#include "t.h"

#include <math.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "script/lua_json.h"
#include "script/script.h"

/* Runs fn(L) under lua_pcall with a bare state; returns the error or NULL. */
static char g_lua_err[1024];
static const char *pcall_c(lua_State *L, lua_CFunction fn, void *ud)
{
	lua_pushcfunction(L, fn);
	lua_pushlightuserdata(L, ud);
	if (lua_pcall(L, 1, 1, 0) == LUA_OK) return NULL;
	snprintf(g_lua_err, sizeof g_lua_err, "%s", lua_tostring(L, -1));
	lua_pop(L, 1);
	return g_lua_err;
}

struct push_arg {
	const char *text;
	int depth;
};

static int do_push_text(lua_State *L)
{
	struct push_arg *a = lua_touserdata(L, 1);
	luajson_push_text(L, a->text, strlen(a->text), a->depth);
	return 1;
}

/* Decodes text into the Lua value left on the stack; NULL error on success. */
static const char *decode(lua_State *L, const char *text, int depth)
{
	struct push_arg a = { text, depth };
	return pcall_c(L, do_push_text, &a);
}

/* Runs Lua code in a fresh sandbox, returning 0 or -1 with err filled. */
static int run_lua(const char *code, struct err *err)
{
	struct script *s = NULL;
	if (script_new(NULL, &s, err) != 0) return -1;
	int rc = script_run_string(s, code, "test.lua", err);
	script_free(s);
	return rc;
}

TEST(json_utf8_kept_intact)
{
	lua_State *L = luaL_newstate();
	/* raw UTF-8, \u escapes (BMP) and a surrogate pair */
	REQUIRE(decode(L, "[\"h\xc3\xa9llo \xf0\x9f\x98\x80\", \"\\u00e9\\u4e2d\", \"\\ud83d\\ude00\", \"a\\\"b\\\\c\\n\"]", 0) == NULL);
	lua_rawgeti(L, -1, 1);
	CHECK_STR(lua_tostring(L, -1), "h\xc3\xa9llo \xf0\x9f\x98\x80");
	lua_rawgeti(L, -2, 2);
	CHECK_STR(lua_tostring(L, -1), "\xc3\xa9\xe4\xb8\xad");
	lua_rawgeti(L, -3, 3);
	CHECK_STR(lua_tostring(L, -1), "\xf0\x9f\x98\x80");
	lua_rawgeti(L, -4, 4);
	CHECK_STR(lua_tostring(L, -1), "a\"b\\c\n");
	lua_pop(L, 4);
	/* back to JSON: the same characters */
	struct err err;
	cJSON *j = luajson_to_cjson(L, -1, 0, &err);
	REQUIRE(j != NULL);
	CHECK_STR(cJSON_GetArrayItem(j, 0)->valuestring, "h\xc3\xa9llo \xf0\x9f\x98\x80");
	CHECK_STR(cJSON_GetArrayItem(j, 2)->valuestring, "\xf0\x9f\x98\x80");
	cJSON_Delete(j);
	/* a lone surrogate is malformed */
	CHECK(decode(L, "[\"\\ud83d\"]", 0) != NULL);
	lua_close(L);
	/* and the Lua side: decode/encode round trip */
	CHECK_OK(run_lua("local json = require 'entrasync.json'\n"
	                 "local s = json.decode('\"\\\\ud83d\\\\ude00 \\\\u00e9\"')\n"
	                 "assert(s == '\\u{1F600} \\u{E9}', s)\n"
	                 "assert(#s == 7)\n"
	                 "local t = json.encode({ s = '\\u{1F600}\\u{E9}\\u{4E2D}' })\n"
	                 "assert(t == '{\"s\":\"\\u{1F600}\\u{E9}\\u{4E2D}\"}', t)\n"
	                 "assert(json.decode(t).s == '\\u{1F600}\\u{E9}\\u{4E2D}')\n", &err), &err);
}

TEST(json_null_distinct_from_absent)
{
	struct err err;
	CHECK_OK(run_lua("local json = require 'entrasync.json'\n"
	                 "local t = json.decode('{\"a\": null, \"b\": [1, null, 3]}')\n"
	                 "assert(t.a == json.null, 'a is json.null')\n"
	                 "assert(t.c == nil, 'c is absent')\n"
	                 "assert(t.b[2] == json.null and #t.b == 3)\n"
	                 "assert(type(json.null) == 'userdata')\n"
	                 "assert(json.null == require('entrasync.json').null)\n"
	                 "assert(json.encode({ a = json.null }) == '{\"a\":null}')\n"
	                 "assert(json.encode({ a = nil }) == '{}')\n"
	                 "assert(json.encode(json.null) == 'null')\n", &err), &err);
	/* absent mode (policy user tables): null members are left out */
	lua_State *L = luaL_newstate();
	cJSON *j = cJSON_Parse("{\"mail\": null, \"id\": \"x\", \"phones\": [null]}");
	luajson_push(L, j, 0, LUAJSON_NULL_ABSENT, 0);
	CHECK_EQ_INT(lua_getfield(L, -1, "mail"), LUA_TNIL);
	CHECK_EQ_INT(lua_getfield(L, -2, "id"), LUA_TSTRING);
	CHECK_EQ_INT(lua_getfield(L, -3, "phones"), LUA_TTABLE);
	lua_rawgeti(L, -1, 1);
	CHECK(luajson_is_null(L, -1));
	lua_close(L);
	cJSON_Delete(j);
}

TEST(json_integers_exact_to_2_pow_53)
{
	lua_State *L = luaL_newstate();
	REQUIRE(decode(L, "[9007199254740992, -9007199254740992, 9007199254740994, 1.5, 3.0, 1e300, 0, -7, 123456789012]", 0) == NULL);
	lua_rawgeti(L, -1, 1);
	CHECK(lua_isinteger(L, -1));
	CHECK(lua_tointeger(L, -1) == 9007199254740992LL);
	lua_rawgeti(L, -2, 2);
	CHECK(lua_isinteger(L, -1));
	CHECK(lua_tointeger(L, -1) == -9007199254740992LL);
	lua_rawgeti(L, -3, 3);           /* beyond 2^53: a float */
	CHECK(!lua_isinteger(L, -1));
	CHECK(lua_tonumber(L, -1) == 9007199254740994.0);
	lua_rawgeti(L, -4, 4);
	CHECK(!lua_isinteger(L, -1));
	CHECK(lua_tonumber(L, -1) == 1.5);
	lua_rawgeti(L, -5, 5);           /* 3.0 is integral: an integer */
	CHECK(lua_isinteger(L, -1));
	lua_rawgeti(L, -6, 6);
	CHECK(!lua_isinteger(L, -1));
	lua_rawgeti(L, -7, 9);
	CHECK(lua_isinteger(L, -1));
	CHECK(lua_tointeger(L, -1) == 123456789012LL);
	lua_close(L);
	struct err err;
	CHECK_OK(run_lua("local json = require 'entrasync.json'\n"
	                 "local t = json.decode('[9007199254740992, 9007199254740994, 2.5, -9007199254740994]')\n"
	                 "assert(math.type(t[1]) == 'integer' and t[1] == 2^53 // 1)\n"
	                 "assert(math.type(t[2]) == 'float')\n"
	                 "assert(math.type(t[3]) == 'float' and math.type(t[4]) == 'float')\n"
	                 /* Lua integers -> JSON digits without .0, exact even past 2^53 */
	                 "assert(json.encode(42) == '42', json.encode(42))\n"
	                 "assert(json.encode(9007199254740992) == '9007199254740992')\n"
	                 "assert(json.encode(1000000000000000) == '1000000000000000', json.encode(1000000000000000))\n"
	                 "assert(json.encode(4611686018427387904) == '4611686018427387904')\n"
	                 "assert(json.encode(-4611686018427387904) == '-4611686018427387904')\n"
	                 "assert(json.encode(2.5) == '2.5')\n"
	                 "assert(json.encode(0.1) == '0.1', json.encode(0.1))\n"
	                 "assert(json.decode(json.encode(1/3)) == 1/3)\n", &err), &err);
}

TEST(json_depth_limit)
{
	lua_State *L = luaL_newstate();
	char deep[300];
	/* 64 levels pass, 65 do not (default), and the limit is configurable */
	memset(deep, '[', 64);
	memset(deep + 64, ']', 64);
	deep[128] = '\0';
	CHECK(decode(L, deep, 0) == NULL);
	lua_settop(L, 0);
	memset(deep, '[', 65);
	memset(deep + 65, ']', 65);
	deep[130] = '\0';
	const char *e = decode(L, deep, 0);
	CHECK_CONTAINS(e, "JSON nested too deeply (more than 64 levels)");
	e = decode(L, "{\"a\":{\"b\":{\"c\":1}}}", 2);
	CHECK_CONTAINS(e, "more than 2 levels");
	CHECK(decode(L, "{\"a\":{\"b\":{\"c\":1}}}", 3) == NULL);
	lua_close(L);
	/* the sandbox's limit comes from script_limits.json_depth */
	struct script *s = NULL;
	struct err err;
	struct script_limits lim = { .json_depth = 3 };
	REQUIRE_OK(script_new(&lim, &s, &err), &err);
	CHECK(script_run_string(s, "require('entrasync.json').decode('[[[[1]]]]')", "d.lua", &err) != 0);
	CHECK_CONTAINS(err.msg, "d.lua:1: JSON nested too deeply (more than 3 levels)");
	CHECK_OK(script_run_string(s, "require('entrasync.json').decode('[[[1]]]')", "d.lua", &err), &err);
	/* encode: a cycle hits the same limit */
	CHECK(script_run_string(s, "local t = {} t.t = t require('entrasync.json').encode(t)", "c.lua", &err) != 0);
	CHECK_CONTAINS(err.msg, "nested too deeply (more than 3 levels) or contains a cycle at $.t.t.t");
	script_free(s);
}

TEST(json_malformed_input_position)
{
	cJSON *j = NULL;
	struct err err;
	CHECK(luajson_parse("{\"a\": 1,}", 9, &j, &err) != 0);
	CHECK_STR(err.msg, "invalid JSON at byte offset 8 (line 1, column 9) near '}'");
	const char *two = "{\n  \"a\": tru\n}";
	CHECK(luajson_parse(two, strlen(two), &j, &err) != 0);
	CHECK_CONTAINS(err.msg, "(line 2, column");
	CHECK(luajson_parse("[1] x", 5, &j, &err) != 0);
	CHECK_STR(err.msg, "invalid JSON: unexpected data after the value at byte offset 4 (line 1, column 5) near 'x'");
	CHECK(luajson_parse("  ", 2, &j, &err) != 0);
	CHECK_STR(err.msg, "invalid JSON: empty text");
	CHECK(luajson_parse("[1, 2", 5, &j, &err) != 0);
	CHECK_CONTAINS(err.msg, "invalid JSON at byte offset");
	/* the length bounds the parse: a valid prefix of a longer buffer */
	CHECK_OK(luajson_parse("[1]garbage", 3, &j, &err), &err);
	CHECK(cJSON_IsArray(j));
	cJSON_Delete(j);
	/* the Lua side raises with the caller's place */
	CHECK(run_lua("require('entrasync.json').decode('{\"a\" 1}')", &err) != 0);
	CHECK_CONTAINS(err.msg, "test.lua:1: invalid JSON at byte offset 5 (line 1, column 6): expected ':' near '1}'");
}

/* The direct text parser (json.decode, policy users given as text) and the
 * cJSON path give the same values for valid documents. */
static const char *const valid_docs[] = {
	"0", "-0", "1", "-1", "123456789012345", "1234567890123456", "9007199254740993", "1.5", "-2.5e-3", "1E2", "3.0",
	"\"\"", "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "\"\\u0041\\u00e9\\u4e2d\\ud83d\\ude00\"",
	"\"h\xc3\xa9llo\"", "true", "false", "null", "[]", "{}", "[[]]", "[null, 1, \"x\", [], {}]",
	"{\"a\":{\"b\":[1,2,{\"c\":null}]},\"d\":-7}", " \t\r\n[ 1 , 2 ]\n ",
	"{\"k\":\"dup\",\"k\":\"second\"}",
};

static int push_cjson(lua_State *L)
{
	cJSON *j = lua_touserdata(L, 1);
	luajson_push(L, j, 0, LUAJSON_NULL_SENTINEL, 0);
	return 1;
}

TEST(json_direct_parser_matches_cjson)
{
	lua_State *L = luaL_newstate();
	struct err err;
	for (size_t i = 0; i < ARRAY_LEN(valid_docs); i++) {
		const char *doc = valid_docs[i];
		cJSON *ref = NULL;
		if (luajson_parse(doc, strlen(doc), &ref, &err) != 0) {
			t_fail(__FILE__, __LINE__, "cJSON rejects %s: %s", doc, err.msg);
			continue;
		}
		const char *e = decode(L, doc, 0);
		if (e) {
			t_fail(__FILE__, __LINE__, "direct parser rejects %s: %s", doc, e);
			cJSON_Delete(ref);
			continue;
		}
		REQUIRE(pcall_c(L, push_cjson, ref) == NULL);
		/* same Lua types (integer vs float too) and values */
		CHECK_EQ_INT(lua_type(L, -1), lua_type(L, -2));
		if (lua_type(L, -1) == LUA_TNUMBER) {
			CHECK_EQ_INT(lua_isinteger(L, -1), lua_isinteger(L, -2));
			CHECK(lua_rawequal(L, -1, -2));
		}
		cJSON *a = luajson_to_cjson(L, -1, 0, &err), *b = luajson_to_cjson(L, -2, 0, &err);
		CHECK(a && b && cJSON_Compare(a, b, 1));
		if (!(a && b && cJSON_Compare(a, b, 1))) t_fail(__FILE__, __LINE__, "differs: %s", doc);
		cJSON_Delete(a);
		cJSON_Delete(b);
		cJSON_Delete(ref);
		lua_settop(L, 0);
	}
	/* out of double range: infinity on both paths */
	REQUIRE(decode(L, "[1e400, -1e400]", 0) == NULL);
	lua_rawgeti(L, -1, 1);
	CHECK(lua_tonumber(L, -1) == HUGE_VAL);
	lua_rawgeti(L, -2, 2);
	CHECK(lua_tonumber(L, -1) == -HUGE_VAL);
	lua_settop(L, 0);
	/* duplicate keys: the first wins on both paths */
	REQUIRE(decode(L, "{\"k\":1,\"k\":2}", 0) == NULL);
	lua_getfield(L, -1, "k");
	CHECK_EQ_INT(lua_tointeger(L, -1), 1);
	lua_settop(L, 0);
	/* large containers go through the stack in chunks */
	struct buf big = {0};
	buf_adds(&big, "{\"arr\":[");
	for (int i = 0; i < 1000; i++) buf_printf(&big, "%s%d", i ? "," : "", i);
	buf_adds(&big, "]");
	for (int i = 0; i < 300; i++) buf_printf(&big, ",\"k%d\":%d", i, i);
	buf_adds(&big, "}");
	REQUIRE(decode(L, big.data, 0) == NULL);
	CHECK_EQ_INT(lua_getfield(L, -1, "arr"), LUA_TTABLE);
	CHECK_EQ_INT(lua_rawlen(L, -1), 1000);
	lua_rawgeti(L, -1, 1000);
	CHECK_EQ_INT(lua_tointeger(L, -1), 999);
	lua_rawgeti(L, -2, 65);
	CHECK_EQ_INT(lua_tointeger(L, -1), 64);
	lua_getfield(L, -4, "k299");
	CHECK_EQ_INT(lua_tointeger(L, -1), 299);
	lua_getfield(L, -5, "k0");
	CHECK_EQ_INT(lua_tointeger(L, -1), 0);
	buf_free(&big);
	lua_close(L);
}

TEST(json_direct_parser_rejects_malformed)
{
	static const struct { const char *doc, *why; } bad[] = {
		{ "", "empty text" }, { "   ", "empty text" }, { "{", "expected a string key" },
		{ "{\"a\"}", "expected ':'" }, { "{\"a\":1,}", "expected a string key" }, { "{\"a\":1 \"b\":2}", "expected ',' or '}'" },
		{ "[1,]", "unexpected character" }, { "[1 2]", "expected ',' or ']'" }, { "[", "the text ends early" },
		{ "01", "leading zero" }, { "-", "invalid number" }, { "1.", "digit expected after '.'" }, { "1e", "digit expected in exponent" },
		{ "+1", "unexpected character" }, { ".5", "unexpected character" }, { "tru", "invalid literal" },
		{ "nul", "invalid literal" }, { "NaN", "unexpected character" }, { "'x'", "unexpected character" },
		{ "\"abc", "unterminated string" }, { "\"a\\x\"", "invalid escape" }, { "\"\\u12\"", "invalid \\u escape" },
		{ "\"\\ud83d\"", "high surrogate not followed by a low surrogate" }, { "\"\\ude00\"", "lone low surrogate" },
		{ "\"a\nb\"", "control character in string" }, { "[1] [2]", "unexpected data after the value" },
		{ "{\"a\":1}x", "unexpected data after the value" }, { "[1,\n  {\"x\": tru}]", "(line 2, column 9): invalid literal" },
	};
	lua_State *L = luaL_newstate();
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		const char *e = decode(L, bad[i].doc, 0);
		if (!e) {
			t_fail(__FILE__, __LINE__, "accepted: %s", bad[i].doc);
			lua_settop(L, 0);
			continue;
		}
		CHECK_CONTAINS(e, "invalid JSON");
		CHECK_CONTAINS(e, bad[i].why);
	}
	lua_close(L);
}

struct items {
	char seen[8][64];
	int n;
};

static int collect_item(void *ud, const char *item, size_t len)
{
	struct items *it = ud;
	if (it->n < 8) snprintf(it->seen[it->n], sizeof it->seen[0], "%.*s", (int)len, item);
	it->n++;
	return 0;
}

static int stop_at_second(void *ud, const char *item, size_t len)
{
	struct items *it = ud;
	return ++it->n == 2 ? 7 : 0;
}

TEST(json_each_item_splits_pages)
{
	const char *page = "{\"@odata.context\":\"x\",\"@odata.nextLink\":\"https://g/u?$skiptoken=a,b]}\",\"other\":[{\"value\":[9]}],"
	                   "\"value\":[ {\"id\":\"1\",\"n\":\"a\\\"}]\"} , {\"id\":\"2\",\"l\":[1,{\"x\":[]}]},3,\"s\",null ]}";
	struct items it = {0};
	struct err err;
	REQUIRE_OK(script_json_each_item(page, strlen(page), "value", collect_item, &it, &err), &err);
	CHECK_EQ_INT(it.n, 5);
	CHECK_STR(it.seen[0], "{\"id\":\"1\",\"n\":\"a\\\"}]\"}");
	CHECK_STR(it.seen[1], "{\"id\":\"2\",\"l\":[1,{\"x\":[]}]}");
	CHECK_STR(it.seen[2], "3");
	CHECK_STR(it.seen[3], "\"s\"");
	CHECK_STR(it.seen[4], "null");
	/* absent key and empty array: no items; the callback's result stops the walk */
	memset(&it, 0, sizeof it);
	CHECK_OK(script_json_each_item("{\"a\":1}", 7, "value", collect_item, &it, &err), &err);
	CHECK_OK(script_json_each_item("{\"value\":[]}", 12, "value", collect_item, &it, &err), &err);
	CHECK_EQ_INT(it.n, 0);
	CHECK_EQ_INT(script_json_each_item(page, strlen(page), "value", stop_at_second, &it, &err), 7);
	/* malformed pages */
	CHECK(script_json_each_item("[1]", 3, "value", collect_item, &it, &err) != 0);
	CHECK_CONTAINS(err.msg, "expected an object");
	CHECK(script_json_each_item("{\"value\":[{\"a\":1}", 16, "value", collect_item, &it, &err) != 0);
	CHECK_CONTAINS(err.msg, "invalid JSON at byte offset 10");
	CHECK(script_json_each_item("{\"value\":{}}", 12, "value", collect_item, &it, &err) != 0);
	CHECK_CONTAINS(err.msg, "expected an array");
}

TEST(json_round_trip)
{
	const char *doc =
		"{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#users\",\"value\":[{\"businessPhones\":[],"
		"\"displayName\":\"Conf Room Adams\",\"givenName\":null,\"mail\":\"Adams@contoso.com\",\"id\":\"6ea91a8d\","
		"\"accountEnabled\":true,\"n\":12,\"f\":0.25,\"assignedLicenses\":[{\"disabledPlans\":[],\"skuId\":\"c7df\"}],"
		"\"nested\":{\"empty\":{},\"deep\":[[1,[2,[3]]]]},\"name\":\"M\xc3\xbcller \xe2\x82\xac\"}]}";
	cJSON *orig = cJSON_Parse(doc);
	REQUIRE(orig != NULL);
	lua_State *L = luaL_newstate();
	REQUIRE(decode(L, doc, 0) == NULL);
	struct err err;
	cJSON *back = luajson_to_cjson(L, -1, 0, &err);
	REQUIRE(back != NULL);
	CHECK(cJSON_Compare(orig, back, 1));
	cJSON_Delete(back);
	cJSON_Delete(orig);
	lua_close(L);
	/* encode output is deterministic (sorted keys) and [] / {} survive */
	CHECK_OK(run_lua("local json = require 'entrasync.json'\n"
	                 "local s = json.encode({ b = 1, a = { 1, 2, { c = true } }, c = json.array(), d = {} })\n"
	                 "assert(s == '{\"a\":[1,2,{\"c\":true}],\"b\":1,\"c\":[],\"d\":{}}', s)\n"
	                 "assert(json.encode(json.decode('{\"x\":[],\"y\":{}}')) == '{\"x\":[],\"y\":{}}')\n"
	                 "local t = json.decode('[1,\"two\",false,null]')\n"
	                 "assert(json.encode(t) == '[1,\"two\",false,null]')\n", &err), &err);
}

TEST(json_encode_errors_name_the_path)
{
	struct err err;
	static const struct { const char *code, *want; } cases[] = {
		{ "return { a = { print } }", "cannot encode a function value at $.a[1]" },
		{ "return { 1, nil, 3 }", "sparse array" },
		{ "return { 1, x = 2 }", "mixing string and integer keys at $" },
		{ "return { a = 0/0 }", "cannot encode NaN or infinity at $.a" },
		{ "return { a = math.huge }", "NaN or infinity" },
		{ "return { s = 'caf\\xe9' }", "string is not valid UTF-8 at $.s" },
		{ "return { ['k\\xff'] = 1 }", "key is not valid UTF-8" },
		{ "return { s = 'a\\0b' }", "string contains a NUL byte at $.s" },
		{ "return { [true] = 1 }", "cannot encode a table with a boolean key at $" },
		{ "return { [1.5] = 1 }", "cannot encode a table with a number key" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char code[256];
		snprintf(code, sizeof code, "local v = (function() %s end)()\nrequire('entrasync.json').encode(v)", cases[i].code);
		CHECK(run_lua(code, &err) != 0);
		CHECK_CONTAINS(err.msg, "json.encode: ");
		CHECK_CONTAINS(err.msg, cases[i].want);
	}
}
