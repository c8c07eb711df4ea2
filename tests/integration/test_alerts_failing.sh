#!/bin/sh
# test_alerts_failing — a tenant entrasync cannot reach (its consent
# withdrawn: every token refused with AADSTS700016) becomes a "failing"
# finding once its pulls and syncs have failed for alerts.failing_hours,
# against both fakes: not before; then in `report findings` (crit, since
# when, the actionable reason with the admin-consent URL, no trace id), as
# a Syncro ticket for its customer (`report --alerts`, and the sync's own
# alerts step), left unchanged by later failures that differ only in their
# trace id, gone once the tenant is reached again; failing_hours = 0 turns
# it off. `status` says since when and in how many runs it has failed.
# The failure's age is set by editing the runs' start times.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/failing"
cd "$W" || exit 1
mail_policy pol.lua
mkconfig c.lua pol.lua
alerts_config() {  # FILE HOURS
  sync_config "$1" pol.lua 6000 "$(demo_tenants Contoso Fabrikam Northwind)" \
    "alerts = { enabled = true, problem_type = \"M365\", failing_hours = $2 }"
}
alerts_config hours24.lua 24
alerts_config off.lua 0
refuse_fabrikam() {
  gctl POST faults '{"kind": "token", "status": 400, "error": "unauthorized_client", "aadsts": 700016,
    "message": "Application with identifier '"'$CID'"' was not found in the directory '"'Fabrikam'"'.",
    "tenant": "fabrikam", "times": 0}' >/dev/null
}
age_fabrikam() {  # the runs Fabrikam failed in started two days ago
  sql "update runs set started_at = '2001-01-01T00:00:00Z' where id in (select run_id from run_tenants
    where tenant_id = '$FABRIKAM' and status = 'failed')"
}
failing() { jq_py "[f['message'] for f in d['findings'] if f['kind'] == 'failing']" <"$T_OUT/out"; }
failing_tickets() {
  sctl GET 'state?kind=tickets' | jq_py "json.dumps([t['subject'] for t in d['tickets'] if 'pull or sync failing' in t['subject']])"
}

es --config c.lua sync
check "first sync: every tenant ok" test "$(sql "select count(*) from run_tenants where status = 'ok'")" = 3
refuse_fabrikam
es --config c.lua sync
es --config c.lua sync
check "Fabrikam's token is refused: two failed runs" \
  test "$(sql "select count(*) from run_tenants where tenant_id = '$FABRIKAM' and status = 'failed'")" = 2
check "its reason is actionable" \
  test "$(sql "select count(*) from run_tenants where tenant_id = '$FABRIKAM' and reason like '%AADSTS700016%adminconsent%'")" = 2

expect_exit "status: Fabrikam failing" 1 "" -- --config c.lua status
check "status: failing since when, in how many runs" \
  grep -Eq "^  failing since [0-9T:-]+Z \([^)]*\), 2 runs in a row$" "$T_OUT/out"
check "status: only Fabrikam is failing" test "$(grep -c '^  failing since' "$T_OUT/out")" = 1
expect_exit "status --json: Fabrikam failing" 1 "" -- --config c.lua status --json
check "status --json: failing_runs and failing_since" test "$(jq_py "[(t['name'], t['failing_runs'], len(t['failing_since']))
  for t in d['tenants'] if 'failing_runs' in t]" <"$T_OUT/out")" = "[('Fabrikam', 2, 20)]"

expect_ok "report findings: failing for minutes only" -- --config hours24.lua report findings --format json --no-alerts
check "not a finding before failing_hours" test "$(failing)" = "[]"

age_fabrikam
expect_ok "report findings after two days of failures" -- --config hours24.lua report findings --format json --no-alerts
check "one failing finding, for Fabrikam" test "$(jq_py "[(f['tenant_id'], f['severity']) for f in d['findings']
  if f['kind'] == 'failing']" <"$T_OUT/out")" = "[('$FABRIKAM', 'crit')]"
