-- expect: string_metatable\.lua:3: attempt to index a boolean value
-- the string metatable is hidden: its __index (the string table) cannot be reached or replaced
getmetatable("").__index = { upper = function() return "pwned" end }
