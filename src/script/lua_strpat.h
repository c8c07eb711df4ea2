/* lua_strpat — Lua's pattern functions (string.find, match, gmatch, gsub)
 * under the policy's instruction budget. Lua's own string library matches
 * patterns in C, where the count hook never fires: a pattern that
 * backtracks (("a"):rep(400):find(".-.-.-b")) ran for minutes inside one
 * call, and a policy could hang the run. These do what Lua's do, with the
 * same results and errors (tests/unit/test_strpat.c compares them on a
 * corpus), but count their steps and charge them to the budget as they
 * go. Internal to the scripting layer (needs lua.h). */
#ifndef ENTRASYNC_LUA_STRPAT_H
#define ENTRASYNC_LUA_STRPAT_H

#include <lua.h>

/* Takes steps (one per pattern item tried or character compared) from the
 * running call's budget; raises a Lua error when it is spent (and then does
 * not return). */
typedef void (*luastrpat_charge)(lua_State *L, unsigned long steps);

/* Replaces find, match, gmatch and gsub in the table at idx (the string
 * library, which is also the strings' __index) by the budgeted ones, which
 * call charge every few thousand steps. May raise (allocates). */
void luastrpat_install(lua_State *L, int idx, luastrpat_charge charge);

#endif
