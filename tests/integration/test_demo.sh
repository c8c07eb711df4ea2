#!/bin/sh
# test_demo — `entrasync demo`, the README's first command: it runs end to
# end on the bundled fakes (dry run, sync, sync again with zero writes),
# shows the adoptions and the conflict, stops its fakes and removes its
# folder (kept with --keep), and fails clearly without python3.
. tests/lib.sh

export TMPDIR="$T_OUT/tmp"
mkdir -p "$TMPDIR"
expect_ok "demo exits 0" -- demo
check "demo: dry run, then sync, then sync again" sh -c "grep -q '== 1. entrasync sync --dry-run' '$T_OUT/out' && grep -q '== 3. entrasync sync' '$T_OUT/out'"
check "demo: adoption with field changes shown" grep -q "adopt existing contact #1003" "$T_OUT/out"
check "demo: old → new" grep -q "name: Alex W. → Alex Wilber" "$T_OUT/out"
check "demo: the conflict with its candidates" grep -q "conflict: contacts #1004, #1005" "$T_OUT/out"
check "demo: summary counts" grep -Eq "[0-9]+ contacts created, 2 existing contacts adopted" "$T_OUT/out"
check "demo: the second sync wrote nothing" grep -q "sent 0 writes to Syncro" "$T_OUT/out"
check "demo: its folder is removed" test -z "$(ls "$TMPDIR")"
check "demo: its fakes are stopped" sh -c "! ps -eo args | grep -q '[f]ake_syncro.py.*$TMPDIR'"

expect_ok "demo --keep" -- demo --keep
kept=$(ls -d "$TMPDIR"/entrasync-demo.* 2>/dev/null | head -n 1)
check "demo --keep keeps config and database" sh -c "test -f '$kept/entrasync.lua' && test -f '$kept/state/demo.db'"

mkdir -p "$T_OUT/nopy"
ln -sf "$(command -v sh)" "$T_OUT/nopy/sh"
if PATH="$T_OUT/nopy" "$ENTRASYNC" demo >"$T_OUT/out" 2>"$T_OUT/err"; then rc=0; else rc=$?; fi
check "demo without python3: exit 3" test "$rc" = 3
check "demo without python3: says so" grep -q "needs python3" "$T_OUT/err"
