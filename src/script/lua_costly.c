/* lua_costly — the standard library functions whose work no instruction
 * count sees, charged to the sandbox's budget before they run. Lua's count
 * hook fires on VM instructions only: one call to string.rep("", 1e15)
 * loops a quadrillion times inside C (the hook never fires, the run hangs,
 * SIGTERM cannot stop it), table.move({}, 1, 1e9, 2) moves a billion nils,
 * table.sort of 20,000 copies of a 1 MB string compares megabytes 300,000
 * times, and utf8.len of 30 MB is one instruction. Each wrapper works out
 * the size of the work from its arguments, charges it (a step per element
 * touched, per 64 bytes read or made), then calls Lua's own function
 * (upvalue 2) with the same arguments. The wrappers raise nothing of their
 * own: arguments Lua would refuse are not charged, so Lua's own function
 * refuses them with its own message; the originals are also registered
 * under "_G.string", "_G.table" and "_G.utf8" in the registry's loaded
 * table, where luaL_argerror finds their names ("bad argument #2 to
 * 'table.insert'"). What no size foretells (comparing two long strings)
 * is left to the per-call time limit (script.c). entrasync.json's decode
 * and encode charge the same way from inside (lua_json.c). See
 * lua_costly.h. */
#include "script/lua_costly.h"

#include <stdbool.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define BYTES_PER_STEP 64
#define MAX_STEPS ((lua_Integer)1e15)   /* more than any budget: a charge this large always fails */

/* Charges steps through upvalue 1 (may raise: the budget is spent). */
static void charge(lua_State *L, double steps)
{
	const luacostly_charge *c = lua_touserdata(L, lua_upvalueindex(1));
	if (steps >= 1) (*c)(L, steps >= (double)MAX_STEPS ? (unsigned long)MAX_STEPS : (unsigned long)steps);
}

/* Runs Lua's own function (upvalue 2) in the wrapper's own frame: its C
 * function called directly, with the arguments as given, returning what
 * it returns. Not through lua_call: a new frame would be a C function's,
 * so its errors would lose the Lua caller's place ("x.lua:5: resulting
 * string too large") and take the wrapper's name. The wrapped library
 * functions use no upvalues of their own. */
static int call_original(lua_State *L)
{
	return lua_tocfunction(L, lua_upvalueindex(2))(L);
}

/* Argument i as an integer (floats with an exact integer value too), else
 * false: the original refuses it. */
static bool int_arg(lua_State *L, int i, lua_Integer *v)
{
	int ok = 0;
	*v = lua_tointegerx(L, i, &ok);
	return ok && lua_type(L, i) == LUA_TNUMBER;
}

/* The byte length of argument i when it is a string (or a number, which
 * Lua's string functions take), else 0. */
static size_t str_arg(lua_State *L, int i)
{
	size_t l = 0;
	if (lua_type(L, i) == LUA_TSTRING) lua_tolstring(L, i, &l);
	return l;
}

/* string.rep(s, n [, sep]): the result's bytes. A result of no bytes is ""
 * at once (Lua's own loops n times copying nothing). */
static int costly_rep(lua_State *L)
{
	lua_Integer n;
	if (lua_type(L, 1) == LUA_TSTRING && int_arg(L, 2, &n) &&
	    (lua_isnoneornil(L, 3) || lua_type(L, 3) == LUA_TSTRING)) {
		size_t l = str_arg(L, 1), lsep = str_arg(L, 3);
		if (n > 0 && l + lsep == 0) {
			lua_pushliteral(L, "");
			return 1;
		}
		double bytes = (double)n * (double)(l + lsep);
		if (n > 0 && bytes < 9e15) charge(L, bytes / BYTES_PER_STEP + 1);   /* larger: Lua says "too large" */
	}
	return call_original(L);
}

/* string.upper / lower / reverse / utf8.len (s, ...): s's bytes (what
 * they walk). */
static int costly_bytes(lua_State *L)
{
	charge(L, (double)str_arg(L, 1) / BYTES_PER_STEP + 1);
	return call_original(L);
}

/* string.sub(s, i [, j]) / utf8.codepoint(s [, i [, j]]): the bytes of
 * the range (Lua's index rules: negative from the end, clipped). */
static int costly_range(lua_State *L, lua_Integer dflt_j_from_i)
{
	lua_Integer i = 1, j;
	if (lua_type(L, 1) == LUA_TSTRING && (lua_isnoneornil(L, 2) || int_arg(L, 2, &i))) {
		lua_Integer l = (lua_Integer)str_arg(L, 1);
		bool jgiven = !lua_isnoneornil(L, 3);
		if (jgiven && !int_arg(L, 3, &j)) return call_original(L);
		if (i < 0) i = l + i + 1 > 1 ? l + i + 1 : 1;
		else if (i == 0) i = 1;
		if (!jgiven) j = dflt_j_from_i ? i : -1;
		if (j < 0) j = l + j + 1;
		if (j > l) j = l;
		if (j >= i) charge(L, ((double)j - (double)i + 1) / BYTES_PER_STEP + 1);
	}
	return call_original(L);
}
static int costly_sub(lua_State *L) { return costly_range(L, 0); }
static int costly_codepoint(lua_State *L) { return costly_range(L, 1); }

/* string.format(fmt, ...): the bytes of its string arguments (each may be
 * copied, quoted or padded) and of the format. */
static int costly_format(lua_State *L)
{
	double bytes = 0;
	for (int i = 1; i <= lua_gettop(L); i++) bytes += (double)str_arg(L, i);
	charge(L, bytes / BYTES_PER_STEP + 1);
	return call_original(L);
}

