-- expect: os_getenv\.lua:2: 'os\.getenv' is not available in the policy sandbox
local home = os.getenv("HOME")
