#!/bin/sh
# test_pull_outage — a Microsoft Graph that stops answering, or its token
# endpoint, against a pull of 43 tenants (worker processes): a black hole
# (accepts the connection, never answers) or 503 to everything ends the pull
# in seconds, once graph.outage_seconds have passed with nothing but failures
# (5 attempts in a row, of two tenants at least), instead of every request of
# every tenant waiting out its timeouts and retries (before: 120 s an attempt,
# 5 attempts, 32 requests at a time: 20 tenants took 10 minutes, 200 more than
# 40). Each tenant not done fails with
# one line saying so, the run exits 1 and is recorded, what the tenants done
# brought is kept, the delta state is untouched and the next pull resumes.
# One tenant's own 503s, even once it is the last one pulling, and two
# tenants' own 503s while the others keep answering, stop nothing. A sync
# syncs the tenants pulled before the outage and skips the ticket actions
# (Graph calls); the daemon's runs end before its next slot. A bad
# graph.outage_seconds or graph.timeout_seconds is refused with its line.
# Timing: graph.timeout_seconds = 1 makes an attempt at the black hole give
# up after 1 s (120 s without); every run of the black hole is bounded with
# `timeout`, so a binary without the stop fails the test, not hangs.
. tests/integration/test_sync_lib.sh

W=$T_OUT/pull_outage
mkdir -p "$W"
fake_start graph "$W" tests/fakes/fake_graph.py --seed 1 --tenants demo+40x2
fake_start syncro "$W" tests/fakes/fake_syncro.py --api-key "$SKEY" --data demo
fake_url GURL graph
fake_url SURL syncro
cd "$W" || exit 1

# the tenants: the three demo ones that consented, then the 40 generated
gctl GET tenants | python3 -c '
import json, sys
ts = [t for t in json.load(sys.stdin)["tenants"] if not t["partner"] and t["key"] != "woodgrove"]
for i, t in enumerate(ts): print(t["id"], t["key"], i + 1)' >tenants.txt
ids_of() { awk -v k="$1" '($2 ~ k) { print $1 }' tenants.txt; }
GEN=$(ids_of '^t[0-9]')
NT=$(wc -l <tenants.txt)
check "43 tenants: 3 demo, 40 generated" test "$NT" = 43
printf 'return { include = function(u) return true end }\n' >pol.lua
# pconfig FILE URL: a pull-only config of every tenant, Graph and its token endpoint at URL
pconfig() {
  fake_config "$1" "$2" 'base_url = "http://127.0.0.1:9/api/v1", api_key = "unused"' pol.lua \
    "$(awk '{ printf "  { id = \"%s\", syncro_customer_id = %d },\n", $1, $3 }' tenants.txt)"
  sed -i "s#^graph = { #graph = { outage_seconds = 2, timeout_seconds = 1, #" "$1"
}
pconfig ok.lua "$GURL"
# faults JSON: the fake's faults; no_faults: none; hole KIND: Graph ("graph")
# or its token endpoint ("token") a black hole: every request's connection
# taken, and no answer for ten minutes
faults() { gctl POST faults "$1" >/dev/null; }
no_faults() { gctl DELETE faults >/dev/null; }
hole() { faults '{"kind": "'"$1"'", "latency_ms": 600000, "times": -1}'; }
# fault_list STATUS-OR-LATENCY-JSON IDS...: one fault a tenant (a JSON list)
fault_list() {
  f=$1; shift
  printf '['; sep=
  for id in "$@"; do printf '%s{"tenant": "%s", "kind": "graph", "times": -1, %s}' "$sep" "$id" "$f"; sep=,; done
  printf ']'
}
# timed NAME SECONDS -- ARGS...: es bounded by `timeout SECONDS`; RC, TOOK
timed() {
  _n=$1 _lim=$2; shift 3
  _t0=$(date +%s)
  timeout "$_lim" "$ENTRASYNC" "$@" >"$T_OUT/out" 2>"$T_OUT/err"; RC=$?
  TOOK=$(( $(date +%s) - _t0 ))
  [ "$RC" = 124 ] && echo "    ($_n: still running after $_lim s, stopped by timeout)"
  return 0
}
down_lines() { grep -cE "^[^ ]+: FAILED: tenant [^ ]+: $1; the pull stopped \(the next run goes on from here\)$" "$T_OUT/out"; }
state() { sql "select tenant_id, delta_link, next_link from delta_state order by 1; select count(*) from users;"; }
newest_run() { sql "select status from runs order by id desc limit 1"; }
not_answering() { grep -q "not answering" "$T_OUT/out" "$T_OUT/err"; }

expect_ok "Graph answers: the pull of 43 tenants is ok" -- --config ok.lua --log-level debug pull
check "Graph answers: every tenant ok" test "$(grep -c ': ok: ' "$T_OUT/out")" = "$NT"
check "Graph answers: over worker processes" grep -q "43 tenants over [0-9]* worker processes" "$T_OUT/err"

