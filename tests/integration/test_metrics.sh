#!/bin/sh
# test_metrics — the Prometheus metrics against a store built by real syncs
# on the fakes: `entrasync metrics` on stdout and --output FILE (atomic,
# mode 0644, replaced whole), values equal to what the database holds
# (runs, writes by action, tenant failures, users mirrored, contacts
# linked, conflicts), the format rules (HELP and TYPE before each family's
# samples, no duplicate series), the daemon's --metrics file updated after
# each run, and `promtool check metrics` when promtool is installed.
. tests/integration/test_status_lib.sh

ops_start "$T_OUT/metrics"

expect_ok "metrics with no database yet" -- --config c.lua metrics
check "metrics with no database yet: only the database's size (0) and the generated time" \
  test "$(grep -v '^#' "$T_OUT/out" | cut -d' ' -f1,2 | sed -n 1,2p | tr '\n' ' ')$(grep -c '^entrasync_metrics_generated_timestamp_seconds ' "$T_OUT/out")" = \
    "entrasync_database_bytes 0 entrasync_database_free_bytes 0 1"
check "metrics with no database yet: none created (it only reads)" test ! -e state/es.db

es --config c.lua sync
# one tenant failing (Woodgrove) makes every full sync partial: no run is "ok", but the sync goes through,
# which is what the not-syncing alert watches (a failing tenant has its own alert)
expect_ok "metrics after a partial sync" -- --config c.lua metrics
check "a partial sync: no last success" sh -c "! grep -q '^entrasync_last_success_timestamp_seconds{kind=\"sync\"}' '$T_OUT/out'"
check "a partial sync: it went through, at its end" \
  test "$(sed -n 's/^entrasync_last_complete_timestamp_seconds{kind="sync"} //p' "$T_OUT/out")" = "$(sql "select cast(strftime('%s', max(finished_at)) as integer) from runs where kind='sync' and status='partial'")"
es --config c.lua sync --tenant Contoso
expect_ok "metrics after two syncs" -- --config c.lua metrics
cp "$T_OUT/out" m.txt
value() { grep -F "$1 " m.txt | sed -n 1p | awk '{print $NF}'; }
check "runs_total: one partial run (Woodgrove failed) and one ok" \
  sh -c "test '$(value 'entrasync_runs_total{kind="sync",status="partial"}')' = 1 && test '$(value 'entrasync_runs_total{kind="sync",status="ok"}')' = 1"
check "writes_total{create,ok} equals the audit trail" \
  test "$(value 'entrasync_writes_total{action="create",outcome="ok"}')" = "$(sql "select count(*) from audit where action='create' and result='ok'")"
check "tenant failures: Woodgrove 1, Contoso 0" \
  sh -c "test '$(value "entrasync_tenant_failures_total{kind=\"sync\",tenant=\"$WOODGROVE\"}")' = 1 && test '$(value "entrasync_tenant_failures_total{kind=\"sync\",tenant=\"$CONTOSO\"}")' = 0"
check "users mirrored as in the database" \
  test "$(value "entrasync_tenant_users_mirrored{tenant=\"$CONTOSO\"}")" = "$(sql "select count(*) from users where tenant_id='$CONTOSO' and removed is null")"
check "contacts linked as in the database" \
  test "$(value "entrasync_tenant_contacts_linked{tenant=\"$FABRIKAM\"}")" = "$(sql "select count(*) from links where tenant_id='$FABRIKAM'")"
check "tenant status: Woodgrove failed" test "$(value "entrasync_tenant_status{tenant=\"$WOODGROVE\",status=\"failed\"}")" = 1
check "the last sync (Contoso only) succeeded" test "$(value 'entrasync_last_run_success{kind="sync"}')" = 1
check "last success time is the last sync's end" \
  test "$(value 'entrasync_last_success_timestamp_seconds{kind="sync"}')" = "$(sql "select cast(strftime('%s', max(finished_at)) as integer) from runs where kind='sync' and status='ok'")"
check "every family has HELP and TYPE before its samples" python3 - m.txt <<'PY'
import sys, re
seen_type, names = set(), set()
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        seen_type.add(line.split()[2]); continue
    if line.startswith("#") or not line: continue
    m = re.match(r'^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+)$', line)
    if not m or m.group(1) not in seen_type: sys.exit("bad line: " + line)
    key = m.group(1) + (m.group(2) or "")
    if key in names: sys.exit("duplicate series: " + key)
    names.add(key)
