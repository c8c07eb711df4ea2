-- expect: instruction budget exceeded \(10000000 instructions\) at .*sandbox/rep_huge\.lua:6
-- string.rep ran in C, unseen by the count hook: rep("", 1e15) looped a
-- quadrillion times (hung the run; SIGTERM could not stop it)
local empty = string.rep("", 1e15)
assert(empty == "" and string.rep("ab", 3, ",") == "ab,ab,ab")
return string.rep("ab", 1e14)
