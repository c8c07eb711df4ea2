-- expect: (instruction budget exceeded \(10000000 instructions\)|time limit exceeded \(10 s of CPU per call\)) at .*sandbox/utf8_len_loop\.lua:6
-- utf8.len walks its whole string in C: one instruction, 30 MB of work; the
-- time limit, checked between instructions, came minutes late
local s, n = ("a"):rep(30 << 20), 0
assert(utf8.len("héllo") == 5 and select("#", utf8.codepoint("héllo", 1, -1)) == 5)
for i = 1, 1e6 do n = n + utf8.len(s) end
