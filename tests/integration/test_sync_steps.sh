#!/bin/sh
# test_sync_steps — the steps `entrasync sync` runs after the contacts,
# each only when configured, against both fakes: the run's HTTP counters in
# the store (`entrasync metrics`) and --metrics FILE; ticket actions
# (actions.ticket_problem_type) processed by the sync, dry run first; the
# recurring invoice kept in step (billing.schedules_on_sync), dry run
# first; findings alerts (alerts.enabled) raised by the sync, the dry run
# showing them and sending nothing; a failing step sets exit 1 and the
# other steps still run; --json has a "steps" object.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/steps"
cd "$W" || exit 1
ES=$ENTRASYNC
cat >pol.lua <<'PEOF'
local p = require "entrasync.policy"
return {
  include = function(u) return p.has_mail(u) and not p.is_guest(u) end,
  contact = p.contact,
  allow_action = function(action, u, t) return true end,
  bill = function(sku, t)
    if sku.part == 'SPE_E3' then return { product_id = 503, quantity = sku.assigned + 7 } end
    return false
  end,
}
PEOF
mkconfig c.lua pol.lua

# ---- nothing configured: no step line; the HTTP counters still go to the store
es --config c.lua sync --metrics m.prom
check "plain sync: no ticket, schedule or alert step" sh -c "! grep -Eq '^(tickets|schedules?|alerts)' '$T_OUT/out'"
check "plain sync: the metrics step says where the file went" grep -q "^metrics: written to m.prom" "$T_OUT/out"
check "--metrics FILE: Graph requests counted" grep -Eq '^entrasync_http_requests_total\{service="graph"\} [1-9]' m.prom
check "--metrics FILE: Syncro requests counted" grep -Eq '^entrasync_http_requests_total\{service="syncro"\} [1-9]' m.prom
G1=$(sql "select value from kv where key='metrics.http.syncro.requests'")
es --config c.lua sync --dry-run
G2=$(sql "select value from kv where key='metrics.http.syncro.requests'")
check "every sync adds its counters to the store (even a dry run)" test "$G2" -gt "$G1"
expect_ok "entrasync metrics shows the HTTP counters" -- --config c.lua metrics
check "entrasync metrics: the store's Syncro total" \
  grep -q "^entrasync_http_requests_total{service=\"syncro\"} $G2\$" "$T_OUT/out"

# ---- the app given User.Read.All only in a tenant (what a plain contact sync needs): synced, with a warning
gctl POST "tenants/contoso/grants/$CID" '{"roles": ["User.Read.All"]}' >/dev/null
expect_exit "User.Read.All only: the contacts are synced (exit 0), the warning names what is missing" 0 \
  "^  warning: pull from Graph: tenant [0-9a-f-]*: the app lacks the application permissions Organization\.Read\.All, SecurityEvents\.Read\.All in this tenant" \
  -- --config c.lua sync --tenant Contoso
check "User.Read.All only: the tenant is ok" grep -q "^  = ok: " "$T_OUT/out"
es --config c.lua sync --tenant Contoso --json
check "User.Read.All only: --json has the warning" \
  test "$(jq_py '[t["status"] + " " + str("Organization.Read.All" in t.get("warning", "")) for t in d["tenants"]][0]' <"$T_OUT/out")" = "ok True"
gctl POST "tenants/contoso/grants/$CID" '{"add_roles": ["GroupMember.Read.All", "Organization.Read.All", "SecurityEvents.Read.All",
  "Directory.Read.All", "User.EnableDisableAccount.All", "User.RevokeSessions.All", "User-PasswordProfile.ReadWrite.All"]}' >/dev/null

