-- expect: collectgarbage_stop\.lua:2: collectgarbage: only "count" is available in the policy sandbox \(got "stop"\)
collectgarbage("stop")
