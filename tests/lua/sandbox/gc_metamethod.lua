-- expect: gc_metamethod\.lua:3: setmetatable: __gc metamethods are not available in the policy sandbox
-- finalizers run with hooks off, outside the instruction budget
setmetatable({}, { __gc = function() while true do end end })
