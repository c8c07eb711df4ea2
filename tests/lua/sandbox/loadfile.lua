-- expect: loadfile\.lua:2: 'loadfile' is not available in the policy sandbox
local f = loadfile("x.lua")
