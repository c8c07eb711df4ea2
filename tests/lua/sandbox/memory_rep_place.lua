-- args: --memory-mb 8
-- expect: memory limit exceeded \(8 MiB\) near .*sandbox/memory_rep_place\.lua:5
-- one large allocation in a short call, before the count hook ever fired:
-- the message had no place
local s = ("x"):rep(2e7)
