-- expect: require_socket\.lua:2: module 'socket' is not available: policies may only require the runtime's entrasync\.\* modules
local socket = require "socket"
