-- expect: instruction budget exceeded \(10000000 instructions\) at .*sandbox/sort_long_strings\.lua:6
-- table.sort compares whole strings in C: 20,000 copies of a 1 MB string
-- took minutes of CPU inside one call, unseen by the count hook
local s, t = ("a"):rep(1 << 20), {}
for i = 1, 20000 do t[i] = s end
table.sort(t)
