-- args: --instructions 300000
-- expect: instruction budget exceeded \(300000 instructions\) at .*sandbox/load_loop\.lua:8
-- compiling a chunk is C work no count sees: a loop of loads of a 2 MB
-- chunk ran 13x past a 1 s time limit; a chunk given as text is charged
-- by its bytes
assert(load("return 1 + 1")() == 2)
local chunk = ("x1 = 1\n"):rep(300000)
for i = 1, 30 do local f = load(chunk) end
error("30 loads of 2 MB were not charged")
