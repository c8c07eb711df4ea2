-- args: --seconds 0.3
-- expect: time limit exceeded \(0.3 s of CPU per call\) at .*sandbox/compare_time\.lua:[56]
-- comparing two long strings is one instruction and milliseconds of work:
-- no count sees it; the time limit stops it
local a, b, n = ("x"):rep(2e7), ("x"):rep(2e7), 0
for i = 1, 1e6 do if a == b then n = n + 1 end end
