/* lua_costly — charged wrappers of the standard library functions whose
 * work the count hook cannot see (string.rep, upper, lower, reverse,
 * format, sub; table.concat, move, insert, remove, sort; utf8.len,
 * codepoint): see lua_costly.c. */
#ifndef ENTRASYNC_LUA_COSTLY_H
#define ENTRASYNC_LUA_COSTLY_H

#include <lua.h>

/* Charges steps to the running call's budget; raises when it is spent. */
typedef void (*luacostly_charge)(lua_State *L, unsigned long steps);

/* Replaces those functions in the string, table and utf8 tables at
 * string_idx, table_idx and utf8_idx by wrappers that charge c first.
 * May raise (allocates). */
void luacostly_install(lua_State *L, int string_idx, int table_idx, int utf8_idx, luacostly_charge c);

#endif
