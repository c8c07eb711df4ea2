-- expect: debug_sethook\.lua:2: 'debug' is not available in the policy sandbox
debug.sethook()
