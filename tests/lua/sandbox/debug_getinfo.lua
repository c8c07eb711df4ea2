-- expect: debug_getinfo\.lua:2: 'debug' is not available in the policy sandbox
local info = debug.getinfo(1)
