/* test_strpat — the budgeted pattern functions (src/script/lua_strpat.c)
 * against Lua's own: on a corpus of subjects x patterns x start positions
 * (captures, position captures, anchors, sets, classes, %b, %f,
 * back-references, quantifiers, empty matches, embedded NULs, and every
 * malformed-pattern error), find / match / gmatch / gsub (string, table and
 * function replacements, %0-%9 and their errors, a limit) must give the same
 * values, or the same error message, as string.find and its siblings. Then
 * the budget: a pattern that backtracks is stopped by its charge, and the
 * steps charged grow with the work. Bare Lua states. */
#include "t.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "script/lua_strpat.h"
#include "util/util.h"

static unsigned long g_charged;        /* steps charged so far */
static unsigned long g_charge_limit;   /* raise once more than this was charged (0: never) */

static void charge_count(lua_State *L, unsigned long steps)
{
	g_charged += steps;
	if (g_charge_limit && g_charged > g_charge_limit) luaL_error(L, "budget spent");
}

/* The comparison, in Lua: `ours` holds the budgeted functions, `string`
 * Lua's. Every call is made through pcall on both, with the same
 * arguments; the results (or error messages) are rendered as text and
 * compared. Returns the number of differences (printing the first ones)
 * and how many calls were compared. */
static const char compare_lua[] =
	"local ours = ...\n"
	"local function render(ok, ...)\n"
	"  local t = { tostring(ok) }\n"
	"  for i = 1, select('#', ...) do\n"
	"    local v = select(i, ...)\n"
	"    t[#t + 1] = type(v) .. ':' .. tostring(v)\n"
	"  end\n"
	/* an argument error names the function as the library table it is found
	 * in does ('string.gsub'); ours here are in a table of their own */
	"  return (table.concat(t, '|'):gsub(\"to '[%w.?]+'\", \"to 'F'\"))\n"
	"end\n"
	"local function gm(f, s, p, init)\n"
	"  local out = {}\n"
	"  for a, b, c in f(s, p, init) do\n"
	"    out[#out + 1] = tostring(a) .. ',' .. tostring(b) .. ',' .. tostring(c)\n"
	"    if #out > 200 then break end\n"
	"  end\n"
	"  return table.concat(out, ';')\n"
	"end\n"
	"local subjects = { '', 'a', 'hello world', '  trim me  ', 'a,b,,c', 'THE (quick) [brown] fox!',\n"
	"  'x=1, y=22, z=333', '[[nested]] (a(b)c) end)', '\\206\\177\\206\\178 utf8', 'a\\0b\\0c', 'aaa',\n"
	"  string.rep('ab', 20), 'key = value # comment', '2026-11-27T19:04:31Z', 'mia.nguyen@contoso.com',\n"
	"  'Conf Room Adams', 'no-reply@x.com', 'abcabcabc', '%d %s %%', '$100 ^ up', string.rep('a', 60) }\n"
	"local patterns = { '', '%', '%%', '[a', '[^', '(', ')', '%1', '(a)%2', '(a)%1', '(.)%1', '%0', '%f', '%fx',\n"
	"  '%f[%w]%w+', '%f[%W]', '%b', '%bx', '%b()', '%b[]', '%g+', '[%a_][%w_]*', '^%s*(.-)%s*$', '(%d+)-(%d+)-(%d+)',\n"
	"  '()a()', '()', '[^,]*', 'a-', 'a*', 'a+', 'a?', '.-', '.', '$', '^', '^$', 'x$y', '[]]', '[^]]', '[a-c]+',\n"
	"  '[%]]', '%.', '%a+', '%u%l+', '%x%x', '%p', '%c', '%s', '%S+', '%w+@%w+', '[%d%.]+', '(h)(e)(l)(l)(o)',\n"
	"  '((a)(b))', '(a*(.)%w(%s*))', 'a\\0b', '[\\0]', '%z', '[a-]', '[-a]', '[a-%d]', '[%a-z]', '(()', '(a)(b',\n"
	"  '%b()%f[%s]', '.-%)', 'o', 'world', 'l+', '^h', '^(%w+)', '%w+$', '(%w+)=(%w+)', '[^%w%s]',\n"
	"  string.rep('(a)', 33), '[' .. string.rep('a', 10),\n"
	"  'T(%d+):(%d+)', '%d%d%d%d%-%d%d%-%d%d', '^no%-?reply', '(%w+)%s(%w+)', '%s*$', '^%s*', 'b*', 'c?$',\n"
	"  '()%1', '(a)()%2', '()%1()' }\n"
	"local inits = { false, 1, 0, -1, -3, 5, 100, -100 }\n"
	"local diffs, n = 0, 0\n"
	"local function same(what, a, b)\n"
	"  n = n + 1\n"
	"  if a ~= b then\n"
	"    diffs = diffs + 1\n"
	"    if diffs <= 10 then print('DIFF ' .. what .. '\\n   lua:  ' .. a .. '\\n   ours: ' .. b) end\n"
	"  end\n"
	"end\n"
	"for _, s in ipairs(subjects) do\n"
	"  for _, p in ipairs(patterns) do\n"
	"    local tag = string.format('%q %q', s, p)\n"
	"    for _, i in ipairs(inits) do\n"
	"      local init = i or nil\n"
	"      same('find ' .. tag .. ' ' .. tostring(init), render(pcall(string.find, s, p, init)), render(pcall(ours.find, s, p, init)))\n"
	"      same('find plain ' .. tag, render(pcall(string.find, s, p, init, true)), render(pcall(ours.find, s, p, init, true)))\n"
	"      same('match ' .. tag .. ' ' .. tostring(init), render(pcall(string.match, s, p, init)), render(pcall(ours.match, s, p, init)))\n"
	"      same('gmatch ' .. tag .. ' ' .. tostring(init), render(pcall(gm, string.gmatch, s, p, init)), render(pcall(gm, ours.gmatch, s, p, init)))\n"
	"    end\n"
	"    local repls = { '<%0>', '%1-%1', '%%', '%2', '%x', '%', 'X', 7, { hello = 'HI', a = false, b = 3, c = {} },\n"
	"      function(a, b) return a and string.upper(tostring(a)) end, function() return nil end, function() return {} end,\n"
	"      function(a) return #tostring(a) end, true }\n"
	"    for _, r in ipairs(repls) do\n"
	"      for _, lim in ipairs({ false, 0, 1, 2, -1 }) do\n"
	"        local l = lim or nil\n"
	"        same('gsub ' .. tag .. ' ' .. tostring(r) .. ' ' .. tostring(l), render(pcall(string.gsub, s, p, r, l)), render(pcall(ours.gsub, s, p, r, l)))\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"local deep_s, deep_p = string.rep('a', 250), string.rep('a?', 250) .. string.rep('a', 250)\n"
	"same('too complex', render(pcall(string.find, deep_s, deep_p)), render(pcall(ours.find, deep_s, deep_p)))\n"
	"same('find number subject', render(pcall(string.find, 12345, '3')), render(pcall(ours.find, 12345, '3')))\n"
	"same('find no pattern', render(pcall(string.find, 'x')), render(pcall(ours.find, 'x')))\n"
	"same('gsub no repl', render(pcall(string.gsub, 'x', 'x')), render(pcall(ours.gsub, 'x', 'x')))\n"
	"same('method call', render(pcall(function() return ('abc'):find('b') end)), render(pcall(ours.find, 'abc', 'b')))\n"
	"return diffs, n\n";

