#!/usr/bin/env entrasync lua
local n = 0
for i = 1, 100 do n = n + i end
assert(n == 5050)
