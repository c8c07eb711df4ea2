-- expect: env_write\.lua:2: assignment to undeclared global 'smuggled'
_ENV.smuggled = 1
