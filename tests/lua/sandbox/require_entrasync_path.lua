-- expect: require_entrasync_path\.lua:2: module 'entrasync\.\.\./x' is not available
local x = require "entrasync.../x"
