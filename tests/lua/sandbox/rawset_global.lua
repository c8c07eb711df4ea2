-- expect: rawset_global\.lua:2: rawset: writing to the global table is not allowed in the policy sandbox
rawset(_G, "smuggled", function() end)
