#!/bin/sh
# test_demo — `entrasync demo` end to end: exits 0 within seconds, the
# summary tells the dry run's plan, what the sync created and adopted and
# the conflict it found, per tenant, and the contact deleted in Syncro that
# sync --verify makes again; leaves no fake process and no temp
# folder behind; --keep keeps a folder that status/audit/conflicts can
# read; SIGINT stops it cleanly; missing fakes or python3 fail clearly.
. tests/lib.sh

TMPDIR=$T_OUT/tmp; export TMPDIR
mkdir -p "$TMPDIR"
# fake processes started from our temp folder (their --port-file is in it)
fakes_left() { pgrep -f "$TMPDIR/entrasync-demo" >/dev/null 2>&1; }
no_folder() { [ -z "$(ls -A "$TMPDIR")" ]; }

expect_ok "demo exits 0" -- demo   # how long it takes is no test's business (BENCHMARKS.md)
check "summary: the dry run's plan" grep -q "^1. Dry run" "$T_OUT/out"
check "summary: dry run writes nothing" grep -Eq "[0-9]+ Syncro writes would be sent, none was" "$T_OUT/out"
check "summary: per-tenant rows" sh -c "grep -Eq '^    Contoso +[0-9]+ +[1-9]' '$T_OUT/out' && grep -Eq '^    Fabrikam +[0-9]+' '$T_OUT/out' && grep -Eq '^    Northwind +[0-9]+' '$T_OUT/out'"
check "summary: contacts created" grep -Eq "^    Created [1-9][0-9]* contacts" "$T_OUT/out"
check "summary: contacts adopted, with the fields changed" sh -c "grep -Eq '^    Adopted [1-9]' '$T_OUT/out' && grep -q 'name: .* (old record) → ' '$T_OUT/out'"
check "summary: the conflict with its candidates" grep -Eq "Contoso: .*: 2 contacts have this e-mail: #[0-9]+, #[0-9]+" "$T_OUT/out"
check "summary: the second sync writes nothing" grep -Eq "unchanged, 1 conflict\(s\) still open, 0 Syncro writes" "$T_OUT/out"
check "summary: a contact deleted in Syncro, found by sync --verify and made again" sh -c "grep -Eq '^    Deleted contact #([0-9]+) in Syncro' '$T_OUT/out' && grep -Eq '^    Contoso: .*: contact #[0-9]+ is gone: link dropped, contact created again$' '$T_OUT/out' && grep -Eq '^    [0-9]+ linked contacts checked, 1 gone, 1 Syncro writes' '$T_OUT/out'"
check "summary: Fabrikam mapped by customer name" grep -q 'Fabrikam   → customer "Fabrikam Inc" (by name)' "$T_OUT/out"
check "summary: says the folder was removed, and next steps" sh -c "grep -q 'was removed' '$T_OUT/out' && grep -q 'entrasync demo --keep' '$T_OUT/out'"
check "no fake process left" sh -c '! { pgrep -f "$0/entrasync-demo" >/dev/null; }' "$TMPDIR"
check "temp folder removed" no_folder

# --keep: the folder stays, with config and database the other commands read
expect_ok "demo --keep exits 0" -- demo --keep
DIR=$(sed -n 's/^The work folder is kept: //p' "$T_OUT/out")
check "--keep names the folder" test -n "$DIR"
check "--keep: config and database kept" test -f "$DIR/entrasync.lua" -a -f "$DIR/state/demo.db"
check "--keep: next steps name the config" grep -q "entrasync --config $DIR/entrasync.lua status" "$T_OUT/out"
expect_ok "status reads the kept folder" -- --config "$DIR/entrasync.lua" status
check "status lists the demo tenants" sh -c "grep -q Contoso '$T_OUT/out' && grep -q Northwind '$T_OUT/out'"
expect_ok "conflicts lists the demo's conflict" -- --config "$DIR/entrasync.lua" conflicts
check "the conflict names two contacts" grep -Eq "#[0-9]+" "$T_OUT/out"
expect_ok "audit lists the writes" -- --config "$DIR/entrasync.lua" audit
check "audit has creates and an adopt" sh -c "grep -q create '$T_OUT/out' && grep -q adopt '$T_OUT/out'"
if fakes_left; then fail "--keep: fakes stopped"; else pass "--keep: fakes stopped"; fi
rm -rf "$DIR"

# SIGINT while it runs: fakes stopped, folder removed, exit 130
"$ENTRASYNC" demo >"$T_OUT/int.out" 2>"$T_OUT/int.err" &
DPID=$!
i=0
while [ $i -lt 200 ] && ! ls "$TMPDIR"/entrasync-demo.*/graph.port >/dev/null 2>&1; do sleep 0.02; i=$((i + 1)); done
kill -INT $DPID
wait $DPID; rc=$?
check "SIGINT: exit 130 (got $rc)" test "$rc" = 130
check "SIGINT: says it was interrupted" grep -q "interrupted" "$T_OUT/int.err"
sleep 0.2
if fakes_left; then fail "SIGINT: no fake process left"; else pass "SIGINT: no fake process left"; fi
check "SIGINT: temp folder removed" no_folder

# missing pieces fail clearly
mkdir -p "$T_OUT/bin"
cp "$ENTRASYNC" "$T_OUT/bin/entrasync"
ENTRASYNC_SAVED=$ENTRASYNC; ENTRASYNC=$T_OUT/bin/entrasync
expect_exit "no fakes beside the binary: exit 3, says where it looked" 3 "cannot find the bundled fakes.*tests/fakes" -- demo
ENTRASYNC=$ENTRASYNC_SAVED
es_nopy() { PATH=/nonexistent "$ENTRASYNC" demo >"$T_OUT/out" 2>"$T_OUT/err"; }
es_nopy; rc=$?
check "no python3: exit 3 (got $rc)" test "$rc" = 3
check "no python3: says so" grep -q "python3 is not installed" "$T_OUT/err"
check "failed starts leave no folder" no_folder
expect_exit "unknown option" 2 "unknown option" -- demo --kep
