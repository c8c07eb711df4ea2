-- expect: require_os\.lua:2: module 'os' is not available: policies may only require the runtime's entrasync\.\* modules
local os2 = require "os"
