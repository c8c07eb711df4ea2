-- expect: json\.encode: the JSON text would be larger than 16 MiB at \$\[2\]
-- json.encode built its tree and text outside the memory cap: one 10 MB
-- string referenced 150 times took 3 GB
local json = require "entrasync.json"
local s, t = ("x"):rep(1e7), {}
for i = 1, 150 do t[i] = s end
return json.encode(t)
