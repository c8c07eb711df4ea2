-- expect: io_open\.lua:2: 'io' is not available in the policy sandbox
local f = io.open("/etc/passwd")