TEST(strpat_gives_what_lua_gives)
{
	lua_State *L = luaL_newstate();
	REQUIRE(L);
	luaL_openlibs(L);
	g_charged = 0;
	g_charge_limit = 0;
	REQUIRE(luaL_loadbuffer(L, compare_lua, sizeof compare_lua - 1, "=compare") == LUA_OK);
	lua_newtable(L);
	luastrpat_install(L, -1, charge_count);
	if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
		t_fail(__FILE__, __LINE__, "compare: %s", lua_tostring(L, -1));
		lua_close(L);
		return;
	}
	long long diffs = lua_tointeger(L, -2), n = lua_tointeger(L, -1);
	CHECK_EQ_INT(diffs, 0);
	CHECK(n > 100000);
	CHECK(g_charged > 0);
	lua_close(L);
}

/* Runs code with the budgeted functions as the string library's (so
 * s:find too) under a charge limit; returns the error or NULL. */
static char g_err[512];
static const char *run_limited(const char *code, unsigned long limit)
{
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	lua_getglobal(L, "string");
	luastrpat_install(L, -1, charge_count);
	lua_pop(L, 1);
	g_charged = 0;
	g_charge_limit = limit;
	const char *err = NULL;
	if (luaL_dostring(L, code) != LUA_OK) {
		snprintf(g_err, sizeof g_err, "%s", lua_tostring(L, -1));
		err = g_err;
	}
	lua_close(L);
	g_charge_limit = 0;
	return err;
}

TEST(strpat_budget_stops_backtracking)
{
	/* ~10^10 steps for Lua's own find: stopped within the limit */
	const char *err = run_limited("local s = string.rep('a', 400) return s:find('.-.-.-b')", 1000000);
	REQUIRE(err != NULL);
	CHECK_CONTAINS(err, "budget spent");
	CHECK(g_charged > 1000000 && g_charged < 1000000 + 8192);
	/* the same for match, gmatch and gsub, and a plain find of a long needle */
	static const char *const others[] = {
		"return (string.rep('a', 400)):match('(.-)(.-)(.-)b')",
		"for x in (string.rep('a', 400)):gmatch('.-.-.-b') do end",
		"return (string.rep('a', 400)):gsub('a*a*a*b', 'x')",
		"return (string.rep('a', 100000)):find(string.rep('a', 5000) .. 'b', 1, true)",
	};
	for (size_t i = 0; i < ARRAY_LEN(others); i++) {
		err = run_limited(others[i], 1000000);
		if (!err || !strstr(err, "budget spent")) t_fail(__FILE__, __LINE__, "%s: not stopped (%s)", others[i], err ? err : "ok");
	}
	/* a back-reference to a position capture never matches, and costs a step, not the budget */
	err = run_limited("assert(not ('a b'):find('()%1')) assert(('xx'):gsub('()%1', '-') == 'xx')", 1000);
	CHECK(err == NULL);
	/* ordinary work is charged as it goes, and well within a policy's budget */
	err = run_limited("local s = string.rep('word ', 2000) local n = 0 for w in s:gmatch('%a+') do n = n + 1 end "
	                  "assert(n == 2000) assert(s:gsub('o', '0'):find('w0rd'))", 0);
	CHECK(err == NULL);
	CHECK(g_charged > 10000 && g_charged < 1000000);
}
