-- args: --memory-mb 8
-- expect: memory limit exceeded \(8 MiB\).* near .*sandbox/memory_bomb\.lua:4
local t = {}
for i = 1, 1e9 do t[i] = ("x"):rep(64) .. i end
