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
# and its metrics file follow the new one. A daemon whose certificate
# cannot be used starts and takes reloads all the same (a config wrong in
# itself is still refused), says it once a run, and its runs record every
# tenant failed. A certificate file holding a chain, its CA first, signs in
# with the key's certificate (the one registered), whose expiry is the one
# told; a chain without the key's certificate says so. A certificate file
# that cannot be opened fails the tenants too (no config error).
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

# ---- a certificate file holding a chain, the CA first (as some exports
# write it): the fake knows the app by the registered certificate's
# thumbprint, the leaf's, and verifies the signature with its key
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 100 -subj "/CN=entrasync test CA" \
  -addext "basicConstraints=critical,CA:TRUE" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=entrasync app" >/dev/null 2>&1
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 10 -out leaf.pem >/dev/null 2>&1
chmod 600 leaf.key
register leaf
cat ca.pem leaf.pem >app.pem
cp leaf.key app.key
gctl DELETE requests >/dev/null
expect_ok "a chain, its CA first: the pull signs in with the leaf" -- --config cert.lua pull
check "the chain's pull is ok, every tenant with a token" test "$(last_run)/$(token_requests)" = "pull ok/3"
check "the pull warns of the leaf's expiry, not the CA's" \
  grep -q "the Graph certificate [^ ]*app.pem expires on $(date -u -d "@$(not_after leaf)" +%F)" "$T_OUT/err"
expect_ok "check with the chain" -- --config cert.lua check
check "check: the leaf's expiry" grep -q "app.pem expires on $(date -u -d "@$(not_after leaf)" +%F)" "$T_OUT/err"
expect_ok "metrics with the chain" -- --config cert.lua metrics
check "metrics: the expiry gauge is the leaf's" \
  grep -qx "entrasync_graph_certificate_expiry_timestamp_seconds $(not_after leaf)" "$T_OUT/out"
cat ca.pem other.pem >app.pem
expect_exit "a chain without the key's certificate: every tenant failed (exit 1)" 1 \
  "^Contoso: FAILED: tenant [0-9a-f-]+: no certificate in graph.certificate app.pem \(2 in it\) matches the private key in graph.private_key app.key" \
  -- --config cert.lua pull
expect_exit "check: a chain without the key's certificate" 2 \
  "no certificate in graph.certificate app.pem \(2 in it\) matches the private key in graph.private_key app.key" \
  -- --config cert.lua check
# ---- the certificate file gone (a renewal half done): the run's tenants
# fail with it, as for an expired one, not a config error stopping the run
rm app.pem
expect_exit "pull with the certificate file gone: every tenant failed (exit 1)" 1 \
  "^Contoso: FAILED: tenant [0-9a-f-]+: graph.certificate app.pem: cannot open it \(No such file or directory\)" \
  -- --config cert.lua pull
check "the pull is recorded: every tenant failed for the file gone" test "$(failed_rows 'app.pem: cannot open it')/$(last_run)" = "3/pull failed"
expect_exit "check: the certificate file gone" 2 "graph.certificate app.pem: cannot open it \(No such file" -- --config cert.lua check
use_cert good

# ---- a key that is not the certificate's
cp other.key app.key
gctl DELETE requests >/dev/null
expect_exit "pull with a key not the certificate's: every tenant failed (exit 1)" 1 \
  "^Contoso: FAILED: tenant [0-9a-f-]+: graph.private_key app.key does not belong to graph.certificate app.pem" \
  -- --config cert.lua pull
check "the pull is recorded: every tenant failed with the reason" test "$(failed_rows 'does not belong')/$(last_run)" = "3/pull failed"
check "nothing was sent to the token endpoint" test "$(token_requests)" = 0

