-- expect: instruction budget exceeded \(10000000 instructions\) at .*sandbox/table_move\.lua:4
-- table.move moved a billion nils in C, unseen by the count hook
assert(table.concat(table.move({1, 2, 3}, 1, 3, 2), ",") == "1,1,2,3")
table.move({}, 1, 1e9, 2)
