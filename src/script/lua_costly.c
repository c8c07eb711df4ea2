/* lua_costly — the standard library functions whose work no instruction
 * count sees, charged to the sandbox's budget before they run. Lua's count
 * hook fires on VM instructions only: one call to string.rep("", 1e15)
 * loops a quadrillion times inside C (the hook never fires, the run hangs,
 * SIGTERM cannot stop it), table.move({}, 1, 1e9, 2) moves a billion nils,
 * and string.upper on a 50 MB string is one instruction. Each wrapper here
 * works out the size of the work from its arguments, charges it (one step
 * per element, one per 64 bytes), refuses what would only loop over
 * nothing, then calls Lua's own function (upvalue 2) with the same
 * arguments: results and error messages stay Lua's. The per-call time
 * limit (script.c) is the backstop for what no size foretells (comparing
 * two long strings). See lua_costly.h. */
#include "script/lua_costly.h"

#include <lauxlib.h>
#include <lua.h>

#define BYTES_PER_STEP 64

/* Charges steps through upvalue 1 (may raise: the budget is spent). */
static void charge(lua_State *L, lua_Integer steps)
{
	const luacostly_charge *c = lua_touserdata(L, lua_upvalueindex(1));
	if (steps > 0) (*c)(L, (unsigned long)steps);
}

/* Calls Lua's own function (upvalue 2) with the arguments as given and
 * returns all its results. */
static int call_original(lua_State *L)
{
	int n = lua_gettop(L);
	lua_pushvalue(L, lua_upvalueindex(2));
	lua_insert(L, 1);
	lua_call(L, n, LUA_MULTRET);
	return lua_gettop(L);
}

/* string.rep(s, n [, sep]): the result's bytes. A result of no bytes is ""
 * at once (Lua's own loops n times copying nothing). */
static int costly_rep(lua_State *L)
{
	size_t l, lsep = 0;
	luaL_checklstring(L, 1, &l);
	lua_Integer n = luaL_checkinteger(L, 2);
	luaL_optlstring(L, 3, "", &lsep);
	if (n <= 0 || (l == 0 && lsep == 0)) {
		lua_pushliteral(L, "");
		return 1;
	}
	/* Lua refuses a result too large itself; charge what fits, whole steps */
	double bytes = (double)n * (double)(l + lsep);
	charge(L, bytes / BYTES_PER_STEP > 1e15 ? (lua_Integer)1e15 : (lua_Integer)(bytes / BYTES_PER_STEP) + 1);
	return call_original(L);
}

/* string.upper / lower / reverse (s): s's bytes. */
static int costly_bytes(lua_State *L)
{
	size_t l;
	luaL_checklstring(L, 1, &l);
	charge(L, (lua_Integer)(l / BYTES_PER_STEP) + 1);
	return call_original(L);
}

/* table.concat(t [, sep [, i [, j]]]): the elements joined (each also
 * costs its bytes as it is copied, which Lua's buffer growth bounds by the
 * memory cap). */
static int costly_concat(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_Integer i = luaL_optinteger(L, 3, 1);
	lua_Integer j = lua_isnoneornil(L, 4) ? (lua_Integer)luaL_len(L, 1) : luaL_checkinteger(L, 4);
	if (j >= i) charge(L, (lua_Integer)((lua_Unsigned)j - (lua_Unsigned)i) / 4 + 1);
	return call_original(L);
}

/* table.move(a1, f, e, t [, a2]): the elements moved, e - f + 1. */
static int costly_move(lua_State *L)
{
	lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
	if (e >= f) {
		lua_Unsigned n = (lua_Unsigned)e - (lua_Unsigned)f;
		charge(L, n >= (lua_Unsigned)1e15 ? (lua_Integer)1e15 : (lua_Integer)n + 1);
	}
	return call_original(L);
}

/* table.insert(t, pos, v): the elements shifted up, #t - pos + 1 (none
 * when appending: insert(t, v)). */
static int costly_insert(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_gettop(L) == 3 && lua_isinteger(L, 2)) {
		lua_Integer len = (lua_Integer)luaL_len(L, 1), pos = lua_tointeger(L, 2);
		if (len >= pos) charge(L, len - pos + 1);
	}
	return call_original(L);
}

/* table.remove(t, pos): the elements shifted down, #t - pos (none for the
 * last). */
static int costly_remove(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_gettop(L) >= 2 && lua_isinteger(L, 2)) {
		lua_Integer len = (lua_Integer)luaL_len(L, 1), pos = lua_tointeger(L, 2);
		if (len > pos) charge(L, len - pos);
	}
	return call_original(L);
}

/* table.sort(t [, comp]): n log n comparisons (a comparator's own
 * instructions are counted as it runs). */
static int costly_sort(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_Integer n = (lua_Integer)luaL_len(L, 1), steps = 0;
	for (lua_Integer m = n; m > 1; m >>= 1) steps += n;
	charge(L, steps);
	return call_original(L);
}

/* Replaces field name of the table at idx by fn wrapping the original. */
static void wrap(lua_State *L, int idx, const char *name, lua_CFunction fn, luacostly_charge c)
{
	luacostly_charge *up = lua_newuserdatauv(L, sizeof *up, 0);   /* upvalue 1: the charge */
	*up = c;
	lua_getfield(L, idx, name);                                    /* upvalue 2: Lua's own */
	lua_pushcclosure(L, fn, 2);
	lua_setfield(L, idx, name);
}

void luacostly_install(lua_State *L, int string_idx, int table_idx, luacostly_charge c)
{
	string_idx = lua_absindex(L, string_idx);
	table_idx = lua_absindex(L, table_idx);
	wrap(L, string_idx, "rep", costly_rep, c);
	wrap(L, string_idx, "upper", costly_bytes, c);
	wrap(L, string_idx, "lower", costly_bytes, c);
	wrap(L, string_idx, "reverse", costly_bytes, c);
	wrap(L, table_idx, "concat", costly_concat, c);
	wrap(L, table_idx, "move", costly_move, c);
	wrap(L, table_idx, "insert", costly_insert, c);
	wrap(L, table_idx, "remove", costly_remove, c);
	wrap(L, table_idx, "sort", costly_sort, c);
}
