print("before")
local function check(v)
  if not v then error("bad input") end
end
check(false)
