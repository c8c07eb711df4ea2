#!/bin/sh
# test_credentials — a Graph credential the config names correctly but that
# cannot be used (a certificate expired, or whose key is another's) against
# both fakes: each pull and sync is recorded, every tenant failed with the
# reason and nothing sent to Entra (exit 1, as for a refused secret), so
# `status`, the "failing" finding and the metrics see it, and the expiry
# gauge stays with the past date; a Microsoft action that got no usable
# token (that credential, a wrong secret, no consent) is said and audited
# as not applied; a config wrong in itself (an unknown
# graph.jwt_alg) is still exit 2 with no run recorded. The daemon reads
# the certificate's expiry again at each run: renewed in place, its warning
# and its metrics file follow the new one.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/credentials"
cd "$W" || exit 1
ES=$ENTRASYNC
mail_policy pol.lua

# newcert NAME DAYS [FAKETIME]: NAME.pem and NAME.key, valid DAYS days from
# now (or from FAKETIME, a date in the past).
newcert() {
  if [ -n "${3:-}" ]; then
    FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "$3" openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" \
      -out "$1.pem" -days "$2" -subj "/CN=$1" >/dev/null 2>&1
  else
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days "$2" -subj "/CN=$1" >/dev/null 2>&1
  fi
  chmod 600 "$1.key"
}
register() { gctl POST apps/$CID/certificates "$(python3 -c 'import json,sys; print(json.dumps({"pem": open(sys.argv[1]).read()}))' "$1.pem")" >/dev/null; }
use_cert() { cp "$1.pem" app.pem && cp "$1.key" app.key; }   # renewed in place: both files overwritten
not_after() { python3 -c 'import ssl,sys; print(int(ssl.cert_time_to_seconds(sys.argv[1])))' "$(openssl x509 -in "$1.pem" -noout -enddate | sed 's/^notAfter=//')"; }
token_requests() { gctl GET "requests?kind=token&summary=1" | jq_py 'd["total"]'; }
failed_rows() { sql "select count(*) from run_tenants where run_id = (select max(id) from runs) and status = 'failed' and reason like '%$1%'"; }
last_run() { sql "select kind || ' ' || status from runs order by id desc limit 1"; }

mkconfig c.lua pol.lua
sed "s|client_secret = \"[^\"]*\"|certificate = \"app.pem\", private_key = \"app.key\"|" c.lua >cert.lua
sed "s|certificate = \"app.pem\", private_key = \"app.key\"|&, jwt_alg = \"HS256\"|" cert.lua >badalg.lua
printf 'alerts = { enabled = false, failing_hours = 24 }\n' >>cert.lua

newcert good 20; register good
newcert other 20
use_cert good
expect_ok "a registered certificate: the sync runs" -- --config cert.lua sync

# ---- the daemon follows a certificate renewed in place (both files
# overwritten, as the runs read them): its warning and its metrics file
newcert soon 10; register soon
newcert later 100; register later
use_cert soon
# a pull or a sync run by hand (a timer, cron) says it too: its log is all such an install reads
expect_ok "a pull by hand with a certificate expiring in 10 days" -- --config cert.lua pull
check "the pull warns of the certificate expiring" grep -q "the Graph certificate [^ ]*app.pem expires on $(date -u -d "@$(not_after soon)" +%F)" "$T_OUT/err"
expect_ok "a sync by hand, the same" -- --config cert.lua sync --dry-run
check "the sync warns of it too" grep -q "the Graph certificate [^ ]*app.pem expires on" "$T_OUT/err"
pulls() { sql "select count(*) from runs where kind = 'pull' and finished_at is not null"; }
pulls_at_least() { test "$(pulls)" -ge "$1"; }
gauge() { sed -n 's/^entrasync_graph_certificate_expiry_timestamp_seconds //p' es.prom 2>/dev/null; }
"$ES" --config cert.lua daemon --every 2s --command pull --metrics "$W/es.prom" >daemon.log 2>&1 &
DPID=$!
EXTRA_PIDS="$EXTRA_PIDS $DPID"
check "daemon: the first pulls" wait_for 60 pulls_at_least 2
check "daemon: warns of the certificate expiring" grep -q "the Graph certificate expires on $(date -u -d "@$(not_after soon)" +%F)" daemon.log
check "daemon: once a run (its runs do not say it again)" sh -c "! grep -q 'the Graph certificate [^ ]*app.pem expires' daemon.log"
check "daemon: its metrics file has its expiry" test "$(gauge)" = "$(not_after soon)"
use_cert later
lines=$(wc -l <daemon.log)
n=$(pulls) last=$(sql "select max(id) from runs")
later_gauge() { test "$(gauge)" = "$(not_after later)"; }
# (a run going on as the files were copied may end after: the second one after is the renewed one's)
check "daemon: the pulls after the renewal" wait_for 60 pulls_at_least $((n + 2))
check "daemon: no warning for the renewed certificate" sh -c "! tail -n +$((lines + 1)) daemon.log | grep -q 'Graph certificate expire'"
check "daemon: its metrics file has the renewed certificate's expiry" wait_for 30 later_gauge
check "daemon: the renewed certificate's pulls are ok" \
  test "$(sql "select count(*) from runs where id > $last + 1 and kind = 'pull' and status = 'ok'")" -ge 1
