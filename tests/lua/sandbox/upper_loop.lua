-- expect: (instruction budget exceeded \(10000000 instructions\)|time limit exceeded \(10 s of CPU per call\)) at .*sandbox/upper_loop\.lua:5
-- one instruction, 4 MB of work: string functions are charged by the byte
local s = ("x"):rep(4e6)
assert(("aBc"):upper() == "ABC" and ("aBc"):lower() == "abc" and ("abc"):reverse() == "cba")
for i = 1, 1e6 do s = s:lower() end
