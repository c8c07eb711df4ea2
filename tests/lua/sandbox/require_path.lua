-- expect: require_path\.lua:2: module '\.\./x' is not available: policies may only require the runtime's entrasync\.\* modules
local x = require "../x"
