/* lua_json — JSON <-> Lua conversion (cJSON trees <-> Lua values) and the
 * `entrasync.json` module exposed to Lua. The mapping rules are in
 * lua_json.h. Part of the scripting layer: the only place, with script.c,
 * that includes lua.h. */
#include "script/lua_json.h"
#include "script/script.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "util/json_scan.h"

#define TWO_POW_53 9007199254740992.0

/* Registry keys (addresses, so no string is allocated to look them up). */
static char null_sentinel;             /* json.null is a light userdata to this */
static const char array_mt_key = 0;    /* metatable marking a table as a JSON array */
static const char box_mt_key = 0;      /* metatable of the leak-safe cJSON holder */

void luajson_push_null(lua_State *L)
{
	lua_pushlightuserdata(L, &null_sentinel);
}

int luajson_is_null(lua_State *L, int idx)
{
	return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == &null_sentinel;
}

/* Pushes the json.array metatable, creating it on first use. May raise. */
static void push_array_mt(lua_State *L)
{
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key) == LUA_TTABLE) return;
	lua_pop(L, 1);
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "json.array");
	lua_setfield(L, -2, "__name");
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);
}

/* ---- JSON -> Lua ------------------------------------------------------- */

/* Pushes a cJSON number: integral values within +-2^53 as Lua integers. */
static void push_number(lua_State *L, double d)
{
	if (d >= -TWO_POW_53 && d <= TWO_POW_53 && d == (double)(long long)d)
		lua_pushinteger(L, (lua_Integer)d);
	else
		lua_pushnumber(L, d);
}

static void push_value(lua_State *L, const cJSON *v, int depth, int max_depth, enum luajson_null_mode nulls);

static void push_container(lua_State *L, const cJSON *v, int depth, int max_depth, enum luajson_null_mode nulls,
                           int extra)
{
	if (depth > max_depth)
		luaL_error(L, "JSON nested too deeply (more than %d levels)", max_depth);
	luaL_checkstack(L, 4, "JSON nesting");
	int n = 0;
	if (cJSON_IsArray(v)) {
		for (const cJSON *c = v->child; c; c = c->next) n++;
		lua_createtable(L, n, 0);
		if (n == 0) {
			push_array_mt(L);
			lua_setmetatable(L, -2);
			return;
		}
		lua_Integer i = 1;
		for (const cJSON *c = v->child; c; c = c->next) {
			push_value(L, c, depth + 1, max_depth, LUAJSON_NULL_SENTINEL);
			lua_rawseti(L, -2, i++);
		}
		return;
	}
	for (const cJSON *c = v->child; c; c = c->next)
		if (nulls == LUAJSON_NULL_SENTINEL || !cJSON_IsNull(c)) n++;
	lua_createtable(L, 0, n + extra);
	/* last to first (the head's prev is the tail), so that with duplicate
	 * keys the first one wins, as in cJSON's lookups and the text parser */
	for (const cJSON *c = v->child ? v->child->prev : NULL; c; c = (c == v->child) ? NULL : c->prev) {
		if (nulls == LUAJSON_NULL_ABSENT && cJSON_IsNull(c)) continue;
		lua_pushstring(L, c->string ? c->string : "");
		push_value(L, c, depth + 1, max_depth, nulls);
		lua_rawset(L, -3);
	}
}

static void push_value(lua_State *L, const cJSON *v, int depth, int max_depth, enum luajson_null_mode nulls)
{
	switch (v->type & 0xFF) {
	case cJSON_False: lua_pushboolean(L, 0); break;
	case cJSON_True: lua_pushboolean(L, 1); break;
	case cJSON_NULL: luajson_push_null(L); break;
	case cJSON_Number: push_number(L, v->valuedouble); break;
	case cJSON_String: lua_pushstring(L, v->valuestring ? v->valuestring : ""); break;
	case cJSON_Array:
	case cJSON_Object: push_container(L, v, depth, max_depth, nulls, 0); break;
	case cJSON_Raw: lua_pushstring(L, v->valuestring ? v->valuestring : ""); break;
	default: luajson_push_null(L); break;
	}
}

void luajson_push(lua_State *L, const cJSON *v, int max_depth, enum luajson_null_mode nulls, int extra)
{
	if (max_depth <= 0) max_depth = LUAJSON_DEFAULT_DEPTH;
	luaL_checkstack(L, 4, "JSON value");
	if (!v) luajson_push_null(L);
	else if (cJSON_IsObject(v)) push_container(L, v, 1, max_depth, nulls, extra);
	else push_value(L, v, 1, max_depth, nulls);
}

/* line and column (1-based) of text + off */
static void text_position(const char *text, size_t off, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* "near 'xyz'" snippet: up to 16 printable bytes from off, or "end of input". */
static void near_snippet(const char *text, size_t len, size_t off, char *out, size_t cap)
{
	if (off >= len) {
		snprintf(out, cap, "at end of input");
		return;
	}
	char s[17];
	size_t n = 0;
	for (size_t i = off; i < len && n < sizeof s - 1 && text[i] != '\n'; i++)
		s[n++] = isprint((unsigned char)text[i]) ? text[i] : '?';
	s[n] = '\0';
	snprintf(out, cap, "near '%s'", s);
}

/* "invalid JSON at byte offset 8 (line 1, column 9)[: why] near '}'" */
static int parse_error(struct err *err, const char *what, const char *why, const char *text, size_t len, size_t off)
{
	size_t line, col;
	char near[40];
	text_position(text, off, &line, &col);
	near_snippet(text, len, off, near, sizeof near);
	return err_set(err, "%s at byte offset %zu (line %zu, column %zu)%s%s %s", what, off, line, col, why ? ": " : "",
	               why ? why : "", near);
}

int luajson_parse(const char *text, size_t len, cJSON **out, struct err *err)
{
	*out = NULL;
	size_t start = 0;
	while (start < len && isspace((unsigned char)text[start])) start++;
	if (start == len) return err_set(err, "invalid JSON: empty text");
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!j) {
		size_t off = (end && end >= text && end <= text + len) ? (size_t)(end - text) : 0;
		return parse_error(err, "invalid JSON", NULL, text, len, off);
	}
	size_t off = (size_t)(end - text);
	while (off < len && isspace((unsigned char)text[off])) off++;
	if (off < len) {
		cJSON_Delete(j);
		return parse_error(err, "invalid JSON: unexpected data after the value", NULL, text, len, off);
	}
	*out = j;
	return 0;
}

/* The leak-safe holder: a userdata owning a cJSON tree and a printed text,
 * freed by __gc when a Lua error interrupts the C code using it. */
struct json_box {
	cJSON *tree;
	char *text;
};

static void box_clear(struct json_box *b)
{
	cJSON_Delete(b->tree);
	free(b->text);
	b->tree = NULL;
	b->text = NULL;
}

static int box_gc(lua_State *L)
{
	struct json_box *b = lua_touserdata(L, 1);
	if (b) box_clear(b);
	return 0;
}

static struct json_box *push_box(lua_State *L)
{
	struct json_box *b = lua_newuserdatauv(L, sizeof *b, 0);
	b->tree = NULL;
	b->text = NULL;
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &box_mt_key) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_createtable(L, 0, 1);
		lua_pushcfunction(L, box_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushvalue(L, -1);
		lua_rawsetp(L, LUA_REGISTRYINDEX, &box_mt_key);
	}
	lua_setmetatable(L, -2);
	return b;
}

/* ---- JSON text -> Lua, directly ----------------------------------------- */

