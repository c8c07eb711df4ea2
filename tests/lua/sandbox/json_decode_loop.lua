-- args: --instructions 300000
-- expect: instruction budget exceeded \(300000 instructions\) at .*sandbox/json_decode_loop\.lua:9
-- json.decode works in C, unseen by the count hook: a loop of decodes of a
-- few MB ran ~5x past the time limit (seconds of CPU between two firings
-- of the hook); it is charged by the bytes it reads
local json = require "entrasync.json"
assert(json.decode('{"a":[1,2]}').a[2] == 2)
local text = "[" .. ('"' .. ("x"):rep(200) .. '",'):rep(20000) .. "0]"
for i = 1, 30 do local v = json.decode(text) end
error("30 decodes of 4 MB were not charged")