kill -TERM "$DPID" 2>/dev/null
wait "$DPID"
use_cert good

# ---- a key that is not the certificate's
cp other.key app.key
gctl DELETE requests >/dev/null
expect_exit "pull with a key not the certificate's: every tenant failed (exit 1)" 1 \
  "^Contoso: FAILED: tenant [0-9a-f-]+: graph.private_key app.key does not belong to graph.certificate app.pem" \
  -- --config cert.lua pull
check "the pull is recorded: every tenant failed with the reason" test "$(failed_rows 'does not belong')/$(last_run)" = "3/pull failed"
check "nothing was sent to the token endpoint" test "$(token_requests)" = 0

# ---- a Microsoft action that got no usable token was not applied: said
# and audited so, never "may or may not have been applied"
U=$(sql "select json_extract(json, '\$.userPrincipalName') from users where tenant_id = '$CONTOSO'
  and json_extract(json, '\$.accountEnabled') = 1 and json_extract(json, '\$.mail') is not null order by 1 limit 1")
audit_last() { sql "select result from audit where action = 'user.disable' order by id desc limit 1"; }
not_applied() {  # NAME: the last `user disable` and its audit row say not applied, for want of a token
  check "$1: said not applied" grep -q "disable of $U: not applied: " "$T_OUT/err"
  check "$1: audited as failed, not applied" test "$(audit_last | grep -c "^failed: disable of $U: not applied: ")" = 1
  check "$1: never 'may or may not'" test "$(grep -c 'may or may not' "$T_OUT/err")/$(audit_last | grep -c 'may or may not')" = 0/0
}
sed "s|client_secret = \"[^\"]*\"|client_secret = \"wrong\"|" c.lua >wrong.lua
expect_exit "user disable with a wrong secret: failed (exit 1)" 1 "AADSTS7000215" -- --config wrong.lua user disable "$U" --yes
not_applied "a wrong secret"
expect_exit "user disable with a key not the certificate's: failed (exit 1)" 1 "does not belong" \
  -- --config cert.lua user disable "$U" --yes
not_applied "an unusable certificate"
gctl POST tenants/contoso/grants/$CID '{"consent": false}' >/dev/null
expect_exit "user disable without consent: failed (exit 1)" 1 "AADSTS65001" -- --config c.lua user disable "$U" --yes
not_applied "no consent"
gctl POST tenants/contoso/grants/$CID '{"consent": true}' >/dev/null

# ---- a config wrong in itself stays a config error
runs_before=$(sql "select count(*) from runs")
expect_exit "an unknown graph.jwt_alg is a config error (exit 2)" 2 "graph.jwt_alg 'HS256'" -- --config badalg.lua pull
check "a config error records no run" test "$(sql "select count(*) from runs")" = "$runs_before"

# ---- an expired certificate
if ! command -v faketime >/dev/null 2>&1; then
  echo "skip - an expired certificate needs faketime (apt-get install faketime)"
  exit 0
fi
newcert expired 2 "2020-01-01 00:00:00"
use_cert expired
gctl DELETE requests >/dev/null
expect_exit "pull with an expired certificate: every tenant failed (exit 1)" 1 \
  "^Fabrikam: FAILED: tenant [0-9a-f-]+: graph.certificate app.pem expired on 2020-01-03" -- --config cert.lua pull
check "the expired pull is recorded, every tenant failed" test "$(failed_rows 'expired on 2020-01-03')/$(last_run)" = "3/pull failed"
expect_exit "sync with an expired certificate: every tenant failed (exit 1)" 1 "expired on 2020-01-03" -- --config cert.lua sync
check "the expired sync is recorded, every tenant failed" test "$(failed_rows 'expired on 2020-01-03')/$(last_run)" = "3/sync partial"
check "still nothing sent to the token endpoint" test "$(token_requests)" = 0
expect_exit "status: the tenants failed (exit 1)" 1 "" -- --config cert.lua status
# (the sync's own pull, when it began in the same second, is shown as the sync's first step: its line then)
check "status: each tenant's last pull or sync failed, with the reason" \
  test "$(grep -c "^  last \(pull\|sync\) .*: failed: .*expired on 2020-01-03" "$T_OUT/out")" -ge 3
expect_exit "user disable with an expired certificate: failed (exit 1)" 1 "expired on 2020-01-03" \
  -- --config cert.lua user disable "$U" --yes
not_applied "an expired certificate"
expect_ok "metrics with an expired certificate" -- --config cert.lua metrics
check "metrics: the expiry gauge stays, with the past date" \
  grep -qx "entrasync_graph_certificate_expiry_timestamp_seconds $(not_after expired)" "$T_OUT/out"
check "metrics: the last pull and sync did not succeed" \
  test "$(grep -c '^entrasync_last_run_success{kind="\(pull\|sync\)"} 0$' "$T_OUT/out")" = 2
sql "update runs set started_at = '2001-01-01T00:00:00Z' where kind in ('pull', 'sync') and status = 'failed'"
expect_ok "report findings after a day of failed runs" -- --config cert.lua report findings --format json --no-alerts
check "findings: every tenant failing, for the expired certificate" test "$(jq_py "len([f for f in d['findings']
  if f['kind'] == 'failing' and 'expired on 2020-01-03' in f['message']])" <"$T_OUT/out")" = 3
