-- expect: read_global\.lua:2: undefined global 'helper'
local v = helper