# ---- Graph a black hole: every tenant ends in seconds, delta state untouched
BEFORE=$(state)
gctl POST tenants/contoso/users '{"displayName": "Olive Zoutage", "department": "Ops"}' >/dev/null
hole graph
timed "a black hole" 60 -- --config ok.lua pull
check "a black hole: exit 1" test "$RC" = 1
check "a black hole: ended in seconds ($TOOK s), not after the timeouts and retries" test "$TOOK" -lt 30
check "a black hole: each tenant fails with one line saying Graph is not answering" \
  test "$(down_lines 'graph is not answering: [0-9]+ attempts in a row over [0-9]+ s failed \(the last: Operation timed out[^;]*\)')" = "$NT"
check "a black hole: the run says why it stopped" grep -q \
  "entrasync pull: Microsoft Graph was found not answering (graph.outage_seconds): the pull stopped, 43 of 43 tenants not pulled" "$T_OUT/err"
check "a black hole: the run recorded as failed, each tenant too" \
  test "$(newest_run) $(sql "select count(*) from run_tenants where status = 'failed' and run_id = (select max(id) from runs)")" = "failed $NT"
check "a black hole: the delta state and the mirror untouched" test "$(state)" = "$BEFORE"
timed "a black hole, one process" 60 -- --config ok.lua pull --workers 1
check "a black hole, one process: exit 1 in seconds ($TOOK s)" test "$RC $((TOOK < 30))" = "1 1"
check "a black hole, one process: each tenant says Graph is not answering" \
  test "$(down_lines 'graph is not answering: .*')" = "$NT"
no_faults

expect_ok "Graph back: the pull is ok" -- --config ok.lua pull
check "Graph back: it went on from the stored delta state (the new user came)" \
  test "$(sql "select count(*) from users where json like '%Zoutage%'")" = 1
check "Graph back: every tenant ok" test "$(grep -c ': ok: ' "$T_OUT/out")" = "$NT"

# ---- the token endpoint a black hole
hole token
timed "no token endpoint" 60 -- --config ok.lua pull
no_faults
check "no token endpoint: exit 1 in seconds ($TOOK s)" test "$RC $((TOOK < 30))" = "1 1"
check "no token endpoint: each tenant says the token endpoint is not answering" \
  test "$(down_lines "the token endpoint $GURL: login is not answering: [0-9]+ attempts in a row over [0-9]+ s failed .*")" = "$NT"

# ---- 503 to everything for 40 tenants (Retry-After 1 s: each request's 5
# attempts would take 4 s); the three demo tenants answered: they finish and
# keep what they brought, the others stop at 2 s with one line each
gctl POST tenants/fabrikam/users '{"displayName": "Pat Zpartial", "department": "Ops"}' >/dev/null
# shellcheck disable=SC2086
faults "$(fault_list '"status": 503, "retry_after": "1"' $GEN)"
timed "503s" 60 -- --config ok.lua pull
no_faults
check "503s: exit 1" test "$RC" = 1
check "503s: the 40 tenants fail with one line each (the last: 503)" \
  test "$(down_lines 'graph is not answering: [0-9]+ attempts in a row over [0-9]+ s failed \(the last: 503\)')" = 40
check "503s: the tenants that answered are ok" test "$(grep -c ': ok: ' "$T_OUT/out")" = 3
check "503s: what they brought is kept (the new Fabrikam user)" \
  test "$(sql "select count(*) from users where json like '%Zpartial%'")" = 1
check "503s: recorded: 3 ok, 40 failed" test "$(sql "select group_concat(n) from (select count(*) n from run_tenants
  where run_id = (select max(id) from runs) group by status order by status)")" = "40,3"
expect_ok "503s over: the pull is ok" -- --config ok.lua pull

# ---- one tenant's own 503s (Retry-After 1 s: 4 s of them) never stop the
# pull, even once it is the last tenant pulling: it fails with its own error
ONE=$(ids_of '^t001$')
faults "$(fault_list '"status": 503, "retry_after": "1"' "$ONE")"
timed "one tenant's 503s" 60 -- --config ok.lua pull
no_faults
check "one tenant's 503s: exit 1" test "$RC" = 1
check "one tenant's 503s: Graph not called down" eval '! not_answering'
check "one tenant's 503s: it fails with its own error" \
  grep -q "^$ONE: FAILED: tenant $ONE: .*GET /users/delta: Graph returned 503 serviceNotAvailable" "$T_OUT/out"
check "one tenant's 503s: the others are ok" test "$(grep -c ': ok: ' "$T_OUT/out")" = $((NT - 1))

# ---- two tenants' own 503s while the others go on answering (their pages
# come 0.2, 0.4 ... 6 s late, so an attempt may last 30 s here): every
# answer starts the count again
TWO=$(ids_of '^t00[23]$')
SLOW=$(ids_of '^t0(0[4-9]|[12][0-9]|3[0-3])$')
# shellcheck disable=SC2086
faults "$(fault_list '"status": 503, "retry_after": "1"' $TWO)"
i=0
for id in $SLOW; do
  i=$((i + 1))
  faults "$(fault_list "\"match\": \"/users/delta\", \"latency_ms\": $((i * 200))" "$id")"
