-- args: --instructions 1000000
-- expect: instruction budget exceeded \(1000000 instructions\) at .*sandbox/pattern_plain_find\.lua:5
-- a plain find is a search too: n x m comparisons of a long needle that almost matches
local hay, needle = string.rep("a", 200000), string.rep("a", 20000) .. "b"
for _ = 1, 100 do string.find(hay, needle, 1, true) end