/* A strict (RFC 8259) single-pass parser that builds Lua values straight
 * from the text: no intermediate tree, strings without escapes pushed from
 * the input as they are. Members and items are first pushed on the Lua
 * stack, then moved into a table created with the exact size (in chunks,
 * so huge containers do not need a huge stack). Raises on malformed text. */
struct jtext {
	lua_State *L;
	const char *s, *p, *e;     /* text, cursor, end */
	int max_depth;
	enum luajson_null_mode nulls;
	bool last_null;            /* the value just parsed was null */
};

#define JT_CHUNK 64              /* members/items kept on the stack before a flush */

static int jt_error(struct jtext *j, const char *why)
{
	struct err err;
	parse_error(&err, "invalid JSON", why, j->s, (size_t)(j->e - j->s), (size_t)(j->p - j->s));
	return luaL_error(j->L, "%s", err.msg);
}

static inline void jt_ws(struct jtext *j)
{
	while (j->p < j->e && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static int hex4(const char *q)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = q[i];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= c - '0';
		else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
		else return -1;
	}
	return v;
}

static size_t utf8_put(char *d, unsigned cp)
{
	if (cp < 0x80) { d[0] = (char)cp; return 1; }
	if (cp < 0x800) { d[0] = (char)(0xC0 | (cp >> 6)); d[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
	if (cp < 0x10000) {
		d[0] = (char)(0xE0 | (cp >> 12)); d[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); d[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	d[0] = (char)(0xF0 | (cp >> 18)); d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); d[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* A string with escapes, from start (after the quote) to the closing quote
 * at end: decoded into a Lua buffer (never longer than the raw text). */
static void jt_string_escaped(struct jtext *j, const char *start, const char *end)
{
	luaL_Buffer b;
	char *d = luaL_buffinitsize(j->L, &b, (size_t)(end - start));
	size_t n = 0;
	for (const char *q = start; q < end;) {
		unsigned char c = (unsigned char)*q;
		if (c != '\\') {
			if (c < 0x20) { j->p = q; jt_error(j, "control character in string"); }
			d[n++] = (char)c;
			q++;
			continue;
		}
		j->p = q;
		switch (q[1]) {
		case '"': d[n++] = '"'; break;
		case '\\': d[n++] = '\\'; break;
		case '/': d[n++] = '/'; break;
		case 'b': d[n++] = '\b'; break;
		case 'f': d[n++] = '\f'; break;
		case 'n': d[n++] = '\n'; break;
		case 'r': d[n++] = '\r'; break;
		case 't': d[n++] = '\t'; break;
		case 'u': {
			int u = end - q >= 6 ? hex4(q + 2) : -1;
			if (u < 0) jt_error(j, "invalid \\u escape");
			unsigned cp = (unsigned)u;
			if (cp >= 0xDC00 && cp <= 0xDFFF) jt_error(j, "lone low surrogate in \\u escape");
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				int lo = (end - q >= 12 && q[6] == '\\' && q[7] == 'u') ? hex4(q + 8) : -1;
				if (lo < 0xDC00 || lo > 0xDFFF) jt_error(j, "high surrogate not followed by a low surrogate");
				cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
				q += 6;
			}
			n += utf8_put(d + n, cp);
			q += 6;
			continue;
		}
		default: jt_error(j, "invalid escape in string");
		}
		q += 2;
	}
	luaL_pushresultsize(&b, n);
}

/* Checks the string at the cursor (on its opening quote) and returns its
 * closing quote; *escaped tells whether it has escapes. Raises on control
 * characters, bad escapes and lone surrogates. */
static const char *scan_string_rest(struct jtext *j, const char *q, bool *escaped);

static inline const char *scan_string(struct jtext *j, bool *escaped)
{
	const char *q = json_scan_skip_plain(j->p + 1, j->e);
	*escaped = false;
	if (q < j->e && *q == '"') return q;                /* the common case, inline */
	return scan_string_rest(j, q, escaped);
}

/* scan_string from q on (an escape, a control character or the end). */
static __attribute__((noinline)) const char *scan_string_rest(struct jtext *j, const char *q, bool *escaped)
{
	const char *e = j->e;
	for (;;) {
		q = json_scan_skip_plain(q, e);
		if (q >= e) jt_error(j, "unterminated string");
		if (*q == '"') return q;
		if (*q != '\\') {
			j->p = q;
			jt_error(j, "control character in string");
		}
		*escaped = true;
		if (q + 1 >= e) jt_error(j, "unterminated string");
		switch (q[1]) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			q += 2;
			break;
		case 'u': {
			j->p = q;
			int u = e - q >= 6 ? hex4(q + 2) : -1;
			if (u < 0) jt_error(j, "invalid \\u escape");
			if (u >= 0xDC00 && u <= 0xDFFF) jt_error(j, "lone low surrogate in \\u escape");
			if (u >= 0xD800 && u <= 0xDBFF) {
				int lo = (e - q >= 12 && q[6] == '\\' && q[7] == 'u') ? hex4(q + 8) : -1;
				if (lo < 0xDC00 || lo > 0xDFFF) jt_error(j, "high surrogate not followed by a low surrogate");
				q += 6;
			}
			q += 6;
			break;
		}
		default:
			j->p = q;
			jt_error(j, "invalid escape in string");
		}
	}
}

/* Pushes the string at the cursor (on its opening quote). */
static void jt_string(struct jtext *j)
{
	bool escaped;
	const char *start = j->p + 1, *q = scan_string(j, &escaped);
	if (escaped) jt_string_escaped(j, start, q);
	else lua_pushlstring(j->L, start, (size_t)(q - start));
	j->p = q + 1;
}

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Checks the number at the cursor; returns its end and where its integer
 * part ends, *isint when it has no fraction or exponent. */
static const char *scan_number(struct jtext *j, bool *isint, const char **int_end)
{
	const char *q = j->p, *e = j->e;
	*isint = true;
	if (*q == '-') q++;
	if (q >= e || !is_digit(*q)) jt_error(j, "invalid number");
	if (*q == '0') {
		q++;
		if (q < e && is_digit(*q)) jt_error(j, "leading zero in number");
	} else {
		while (q < e && is_digit(*q)) q++;
	}
	*int_end = q;
	if (q < e && *q == '.') {
		*isint = false;
		q++;
		if (q >= e || !is_digit(*q)) { j->p = q; jt_error(j, "digit expected after '.'"); }
		while (q < e && is_digit(*q)) q++;
	}
	if (q < e && (*q == 'e' || *q == 'E')) {
		*isint = false;
		q++;
		if (q < e && (*q == '+' || *q == '-')) q++;
		if (q >= e || !is_digit(*q)) { j->p = q; jt_error(j, "digit expected in exponent"); }
		while (q < e && is_digit(*q)) q++;
	}
	if ((size_t)(q - j->p) >= 512) jt_error(j, "number too long");
	return q;
}

/* Pushes the number at the cursor: integral values within +-2^53 as
 * integers (as push_number does for cJSON's doubles). */
static void jt_number(struct jtext *j)
{
	bool isint;
	const char *int_end, *start = j->p, *q = scan_number(j, &isint, &int_end);
	const char *d = start + (*start == '-');
	if (isint && int_end - d <= 15) {          /* < 10^15 < 2^53: exact */
		long long v = 0;
		for (; d < int_end; d++) v = v * 10 + (*d - '0');
		lua_pushinteger(j->L, *start == '-' ? -v : v);
	} else {
		char buf[512];
		size_t n = (size_t)(q - start);
		memcpy(buf, start, n);
		buf[n] = '\0';
		push_number(j->L, strtod(buf, NULL));
	}
	j->p = q;
}

static void jt_literal(struct jtext *j, const char *word, size_t n)
{
	if ((size_t)(j->e - j->p) < n || memcmp(j->p, word, n) != 0) jt_error(j, "invalid literal");
	j->p += n;
}

static void jt_value(struct jtext *j, int depth);

/* Moves the n key/value pairs above the table at t into it. */
static void jt_flush_pairs(lua_State *L, int t, int n)
{
	while (n-- > 0) lua_rawset(L, t);
}

static void jt_object(struct jtext *j, int depth, int extra)
{
	lua_State *L = j->L;
	j->p++;
	int t = lua_gettop(L) + 1;   /* where the table goes */
	bool made = false;
	int n = 0;
	jt_ws(j);
	if (j->p < j->e && *j->p == '}') {
		j->p++;
		lua_createtable(L, 0, extra);
		return;
	}
	for (;;) {
		if (n == 0) luaL_checkstack(L, 2 * JT_CHUNK + 4, "JSON object");
		jt_ws(j);
		if (j->p >= j->e || *j->p != '"') jt_error(j, "expected a string key");
		jt_string(j);
		jt_ws(j);
		if (j->p >= j->e || *j->p != ':') jt_error(j, "expected ':'");
		j->p++;
		jt_ws(j);
		jt_value(j, depth + 1);
		if (j->last_null && j->nulls == LUAJSON_NULL_ABSENT) lua_pop(L, 2);
		else n++;
		jt_ws(j);
		if (j->p < j->e && *j->p == ',') {
			j->p++;
			if (n == JT_CHUNK) {
				if (!made) {
					lua_createtable(L, 0, 4 * JT_CHUNK);
					lua_insert(L, t);
					made = true;
				}
				jt_flush_pairs(L, t, n);
				n = 0;
			}
			continue;
		}
		if (j->p < j->e && *j->p == '}') {
			j->p++;
			break;
		}
		jt_error(j, "expected ',' or '}'");
	}
	if (!made) {
		lua_createtable(L, 0, n + extra);
		lua_insert(L, t);
	}
	jt_flush_pairs(L, t, n);
}

static void jt_array(struct jtext *j, int depth)
{
	lua_State *L = j->L;
	j->p++;
	int t = lua_gettop(L) + 1;
	bool made = false;
	int n = 0;
	lua_Integer done = 0;          /* items already moved into the table */
	jt_ws(j);
	if (j->p < j->e && *j->p == ']') {
		j->p++;
		lua_createtable(L, 0, 0);
		push_array_mt(L);
		lua_setmetatable(L, -2);
		return;
	}
	for (;;) {
		if (n == 0) luaL_checkstack(L, JT_CHUNK + 4, "JSON array");
		jt_ws(j);
		jt_value(j, depth + 1);
		n++;
		jt_ws(j);
		if (j->p < j->e && *j->p == ',') {
			j->p++;
			if (n == JT_CHUNK) {
				if (!made) {
					lua_createtable(L, 4 * JT_CHUNK, 0);
					lua_insert(L, t);
					made = true;
				}
				for (int i = n; i > 0; i--) lua_rawseti(L, t, done + i);
				done += n;
				n = 0;
			}
			continue;
		}
		if (j->p < j->e && *j->p == ']') {
			j->p++;
			break;
		}
		jt_error(j, "expected ',' or ']'");
	}
	if (!made) {
		lua_createtable(L, n, 0);
		lua_insert(L, t);
	}
	for (int i = n; i > 0; i--) lua_rawseti(L, t, done + i);
}

static void jt_value(struct jtext *j, int depth)
{
	if (j->p >= j->e) jt_error(j, "the text ends early");
	char c = *j->p;
	switch (c) {
	case '{':
	case '[':
		if (depth > j->max_depth) {
			char why[64];
			snprintf(why, sizeof why, "JSON nested too deeply (more than %d levels)", j->max_depth);
			luaL_error(j->L, "%s", why);
		}
		if (c == '{') jt_object(j, depth, 0);
		else jt_array(j, depth);
		break;
	case '"': jt_string(j); break;
	case 't': jt_literal(j, "true", 4); lua_pushboolean(j->L, 1); break;
	case 'f': jt_literal(j, "false", 5); lua_pushboolean(j->L, 0); break;
	case 'n': jt_literal(j, "null", 4); luajson_push_null(j->L); break;
	default:
		if (c == '-' || is_digit(c)) jt_number(j);
		else jt_error(j, "unexpected character");
	}
	j->last_null = (c == 'n');
}

void luajson_push_text_mode(lua_State *L, const char *text, size_t len, int max_depth, enum luajson_null_mode nulls,
                            int extra)
{
	struct jtext j = { .L = L, .s = text, .p = text, .e = text + len,
	                   .max_depth = max_depth > 0 ? max_depth : LUAJSON_DEFAULT_DEPTH, .nulls = nulls };
	luaL_checkstack(L, 8, "JSON value");
	jt_ws(&j);
	if (j.p == j.e) luaL_error(L, "invalid JSON: empty text");
	if (*j.p == '{') {
		jt_object(&j, 1, extra);
		j.last_null = false;
	} else {
		jt_value(&j, 1);
	}
	jt_ws(&j);
	if (j.p != j.e) jt_error(&j, "unexpected data after the value");
}

void luajson_push_text(lua_State *L, const char *text, size_t len, int max_depth)
{
	luajson_push_text_mode(L, text, len, max_depth, LUAJSON_NULL_SENTINEL, 0);
}

/* Checks the value at the cursor without building anything (same grammar
 * and limits as jt_value) and moves past it. */
static void jv_value(struct jtext *j, int depth)
{
	if (j->p >= j->e) jt_error(j, "the text ends early");
	char c = *j->p;
	bool flag;
	const char *q;
	switch (c) {
	case '{':
	case '[': {
		if (depth > j->max_depth) luaL_error(j->L, "JSON nested too deeply (more than %d levels)", j->max_depth);
		char close = c == '{' ? '}' : ']';
		j->p++;
		jt_ws(j);
		if (j->p < j->e && *j->p == close) {
			j->p++;
			break;
		}
		for (;;) {
			jt_ws(j);
			if (c == '{') {
				if (j->p >= j->e || *j->p != '"') jt_error(j, "expected a string key");
				j->p = scan_string(j, &flag) + 1;
				jt_ws(j);
				if (j->p >= j->e || *j->p != ':') jt_error(j, "expected ':'");
				j->p++;
				jt_ws(j);
			}
			jv_value(j, depth + 1);
			jt_ws(j);
			if (j->p < j->e && *j->p == ',') {
				j->p++;
				continue;
			}
			if (j->p < j->e && *j->p == close) {
				j->p++;
				break;
			}
			jt_error(j, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
		}
		break;
	}
	case '"': j->p = scan_string(j, &flag) + 1; break;
	case 't': jt_literal(j, "true", 4); break;
	case 'f': jt_literal(j, "false", 5); break;
	case 'n': jt_literal(j, "null", 4); break;
	default:
		if (c == '-' || is_digit(c)) j->p = scan_number(j, &flag, &q);
		else jt_error(j, "unexpected character");
	}
	j->last_null = (c == 'n');
}

/* ---- lazy user objects --------------------------------------------------- */

/* The policy's user table: its text is checked in full first and its
 * top-level members indexed; a member becomes a Lua value on first access
 * (the shared metatable's __index converts it and stores it in the table).
 * Members whose names earlier policy calls of this state read ("hot" names)
 * are converted at once instead, so that reading them costs no metamethod
 * call: a policy reads the same few members of every user. Hot names are
 * forgotten every LAZY_RELEARN users, so a change in what the policy reads
 * is followed. The members the caller computes (struct luajson_synth) are
 * made on first read. One lazy user at a time per state: the index lives in
 * one reusable userdata (in the registry; its user values are the table of
 * interned member names and the metatable) and the text is the caller's,
 * valid until luajson_user_release. Nothing is copied and nothing per user
 * is allocated besides the table and the values converted. */
struct lazy_member {
	uint32_t koff, voff, vlen;
	uint16_t klen;
	int16_t key;               /* its entry in the name dictionary, or -1 */
	bool plain;                /* the value is a string without escapes */
	bool done;                 /* in the table already (or assigned by Lua) */
};

#define LAZY_MAX_MEMBERS 256
#define LAZY_KEYS 128          /* member names remembered per state */
#define LAZY_KEY_LEN 40        /* the longest one remembered */
#define LAZY_RELEARN 1024      /* users between two forgettings of the hot names */
#define LAZY_SPARE 4           /* free hash slots for members read lazily */
#define LAZY_POSITIONS 512     /* member positions (null members count) remembered */

/* A member name seen in users: the Lua string, interned once (kept alive by
 * the names table), and whether a policy call read it. */
struct lazy_key {
	const char *interned;
	uint16_t len;
	bool hot;
	int8_t synth;              /* the caller-computed member of that name, or -1 */
	int8_t view;               /* its slot in luajson_user_view's names, or -1 */
	uint32_t synth_gen;        /* synth holds for lazy_user.synth_gen */
	uint32_t view_gen;         /* view holds for lazy_user.view_gen */
};

struct lazy_user {
	const void *table;         /* the current user table, or NULL */
	const char *text;          /* its JSON text (the caller's) */
	const struct luajson_synth *synth;   /* the caller's, or NULL */
	bool synth_done[LUAJSON_MAX_SYNTH];
	bool modified;             /* Lua assigned to the table (__newindex or rawset) */
	const char *const *synth_names;      /* the names lazy_key.synth was found for */
	uint32_t synth_gen;
	const char *const *view_names;       /* the names lazy_key.view was found for */
	uint32_t view_gen;
	int max_depth;
	uint32_t n;
	uint32_t calls;
	uint32_t nkeys;
	struct lazy_key keys[LAZY_KEYS];
	int16_t pos_key[LAZY_POSITIONS];     /* the name entry last seen at each position, or -1 */
	struct lazy_member m[LAZY_MAX_MEMBERS];
};

static const char lazy_key = 0;       /* registry: the lazy_user userdata */
static const char lazy_mt_key = 0;    /* registry: the shared metatable */

/* The state's lazy_user (created with the metatable on first use). */
static struct lazy_user *lazy_state(lua_State *L)
{
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &lazy_key) == LUA_TUSERDATA) {
		struct lazy_user *lu = lua_touserdata(L, -1);
		lua_pop(L, 1);
		return lu;
	}
	lua_pop(L, 1);
	return NULL;
}

/* The lazy_user (the metamethods' upvalue) when table t is the current
 * user; raises for a user table kept past its call (its text is gone). */
static struct lazy_user *lazy_check(lua_State *L, int t)
{
	struct lazy_user *lu = lua_touserdata(L, lua_upvalueindex(1));
	if (lu && lu->table == lua_topointer(L, t)) return lu;
	luaL_error(L, "this user table belongs to a policy call that has returned (keep the values you need, not u)");
	return NULL;
}

/* Pushes member i's value, marking it converted. */
static void lazy_push_value(lua_State *L, struct lazy_user *lu, uint32_t i)
{
	struct lazy_member *m = &lu->m[i];
	m->done = true;
	if (m->plain) {                             /* checked already: as it is */
		lua_pushlstring(L, lu->text + m->voff + 1, m->vlen - 2);
		return;
	}
	struct jtext j = { .L = L, .s = lu->text, .p = lu->text + m->voff, .e = lu->text + m->voff + m->vlen,
	                   .max_depth = lu->max_depth, .nulls = LUAJSON_NULL_ABSENT };
	luaL_checkstack(L, 4, "JSON value");
	jt_value(&j, 2);
}

/* Index of the caller-computed member named k[0..klen), or -1. */
static int synth_find(const struct luajson_synth *sy, const char *k, size_t klen)
{
	for (unsigned i = 0; sy && i < sy->n; i++)
		if (strlen(sy->names[i]) == klen && memcmp(sy->names[i], k, klen) == 0) return (int)i;
	return -1;
}

/* Pushes caller-computed member i of the user table at t, marking it made. */
static void synth_push(lua_State *L, struct lazy_user *lu, int t, int i)
{
	lu->synth_done[i] = true;
	lu->synth->push(L, t, (unsigned)i, lu->synth->ud);
}

/* __index(u, k): the member k, converted now and stored in u; nil when
 * absent or null. */
static int lazy_index(lua_State *L)
{
	struct lazy_user *lu = lazy_check(L, 1);
	if (lua_type(L, 2) != LUA_TSTRING) return 0;
	size_t klen;
	const char *k = lua_tolstring(L, 2, &klen);
	for (uint32_t i = 0; i < lu->n; i++) {
		struct lazy_member *m = &lu->m[i];
		if (m->done) continue;
		/* interned names: the same string is the same pointer */
		if ((m->key < 0 || lu->keys[m->key].interned != k) &&
		    (m->klen != klen || memcmp(lu->text + m->koff, k, klen) != 0))
			continue;
		if (m->key >= 0) lu->keys[m->key].hot = true;
		lua_settop(L, 2);
		lazy_push_value(L, lu, i);              /* 3: v */
		lua_pushvalue(L, 2);
		lua_pushvalue(L, 3);
		lua_rawset(L, 1);
		return 1;
	}
	int s = synth_find(lu->synth, k, klen);
	if (s < 0 || lu->synth_done[s]) return 0;
	lua_settop(L, 2);
	synth_push(L, lu, 1, s);                    /* 3: v */
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, 1);
	return 1;
}

/* Converts every member not converted yet (pairs, json.encode). */
static void lazy_fill_all(lua_State *L, int t, struct lazy_user *lu)
{
	t = lua_absindex(L, t);
	for (uint32_t i = 0; lu && i < lu->n; i++) {
		if (lu->m[i].done) continue;
		lua_pushlstring(L, lu->text + lu->m[i].koff, lu->m[i].klen);
		lazy_push_value(L, lu, i);
		lua_rawset(L, t);
	}
	for (unsigned i = 0; lu && lu->synth && i < lu->synth->n; i++) {
		if (lu->synth_done[i]) continue;
		lua_pushstring(L, lu->synth->names[i]);
		synth_push(L, lu, t, (int)i);
		lua_rawset(L, t);
	}
}

/* __newindex(u, k, v): an assignment hides the member for good. */
static int lazy_newindex(lua_State *L)
{
	struct lazy_user *lu = lazy_check(L, 1);
	size_t klen;
	const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &klen) : NULL;
	if (lu) lu->modified = true;
	if (k && lu) {
		for (uint32_t i = 0; i < lu->n; i++)
			if (lu->m[i].klen == klen && memcmp(lu->text + lu->m[i].koff, k, klen) == 0) lu->m[i].done = true;
		int s = synth_find(lu->synth, k, klen);
		if (s >= 0) lu->synth_done[s] = true;
	}
	lua_settop(L, 3);
	lua_rawset(L, 1);
	return 0;
}