# ---- ticket actions
cat >>c.lua <<'CEOF'
actions = { ticket_problem_type = "Microsoft action", ticket_status_done = "Resolved" }
CEOF
# a linked contact of Contoso whose user is enabled in Graph
CONTACT=$(sql "select l.contact_id from links l join users u on u.tenant_id=l.tenant_id and u.object_id=l.object_id
  where l.tenant_id='$CONTOSO' and u.removed is null and json_extract(u.json,'\$.accountEnabled')=1 and json_extract(u.json,'\$.userPrincipalName') not like 'admin@%' order by l.contact_id limit 1")
OBJ=$(sql "select object_id from links where contact_id=$CONTACT")
TID=$(sctl POST tickets "{\"subject\": \"Disable: left today\", \"contact_id\": $CONTACT, \"customer_id\": 101,
  \"problem_type\": \"Microsoft action\", \"status\": \"New\"}" | jq_py 'd["created"][0]["id"]')
enabled() { gctl GET tenants/contoso/users | jq_py "[u['accountEnabled'] for u in d['users'] if u['id']=='$OBJ'][0]"; }
tstatus() { sctl GET 'state?kind=tickets' | jq_py "[t['status'] for t in d['tickets'] if t['id']==$TID][0]"; }
es --config c.lua sync --dry-run
check "tickets dry run: the step line counts the open ticket" grep -Eq "^tickets: problem type 'Microsoft action': 1 open, 0 done.*dry run" "$T_OUT/out"
check "tickets dry run: the user is still enabled" test "$(enabled)" = True
# a sync of another tenant leaves Contoso's tickets to Contoso's run
es --config c.lua sync --tenant Fabrikam
check "sync --tenant Fabrikam: Contoso's ticket not taken" grep -Eq "^tickets: problem type 'Microsoft action': 0 open, 0 done" "$T_OUT/out"
check "sync --tenant Fabrikam: the Contoso user still enabled" test "$(enabled)" = True
es --config c.lua sync
check "tickets: the sync disabled the user in Graph" test "$(enabled)" = False
check "tickets: the step line says done" grep -Eq "^tickets: problem type 'Microsoft action': 1 open, 1 done" "$T_OUT/out"
check "tickets: the ticket's status is set" test "$(tstatus)" = Resolved
es --config c.lua sync --json
check "--json: steps.tickets (the ticket was handled before)" \
  test "$(jq_py "(d['steps']['tickets']['ok'], d['steps']['tickets']['done'], len(d['tenants']))" <"$T_OUT/out")" = "(True, 0, 3)"

# ---- schedules
cat >>c.lua <<'CEOF'
billing = { schedules_on_sync = true, max_decrease = { count = 1000, percent = 100 } }
tenants[1].billing_schedule = "Contoso monthly Microsoft 365"
CEOF
qty() { sctl GET 'state?kind=schedules' | jq_py "[l['quantity'] for s in d['schedules'] if s['id']==301 for l in s['lines'] if l['product_id']==503]"; }
SPE_E3=$(sql "select consumed from license_snapshots where tenant_id='$CONTOSO' and sku_part_number='SPE_E3' order by day desc limit 1")
WANT=$((SPE_E3 + 7))
es --config c.lua sync --tenant Contoso --dry-run
check "schedules dry run: the line would change" grep -Eq "^schedule Contoso: changed \(schedule 301 'Contoso monthly Microsoft 365'\): 1 change" "$T_OUT/out"
check "schedules dry run: nothing sent" test "$(qty)" = "['4.0']"
es --config c.lua sync --tenant Contoso
check "schedules: the sync set the quantity from bill()" test "$(qty)" = "['$WANT.0']"
check "schedules: the step line" grep -Eq "^schedules: period [0-9]{4}-[0-9]{2}: 1 tenant, 1 changed, 0 not ok" "$T_OUT/out"
es --config c.lua sync --tenant Contoso
check "schedules: a second sync leaves the schedule as it is" grep -q "^schedule Contoso: unchanged" "$T_OUT/out"

# ---- alerts
cat >>c.lua <<'CEOF'
alerts = { enabled = true, problem_type = "Licence alert" }
CEOF
alert_tickets() { sctl GET 'state?kind=tickets' | jq_py "len([t for t in d['tickets'] if t.get('problem_type')=='Licence alert'])"; }
clear_log
es --config c.lua sync --dry-run
check "alerts dry run: plan lines shown" grep -q "^alert .*skipped (dry run): would create a ticket" "$T_OUT/out"
check "alerts dry run: the step line" grep -Eq "^alerts: 0 created, .*dry run" "$T_OUT/out"
check "alerts dry run: nothing sent to Syncro" test "$(all_writes)" = 0
check "alerts dry run: no ticket" test "$(alert_tickets)" = 0
NPLAN=$(grep -c "^alert .*would create a ticket" "$T_OUT/out")
es --config c.lua sync
check "alerts: the sync raised the alerts as tickets" test "$(alert_tickets)" = "$NPLAN"
check "alerts: the step line counts them" grep -Eq "^alerts: $NPLAN created, 0 updated" "$T_OUT/out"

# ---- a failing step: exit 1, the other steps still run
sctl POST faults '{"method": "GET", "match": "/tickets", "status": 422, "times": -1}' >/dev/null
expect_exit "a failing ticket step makes the exit code 1" 1 "^tickets: FAILED" -- --config c.lua sync --tenant Contoso --metrics m2.prom
check "the other steps still ran (schedules, metrics)" sh -c "grep -q '^schedules: ' '$T_OUT/out' && test -s m2.prom"
sctl DELETE faults >/dev/null
