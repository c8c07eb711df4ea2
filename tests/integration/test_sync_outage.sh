#!/bin/sh
# test_sync_outage — a Syncro that stops answering (every contact creation
# answered 503, as in an outage behind its load balancer) ends the sync in
# seconds, once syncro.outage_seconds have passed with nothing but failures
# (5 attempts in a row at least), instead of sending every planned write
# into it, each waiting out its own timeouts and retries: the rest is not
# sent, the tenants not reached say why, the run is recorded as failed, and
# the next run, Syncro back, converges without a duplicate. A short blip
# (three 503s) stops nothing. A daemon's --verify run the outage cut short
# is verified again by the next run. A bad outage_seconds is refused with
# its line.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/outage"
cd "$W" || exit 1
# 120 requests a minute: the failing creations 0.5 s apart, 2 s of them trip it
mkconfig c.lua "$OLDPWD/policies/default.lua" "120, outage_seconds = 2"
count_posts() { sctl GET 'requests?method=POST&path=/api/v1/contacts' | jq_py 'len(d["requests"]) if isinstance(d, dict) and "requests" in d else len(d)'; }

# ---- a blip: three creations refused, the rest of the run goes on
sctl POST faults '{"match": "/contacts$", "method": "POST", "status": 503, "times": 3}' >/dev/null
expect_exit "a blip of three 503s: the run goes on (exit 1: three creations failed)" 1 "" -- --config c.lua sync
check "a blip: Syncro not called down" sh -c "! grep -q 'not answering' '$T_OUT/out' '$T_OUT/err'"
check "a blip: the other tenants synced" test "$(grep -c '= ok:' "$T_OUT/out")" = 2
expect_ok "a blip: the next run makes the three" -- --config c.lua sync
check "a blip: no duplicate contact" test -z "$(dup_emails)"
sctl DELETE faults >/dev/null
reset_fakes
rm -rf state

# ---- an outage: every creation answered 503
sctl POST faults '{"match": "/contacts$", "method": "POST", "status": 503, "times": -1}' >/dev/null
clear_log
T0=$(date +%s)
expect_exit "an outage: the sync stops, exit 1" 1 \
  "syncro is not answering: 5 attempts in a row over [0-9]+ s failed \(the last: 503\); the run stopped \(the next run goes on from here\)" \
  -- --config c.lua sync
TOOK=$(( $(date +%s) - T0 ))
check "an outage: ended in seconds ($TOOK s), not after every planned write" test "$TOOK" -lt 30
check "an outage: five creations sent, the rest not" test "$(count_posts)" = 5
check "an outage: the sixth said not sent" grep -q "FAILED (unavailable): Syncro: create contact (customer 101): not sent: syncro is not answering" "$T_OUT/out"
check "an outage: five writes counted as sent" grep -q "5 Syncro writes sent" "$T_OUT/out"
check "an outage: the tenants not reached say why" test "$(grep -c 'not synced: the run stopped (Syncro not answering)' "$T_OUT/out")" = 2
check "an outage: the run recorded as failed" test "$(sql "select status from runs order by id desc limit 1")" = failed
check "an outage: logged once why the rest is not sent" test "$(grep -c 'syncro is not answering: 5 attempts in a row over [0-9]* s failed (the last: 503); its requests not sent yet end now' "$T_OUT/err")" = 1

# ---- Syncro back: the next run converges, the unsure creations checked first
sctl DELETE faults >/dev/null
expect_ok "Syncro back: the next sync exits 0" -- --config c.lua sync
check "Syncro back: no duplicate contact" test -z "$(dup_emails)"
expect_ok "Syncro back: a further sync" -- --config c.lua sync --json
check "Syncro back: nothing left to create" test "$(report 'sum(t["created"] for t in d["tenants"])')" = 0

# ---- a daemon's --verify run cut short by an outage is not the day's verify:
# the next run verifies again (it used to count, so the links went unchecked
# until the next --verify-every)
sctl POST faults '{"match": "/contacts", "method": "GET", "status": 503, "times": -1}' >/dev/null
"$ENTRASYNC" --config c.lua daemon --every 1s --verify-every 1h >d.log 2>&1 &
DPID=$!
EXTRA_PIDS="$EXTRA_PIDS $DPID"
check "daemon, verify in an outage: the first run ends" wait_for 60 grep -q "run finished" d.log
check "daemon, verify in an outage: it stopped on the outage" grep -q "syncro is not answering" d.log
check "daemon, verify in an outage: not counted as the verify" grep -q "the run's verify did not finish" d.log
sctl DELETE faults >/dev/null
check "daemon, Syncro back: three runs" wait_for 60 sh -c "test \$(grep -c 'run finished' d.log) -ge 3"
kill -TERM "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null
check "daemon: the run after the outage verifies again, then not until due" \
  test "$(sed -n 's/.*run started: entrasync \(sync[ a-z-]*\) (pid.*/\1/p' d.log | head -n 3 | tr '\n' ',')" = "sync --verify,sync --verify,sync,"
check "daemon: the finished verify recorded" test -n "$(sql "select value from kv where key='daemon.last_verify_at'")"

# ---- syncro.timeout_seconds: an attempt that gets no answer in time is
# given up and (a read) sent again: a customer look-up held 8 s by Syncro
# costs about the 2 s asked for, not the 8 (nor the 60 of the default)
rm -rf state
sed 's/outage_seconds = 2/outage_seconds = 2, timeout_seconds = 2/' c.lua >t2.lua
sctl POST faults '{"match": "/customers", "method": "GET", "latency_ms": 8000, "times": 1}' >/dev/null
t0=$(date +%s)
expect_ok "syncro.timeout_seconds = 2: a look-up held 8 s is sent again" -- --config t2.lua sync --dry-run
took=$(( $(date +%s) - t0 ))
check "syncro.timeout_seconds = 2: the run took less than the 8 s held ($took s)" test "$took" -lt 8
check "syncro.timeout_seconds = 2: the attempt given up is said" grep -qi "timed out" "$T_OUT/err"
sctl DELETE faults >/dev/null

# ---- the setting checked
sed 's/outage_seconds = 2/outage_seconds = 0/' c.lua >bad.lua
expect_fail "outage_seconds = 0 refused with its line" "bad.lua:[0-9]+: syncro.outage_seconds must be from 1 to 86400" -- --config bad.lua check
sed 's/outage_seconds = 2/outage_seconds = 2, timeout_seconds = 0/' c.lua >bad.lua
expect_fail "timeout_seconds = 0 refused with its line" "bad.lua:[0-9]+: syncro.timeout_seconds must be from 1 to 600" -- --config bad.lua check
fakes_alive