static int lazy_next(lua_State *L)
{
	lua_settop(L, 2);
	if (lua_next(L, 1)) return 2;
	lua_pushnil(L);
	return 1;
}

/* __pairs(u): every member, converted first. */
static int lazy_pairs(lua_State *L)
{
	lazy_fill_all(L, 1, lazy_check(L, 1));
	lua_pushcfunction(L, lazy_next);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

/* Pushes the state's lazy_user userdata (created on first use, with its
 * user values: 1 the names table, 2 the metatable). */
static struct lazy_user *lazy_setup(lua_State *L)
{
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &lazy_key) == LUA_TUSERDATA) return lua_touserdata(L, -1);
	lua_pop(L, 1);
	struct lazy_user *lu = lua_newuserdatauv(L, sizeof *lu, 2);
	memset(lu, 0, sizeof *lu);
	memset(lu->pos_key, 0xff, sizeof lu->pos_key);          /* -1: none */
	lua_createtable(L, LAZY_KEYS, 0);
	lua_setiuservalue(L, -2, 1);
	lua_createtable(L, 0, 4);
	static const luaL_Reg meta[] = {
		{ "__index", lazy_index }, { "__newindex", lazy_newindex }, { "__pairs", lazy_pairs }, { NULL, NULL },
	};
	lua_pushvalue(L, -2);
	luaL_setfuncs(L, meta, 1);                               /* the userdata as upvalue */
	lua_pushliteral(L, "user");
	lua_setfield(L, -2, "__name");
	lua_pushboolean(L, 0);                                   /* getmetatable(u) is false, */
	lua_setfield(L, -2, "__metatable");                      /* setmetatable(u) refused */
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &lazy_mt_key);
	lua_setiuservalue(L, -2, 2);
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &lazy_key);
	return lu;
}

