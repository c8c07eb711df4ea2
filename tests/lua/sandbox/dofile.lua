-- expect: dofile\.lua:2: 'dofile' is not available in the policy sandbox
dofile("/etc/passwd")