MSG=$(failing)
# since the last sync that reached it (the first one, ok), not since the first failure
LAST_OK=$(sql "select coalesce(r.finished_at, r.started_at) from run_tenants t join runs r on r.id = t.run_id
  where t.tenant_id = '$FABRIKAM' and t.status = 'ok' order by r.id desc limit 1")
check "it says since when: its last success, and failing since the first failure" sh -c "echo \"\$1\" |
  grep -qF 'has not pulled or synced this tenant since $LAST_OK (failing since 2001-01-01T00:00:00Z): '" - "$MSG"
check "it carries the actionable reason and the admin-consent URL" \
  sh -c "echo \"\$1\" | grep -q 'AADSTS700016.*adminconsent?client_id=$CID'" - "$MSG"
check "without the trace id Microsoft adds" sh -c "! echo \"\$1\" | grep -qi 'trace id'" - "$MSG"
expect_ok "report findings as a table" -- --config hours24.lua report findings --no-alerts
check "the table shows it as crit" grep -q "^crit  Fabrikam" "$T_OUT/out"

clear_log
expect_ok "report --alerts" -- --config hours24.lua report findings --alerts
check "a ticket for Fabrikam's customer" grep -q "^alert Fabrikam/failing: created ticket" "$T_OUT/err"
check "its subject" test "$(failing_tickets)" = '["[entrasync] Fabrikam: Microsoft 365 pull or sync failing"]'

es --config c.lua sync   # fails again, with another trace id
age_fabrikam
expect_ok "report --alerts after another failure" -- --config hours24.lua report findings --alerts
check "the same failure leaves the ticket unchanged" grep -q "^alert Fabrikam/failing: unchanged (ticket" "$T_OUT/err"
check "still one ticket" test "$(failing_tickets | jq_py 'len(d)')" = 1

expect_ok "off: failing_hours = 0" -- --config off.lua report findings --format json --no-alerts
check "failing_hours = 0: no failing finding" test "$(failing)" = "[]"

# the sync's own alerts step (alerts.enabled) raises it too; with its stored ticket forgotten (as after a
# run killed before it recorded the ticket it made) the open ticket is found by its subject: no second one
sql "delete from kv where key = 'alert.ticket:$FABRIKAM:failing'"
es --config hours24.lua sync
SYNC_RC=$?
check "sync: exit 1 (Fabrikam failed)" test "$SYNC_RC" = 1
check "sync: the alerts step found the open ticket by its subject" \
  grep -q "^alert Fabrikam/failing: updated ticket [0-9]* (found open with this subject)" "$T_OUT/out"
check "sync: still one failing ticket" test "$(failing_tickets | jq_py 'len(d)')" = 1

# a ticket resolved in Syncro while what it says still holds: the next run opens a new one
ticket_id() {
  sctl GET 'state?kind=tickets' | jq_py "[t['id'] for t in d['tickets'] if 'pull or sync failing' in t['subject'] and t['status'] != 'Resolved'][-1]"
}
T1=$(ticket_id)
python3 -c "
import json, urllib.request
r = urllib.request.Request('$SURL/api/v1/tickets/$T1', data=json.dumps({'status': 'Resolved'}).encode(), method='PUT',
    headers={'Authorization': 'Bearer $SKEY', 'Content-Type': 'application/json'})
urllib.request.urlopen(r).read()"
expect_ok "report --alerts after the ticket was resolved" -- --config hours24.lua report findings --alerts
check "a new ticket, saying why" grep -q "^alert Fabrikam/failing: created ticket [0-9]* (the last one was closed, deleted or moved to another customer)" "$T_OUT/err"
T2=$(ticket_id)
check "two failing tickets now: the resolved one and a new open one" \
  test "$(failing_tickets | jq_py 'len(d)')/$(sctl GET 'state?kind=tickets' | jq_py "[t['status'] for t in d['tickets'] if t['id'] == $T1][0]")/$([ "$T2" != "$T1" ] && echo new)" = "2/Resolved/new"
expect_ok "report --alerts again: the new ticket is kept" -- --config hours24.lua report findings --alerts
check "the same failure: unchanged on the new ticket" grep -q "^alert Fabrikam/failing: unchanged (ticket $T2)" "$T_OUT/err"
# the ticket resolved again, and the next create's answer lost (Syncro made it): the run after finds it by its
# subject and leaves it as made (its text once), instead of posting the same text as a comment
python3 -c "
import json, urllib.request
r = urllib.request.Request('$SURL/api/v1/tickets/$T2', data=json.dumps({'status': 'Resolved'}).encode(), method='PUT',
    headers={'Authorization': 'Bearer $SKEY', 'Content-Type': 'application/json'})
urllib.request.urlopen(r).read()"
sctl POST faults '{"match": "/tickets$", "method": "POST", "after_apply": true, "drop": "mid_body", "times": 1}' >/dev/null
es --config hours24.lua report findings --alerts
check "a create whose answer was lost: said failed" grep -q "^alert Fabrikam/failing: FAILED" "$T_OUT/err"
expect_ok "report --alerts after the lost answer" -- --config hours24.lua report findings --alerts
T3=$(ticket_id)
check "the ticket it made is kept, not commented with the same text" \
  grep -q "^alert Fabrikam/failing: kept ticket $T3 (made by the last run, whose answer was lost)" "$T_OUT/err"
check "its text once" test "$(sctl GET 'state?kind=tickets' | jq_py "[len(t['comments']) for t in d['tickets'] if t['id'] == $T3][0]")" = 1
T2=$T3
# a technician moves the ticket to another customer: it is no longer Fabrikam's to write to
python3 -c "
import json, urllib.request
r = urllib.request.Request('$SURL/api/v1/tickets/$T2', data=json.dumps({'customer_id': 103}).encode(), method='PUT',
    headers={'Authorization': 'Bearer $SKEY', 'Content-Type': 'application/json'})
urllib.request.urlopen(r).read()"
expect_ok "report --alerts after the ticket was moved to another customer" -- --config hours24.lua report findings --alerts
check "moved: a new ticket for Fabrikam's customer, nothing posted on the moved one" \
  sh -c "grep -q '^alert Fabrikam/failing: created ticket [0-9]* (the last one was closed, deleted or moved to another customer)' '$T_OUT/err' && test \"\$(python3 -c \"import json,urllib.request; d=json.load(urllib.request.urlopen('$SURL/_fake/state?kind=tickets')); print([len(t['comments']) for t in d['tickets'] if t['id']==$T2][0])\")\" = 1"
T2=$(ticket_id)

gctl DELETE faults >/dev/null
es --config c.lua sync
check "reached again: Fabrikam ok" test "$(sql "select status from run_tenants where tenant_id = '$FABRIKAM'
  order by run_id desc limit 1")" = ok
expect_ok "report findings once it is reached again" -- --config hours24.lua report findings --format json --no-alerts
check "no failing finding any more" test "$(failing)" = "[]"
expect_ok "report --alerts once it is reached again" -- --config hours24.lua report findings --alerts
check "cleared: noted on the open ticket" grep -q "^alert Fabrikam/failing: cleared: noted on ticket $T2" "$T_OUT/err"
check "the comment says so" test "$(sctl GET 'state?kind=tickets' | jq_py "[c['body'] for t in d['tickets'] if t['id'] == $T2 for c in t['comments']][-1][:30]")" = \
  "entrasync no longer finds this"
expect_ok "report --alerts after that" -- --config hours24.lua report findings --alerts
check "said once: nothing more to clear" sh -c "! grep -q 'Fabrikam/failing' '$T_OUT/err'"
fakes_alive