void luajson_user_release(lua_State *L)
{
	struct lazy_user *lu = lazy_state(L);
	if (lu) {
		lu->table = NULL;
		lu->text = NULL;
		lu->synth = NULL;
	}
}

void luajson_user_touch(lua_State *L, int t)
{
	const void *p = lua_topointer(L, t);
	struct lazy_user *lu = p ? lazy_state(L) : NULL;
	if (lu && lu->table == p) lu->modified = true;
}

/* n bytes at a and b equal (short names: cheaper than a memcmp call). */
static inline bool same_bytes(const char *a, const char *b, size_t n)
{
	for (; n >= 8; n -= 8, a += 8, b += 8) {
		uint64_t x, y;
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		if (x != y) return false;
	}
	for (; n; n--)
		if (*a++ != *b++) return false;
	return true;
}

/* The name dictionary entry of a member named k[0..klen) at position pos
 * (tried first: users list their members in the same order), added when
 * new; -1 when the name is too long or the dictionary full. The names table
 * is at index `names`. May raise (memory). */
static int lazy_key_of(lua_State *L, struct lazy_user *lu, int names, uint32_t pos, const char *k, size_t klen)
{
	if (klen > LAZY_KEY_LEN) return -1;
	int g = pos < LAZY_POSITIONS ? lu->pos_key[pos] : -1;
	if (g >= 0 && lu->keys[g].len == klen && same_bytes(lu->keys[g].interned, k, klen)) return g;
	for (g = 0; g < (int)lu->nkeys; g++)
		if (lu->keys[g].len == klen && same_bytes(lu->keys[g].interned, k, klen)) break;
	if (g == (int)lu->nkeys) {
		if (lu->nkeys == LAZY_KEYS) return -1;
		lua_pushlstring(L, k, klen);
		lu->keys[g] = (struct lazy_key){ lua_tostring(L, -1), (uint16_t)klen, false, -1, -1, 0, 0 };
		lua_rawseti(L, names, g + 1);
		lu->nkeys++;
	}
	if (pos < LAZY_POSITIONS) lu->pos_key[pos] = (int16_t)g;
	return g;
}

