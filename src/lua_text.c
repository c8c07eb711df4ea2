/* lua_text — the `entrasync.text` module: text helpers in C for the
 * runtime's policy helpers (lua/entrasync/policy.lua), which run once per
 * user per sync and must not allocate on their common path.
 *
 *   text.word_matcher(words) -> match
 *     words: a list of ASCII words (letters only, at most 31). match(s
 *     [, stop]) scans s for words (runs of ASCII letters, compared without
 *     regard to case), stopping at the first byte equal to stop (e.g. "@"),
 *     and returns the first word of s that is in the list (lower case), or
 *     nil; nil too when s is not a string (numbers included). No Lua string
 *     is made unless there is a match.
 *   text.is_address(v) -> v is a string with an "@" after its first byte
 *     and before its last, and no other "@" after that one (p.has_mail).
 *   text.contains(v, needle) -> v is a string holding needle (plain).
 *   text.nonempty(v) -> false for nil, json.null, a string of spaces only
 *     (C isspace) and an empty table; true otherwise (p.nonempty).
 *   text.contact(u) -> p.contact's table (lua_contact.c).
 * One C call each instead of a few Lua calls and instructions: the helpers
 * run for every user, and every Lua instruction also pays the instruction
 * budget's count hook. */
#include "lua_text.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua_contact.h"
#include "lua_json.h"
#include "util.h"

#define WORD_MAX 31

struct word_set {
	uint32_t n;
	uint32_t lengths[26];         /* per first letter: bit n set when a word of n letters starts with it */
	char word[][WORD_MAX + 1];    /* sorted, lower case, NUL-padded */
};

static int cmp_word(const void *a, const void *b)
{
	return strcmp(a, b);
}

static inline int ascii_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static inline bool ascii_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* match(s [, stop]) -> the first listed word of s, or nil */
static int matcher_call(lua_State *L)
{
	const struct word_set *ws = lua_touserdata(L, lua_upvalueindex(1));
	size_t len, stop_len = 0;
	if (lua_type(L, 1) != LUA_TSTRING) {
		lua_pushnil(L);
		return 1;
	}
	const char *s = lua_tolstring(L, 1, &len);
	const char *stop = luaL_optlstring(L, 2, NULL, &stop_len);
	const char *end = s + len;
	if (stop && stop_len) {
		const char *at = memchr(s, stop[0], len);
		if (at) end = at;
	}
	char w[WORD_MAX + 1];
	for (const char *p = s; p < end;) {
		if (!ascii_alpha((unsigned char)*p)) {
			p++;
			continue;
		}
		size_t n = 0;
		while (p < end && ascii_alpha((unsigned char)*p)) {
			if (n < WORD_MAX) w[n] = (char)ascii_lower((unsigned char)*p);
			n++;
			p++;
		}
		if (n > WORD_MAX || !(ws->lengths[w[0] - 'a'] >> n & 1)) continue;   /* no such word: no search */
		w[n] = '\0';
		if (bsearch(w, ws->word, ws->n, sizeof ws->word[0], cmp_word)) {
			lua_pushlstring(L, w, n);
			return 1;
		}
	}
	lua_pushnil(L);
	return 1;
}

/* is_address(v) -> bool */
static int text_is_address(lua_State *L)
{
	bool ok = false;
	if (lua_type(L, 1) == LUA_TSTRING) {
		size_t len;
		const char *s = lua_tolstring(L, 1, &len);
		const char *at = len > 1 ? memchr(s + 1, '@', len - 1) : NULL;
		size_t after = at ? len - (size_t)(at - s) - 1 : 0;     /* bytes after the '@' */
		ok = at && after > 0 && !memchr(at + 1, '@', after);
	}
	lua_pushboolean(L, ok);
	return 1;
}

/* contains(v, needle) -> bool */
static int text_contains(lua_State *L)
{
	size_t len, nlen;
	const char *needle = luaL_checklstring(L, 2, &nlen);
	bool found = false;
	if (lua_type(L, 1) == LUA_TSTRING) {
		const char *s = lua_tolstring(L, 1, &len);
		found = memmem(s, len, needle, nlen) != NULL;
	}
	lua_pushboolean(L, found);
	return 1;
}

bool luatext_nonempty(lua_State *L, int idx)
{
	switch (lua_type(L, idx)) {
	case LUA_TNONE:
	case LUA_TNIL: return false;
	case LUA_TLIGHTUSERDATA: return !luajson_is_null(L, idx);
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		for (size_t i = 0; i < len; i++)
			if (!isspace((unsigned char)s[i])) return true;
		return false;
	}
	case LUA_TTABLE:
		idx = lua_absindex(L, idx);
		lua_pushnil(L);
		if (!lua_next(L, idx)) return false;
		lua_pop(L, 2);
		return true;
	default: return true;
	}
}

/* nonempty(v) -> bool */
static int text_nonempty(lua_State *L)
{
	lua_pushboolean(L, luatext_nonempty(L, 1));
	return 1;
}

/* word_matcher(words) -> match */
static int text_word_matcher(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 1);
	struct word_set *ws = lua_newuserdatauv(L, sizeof *ws + (size_t)n * sizeof ws->word[0], 0);
	memset(ws, 0, sizeof *ws);
	for (lua_Integer i = 1; i <= n; i++) {
		size_t len = 0;
		const char *v = lua_rawgeti(L, 1, i) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
		if (!v || len == 0 || len > WORD_MAX)
			return luaL_error(L, "text.word_matcher: item %d must be a word of 1 to %d letters", (int)i, WORD_MAX);
		for (size_t k = 0; k < len; k++) {
			if (!ascii_alpha((unsigned char)v[k]))
				return luaL_error(L, "text.word_matcher: '%s' is not a word of ASCII letters", v);
			ws->word[ws->n][k] = (char)ascii_lower((unsigned char)v[k]);
		}
		memset(ws->word[ws->n] + len, 0, WORD_MAX + 1 - len);
		ws->lengths[ws->word[ws->n][0] - 'a'] |= (uint32_t)1 << len;
		ws->n++;
		lua_pop(L, 1);
	}
	qsort(ws->word, ws->n, sizeof ws->word[0], cmp_word);
	lua_pushcclosure(L, matcher_call, 1);
	return 1;
}

void luatext_open(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{ "word_matcher", text_word_matcher },
		{ "is_address", text_is_address },
		{ "contains", text_contains },
		{ "nonempty", text_nonempty },
		{ "contact", luacontact_lua },
		{ NULL, NULL },
	};
	luaL_newlib(L, funcs);
}
