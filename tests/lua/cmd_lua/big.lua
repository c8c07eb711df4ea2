-- needs more than the default 10M instructions and 64 MiB
local n = 0
for i = 1, 6000000 do n = n + i end
assert(n == 6000000 * 6000001 // 2)
-- string.rep builds in a buffer, then copies: about twice the size at the peak
local big = ("x"):rep(40 * 1024 * 1024)
assert(#big == 40 * 1024 * 1024)
