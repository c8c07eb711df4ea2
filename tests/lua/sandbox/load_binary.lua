-- expect: load_binary\.lua:4: attempt to load a binary chunk \(mode is 't'\)
-- a crafted Lua 5.4 header: text mode is forced even when "b" is asked for
local header = "\27Lua\84\0\25\147\13\10\26\10\4\8\8"
assert(load(header .. "\0\0\0\0", "=x", "b"))