done
sed 's/timeout_seconds = 1,/timeout_seconds = 30,/' ok.lua >t30.lua
timed "two tenants' 503s" 60 -- --config t30.lua pull --workers 1
no_faults
check "two tenants' 503s, the others answering: exit 1" test "$RC" = 1
check "two tenants' 503s, the others answering: Graph not called down" eval '! not_answering'
check "two tenants' 503s, the others answering: they fail with their own error" \
  test "$(grep -c ": FAILED: tenant [^ ]*: [^ ]* /[^ ]*: Graph returned 503 serviceNotAvailable" "$T_OUT/out")" = 2
check "two tenants' 503s, the others answering: the others are ok" test "$(grep -c ': ok: ' "$T_OUT/out")" = $((NT - 2))

# ---- sync: Contoso answers, Fabrikam and Northwind get 503s: Contoso is
# synced, the other two not pulled (one line each), the ticket actions wait
mail_policy mail.lua
sync_config s.lua mail.lua 6000 "$(demo_tenants Contoso Fabrikam Northwind)" \
  'actions = { ticket_problem_type = "Microsoft action" }'
sed -i "s#^graph = { #graph = { outage_seconds = 2, timeout_seconds = 1, #; s#state/es.db#state/sync.db#" s.lua
faults "$(fault_list '"status": 503, "retry_after": "1"' "$FABRIKAM" "$NORTHWIND")"
timed "sync" 60 -- --config s.lua sync
no_faults
check "sync: exit 1 in seconds ($TOOK s)" test "$RC $((TOOK < 30))" = "1 1"
check "sync: Contoso synced" grep -q "= ok:" "$T_OUT/out"
check "sync: the other two not pulled, one line each" test "$(grep -cE "^  error: pull from Graph: tenant [^ ]+: graph is not answering: [0-9]+ attempts in a row over [0-9]+ s failed \(the last: 503\); the pull stopped \(the next run goes on from here\)" "$T_OUT/out")" = 2
check "sync: the run says why" grep -q "entrasync sync: Microsoft Graph was found not answering (graph.outage_seconds): the pull stopped, 2 of 3 tenants not pulled, so not synced" "$T_OUT/err"
check "sync: the ticket actions wait for the next run" \
  grep -q "tickets: skipped: Microsoft Graph not answering (the next run takes them)" "$T_OUT/out"
expect_ok "sync, Graph back: every tenant synced" -- --config s.lua sync

# ---- the daemon: with Graph a black hole each run ends before the next slot
hole graph
"$ENTRASYNC" --config ok.lua daemon --every 6s --command pull >daemon.log 2>&1 &
DPID=$!
EXTRA_PIDS="$EXTRA_PIDS $DPID"
two_runs() { test "$(grep -c 'run finished in .*exit 1' daemon.log)" -ge 2; }
wait_for 45 two_runs
check "daemon: two runs ended, each in seconds" two_runs
check "daemon: no slot skipped (no run outlived the interval)" sh -c "! grep -q skipped daemon.log"
kill -TERM "$DPID" 2>/dev/null
wait_for 20 sh -c "! kill -0 $DPID" || {
  # a daemon whose run still waits on the black hole: it and its run killed
  CHILD=$(sed -n 's/.*run started: .*(pid \([0-9]*\)).*/\1/p' daemon.log | tail -1)
  kill -9 "$DPID" ${CHILD:+"$CHILD"} 2>/dev/null
}
no_faults

# ---- the setting checked
sed 's/outage_seconds = 2/outage_seconds = 0.5/' ok.lua >bad.lua
expect_fail "graph.outage_seconds = 0.5 refused with its line" \
  "bad.lua:[0-9]+: graph.outage_seconds must be from 1 to 86400" -- --config bad.lua check
sed 's/outage_seconds = 2/outage_seconds = "long"/' ok.lua >bad.lua
expect_fail "graph.outage_seconds not a number refused" "bad.lua:[0-9]+: graph.outage_seconds must be a finite number" \
  -- --config bad.lua check
sed 's/timeout_seconds = 1,/timeout_seconds = 0.5,/' ok.lua >bad.lua
expect_fail "graph.timeout_seconds = 0.5 refused with its line" \
  "bad.lua:[0-9]+: graph.timeout_seconds must be from 1 to 600" -- --config bad.lua check
sed 's/timeout_seconds = 1,/timeout_seconds = 601,/' ok.lua >bad.lua
expect_fail "graph.timeout_seconds = 601 refused with its line" \
  "bad.lua:[0-9]+: graph.timeout_seconds must be from 1 to 600" -- --config bad.lua check
fake_alive graph syncro
