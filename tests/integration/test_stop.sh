#!/bin/sh
# test_stop — SIGTERM (a service manager's stop) ends a run in seconds,
# whatever it waits for, against both fakes: a sync waiting out Syncro's
# Retry-After of 100 s stops without waiting it out (no retry sent after the
# signal, the other tenants not started, the run recorded); a pull over two
# worker processes with a slow Graph stops, its workers with it, the run
# recorded and the tenants not done failed "stopped by a signal"; and the
# next runs converge: no duplicate contact, every tenant pulled.
. tests/integration/test_status_lib.sh

ops_start "$T_OUT/stop"
es --config c.lua pull
# stop_timed WHAT PID: SIGTERM to PID, waited for; RC its exit code; checks it ended within 10 s
stop_timed() {
  _t0=$(date +%s.%N)
  kill -TERM "$2"
  wait "$2"; RC=$?
  _took=$(echo "$(date +%s.%N) - $_t0" | bc)
  check "$1: stopped within 10 s of SIGTERM: $_took s" test "$(echo "$_took < 10" | bc)" = 1
}
# run_row_open: a run whose row is in the database and not finished (its handler is installed by then)
run_row_open() { test "$(sql "select count(*) from runs where finished_at is null")" = 1; }
# stop_while_waiting NAME MATCH OUT ARGS...: Syncro answers the POSTs to paths matching MATCH 429 with
# Retry-After 100 s; entrasync ARGS runs in the background (stdout OUT.out, stderr OUT.err) until it
# waits, then is stopped (stop_timed) and must exit 1 with its run recorded
stop_while_waiting() {
  _name=$1 _out=$3
  sctl POST faults "{\"match\": \"$2\", \"method\": \"POST\", \"status\": 429, \"retry_after\": 100, \"times\": -1}" >/dev/null
  shift 3
  "$ENTRASYNC" "$@" >"$_out.out" 2>"$_out.err" &
  _pid=$!
  EXTRA_PIDS="$EXTRA_PIDS $_pid"
  _waiting() { grep -q "Retry-After 100" "$_out.err"; }
  check "$_name: a request answered 429, Retry-After 100 s" wait_for 60 _waiting
  stop_timed "$_name (not after the 100 s wait)" "$_pid"
  check "$_name: exit 1 (not finished)" test "$RC" = 1
  check "$_name: the run is recorded as finished" test "$(sql "select count(*) from runs where finished_at is null")" = 0
}

# ---- sync: Syncro answers every contact creation 429 with Retry-After 100 s
stop_while_waiting sync "/contacts$" sync --config c.lua sync
check "sync: the waiting request cancelled, said why" grep -q "cancelled: stopped by a signal while waiting to try again" sync.err
check "sync: the tenants not done say so" grep -q "stopped by a signal" sync.out
check "sync: no creation retried after the signal" \
  test "$(sctl GET 'requests?method=POST&path=/api/v1/contacts' | jq_py 'len(d["requests"]) if isinstance(d, dict) and "requests" in d else len(d)')" = 1
sctl DELETE faults >/dev/null

# ---- pull over two workers, Graph slow: SIGTERM stops them all
gctl POST config '{"latency_ms": 1500}' >/dev/null
"$ENTRASYNC" --config c.lua pull --workers 2 >pull.out 2>pull.err &
PPID_=$!
EXTRA_PIDS="$EXTRA_PIDS $PPID_"
check "pull: its run has begun" wait_for 60 run_row_open
sleep 1   # its workers are forked and have sent their first requests
stop_timed "pull" "$PPID_"
check "pull: exit 1, not killed by the signal ($RC)" test "$RC" = 1
check "pull: the run is recorded as finished" test "$(sql "select count(*) from runs where finished_at is null")" = 0
check "pull: the tenants not done failed, stopped by a signal" grep -q "FAILED: .*stopped by a signal" pull.out
check "pull: no worker left" sh -c "! pgrep -P $PPID_ >/dev/null"
# Ctrl-C reaches the whole process group, the workers too: they stop, they are not killed
setsid "$ENTRASYNC" --config c.lua pull --workers 2 >pullg.out 2>pullg.err &
SID_PID=$!
EXTRA_PIDS="$EXTRA_PIDS $SID_PID"
check "pull in its own group: its run has begun" wait_for 60 run_row_open
sleep 1
/bin/kill -INT -- "-$SID_PID"
wait "$SID_PID"; RC=$?
check "Ctrl-C to the process group: exit 1, the tenants stopped, no worker killed by it" \
  sh -c "test $RC = 1 && grep -q 'stopped by a signal' pullg.out && ! grep -q 'was killed by signal' pullg.out"
gctl POST config '{"latency_ms": 0}' >/dev/null

# ---- a Retry-After of a day is not waited out (the run held the lock for a day)
sctl POST faults '{"match": "/contacts$", "method": "POST", "status": 429, "retry_after": 86400, "times": 1}' >/dev/null
T0=$(date +%s)
timeout -s KILL 300 "$ENTRASYNC" --config c.lua sync >day.out 2>day.err; RC=$?
check "a day's Retry-After: the sync ends in minutes, not a day ($(( $(date +%s) - T0 )) s)" test $(( $(date +%s) - T0 )) -lt 100
check "a day's Retry-After: exit 1" test "$RC" = 1
check "a day's Retry-After: the requests after it are not sent, saying why" \
  grep -q "not sent: syncro asked to wait [0-9]* s more (429 Retry-After), longer than the [0-9]* s a request may wait" day.err
