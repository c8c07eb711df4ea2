print("hello", 42, nil)
print("args", arg[1], arg[2], select("#", ...))
