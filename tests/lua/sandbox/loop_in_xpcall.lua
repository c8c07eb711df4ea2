-- args: --instructions 1000000
-- expect: instruction budget exceeded \(1000000 instructions\) at .*sandbox/loop_in_xpcall\.lua:4
-- the handler loops too: it must not run outside the budget
local ok = xpcall(function() while true do end end, function(m) while true do end end)
error("xpcall swallowed the budget error")