# ---- the daemon with that certificate: it starts (the Syncro side and the
# alerts of the failing tenants must go on), each run records every tenant
# failed, and it says so once a run; a reload is taken though the
# certificate is still unusable (its file gone now), a config wrong in
# itself is still refused, and once mended the runs are ok again
# failed_runs_since ID WHY: the pulls after run ID that failed every tenant for WHY
failed_runs_since() {
  sql "select count(*) from runs r where r.id > $1 and r.kind = 'pull' and r.status = 'failed' and
    (select count(*) from run_tenants t where t.run_id = r.id and t.status = 'failed' and t.reason like '%$2%') = 3"
}
failed_runs_at_least() { test "$(failed_runs_since "$1" "$2")" -ge "$3"; }
ok_runs_at_least() { test "$(sql "select count(*) from runs where id > $1 and kind = 'pull' and status = 'ok'")" -ge "$2"; }
daemon_said() { grep -c "$1" daemon2.log; }
first=$(sql "select max(id) from runs")
last=$first
"$ES" --config cert.lua daemon --every 2s --command pull >daemon2.log 2>&1 &
DPID=$!
EXTRA_PIDS="$EXTRA_PIDS $DPID"
check "daemon: starts with a key not the certificate's; its pulls fail every tenant with the reason" \
  wait_for 60 failed_runs_at_least "$last" "does not belong" 2
check "daemon: still running" kill -0 "$DPID"
check "daemon: says it once as it starts" test "$(daemon_said "the Graph certificate cannot be used: graph.private_key [^ ]*app.key does not belong to graph.certificate [^ ]*app.pem\. The daemon runs on")" = 1
cp cert.lua cert.lua.ok
sed -i 's|certificate = "app.pem"|certificate = "gone.pem"|' cert.lua
lines=$(wc -l <daemon2.log)
last=$(sql "select max(id) from runs")
kill -HUP "$DPID"
reloaded() { tail -n +$((lines + 1)) daemon2.log | grep -q "$1"; }
check "daemon: a reload naming a certificate file that is not there is taken" wait_for 30 reloaded "reload ok"
check "daemon: and says the certificate cannot be used" reloaded "the Graph certificate cannot be used: graph.certificate [^ ]*gone.pem: cannot open it"
check "daemon: its next pulls fail every tenant for the file gone" wait_for 60 failed_runs_at_least "$last" "gone.pem: cannot open it" 1
check "daemon: no config error recorded for it" test -z "$(sql "select value from kv where key = 'daemon.config_error'")"
printf 'bogus_key = 1\n' >>cert.lua
lines=$(wc -l <daemon2.log)
kill -HUP "$DPID"
check "daemon: a config wrong in itself is still refused at a reload" wait_for 30 reloaded "reload failed, keeping the previous settings: .*bogus_key"
cp cert.lua.ok cert.lua
use_cert good
lines=$(wc -l <daemon2.log)
last=$(sql "select max(id) from runs")
kill -HUP "$DPID"
check "daemon: mended, the reload is ok" wait_for 30 reloaded "reload ok"
check "daemon: and its pulls are ok again" wait_for 60 ok_runs_at_least "$last" 1
kill -TERM "$DPID" 2>/dev/null
wait "$DPID"
check "daemon: said once a run while it could not be used" test "$(daemon_said "every tenant of this run fails: graph\.")" \
  = "$(($(failed_runs_since "$first" "does not belong") + $(failed_runs_since "$first" "gone.pem: cannot open it")))"
cp other.key app.key

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
last=$(sql "select max(id) from runs")
"$ES" --config cert.lua daemon --every 2s --command pull >daemon3.log 2>&1 &
DPID=$!
EXTRA_PIDS="$EXTRA_PIDS $DPID"
check "daemon: starts with an expired certificate; its pulls fail every tenant with the reason" \
  wait_for 60 failed_runs_at_least "$last" "expired on 2020-01-03" 1
kill -TERM "$DPID" 2>/dev/null
wait "$DPID"
check "daemon: said, with the way out" grep -q "every tenant of this run fails: graph.certificate [^ ]*app.pem expired on 2020-01-03: upload a new certificate" daemon3.log
check "daemon: no warning of expiry on top (the error says it)" sh -c "! grep -q 'warn .*the Graph certificate expire' daemon3.log"
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
