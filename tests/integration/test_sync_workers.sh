#!/bin/sh
# test_sync_workers — `entrasync sync` pulls over worker processes
# (graph.pull_workers) with the same outcome as in one process: the same
# dry-run plan, and a real run that writes the same contacts.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/sync_workers" --rate-limit 0
cd "$W" || exit 1
es() { "$ENTRASYNC" "$@" >"$T_OUT/out" 2>"$T_OUT/err"; }
printf 'local p = require "entrasync.policy"\nreturn { include = function(u) return p.has_mail(u) end, contact = p.contact }\n' >policy.lua
mkconfig one.lua "$W/policy.lua"
sed 's/^graph = { /graph = { pull_workers = 3, /' one.lua >three.lua

expect_ok "one process: dry run" -- --config one.lua --log-level debug sync --dry-run
sort "$T_OUT/out" >one.plan
check "one process: the pull ran in this process" sh -c "! grep -q 'worker processes' '$T_OUT/err'"
rm -rf state
expect_ok "three workers: dry run" -- --config three.lua --log-level debug sync --dry-run
sort "$T_OUT/out" >three.plan
check "three workers: the pull ran over 3 worker processes" grep -q "3 tenants over 3 worker processes" "$T_OUT/err"
check "three workers: the same plan as one process" cmp -s one.plan three.plan
check "the plan is not empty" grep -q "@contoso.com" three.plan
clear_log
expect_ok "three workers: sync" -- --config three.lua sync
CREATED=$(writes contacts.create)
check "three workers: the planned contacts were created ($CREATED)" \
  test "$CREATED" = "$(grep -c '^  + ' three.plan)"
clear_log
expect_ok "three workers: a second sync" -- --config three.lua sync
check "three workers: the second sync writes nothing" test "$(all_writes)" = 0
