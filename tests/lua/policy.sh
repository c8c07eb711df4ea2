#!/bin/sh
# tests/lua/policy.sh — runs the positive Lua tests of the runtime's policy
# helpers (tests/lua/policy_helpers.lua) in the sandbox; their ok/FAIL lines
# are counted by tests/run.sh. The run itself must also exit 0.
. tests/lib.sh

es lua tests/lua/policy_helpers.lua; rc=$?
cat "$T_OUT/out"
if [ "$rc" = 0 ]; then pass policy_helpers_run; else fail policy_helpers_run "exit $rc"; fi
