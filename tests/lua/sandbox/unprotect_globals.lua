-- expect: unprotect_globals\.lua:2: cannot change a protected metatable
setmetatable(_G, nil)
