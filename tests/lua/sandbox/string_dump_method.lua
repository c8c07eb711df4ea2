-- expect: string_dump_method\.lua:2: attempt to call a nil value \(method 'dump'\)
local code = ("x"):dump()