/* The caller-computed member named like dictionary entry g (or k when g is
 * -1), or -1; found once per entry and set of names. */
static int lazy_synth_of(struct lazy_user *lu, const struct luajson_synth *synth, int g, const char *k, size_t klen)
{
	if (g < 0) return synth_find(synth, k, klen);
	struct lazy_key *e = &lu->keys[g];
	if (e->synth_gen != lu->synth_gen) {
		e->synth = (int8_t)synth_find(synth, k, klen);
		e->synth_gen = lu->synth_gen;
	}
	return e->synth;
}

void luajson_user_synth(lua_State *L, int t, const struct luajson_synth *synth)
{
	t = lua_absindex(L, t);
	luaL_checkstack(L, 4, "user table");
	for (unsigned i = 0; synth && i < synth->n; i++) {       /* hidden by the computed ones */
		lua_pushstring(L, synth->names[i]);
		lua_pushnil(L);
		lua_rawset(L, t);
	}
	struct lazy_user *lu = lazy_setup(L);                       /* ud */
	lua_getiuservalue(L, -1, 2);
	lua_setmetatable(L, t);
	lua_pop(L, 1);
	lu->table = lua_topointer(L, t);
	lu->text = NULL;
	lu->n = 0;
	lu->modified = false;
	lu->synth = synth;
	memset(lu->synth_done, 0, sizeof lu->synth_done);
}

