-- args: --memory-mb 8
-- expect: memory limit exceeded \(8 MiB\) at .*sandbox/memory_bomb_in_pcall\.lua:3
local ok = pcall(string.rep, "x", 1 << 24)
error("pcall swallowed the memory error")
