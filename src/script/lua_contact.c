/* lua_contact — p.contact in C (see lua_contact.h): the Lua-callable
 * mapping and the fast path from a lazy user's JSON text. The two must give
 * the same contact for every user the fast path accepts; the fast path
 * declines anything unusual (escapes, non-string values, a changed u) and
 * leaves it to the Lua-callable one. */
#include "script/lua_contact.h"

#include <ctype.h>
#include <string.h>

#include <lauxlib.h>

#include "script/lua_json.h"
#include "script/lua_text.h"
#include "util/util.h"

/* The user members the mapping reads, and where the plain ones go. */
enum { M_DISPLAY, M_GIVEN, M_SUR, M_MAIL, M_UPN, M_PHONES, M_MOBILE, M_TITLE, M_STREET, M_CITY, M_STATE, M_ZIP,
       M_N };
static const char *const member_names[M_N] = {
	"displayName", "givenName", "surname", "mail", "userPrincipalName", "businessPhones",
	"mobilePhone", "jobTitle", "streetAddress", "city", "state", "postalCode",
};
/* members copied as they are: member -> contact field */
static const struct {
	int member, field;
	const char *field_name;
} plain_fields[] = {
	{ M_MAIL, LUACONTACT_EMAIL, "email" },       { M_MOBILE, LUACONTACT_MOBILE, "mobile" },
	{ M_TITLE, LUACONTACT_TITLE, "title" },      { M_STREET, LUACONTACT_ADDRESS1, "address1" },
	{ M_CITY, LUACONTACT_CITY, "city" },         { M_STATE, LUACONTACT_STATE, "state" },
	{ M_ZIP, LUACONTACT_ZIP, "zip" },
};

int luacontact_lua(lua_State *L)
{
	lua_settop(L, 1);
	luaL_checkstack(L, 8, "contact");
	lua_createtable(L, 0, 9);                                  /* 2 the contact */
	/* name */
	lua_getfield(L, 1, "displayName");                         /* 3 */
	if (!luatext_nonempty(L, 3)) {
		lua_getfield(L, 1, "givenName");                       /* 4 */
		lua_getfield(L, 1, "surname");                         /* 5 */
		if (luatext_nonempty(L, 4) && luatext_nonempty(L, 5)) {
			lua_pushvalue(L, 4);
			lua_pushliteral(L, " ");
			lua_pushvalue(L, 5);
			lua_concat(L, 3);
		} else {
			lua_getfield(L, 1, "mail");                        /* 6 */
			lua_getfield(L, 1, "userPrincipalName");           /* 7 */
			int i = 4;
			while (i <= 7 && !luatext_nonempty(L, i)) i++;
			if (i <= 7) lua_pushvalue(L, i);
			else lua_pushnil(L);
		}
		lua_replace(L, 3);
		lua_settop(L, 3);
	}
	lua_setfield(L, 2, "name");
	/* phone: the first of businessPhones that is not blank (nor false or
	 * json.null); Graph's list may start with "" */
	if (lua_getfield(L, 1, "businessPhones") != LUA_TNIL && lua_toboolean(L, 3)) {
		for (lua_Integer i = 1; lua_geti(L, 3, i) != LUA_TNIL; i++) {  /* 4 */
			if (lua_toboolean(L, 4) && luatext_nonempty(L, 4)) {
				lua_setfield(L, 2, "phone");
				break;
			}
			lua_pop(L, 1);
		}
	}
	lua_settop(L, 2);
	for (size_t i = 0; i < ARRAY_LEN(plain_fields); i++) {
		lua_getfield(L, 1, member_names[plain_fields[i].member]);
		lua_setfield(L, 2, plain_fields[i].field_name);
	}
	return 1;
}

static bool json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char)s[i])) return false;
	return true;
}

/* Reads the first item of the JSON array text a[0..len) (already checked
 * strict JSON) that is not blank, as luacontact_lua does: true with *s =
 * NULL when there is none (an empty array; only nulls and blank strings),
 * true with the string for one without escapes, false for anything else
 * (a string with escapes, a number: left to Lua). */
static bool first_item(const char *a, size_t len, const char **s, size_t *slen)
{
	const char *p = a, *e = a + len;
	if (p == e || *p != '[') return false;
	*s = NULL;
	*slen = 0;
	for (p++;;) {
		while (p < e && json_ws(*p)) p++;
		if (p == e) return false;
		if (*p == ']') return true;
		if (*p == 'n') {
			p += 4;                                       /* null */
		} else {
			if (*p != '"') return false;
			const char *q = ++p;
			while (q < e && *q != '"' && *q != '\\') q++;
			if (q == e || *q != '"') return false;
			if (!blank(p, (size_t)(q - p))) {
				*s = p;
				*slen = (size_t)(q - p);
				return true;
			}
			p = q + 1;
		}
		while (p < e && json_ws(*p)) p++;
		if (p < e && *p == ',') p++;
	}
}

bool luacontact_fast(lua_State *L, int u, const char **val, size_t *vlen)
{
	struct luajson_view v[M_N];
	if (!luajson_user_view(L, u, member_names, M_N, v)) return false;
	for (int i = 0; i < M_N; i++)
		if (v[i].kind == LUAJSON_VIEW_LUA || (i != M_PHONES && v[i].kind == LUAJSON_VIEW_OTHER)) return false;
	/* name: displayName, else the first non-empty of the others (joining
	 * givenName and surname is left to luacontact_lua) */
	int name = -1;
	if (v[M_DISPLAY].kind == LUAJSON_VIEW_STRING && !blank(v[M_DISPLAY].p, v[M_DISPLAY].len)) {
		name = M_DISPLAY;
	} else {
		bool given = v[M_GIVEN].kind == LUAJSON_VIEW_STRING && !blank(v[M_GIVEN].p, v[M_GIVEN].len);
		bool sur = v[M_SUR].kind == LUAJSON_VIEW_STRING && !blank(v[M_SUR].p, v[M_SUR].len);
		if (given && sur) return false;
		for (int i = M_GIVEN; i <= M_UPN && name < 0; i++)
			if (v[i].kind == LUAJSON_VIEW_STRING && !blank(v[i].p, v[i].len)) name = i;
	}
	const char *phone = NULL;
	size_t phone_len = 0;
	if (v[M_PHONES].kind == LUAJSON_VIEW_STRING) return false;   /* a string: indexing it is Lua's business */
	if (v[M_PHONES].kind == LUAJSON_VIEW_OTHER && !first_item(v[M_PHONES].p, v[M_PHONES].len, &phone, &phone_len))
		return false;
	if (name >= 0) {
		val[LUACONTACT_NAME] = v[name].p;
		vlen[LUACONTACT_NAME] = v[name].len;
	}
	if (phone) {
		val[LUACONTACT_PHONE] = phone;
		vlen[LUACONTACT_PHONE] = phone_len;
	}
	for (size_t i = 0; i < ARRAY_LEN(plain_fields); i++) {
		const struct luajson_view *m = &v[plain_fields[i].member];
		if (m->kind != LUAJSON_VIEW_STRING) continue;
		val[plain_fields[i].field] = m->p;
		vlen[plain_fields[i].field] = m->len;
	}
	return true;
}