PY

mkdir -p textfile
expect_ok "metrics --output" -- --config c.lua metrics --output textfile/entrasync.prom
check "--output: nothing on stdout" test ! -s "$T_OUT/out"
check "--output: mode 0644" test "$(stat -c %a textfile/entrasync.prom)" = 644
grep -v generated m.txt > m.nogen
grep -v generated textfile/entrasync.prom > file.nogen
check "--output: the same metrics as on stdout (but the time)" cmp -s m.nogen file.nogen
check "--output: no temporary file left" test "$(ls textfile | wc -l)" = 1
expect_exit "--output into a missing folder: exit 3" 3 "cannot create" -- --config c.lua metrics --output nowhere/x.prom

if command -v promtool >/dev/null 2>&1; then
  check "promtool check metrics" sh -c "promtool check metrics < m.txt"
else
  echo "skip - promtool check metrics (promtool not installed)"
fi

# ---- a pull counts its requests too, those of its worker processes included
metric() { grep -F "$1 " "$T_OUT/out" | sed -n 1p | awk '{print $NF}'; }
es --config c.lua metrics
G0=$(metric 'entrasync_http_requests_total{service="graph"}') L0=$(metric 'entrasync_http_requests_total{service="login"}')
gctl DELETE requests >/dev/null
es --config c.lua pull --workers 2
GN=$(gctl GET 'requests?kind=graph&summary=1' | jq_py 'd["total"]')
LN=$(gctl GET 'requests?kind=token&summary=1' | jq_py 'd["total"]')
es --config c.lua metrics
check "a pull over two workers: the Graph and token requests the fake saw are counted" \
  test "$(( $(metric 'entrasync_http_requests_total{service="graph"}') - G0 ))/$(( $(metric 'entrasync_http_requests_total{service="login"}') - L0 ))" = "$GN/$LN"
check "that pull made some" test "$GN" -gt 0
check "after a pull that failed Woodgrove again: its status is the pull's" \
  test "$(metric "entrasync_tenant_status{tenant=\"$WOODGROVE\",status=\"failed\"}")" = 1
check "Contoso's last success is its newest pull" \
  test "$(metric "entrasync_tenant_last_success_timestamp_seconds{tenant=\"$CONTOSO\"}")" = "$(sql "select cast(strftime('%s', max(r.finished_at)) as integer) from runs r join run_tenants t on t.run_id = r.id where t.tenant_id = '$CONTOSO' and t.status = 'ok'")"
check "Woodgrove, never reached: no last success" sh -c "! grep -q 'entrasync_tenant_last_success_timestamp_seconds{tenant=\"$WOODGROVE\"}' '$T_OUT/out'"

# ---- the daemon rewrites the file after each run
"$ENTRASYNC" --config c.lua daemon --every 1s --metrics "$W/textfile/entrasync.prom" >daemon.log 2>&1 &
DPID=$!
EXTRA_PIDS="$EXTRA_PIDS $DPID"
two_more_runs() { test "$(sql "select count(*) from runs where kind='sync' and finished_at is not null")" -ge 4; }
check "daemon: two more runs" wait_for 60 two_more_runs
# the daemon rewrites the file after it has seen the run end: wait for a
# file that counts them (the checks below say what is missing if none comes)
partial_runs() { grep -F 'entrasync_runs_total{kind="sync",status="partial"}' textfile/entrasync.prom | awk '{print $NF}'; }
file_counts_runs() { test "$(partial_runs)" -ge 2; }
wait_for 30 file_counts_runs
check "daemon file: the daemon's lines" \
  sh -c "grep -q '^entrasync_daemon_next_run_timestamp_seconds ' textfile/entrasync.prom && grep -q '^entrasync_daemon_start_timestamp_seconds ' textfile/entrasync.prom"
N=$(partial_runs)
check "daemon file: the runs counted" test "${N:-0}" -ge 2
expect_ok "metrics while the daemon runs: the daemon lines too" -- --config c.lua metrics
check "metrics command sees the running daemon" grep -q "^entrasync_daemon_next_run_timestamp_seconds " "$T_OUT/out"
kill -TERM "$DPID"; wait "$DPID"
check "daemon stopped: its last file has no next run" sh -c "! grep -q '^entrasync_daemon_next_run_timestamp_seconds' textfile/entrasync.prom"
