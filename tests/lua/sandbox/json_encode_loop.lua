-- args: --instructions 300000
-- expect: instruction budget exceeded \(300000 instructions\) at .*sandbox/json_encode_loop\.lua:10
-- json.encode works in C, unseen by the count hook: a loop of encodes of a
-- large table ran minutes past a 1 s time limit; it is charged by the text
-- it made, once made
local json = require "entrasync.json"
assert(json.encode({ a = { 1, 2 } }) == '{"a":[1,2]}')
local t, s = {}, ("x"):rep(200)
for i = 1, 20000 do t[i] = s end
for i = 1, 30 do local v = json.encode(t) end
error("30 encodes of 4 MB were not charged")
