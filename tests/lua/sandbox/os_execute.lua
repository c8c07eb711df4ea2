-- expect: os_execute\.lua:2: 'os\.execute' is not available in the policy sandbox \(only os\.time, os\.date, os\.clock\)
os.execute("true")