void luajson_push_user(lua_State *L, const char *text, size_t len, int max_depth, const struct luajson_synth *synth)
{
	struct jtext j = { .L = L, .s = text, .p = text, .e = text + len,
	                   .max_depth = max_depth > 0 ? max_depth : LUAJSON_DEFAULT_DEPTH, .nulls = LUAJSON_NULL_ABSENT };
	luaL_checkstack(L, 8, "JSON value");
	if (synth && synth->n > LUAJSON_MAX_SYNTH) luaL_error(L, "too many computed user members");
	struct lazy_user *lu = lazy_setup(L);                       /* ud */
	int ud = lua_gettop(L);
	lua_getiuservalue(L, ud, 1);                                 /* ud+1: names */
	int names = ud + 1;
	lu->table = NULL;
	lu->synth = NULL;
	lu->n = 0;
	lu->modified = false;
	if (++lu->calls % LAZY_RELEARN == 0)
		for (uint32_t g = 0; g < lu->nkeys; g++) lu->keys[g].hot = false;
	const char *const *snames = synth && synth->n ? synth->names : NULL;
	if (snames != lu->synth_names || lu->synth_gen == 0) {
		lu->synth_names = snames;
		lu->synth_gen++;
	}
	jt_ws(&j);
	if (j.p == j.e) luaL_error(L, "invalid JSON: empty text");
	if (*j.p != '{') {
		jv_value(&j, 1);
		jt_ws(&j);
		if (j.p != j.e) jt_error(&j, "unexpected data after the value");
		luaL_error(L, "the user must be a JSON object");
	}
	/* check and index the members */
	uint32_t n = 0, nhot = 0, pos = 0;
	bool eager = len > UINT32_MAX;
	j.p++;
	jt_ws(&j);
	bool empty = j.p < j.e && *j.p == '}';
	if (empty) j.p++;
	while (!empty) {
		jt_ws(&j);
		if (j.p >= j.e || *j.p != '"') jt_error(&j, "expected a string key");
		bool esc, plain = false;
		const char *k = j.p + 1, *kend = scan_string(&j, &esc);
		j.p = kend + 1;
		jt_ws(&j);
		if (j.p >= j.e || *j.p != ':') jt_error(&j, "expected ':'");
		j.p++;
		jt_ws(&j);
		const char *v = j.p;
		if (v < j.e && *v == '"') {                 /* the common case, inline */
			bool vesc;
			j.p = scan_string(&j, &vesc) + 1;
			j.last_null = false;
			plain = !vesc;
		} else {
			jv_value(&j, 2);
		}
		size_t klen = (size_t)(kend - k);
		if (!j.last_null && !eager) {
			if (esc || n == LAZY_MAX_MEMBERS || klen > UINT16_MAX) {
				eager = true;                           /* unusual: convert it all */
			} else {
				int g = lazy_key_of(L, lu, names, pos, k, klen);
				if (lazy_synth_of(lu, synth, g, k, klen) < 0) {   /* else hidden */
					nhot += g >= 0 && lu->keys[g].hot;
					lu->m[n++] = (struct lazy_member){ (uint32_t)(k - text), (uint32_t)(v - text),
					                                   (uint32_t)(j.p - v), (uint16_t)klen, (int16_t)g, plain, false };
				}
			}
		}
		pos++;
		jt_ws(&j);
		if (j.p < j.e && *j.p == ',') {
			j.p++;
			continue;
		}
		if (j.p < j.e && *j.p == '}') {
			j.p++;
			break;
		}
		jt_error(&j, "expected ',' or '}'");
	}
	jt_ws(&j);
	if (j.p != j.e) jt_error(&j, "unexpected data after the value");
	if (eager) {
		lua_settop(L, ud - 1);
		luajson_push_text_mode(L, text, len, max_depth, LUAJSON_NULL_ABSENT, synth ? (int)synth->n : 0);
		luajson_user_synth(L, -1, synth);
		return;
	}
	lu->text = text;
	lu->max_depth = j.max_depth;
	lu->n = n;
	int size = (int)nhot + LAZY_SPARE < (int)n ? (int)nhot + LAZY_SPARE : (int)n;
	lua_createtable(L, 0, size);                                 /* ud+2: u */
	int u = names + 1;
	lua_getiuservalue(L, ud, 2);
	lua_setmetatable(L, u);
	/* the hot members now, last to first so that a duplicate's first wins */
	for (uint32_t i = n; nhot && i-- > 0;) {
		const struct lazy_member *m = &lu->m[i];
		if (m->key < 0 || !lu->keys[m->key].hot) continue;
		lua_rawgeti(L, names, m->key + 1);
		lazy_push_value(L, lu, i);
		lua_rawset(L, u);
	}
	lu->table = lua_topointer(L, u);
	lu->synth = synth;
	memset(lu->synth_done, 0, sizeof lu->synth_done);
	lua_replace(L, ud);
	lua_settop(L, ud);
}

/* Slot of dictionary entry g in names[0..n), found once per entry and
 * names array. */
static inline int lazy_view_of(struct lazy_user *lu, const char *const *names, unsigned n, int g)
{
	struct lazy_key *e = &lu->keys[g];
	if (e->view_gen != lu->view_gen) {
		e->view = -1;
		for (unsigned i = 0; i < n; i++)
			if (strlen(names[i]) == e->len && memcmp(names[i], e->interned, e->len) == 0) {
				e->view = (int8_t)i;
				break;
			}
		e->view_gen = lu->view_gen;
	}
	return e->view;
}

bool luajson_user_view(lua_State *L, int t, const char *const *names, unsigned n, struct luajson_view *out)
{
	t = lua_absindex(L, t);
	if (!lua_checkstack(L, 3)) return false;
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &lazy_key) != LUA_TUSERDATA) {
		lua_pop(L, 1);
		return false;
	}
	struct lazy_user *lu = lua_touserdata(L, -1);          /* stays on the stack: ud */
	if (!lu->text || lu->modified || lu->table != lua_topointer(L, t) || n > LUAJSON_MAX_VIEW) {
		lua_pop(L, 1);
		return false;
	}
	if (names != lu->view_names || lu->view_gen == 0) {
		lu->view_names = names;
		lu->view_gen++;
	}
	for (unsigned i = 0; i < n; i++) out[i] = (struct luajson_view){ NULL, 0, LUAJSON_VIEW_ABSENT };
	bool ok = true, names_pushed = false;
	for (uint32_t i = 0; i < lu->n && ok; i++) {
		const struct lazy_member *m = &lu->m[i];
		int slot = -1;
		if (m->key >= 0) {
			slot = lazy_view_of(lu, names, n, m->key);
		} else {
			for (unsigned k = 0; k < n && slot < 0; k++)
				if (strlen(names[k]) == m->klen && memcmp(names[k], lu->text + m->koff, m->klen) == 0) slot = (int)k;
		}
		if (slot < 0 || out[slot].kind != LUAJSON_VIEW_ABSENT) continue;   /* the first of duplicates wins */
		if (m->done) {
			/* converted: what the table holds now (Lua may have assigned to
			 * it without a metamethod seeing it) */
			if (m->key < 0) {
				ok = false;
				break;
			}
			if (!names_pushed) {
				lua_getiuservalue(L, -1, 1);                 /* ud's names table */
				names_pushed = true;
			}
			lua_rawgeti(L, -1, m->key + 1);
			int type = lua_rawget(L, t);
			if (type == LUA_TSTRING) {
				out[slot].p = lua_tolstring(L, -1, &out[slot].len);   /* u holds it */
				out[slot].kind = LUAJSON_VIEW_STRING;
			} else if (type != LUA_TNIL) {
				out[slot].kind = LUAJSON_VIEW_LUA;
			}
			lua_pop(L, 1);
			continue;
		}
		const char *v = lu->text + m->voff;
		out[slot] = m->plain ? (struct luajson_view){ v + 1, m->vlen - 2, LUAJSON_VIEW_STRING }
		                     : (struct luajson_view){ v, m->vlen, LUAJSON_VIEW_OTHER };
	}
	lua_pop(L, names_pushed ? 2 : 1);
	return ok;
}

/* ---- splitting a page without parsing it -------------------------------- */

/* The first '"' or '\\' at or after q, or e: SSE2 sixteen bytes a step
 * (a memchr call per string cost more on Graph's short strings). */
static inline const char *find_quote(const char *q, const char *e)
{
#if defined(__SSE2__)
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
	while (e - q >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
		unsigned mask = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)));
		if (mask) return q + __builtin_ctz(mask);
		q += 16;
	}
#endif
	while (q < e && *q != '"' && *q != '\\') q++;
	return q;
}

/* The end of the JSON value starting at p (strings skipped with their
 * escapes, brackets matched), or NULL when the text ends first. Values are
 * not validated here: each item is parsed strictly later. */
static const char *skip_value(const char *p, const char *e)
{
	int depth = 0;
	while (p < e) {
		char c = *p;
		if (c == '"') {
			/* the closing quote: the next '"' not escaped (a '\\' skips the
			 * byte after it) */
			const char *q = p + 1;
			for (;;) {
				q = find_quote(q, e);
				if (q >= e) return NULL;
				if (*q == '"') break;
				q += 2;                            /* an escape and its byte */
				if (q >= e) return NULL;
			}
			p = q + 1;
			if (depth == 0) return p;
			continue;
		}
		if (c == '{' || c == '[') depth++;
		else if (c == '}' || c == ']') {
			if (--depth < 0) return p;       /* a scalar ended by its container */
			if (depth == 0) return p + 1;
		} else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
			return p;
		}
		p++;
	}
	return depth == 0 ? p : NULL;
}

