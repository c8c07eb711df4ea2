-- args: --instructions 1000000
-- expect: instruction budget exceeded \(1000000 instructions\) at .*sandbox/pattern_backtrack\.lua:5
-- Lua's pattern matcher runs in C, unseen by the count hook: this find took minutes
local s = string.rep("a", 400)
return s:find(".-.-.-b")
