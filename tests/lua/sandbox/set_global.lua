-- expect: set_global\.lua:3: assignment to undeclared global 'counter'
local x = 1
counter = x
