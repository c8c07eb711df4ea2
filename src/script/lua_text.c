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
 *   text.notes_max: the most bytes a contact's notes may hold (p.mark
 *     keeps within it).
 *   text.is_guest(u), text.is_member(u), text.is_disabled(u),
 *   text.has_mail(u): p.is_guest ... (policy.lua documents them).
 *   text.service_account(address_matcher, name_matcher) -> a function(u)
 *     -> true, why | false: p.is_service_account with those word lists.
 * One C call each instead of a few Lua calls and instructions: the helpers
 * run for every user, and every Lua instruction also pays the instruction
 * budget's count hook. */
#include "script/lua_text.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "script/lua_contact.h"
#include "script/lua_json.h"
#include "script/script.h"
#include "util/util.h"

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

/* The first word of s[0..len) (stopping at the first byte equal to stop,
 * when stop >= 0) that is in ws, lower-cased into w (NUL-terminated); its
 * length, or 0 when none. */
static size_t word_find(const struct word_set *ws, const char *s, size_t len, int stop, char w[WORD_MAX + 1])
{
	const char *end = s + len;
	if (stop >= 0) {
		const char *at = memchr(s, stop, len);
		if (at) end = at;
	}
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
		if (bsearch(w, ws->word, ws->n, sizeof ws->word[0], cmp_word)) return n;
	}
	return 0;
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
	char w[WORD_MAX + 1];
	size_t n = word_find(ws, s, len, stop && stop_len ? (unsigned char)stop[0] : -1, w);
	if (n) lua_pushlstring(L, w, n);
	else lua_pushnil(L);
	return 1;
}

/* The value at idx is a string with an "@" after its first byte and
 * before its last, and no other "@" after that one. */
static bool is_address_at(lua_State *L, int idx)
{
	if (lua_type(L, idx) != LUA_TSTRING) return false;
	size_t len;
	const char *s = lua_tolstring(L, idx, &len);
	const char *at = len > 1 ? memchr(s + 1, '@', len - 1) : NULL;
	size_t after = at ? len - (size_t)(at - s) - 1 : 0;     /* bytes after the '@' */
	return at && after > 0 && !memchr(at + 1, '@', after);
}

/* is_address(v) -> bool */
static int text_is_address(lua_State *L)
{
	lua_pushboolean(L, is_address_at(L, 1));
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

/* ---- user predicates (p.is_guest, ...) --------------------------------- */

/* s[0..len) lower-cased with tolower (as string.lower) equals word. */
static bool lower_equals(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word);
	if (len != n) return false;
	for (size_t i = 0; i < n; i++)
		if (tolower((unsigned char)s[i]) != word[i]) return false;
	return true;
}

/* u.userType (pushed): 1 Guest, 0 Member, -1 another string, -2 nil,
 * -3 anything else. Reads u as Lua does (metamethods; raises when u cannot
 * be indexed). */
static int user_type(lua_State *L)
{
	int t = lua_getfield(L, 1, "userType");
	if (t == LUA_TNIL) return -2;
	if (t != LUA_TSTRING) return -3;
	size_t n;
	const char *s = lua_tolstring(L, -1, &n);
	if (n == 5 && memcmp(s, "Guest", 5) == 0) return 1;
	if (n == 6 && memcmp(s, "Member", 6) == 0) return 0;
	if (lower_equals(s, n, "guest")) return 1;
	if (lower_equals(s, n, "member")) return 0;
	return -1;
}

/* Is u (at index 1) an external account: a userPrincipalName holding "#EXT#"
 * (a B2B guest, or an external member of cross-tenant synchronization)?
 * Leaves the stack as it found it. */
static bool external_upn(lua_State *L)
{
	bool ext = false;
	if (lua_getfield(L, 1, "userPrincipalName") == LUA_TSTRING) {
		size_t n;
		const char *s = lua_tolstring(L, -1, &n);
		ext = memmem(s, n, "#EXT#", 5) != NULL;
	}
	lua_pop(L, 1);
	return ext;
}

/* is_guest(u): userType "Guest" (any case) or an external "#EXT#" account */
static int text_is_guest(lua_State *L)
{
	lua_settop(L, 1);
	bool guest = user_type(L) == 1;
	lua_settop(L, 1);
	if (!guest) guest = external_upn(L);
	lua_pushboolean(L, guest);
	return 1;
}

/* is_member(u): userType "Member" (any case) or absent, and not an external
 * "#EXT#" account: never true with is_guest */
