-- expect: os_exit\.lua:2: 'os\.exit' is not available in the policy sandbox
os.exit(0)
