-- args: --memory-mb 8
-- expect: memory limit exceeded \(8 MiB\)
local t = {}
for i = 1, 1e9 do t[i] = ("x"):rep(64) .. i end