static int text_is_member(lua_State *L)
{
	lua_settop(L, 1);
	int t = user_type(L);
	lua_settop(L, 1);
	lua_pushboolean(L, (t == 0 || t == -2) && !external_upn(L));
	return 1;
}

/* is_disabled(u): u.accountEnabled == false */
static int text_is_disabled(lua_State *L)
{
	lua_settop(L, 1);
	bool off = lua_getfield(L, 1, "accountEnabled") == LUA_TBOOLEAN && !lua_toboolean(L, -1);
	lua_pushboolean(L, off);
	return 1;
}

/* has_mail(u): is_address(u.mail) */
static int text_has_mail(lua_State *L)
{
	lua_settop(L, 1);
	lua_getfield(L, 1, "mail");
	lua_pushboolean(L, is_address_at(L, 2));
	return 1;
}

/* s (lower-cased with tolower) starts with the words of parts, each
 * optionally followed by one of "-_." (the Lua patterns "^no[%-_%.]?reply"
 * and "^do[%-_%.]?not[%-_%.]?reply": no part starts with a separator, so
 * taking a separator whenever there is one matches as they do). */
static bool starts_with_words(const char *s, size_t len, const char *const *parts)
{
	size_t p = 0;
	for (size_t i = 0; parts[i]; i++) {
		if (i && p < len && (s[p] == '-' || s[p] == '_' || s[p] == '.')) p++;
		for (const char *w = parts[i]; *w; w++, p++)
			if (p >= len || tolower((unsigned char)s[p]) != *w) return false;
	}
	return true;
}

/* The word sets of the matchers at idx (word_matcher's results), or raises. */
static const struct word_set *matcher_words(lua_State *L, int idx)
{
	if (lua_tocfunction(L, idx) != matcher_call) luaL_argerror(L, idx, "a text.word_matcher function expected");
	lua_getupvalue(L, idx, 1);
	const struct word_set *ws = lua_touserdata(L, -1);
	lua_pop(L, 1);             /* the closure keeps it alive */
	return ws;
}

struct service_words {
	const struct word_set *address, *name;   /* kept alive by upvalues 2 and 3 */
};

/* is_service_account(u) -> true, why | false: a no-reply address, or a
 * listed word in the address's local part (u.mail, else
 * u.userPrincipalName) or in u.displayName. */
static int service_account_call(lua_State *L)
{
	const struct service_words *sw = lua_touserdata(L, lua_upvalueindex(1));
	const struct word_set *addr_words = sw->address, *name_words = sw->name;
	static const char *const no_reply[] = { "no", "reply", NULL };
	static const char *const do_not_reply[] = { "do", "not", "reply", NULL };
	char w[WORD_MAX + 1];
	lua_settop(L, 1);
	if (lua_getfield(L, 1, "mail") != LUA_TSTRING) lua_getfield(L, 1, "userPrincipalName");
	if (lua_type(L, -1) == LUA_TSTRING) {
		size_t len;
		const char *a = lua_tolstring(L, -1, &len);
		if (starts_with_words(a, len, no_reply) || starts_with_words(a, len, do_not_reply)) {
			lua_pushboolean(L, 1);
			lua_pushliteral(L, "no-reply address");
			return 2;
		}
		if (word_find(addr_words, a, len, '@', w)) {
			lua_pushboolean(L, 1);
			lua_pushfstring(L, "service address ('%s')", w);
			return 2;
		}
	}
	if (lua_getfield(L, 1, "displayName") == LUA_TSTRING) {
		size_t len;
		const char *d = lua_tolstring(L, -1, &len);
		if (word_find(name_words, d, len, -1, w)) {
			lua_pushboolean(L, 1);
			lua_pushfstring(L, "service name ('%s')", w);
			return 2;
		}
	}
	lua_pushboolean(L, 0);
	return 1;
}

/* service_account(address_matcher, name_matcher) -> is_service_account */
static int text_service_account(lua_State *L)
{
	struct service_words w = { matcher_words(L, 1), matcher_words(L, 2) };
	lua_settop(L, 2);
	struct service_words *sw = lua_newuserdatauv(L, sizeof *sw, 0);
	*sw = w;
	lua_insert(L, 1);
	lua_pushcclosure(L, service_account_call, 3);
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
		{ "is_guest", text_is_guest },
		{ "is_member", text_is_member },
		{ "is_disabled", text_is_disabled },
		{ "has_mail", text_has_mail },
		{ "service_account", text_service_account },
		{ NULL, NULL },
	};
	luaL_newlib(L, funcs);
	lua_pushinteger(L, POLICY_NOTES_MAX);
	lua_setfield(L, -2, "notes_max");
}