check "a day's Retry-After: its value logged as a number" grep -q "Retry-After 86400 s" day.err
check "a day's Retry-After: the request's own error says what it was asked" \
  grep -q "rate limited (429) after 1 attempt; the last answer asked to wait 86400 s (Retry-After)" day.out
sctl DELETE faults >/dev/null

# ---- the next runs converge
expect_exit "pull after the stops: Contoso and Fabrikam ok (Woodgrove fails as ever)" 1 "^Contoso: ok" -- --config c.lua pull
check "pull after the stops: Fabrikam ok" grep -q "^Fabrikam: ok" "$T_OUT/out"
es --config c.lua sync
check "no duplicate contact after the stopped sync (only the demo's own pair)" \
  test "$(sctl GET "contacts?per_page=1000" | python3 -c '
import collections, json, sys
d = json.load(sys.stdin)
c = collections.Counter((x["customer_id"], (x.get("email") or "").lower()) for x in d["contacts"] if x.get("email"))
print(sorted(k[1] for k, n in c.items() if n > 1))')" = "['lee.gu@contoso.com']"

# ---- the daemon's verifying run stopped by SIGTERM does not count as a verify (the next would be a day away)
gctl POST config '{"latency_ms": 1500}' >/dev/null
sql "delete from kv where key = 'daemon.last_verify_at'"
"$ENTRASYNC" --config c.lua daemon --every 1h --verify-every 1d >daemon.log 2>&1 &
DPID=$!
EXTRA_PIDS="$EXTRA_PIDS $DPID"
check "daemon: its first run verifies" wait_for 60 grep -q "run started: entrasync sync --verify" daemon.log
sleep 1
kill -TERM "$DPID"
wait "$DPID"
check "daemon: the verifying run stopped by SIGTERM is not recorded as a verify" \
  test -z "$(sql "select value from kv where key = 'daemon.last_verify_at'")"
gctl POST config '{"latency_ms": 0}' >/dev/null

# ---- bill stopped while Syncro asks to wait: in seconds, the run recorded; the next bill makes no second invoice
printf 'local p = require "entrasync.policy"\nreturn { include = function(u) return p.has_mail(u) end, contact = p.contact,\n  bill = function(sku, t) return { product_id = 503, quantity = sku.assigned } end }\n' >billpol.lua
sed 's#policy = "policy.lua"#policy = "billpol.lua"#' c.lua >bill.lua
PERIOD=$(date -u +%Y-%m)
stop_while_waiting bill "/line_items$" bill --config bill.lua bill --period "$PERIOD" --open-period
sctl DELETE faults >/dev/null
es --config bill.lua bill --period "$PERIOD" --open-period
check "the next bill: one invoice per customer billed, none twice" \
  test "$(sctl GET invoices | python3 -c 'import collections, json, sys; d = json.load(sys.stdin); c = collections.Counter(i["customer_id"] for i in d["invoices"] if "'"$PERIOD"'" in (i.get("note") or "")); print(max(c.values()) if c else 0)')" = 1

# ---- user disable --yes stopped during its Graph call: the call ends, the action is in the audit trail
UID_=$(sql "select object_id from users where tenant_id = '$CONTOSO' and removed is null and json_extract(json, '\$.accountEnabled') = 1 and json_extract(json, '\$.userPrincipalName') not like 'admin@%' limit 1")
gctl POST faults "{\"latency_ms\": 4000, \"match\": \"users/$UID_\$\", \"tenant\": \"contoso\", \"times\": 1}" >/dev/null
"$ENTRASYNC" --config c.lua user disable "$UID_" --tenant Contoso --yes >user.out 2>user.err &
UPID=$!
EXTRA_PIDS="$EXTRA_PIDS $UPID"
sleep 1.5
kill -TERM "$UPID"
wait "$UPID"; RC=$?
check "user disable stopped in its Graph call: not killed by the signal ($RC)" test "$RC" -lt 128
check "user disable stopped in its Graph call: done, and in the audit trail" \
  test "$(gctl GET "tenants/contoso/users/$UID_" | jq_py 'd["accountEnabled"]')/$(sql "select count(*) from audit where action = 'user.disable' and object_id = '$UID_'")" = "False/1"
gctl DELETE faults >/dev/null

# ---- the same asked on a terminal and answered yes, then Ctrl-C during its Graph call: the question is
# answered, so the call ends and the action is in the audit trail (before the answer, Ctrl-C cancels)
UID2=$(sql "select object_id from users where tenant_id = '$CONTOSO' and removed is null and json_extract(json, '\$.accountEnabled') = 1 and json_extract(json, '\$.userPrincipalName') not like 'admin@%' and object_id <> '$UID_' limit 1")
gctl POST faults "{\"latency_ms\": 4000, \"match\": \"users/$UID2\$\", \"tenant\": \"contoso\", \"times\": 1}" >/dev/null
python3 "$TESTS_ROOT/tests/integration/tty_answer.py" yes --sigint-after 1.5 "$ENTRASYNC" --config c.lua user disable "$UID2" \
  --tenant Contoso >tty.out 2>&1   # after 1.5 s its PATCH is in flight (the fake answers in 4 s)
RC=$?
check "confirmed on a terminal, Ctrl-C in its Graph call: not killed by it ($RC)" test "$RC" -lt 128
check "confirmed on a terminal, Ctrl-C in its Graph call: done, and in the audit trail" \
  test "$(gctl GET "tenants/contoso/users/$UID2" | jq_py 'd["accountEnabled"]')/$(sql "select count(*) from audit where action = 'user.disable' and object_id = '$UID2' and result = 'ok'")" = "False/1"
gctl DELETE faults >/dev/null