static const char *skip_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
	return p;
}

int script_json_each_item(const char *json, size_t len, const char *key,
                          int (*fn)(void *ud, const char *item, size_t len), void *ud, struct err *err)
{
	const char *p = skip_ws(json, json + len), *e = json + len;
	size_t klen = strlen(key);
	if (p >= e || *p != '{') return parse_error(err, "invalid JSON", "expected an object", json, len, (size_t)(p - json));
	p++;
	for (;;) {
		p = skip_ws(p, e);
		if (p < e && *p == '}') return 0;                 /* no such member: no items */
		if (p >= e || *p != '"') return parse_error(err, "invalid JSON", "expected a string key", json, len, (size_t)(p - json));
		const char *k = p + 1, *kend = skip_value(p, e);
		if (!kend) return parse_error(err, "invalid JSON", "unterminated string", json, len, (size_t)(p - json));
		bool match = (size_t)(kend - 1 - k) == klen && memcmp(k, key, klen) == 0;
		p = skip_ws(kend, e);
		if (p >= e || *p != ':') return parse_error(err, "invalid JSON", "expected ':'", json, len, (size_t)(p - json));
		p = skip_ws(p + 1, e);
		if (match) {
			if (p >= e || *p != '[') return parse_error(err, "invalid JSON", "expected an array", json, len, (size_t)(p - json));
			p = skip_ws(p + 1, e);
			if (p < e && *p == ']') return 0;
			for (;;) {
				const char *end = skip_value(p, e);
				if (!end || end == p)
					return parse_error(err, "invalid JSON", "expected a value", json, len, (size_t)(p - json));
				int rc = fn(ud, p, (size_t)(end - p));
				if (rc) return rc;
				p = skip_ws(end, e);
				if (p < e && *p == ',') { p = skip_ws(p + 1, e); continue; }
				if (p < e && *p == ']') return 0;
				return parse_error(err, "invalid JSON", "expected ',' or ']'", json, len, (size_t)(p - json));
			}
		}
		const char *end = skip_value(p, e);
		if (!end || end == p) return parse_error(err, "invalid JSON", "expected a value", json, len, (size_t)(p - json));
		p = skip_ws(end, e);
		if (p < e && *p == ',') { p++; continue; }
		if (p < e && *p == '}') return 0;
		return parse_error(err, "invalid JSON", "expected ',' or '}'", json, len, (size_t)(p - json));
	}
}

/* ---- Lua -> JSON ------------------------------------------------------- */

/* The most text one conversion to JSON may make: the tree and its text are
 * malloc'd outside the Lua state's memory cap, and one string referenced a
 * thousand times would otherwise be copied a thousand times. */
#define ENC_MAX_BYTES ((size_t)16 << 20)

struct enc {
	lua_State *L;
	size_t bytes;          /* text made so far (strings and keys, ~8 bytes per value) */
	int max_depth;
	int raw_ints;          /* integers beyond int range as raw digits (exact text) */
	struct err *err;
	char path[256];
	size_t pathlen;
};

static int enc_fail(struct enc *e, const char *what)
{
	err_set(e->err, "%s at %s", what, e->pathlen ? e->path : "$");
	return -1;
}

/* Appends ".key" or "[i]" to the path; returns the old length to restore. */
static size_t path_push_key(struct enc *e, const char *k)
{
	size_t old = e->pathlen;
	if (old == 0) e->pathlen = (size_t)snprintf(e->path, sizeof e->path, "$");
	int n = snprintf(e->path + e->pathlen, sizeof e->path - e->pathlen, ".%s", k);
	if (n > 0) e->pathlen += (size_t)n;
	if (e->pathlen >= sizeof e->path) e->pathlen = sizeof e->path - 1;
	return old;
}

static size_t path_push_index(struct enc *e, long long i)
{
	size_t old = e->pathlen;
	if (old == 0) e->pathlen = (size_t)snprintf(e->path, sizeof e->path, "$");
	int n = snprintf(e->path + e->pathlen, sizeof e->path - e->pathlen, "[%lld]", i);
	if (n > 0) e->pathlen += (size_t)n;
	if (e->pathlen >= sizeof e->path) e->pathlen = sizeof e->path - 1;
	return old;
}

static void path_pop(struct enc *e, size_t old)
{
	e->pathlen = old;
	e->path[old] = '\0';
}

static int check_text(struct enc *e, const char *s, size_t len, const char *what)
{
	char msg[64];
	if (strlen(s) != len) {
		snprintf(msg, sizeof msg, "%s contains a NUL byte", what);
		return enc_fail(e, msg);
	}
	if (!str_utf8_valid(s, len)) {
		snprintf(msg, sizeof msg, "%s is not valid UTF-8", what);
		return enc_fail(e, msg);
	}
	return 0;
}

static int cmp_child_keys(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	return strcmp(x->string, y->string);
}

/* Re-links an object's children sorted by key (deterministic output). */
static void sort_object(cJSON *obj, size_t n)
{
	if (n < 2) return;
	cJSON **v = xmalloc(n * sizeof *v);
	size_t i = 0;
	for (cJSON *c = obj->child; c; c = c->next) v[i++] = c;
	qsort(v, n, sizeof *v, cmp_child_keys);
	for (i = 0; i < n; i++) {
		v[i]->next = i + 1 < n ? v[i + 1] : NULL;
		v[i]->prev = i > 0 ? v[i - 1] : v[n - 1];   /* cJSON: head's prev is the tail */
	}
	obj->child = v[0];
	free(v);
}

static cJSON *enc_value(struct enc *e, int idx, int depth);

static cJSON *enc_table(struct enc *e, int idx, int depth)
{
	lua_State *L = e->L;
	if (depth > e->max_depth) {
		char msg[96];
		snprintf(msg, sizeof msg, "table nested too deeply (more than %d levels) or contains a cycle", e->max_depth);
		enc_fail(e, msg);
		return NULL;
	}
	if (!lua_checkstack(L, 4)) {
		enc_fail(e, "Lua stack exhausted");
		return NULL;
	}
	idx = lua_absindex(L, idx);
	/* classify: a sequence 1..n, string keys only, or neither */
	size_t count = 0, nstr = 0;
	lua_Integer maxi = 0;
	int bad_key_type = LUA_TNIL;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		count++;
		if (lua_type(L, -2) == LUA_TSTRING) {
			nstr++;
		} else if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
			lua_Integer k = lua_tointeger(L, -2);
			if (k > maxi) maxi = k;
		} else if (bad_key_type == LUA_TNIL) {
			bad_key_type = lua_type(L, -2);
		}
		lua_pop(L, 1);
	}
	if (bad_key_type != LUA_TNIL) {
		char msg[96];
		snprintf(msg, sizeof msg, "cannot encode a table with a %s key", lua_typename(L, bad_key_type));
		enc_fail(e, msg);
		return NULL;
	}
	int is_array = 0;
	if (count == 0) {
		if (lua_getmetatable(L, idx)) {
			lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
			is_array = lua_rawequal(L, -1, -2);
			lua_pop(L, 2);
		}
	} else if (nstr == 0) {
		if ((size_t)maxi != count) {
			enc_fail(e, "cannot encode a sparse array (keys are not 1..n)");
			return NULL;
		}
		is_array = 1;
	} else if (nstr != count) {
		enc_fail(e, "cannot encode a table mixing string and integer keys");
		return NULL;
	}
	if (is_array) {
		cJSON *arr = cJSON_CreateArray();
		for (lua_Integer i = 1; i <= maxi; i++) {
			lua_rawgeti(L, idx, i);
			size_t old = path_push_index(e, i);
			cJSON *c = enc_value(e, -1, depth + 1);
			path_pop(e, old);
			lua_pop(L, 1);
			if (!c) { cJSON_Delete(arr); return NULL; }
			cJSON_AddItemToArray(arr, c);
		}
		return arr;
	}
	cJSON *obj = cJSON_CreateObject();
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		size_t klen;
		const char *k = lua_tolstring(L, -2, &klen);   /* keys are strings here: no conversion */
		size_t old = path_push_key(e, k);
		cJSON *c = NULL;
		if (check_text(e, k, klen, "key") == 0) c = enc_value(e, -1, depth + 1);
		path_pop(e, old);
		lua_pop(L, 1);
		if (!c) { lua_pop(L, 1); cJSON_Delete(obj); return NULL; }
		cJSON_AddItemToObject(obj, k, c);
	}
	sort_object(obj, count);
	return obj;
}

