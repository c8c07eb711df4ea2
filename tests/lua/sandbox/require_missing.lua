-- expect: require_missing\.lua:2: module 'entrasync\.nope' not found \(no such runtime module\)
local x = require "entrasync.nope"
