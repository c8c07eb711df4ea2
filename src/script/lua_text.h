/* lua_text — the `entrasync.text` binding namespace: small string helpers
 * in C for the runtime's Lua where Lua's string library would allocate on
 * a hot path. Internal to the scripting layer (needs lua.h). */
#ifndef ENTRASYNC_LUA_TEXT_H
#define ENTRASYNC_LUA_TEXT_H

#include <stdbool.h>
#include <lua.h>

/* Pushes a new table: the `entrasync.text` module. May raise. */
void luatext_open(lua_State *L);

/* p.nonempty of the value at idx: false for nil/none, json.null, a string
 * of spaces only (C isspace) and an empty table; true otherwise. Uses two
 * stack slots for a table; never raises. */
bool luatext_nonempty(lua_State *L, int idx);

#endif
