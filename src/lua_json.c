/* lua_json — JSON <-> Lua conversion (cJSON trees <-> Lua values) and the
 * `entrasync.json` module exposed to Lua. The mapping rules are in
 * lua_json.h. Part of the scripting layer: the only place, with script.c,
 * that includes lua.h. */
#include "lua_json.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

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

static void push_container(lua_State *L, const cJSON *v, int depth, int max_depth, enum luajson_null_mode nulls)
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
	lua_createtable(L, 0, n);
	for (const cJSON *c = v->child; c; c = c->next) {
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
	case cJSON_Object: push_container(L, v, depth, max_depth, nulls); break;
	case cJSON_Raw: lua_pushstring(L, v->valuestring ? v->valuestring : ""); break;
	default: luajson_push_null(L); break;
	}
}

void luajson_push(lua_State *L, const cJSON *v, int max_depth, enum luajson_null_mode nulls)
{
	if (max_depth <= 0) max_depth = LUAJSON_DEFAULT_DEPTH;
	luaL_checkstack(L, 4, "JSON value");
	if (!v) {
		luajson_push_null(L);
		return;
	}
	push_value(L, v, 1, max_depth, nulls);
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

static int parse_error(struct err *err, const char *what, const char *text, size_t len, size_t off)
{
	size_t line, col;
	char near[40];
	text_position(text, off, &line, &col);
	near_snippet(text, len, off, near, sizeof near);
	return err_set(err, "%s at byte offset %zu (line %zu, column %zu) %s", what, off, line, col, near);
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
		return parse_error(err, "invalid JSON", text, len, off);
	}
	size_t off = (size_t)(end - text);
	while (off < len && isspace((unsigned char)text[off])) off++;
	if (off < len) {
		cJSON_Delete(j);
		return parse_error(err, "invalid JSON: unexpected data after the value", text, len, off);
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

void luajson_push_text(lua_State *L, const char *text, size_t len, int max_depth)
{
	struct err err;
	struct json_box *b = push_box(L);
	if (luajson_parse(text, len, &b->tree, &err) != 0) luaL_error(L, "%s", err.msg);
	luajson_push(L, b->tree, max_depth, LUAJSON_NULL_SENTINEL);
	box_clear(b);
	lua_remove(L, -2);
}

/* ---- Lua -> JSON ------------------------------------------------------- */

struct enc {
	lua_State *L;
	int max_depth;
	int raw_ints;          /* integers beyond int range as raw digits (exact text) */
	struct err *err;
	char path[256];
	size_t pathlen;
};

/* Strict UTF-8 check: no overlongs, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) { i++; continue; }
		size_t len;
		unsigned cp, min;
		if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
		else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
		else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
		else return 0;
		if (i + len > n) return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80) return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
		i += len;
	}
	return 1;
}

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
	if (!utf8_valid((const unsigned char *)s, len)) {
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

static cJSON *to_cjson(lua_State *L, int idx, int max_depth, int raw_ints, struct err *err)
{
	struct enc e = { .L = L, .max_depth = max_depth > 0 ? max_depth : LUAJSON_DEFAULT_DEPTH,
	                 .raw_ints = raw_ints, .err = err };
	e.path[0] = '\0';
	int top = lua_gettop(L);
	cJSON *j = enc_value(&e, lua_absindex(L, idx), 1);
	lua_settop(L, top);
	return j;
}

cJSON *luajson_to_cjson(lua_State *L, int idx, int max_depth, struct err *err)
{
	return to_cjson(L, idx, max_depth, 0, err);
}

/* ---- the entrasync.json module ----------------------------------------- */

/* json.decode(text) -> value; malformed text raises with its position. */
static int l_decode(lua_State *L)
{
	size_t len;
	const char *text = luaL_checklstring(L, 1, &len);
	int depth = (int)lua_tointeger(L, lua_upvalueindex(1));
	luajson_push_text(L, text, len, depth);
	return 1;
}

/* json.encode(value) -> compact JSON text (object keys sorted). */
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
	lua_pushstring(L, b->text);
	box_clear(b);
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

void luajson_open(lua_State *L, int max_depth)
{
	if (max_depth <= 0) max_depth = LUAJSON_DEFAULT_DEPTH;
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, max_depth);
	lua_pushcclosure(L, l_decode, 1);
	lua_setfield(L, -2, "decode");
	lua_pushinteger(L, max_depth);
	lua_pushcclosure(L, l_encode, 1);
	lua_setfield(L, -2, "encode");
	lua_pushcfunction(L, l_array);
	lua_setfield(L, -2, "array");
	luajson_push_null(L);
	lua_setfield(L, -2, "null");
}
