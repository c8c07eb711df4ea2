-- expect: package_loadlib\.lua:2: 'package' is not available in the policy sandbox
local f = package.loadlib("libc.so.6", "system")
