-- expect: coroutine\.lua:2: 'coroutine' is not available in the policy sandbox
local co = coroutine.create(function() end)