static cJSON *enc_value(struct enc *e, int idx, int depth)
{
	lua_State *L = e->L;
	char msg[64];
	e->bytes += 8;
	switch (lua_type(L, idx)) {
	case LUA_TNIL: return cJSON_CreateNull();
	case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			lua_Integer i = lua_tointeger(L, idx);
			if (e->raw_ints && (i > INT_MAX || i < INT_MIN)) {
				char digits[32];
				snprintf(digits, sizeof digits, "%lld", (long long)i);
				return cJSON_CreateRaw(digits);
			}
			return cJSON_CreateNumber((double)i);
		} else {
			double d = lua_tonumber(L, idx);
			if (isnan(d) || isinf(d)) { enc_fail(e, "cannot encode NaN or infinity"); return NULL; }
			return cJSON_CreateNumber(d);
		}
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		if (check_text(e, s, len, "string") != 0) return NULL;
		if ((e->bytes += len) > ENC_MAX_BYTES) {
			enc_fail(e, "the JSON text would be larger than 16 MiB");
			return NULL;
		}
		return cJSON_CreateString(s);
	}
	case LUA_TTABLE: return enc_table(e, idx, depth);
	case LUA_TLIGHTUSERDATA:
		if (luajson_is_null(L, idx)) return cJSON_CreateNull();
		/* fallthrough */
	default:
		snprintf(msg, sizeof msg, "cannot encode a %s value", luaL_typename(L, idx));
		enc_fail(e, msg);
		return NULL;
	}
}

/* Converts the members of lazy user tables reachable from idx (down to
 * depth levels), so that the encoder, which must not allocate in Lua while
 * it holds a partial cJSON tree, sees plain tables. May raise (memory). */
static void fill_lazy_tables(lua_State *L, int idx, int depth)
{
	if (depth <= 0 || lua_type(L, idx) != LUA_TTABLE || !lua_checkstack(L, 4)) return;
	idx = lua_absindex(L, idx);
	if (luaL_getmetafield(L, idx, "__pairs") != LUA_TNIL) {
		bool lazy = lua_tocfunction(L, -1) == lazy_pairs;
		lua_pop(L, 1);
		if (lazy) {
			struct lazy_user *lu = lazy_state(L);
			if (!lu || lu->table != lua_topointer(L, idx))
				luaL_error(L, "this user table belongs to a policy call that has returned");
			lazy_fill_all(L, idx, lu);
		}
	}
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		fill_lazy_tables(L, -1, depth - 1);
		lua_pop(L, 1);
	}
}

static cJSON *to_cjson(lua_State *L, int idx, int max_depth, int raw_ints, struct err *err)
{
	struct enc e = { .L = L, .max_depth = max_depth > 0 ? max_depth : LUAJSON_DEFAULT_DEPTH,
	                 .raw_ints = raw_ints, .err = err };
	e.path[0] = '\0';
	int top = lua_gettop(L);
	idx = lua_absindex(L, idx);
	fill_lazy_tables(L, idx, e.max_depth + 1);
	cJSON *j = enc_value(&e, idx, 1);
	lua_settop(L, top);
	return j;
}

cJSON *luajson_to_cjson(lua_State *L, int idx, int max_depth, struct err *err)
{
	return to_cjson(L, idx, max_depth, 0, err);
}

/* ---- the entrasync.json module ----------------------------------------- */

/* Charges bytes of C work to the running call (upvalue 2 of decode and
 * encode: the charge, or none). May raise: the budget is spent. */
static void charge_bytes(lua_State *L, size_t bytes)
{
	const luacostly_charge *c = lua_touserdata(L, lua_upvalueindex(2));
	if (c) (*c)(L, (unsigned long)(bytes / 64 + 1));
}

/* json.decode(text) -> value; malformed text raises with its position. */
static int l_decode(lua_State *L)
{
	size_t len;
	const char *text = luaL_checklstring(L, 1, &len);
	int depth = (int)lua_tointeger(L, lua_upvalueindex(1));
	charge_bytes(L, len);
	luajson_push_text(L, text, len, depth);
	return 1;
}

/* json.encode(value) -> compact JSON text (object keys sorted); charged
 * by that text once made. */
static int l_encode(lua_State *L)
{
	struct err err;
	luaL_checkany(L, 1);
	int depth = (int)lua_tointeger(L, lua_upvalueindex(1));
	struct json_box *b = push_box(L);
	b->tree = to_cjson(L, 1, depth, 1, &err);
	if (!b->tree) return luaL_error(L, "json.encode: %s", err.msg);
	b->text = cJSON_PrintUnformatted(b->tree);
	if (!b->text) return luaL_error(L, "json.encode: out of memory");
	size_t len = strlen(b->text);
	lua_pushlstring(L, b->text, len);
	box_clear(b);
	charge_bytes(L, len);
	return 1;
}

/* json.array([t]) -> t marked as a JSON array (so an empty t encodes as []). */
static int l_array(lua_State *L)
{
	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	} else {
		luaL_checktype(L, 1, LUA_TTABLE);
		lua_settop(L, 1);
		if (lua_getmetatable(L, 1)) {
			push_array_mt(L);
			if (!lua_rawequal(L, -1, -2)) return luaL_error(L, "json.array: the table already has a metatable");
			lua_settop(L, 1);
			return 1;
		}
	}
	push_array_mt(L);
	lua_setmetatable(L, 1);
	return 1;
}

/* Pushes fn as a closure of (max_depth, the charge or nil). */
static void push_charged(lua_State *L, lua_CFunction fn, int max_depth, luacostly_charge charge)
{
	lua_pushinteger(L, max_depth);
	if (charge) {
		luacostly_charge *up = lua_newuserdatauv(L, sizeof *up, 0);
		*up = charge;
	} else {
		lua_pushnil(L);
	}
	lua_pushcclosure(L, fn, 2);
}

void luajson_open(lua_State *L, int max_depth, luacostly_charge charge)
{
	if (max_depth <= 0) max_depth = LUAJSON_DEFAULT_DEPTH;
	lua_createtable(L, 0, 4);
	push_charged(L, l_decode, max_depth, charge);
	lua_setfield(L, -2, "decode");
	push_charged(L, l_encode, max_depth, charge);
	lua_setfield(L, -2, "encode");
	lua_pushcfunction(L, l_array);
	lua_setfield(L, -2, "array");
	luajson_push_null(L);
	lua_setfield(L, -2, "null");
}
