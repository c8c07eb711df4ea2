-- expect: load_env\.lua:2: load: the env argument is not available in the policy sandbox
local f = load("x = 1", "c", "t", {})
