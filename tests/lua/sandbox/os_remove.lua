-- expect: os_remove\.lua:2: 'os\.remove' is not available in the policy sandbox
os.remove("x")
