-- The charged wrappers (src/script/lua_costly.c) keep Lua's own results and
-- error messages (these are stock Lua 5.4's), and call __len once.
local function err(f, ...) local ok, m = pcall(f, ...) assert(not ok) return m end
local function same(got, want) assert(got == want, ("got %q, want %q"):format(tostring(got), want)) end
same(err(string.rep), "bad argument #1 to 'string.rep' (string expected, got no value)")
same(err(table.insert, {}, 5, 1), "bad argument #2 to 'table.insert' (position out of bounds)")
same(err(table.remove, {1, 2}, 7), "bad argument #1 to 'table.remove' (position out of bounds)")
same(err(table.sort, {3, 2, 1}, 5), "bad argument #2 to 'table.sort' (function expected, got number)")
same(err(table.concat, {}, {}, "x"), "bad argument #2 to 'table.concat' (string expected, got table)")
same(err(table.move, {}, -1, math.maxinteger, 2), "bad argument #3 to 'table.move' (too many elements to move)")
same(err(table.concat, {}, "", 1, math.maxinteger), "invalid value (nil) at index 1 in table for 'concat'")
same(err(string.rep, "x", 2^53), "resulting string too large")
same(err(utf8.len), "bad argument #1 to 'utf8.len' (string expected, got no value)")
-- raised from a Lua line, they name it, as Lua's own do (the wrappers run
-- Lua's function in their own frame)
local function at(f) local m = err(f) return (m:gsub("^[^:]*wrapped_messages%.lua:%d+: ", "LINE: ")) end
same(at(function() return string.rep("x", 2^53) end), "LINE: resulting string too large")
same(at(function() return ("x"):rep(2^53) end), "LINE: resulting string too large")
same(at(function() return table.concat({ {} }) end), "LINE: invalid value (table) at index 1 in table for 'concat'")
same(at(function() return table.insert({}, 5, 1) end), "LINE: bad argument #2 to 'insert' (position out of bounds)")
local json = require "entrasync.json"
same(at(function() return json.decode() end), "LINE: bad argument #1 to 'decode' (string expected, got no value)")
same(at(function() return json.decode("[1,") end), "LINE: invalid JSON at byte offset 3 (line 1, column 4): the text ends early at end of input")
same(json.encode(json.decode('{"b":[1,"x"],"a":null}')), '{"a":null,"b":[1,"x"]}')
same(load("return 6 * 7")(), 42)
local n = 0
local t = setmetatable({1, 2, 3}, { __len = function() n = n + 1 return 3 end })
table.insert(t, 1, 0)
same(n, 1)
same(("hello"):sub(2, -2) .. ("hello"):sub(-3) .. ("abc"):upper() .. ("abc"):reverse(), "elllloABCcba")
same(string.format("%5s|%q", "ab", "x\n"), '   ab|"x\\\n"')
same(table.concat({ 1, 2, 3 }, "-", 2), "2-3")
print("ok")
