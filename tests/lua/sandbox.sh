#!/bin/sh
# tests/lua/sandbox.sh — negative tests of the policy sandbox through the real
# binary: each tests/lua/sandbox/NAME.lua must make `entrasync lua` exit 1
# with the error given in its "-- expect: ERE" header (file:line included);
# an optional "-- args: ..." header passes limits (--instructions, --memory-mb).
. tests/lib.sh

for f in tests/lua/sandbox/*.lua; do
  name=sandbox_$(basename "$f" .lua)
  pat=$(sed -n 's/^-- expect: //p' "$f" | head -n 1)
  args=$(sed -n 's/^-- args: //p' "$f" | head -n 1)
  if [ -z "$pat" ]; then fail "$name" "no '-- expect:' header in $f"; continue; fi
  # shellcheck disable=SC2086  # args is a word list on purpose
  expect_exit "$name" 1 "^entrasync: lua: .*$pat" -- lua $args "$f"
done

# the process carries on after a failure: a limit error then a clean run
expect_exit sandbox_exit_code_on_error 1 "lua error: .*boom" -- lua tests/lua/sandbox_support/boom.lua
expect_ok sandbox_clean_run_after -- lua tests/lua/sandbox_support/ok.lua
# the wrappers that charge C work keep Lua's own results and messages
expect_ok sandbox_wrapped_functions_keep_lua_messages -- lua tests/lua/sandbox_support/wrapped_messages.lua
