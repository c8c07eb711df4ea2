/* lua_contact — p.contact, the runtime's Graph user -> Syncro contact
 * mapping, in C: as a Lua function (entrasync.text's contact, which
 * lua/entrasync/policy.lua exports as p.contact) and as a fast path that
 * script_policy_eval takes when a policy's contact *is* that function,
 * reading the user's JSON text without making Lua values. Internal to the
 * scripting layer (needs lua.h). */
#ifndef ENTRASYNC_LUA_CONTACT_H
#define ENTRASYNC_LUA_CONTACT_H

#include <stdbool.h>
#include <stddef.h>
#include <lua.h>

/* The contact fields the mapping sets (indexes into a POLICY_NFIELDS
 * array, enum policy_contact_field order). */
enum {
	LUACONTACT_NAME = 0, LUACONTACT_EMAIL = 1, LUACONTACT_PHONE = 2, LUACONTACT_MOBILE = 3, LUACONTACT_TITLE = 4,
	LUACONTACT_ADDRESS1 = 5, LUACONTACT_CITY = 7, LUACONTACT_STATE = 8, LUACONTACT_ZIP = 9,
};

/* contact(u) -> { name, email, phone, mobile, title, address1, city, state,
 * zip }: name = u.displayName, else "givenName surname" when both are
 * non-empty (p.nonempty), else the first non-empty of givenName, surname,
 * mail, userPrincipalName; email = u.mail; phone = u.businessPhones[1]
 * unless false/nil/json.null; mobile = u.mobilePhone; title = u.jobTitle;
 * address1 = u.streetAddress; city, state; zip = u.postalCode. Absent
 * values stay absent. Reads u with metamethods (a lua_CFunction; raises as
 * the Lua version did for a u or businessPhones that cannot be indexed). */
int luacontact_lua(lua_State *L);

/* The same mapping for the current lazy user table at u, read from its JSON
 * text (luajson_user_view): fills val[f]/vlen[f] (f as above; pointers into
 * the text, not NUL-terminated; NULL = absent) and returns true when every
 * member involved is absent, null or a string without escapes and
 * businessPhones is absent, null or an array whose first item is one of
 * those; false (nothing filled) otherwise, or when u is not an unchanged
 * lazy user, or when the name would have to be joined from givenName and
 * surname: then call luacontact_lua. Never raises, allocates nothing. */
bool luacontact_fast(lua_State *L, int u, const char **val, size_t *vlen);

#endif
