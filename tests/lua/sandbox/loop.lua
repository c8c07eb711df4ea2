-- args: --instructions 1000000
-- expect: instruction budget exceeded \(1000000 instructions\) at .*sandbox/loop\.lua:3
while true do end