/* table.concat(t [, sep [, i [, j]]]): the elements joined, up to the
 * table's length (Lua stops at the first that is no string). */
static int costly_concat(lua_State *L)
{
	lua_Integer i = 1, j;
	if (lua_type(L, 1) == LUA_TTABLE && (lua_isnoneornil(L, 3) || int_arg(L, 3, &i))) {
		lua_Integer len = (lua_Integer)lua_rawlen(L, 1);
		if (lua_isnoneornil(L, 4)) j = len;
		else if (!int_arg(L, 4, &j)) j = i - 1;
		if (j > len) j = len;
		if (j >= i) charge(L, ((double)j - (double)i) / 4 + 1);
	}
	return call_original(L);
}

/* table.move(a1, f, e, t [, a2]): the elements moved, e - f + 1, when Lua
 * takes the range (else its own refusal). */
static int costly_move(lua_State *L)
{
	lua_Integer f, e;
	if (int_arg(L, 2, &f) && int_arg(L, 3, &e) && e >= f && (f > 0 || e < LUA_MAXINTEGER + f))
		charge(L, (double)e - (double)f + 1);
	return call_original(L);
}

/* table.insert(t, pos, v): the elements shifted up (none when appending). */
static int costly_insert(lua_State *L)
{
	lua_Integer pos;
	if (lua_type(L, 1) == LUA_TTABLE && lua_gettop(L) == 3 && int_arg(L, 2, &pos)) {
		lua_Integer len = (lua_Integer)lua_rawlen(L, 1);
		if (pos >= 1 && len >= pos) charge(L, (double)(len - pos + 1));
	}
	return call_original(L);
}

/* table.remove(t, pos): the elements shifted down (none for the last). */
static int costly_remove(lua_State *L)
{
	lua_Integer pos;
	if (lua_type(L, 1) == LUA_TTABLE && lua_gettop(L) >= 2 && int_arg(L, 2, &pos)) {
		lua_Integer len = (lua_Integer)lua_rawlen(L, 1);
		if (pos >= 1 && len > pos) charge(L, (double)(len - pos));
	}
	return call_original(L);
}

/* table.sort(t [, comp]): n log n comparisons, each as costly as the
 * longest string element when the default comparison runs (it compares
 * whole strings); a comparator's own instructions are counted as it runs. */
static int costly_sort(lua_State *L)
{
	if (lua_type(L, 1) == LUA_TTABLE) {
		lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
		double cmps = 0, longest = 0;
		for (lua_Integer m = n; m > 1; m >>= 1) cmps += (double)n;
		if (lua_isnoneornil(L, 2) && cmps > 0) {
			charge(L, (double)n / 4 + 1);   /* the look at the elements */
			for (lua_Integer k = 1; k <= n; k++) {
				lua_rawgeti(L, 1, k);
				double l = (double)str_arg(L, -1);
				if (l > longest) longest = l;
				lua_pop(L, 1);
			}
		}
		charge(L, cmps * (1 + longest / BYTES_PER_STEP));
	}
	return call_original(L);
}

/* Replaces field name of the table at idx by fn wrapping the original, and
 * keeps the original in the table at orig (for its name in errors). */
static void wrap(lua_State *L, int idx, int orig, const char *name, lua_CFunction fn, luacostly_charge c)
{
	luacostly_charge *up = lua_newuserdatauv(L, sizeof *up, 0);   /* upvalue 1: the charge */
	*up = c;
	lua_getfield(L, idx, name);                                    /* upvalue 2: Lua's own */
	lua_pushvalue(L, -1);
	lua_setfield(L, orig, name);
	lua_pushcclosure(L, fn, 2);
	lua_setfield(L, idx, name);
}

/* A table in the registry's loaded table under "_G.<lib>", where
 * luaL_argerror's name search finds the originals as "<lib>.<name>";
 * pushed. Policies never see the registry. */
static int originals_table(lua_State *L, const char *lib)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);   /* loaded */
	lua_newtable(L);                                               /* loaded, t */
	lua_pushfstring(L, "_G.%s", lib);                              /* loaded, t, name */
	lua_pushvalue(L, -2);                                          /* loaded, t, name, t */
	lua_rawset(L, -4);                                             /* loaded, t */
	lua_remove(L, -2);                                             /* t */
	return lua_gettop(L);
}

void luacostly_install(lua_State *L, int string_idx, int table_idx, int utf8_idx, luacostly_charge c)
{
	static const struct {
		int lib;                     /* 0 string, 1 table, 2 utf8 */
		const char *name;
		lua_CFunction fn;
	} wraps[] = {
		{ 0, "rep", costly_rep },           { 0, "upper", costly_bytes },     { 0, "lower", costly_bytes },
		{ 0, "reverse", costly_bytes },     { 0, "format", costly_format },   { 0, "sub", costly_sub },
		{ 1, "concat", costly_concat },     { 1, "move", costly_move },       { 1, "insert", costly_insert },
		{ 1, "remove", costly_remove },     { 1, "sort", costly_sort },
		{ 2, "len", costly_bytes },         { 2, "codepoint", costly_codepoint },
	};
	static const char *const lib_names[] = { LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_UTF8LIBNAME };
	int lib_idx[] = { lua_absindex(L, string_idx), lua_absindex(L, table_idx), lua_absindex(L, utf8_idx) };
	for (int lib = 0; lib < 3; lib++) {
		int o = originals_table(L, lib_names[lib]);
		for (size_t i = 0; i < sizeof wraps / sizeof wraps[0]; i++)
			if (wraps[i].lib == lib) wrap(L, lib_idx[lib], o, wraps[i].name, wraps[i].fn, c);
		lua_pop(L, 1);
	}
}
