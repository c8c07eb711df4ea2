/* lua_text — the `entrasync.text` binding namespace: small string helpers
 * in C for the runtime's Lua where Lua's string library would allocate on
 * a hot path. Internal to the scripting layer (needs lua.h). */
#ifndef ENTRASYNC_LUA_TEXT_H
#define ENTRASYNC_LUA_TEXT_H

#include <lua.h>

/* Pushes a new table: the `entrasync.text` module. May raise. */
void luatext_open(lua_State *L);

#endif
