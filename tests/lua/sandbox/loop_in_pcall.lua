-- args: --instructions 1000000
-- expect: instruction budget exceeded \(1000000 instructions\) at .*sandbox/loop_in_pcall\.lua:3
local ok, err = pcall(function() while true do end end)
error("pcall swallowed the budget error: " .. tostring(err))
