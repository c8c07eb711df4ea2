#!/bin/sh
# test_bill — `entrasync bill` against the fake Syncro (started here with its
# demo data; customers 101 Contoso, 102 Fabrikam, products 501/503, schedule
# 301 of Contoso) over a database whose September 2026 licence snapshots are
# written with sqlite3: usage errors, dry run (draft, unbilled SKUs, nothing
# sent or stored), tenants with a recurring invoice left out of the period
# invoices (billing_schedule = false: invoiced), one invoice per tenant and period, a second run that
# reports the invoice and the drift and sends nothing, JSON output,
# schedules kept in step (audit rows old -> new, second run silent, large
# decrease held until --allow-decrease or a larger billing.max_decrease,
# the schedule from the config's billing.schedule and billing_schedule of
# a tenant, --schedule overriding both, bad billing keys, one schedule
# named by two tenants of a customer refused, by name or one by its id,
# a schedule changed in the config: the lines on the one before zeroed), an invoice deleted in
# Syncro (reported; --reinvoice and its dry run; the line intents of the
# deleted one closed when it is replaced), a tenant
# without customer, a policy error with file:line (and no temporary file:
# the same dry run with TMPDIR missing), the reconciliation in
# table, CSV, JSON and HTML (leaks first).
. tests/lib.sh
. tests/integration/fakes_lib.sh

FAKE=${FAKE_SYNCRO:-tests/fakes/fake_syncro.py}
if [ ! -f "$FAKE" ] || ! command -v sqlite3 >/dev/null 2>&1; then
  echo "skip - test_bill: needs $FAKE and sqlite3"
  exit 0
fi
W=$T_OUT/bill
mkdir -p "$W"
KEY=sk-bill-integration-7c2d
fake_start syncro "$W" "$FAKE" --api-key "$KEY" --data demo --rate-limit 0
fake_url URL syncro

ctl() { fake_ctl "$URL" "$@"; }  # ctl METHOD PATH [JSON]: the fake's control API, answer on stdout
py() { jq_py "$1"; }
writes() { ctl GET stats | py 'sum(d["requests"]["writes"].values())'; }
sql() { sqlite3 -cmd ".timeout 30000" "$W/state/es.db" "$1"; }
# invoices CUSTOMER: September invoices of a customer in the fake
invoices() { ctl GET "invoices?customer_id=$1" | py 'len([i for i in d["invoices"] if "2026-09" in (i["note"] or "")])'; }
# sched_qty PRODUCT: quantity of schedule 301's line with the product
sched_qty() { ctl GET schedules | py "[l['quantity'] for s in d['schedules'] if s['id']==301 for l in s['lines'] if l['product_id']==$1]"; }

cat >"$W/policy.lua" <<'EOF'
return {
  include = function() return true end,
  bill = function(sku, t)
    if sku.part == 'SPB' then return { product_id = 503, quantity = sku.peak_assigned } end
    if sku.part == 'O365_BUSINESS_ESSENTIALS' then return { product_id = 501 } end
    if sku.part == 'EXCHANGESTANDARD' then
      return { name = 'Exchange Online (Plan 1)', unit_price = 4.00, quantity = math.max(sku.assigned, 5) }
    end
    if sku.part == 'FLOW_FREE' then return false end
  end,
}
EOF
cat >"$W/broken.lua" <<'EOF'
return {
  include = function() return true end,
  bill = function(sku)
    return { product_id = 503, quantity = sku.nope.x }
  end,
}
EOF
cat >"$W/es.lua" <<EOF
database = "state/es.db"
graph = { client_id = "4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59", client_secret = "unused-secret",
          authority = "http://127.0.0.1:9", endpoint = "http://127.0.0.1:9" }
syncro = { base_url = "$URL/api/v1", api_key = "$KEY", requests_per_minute = 6000 }
policy = "policy.lua"
billing = { }
tenants = {
  { id = "contoso.com", name = "Contoso", syncro_customer_id = 101 },
  { id = "fabrikam.com", name = "Fabrikam", syncro_customer_id = 102 },
  { id = "northwind.example", name = "Northwind", syncro_customer = "No Such Customer Ltd" },
  { id = "woodgrove.example", name = "Woodgrove", syncro_customer_id = 103, policy = "broken.lua" },
}
EOF
# the tenants billed by recurring invoices (bill --schedules): Contoso's own schedule, the others billing.schedule's
{ cat "$W/es.lua"; echo 'billing.schedule = "no such schedule"'
  echo 'tenants[1].billing_schedule = "contoso MONTHLY microsoft 365"'; } >"$W/es-sched.lua"
# the same, Fabrikam invoiced per period (billing_schedule = false: not billing.schedule's)
{ cat "$W/es-sched.lua"; echo 'tenants[2].billing_schedule = false'; } >"$W/es-sched-fab-off.lua"
# the same with a looser decrease guard (20 units)
{ cat "$W/es-sched.lua"; echo 'billing.max_decrease = { count = 20 }'; } >"$W/es-guard20.lua"
# and with a misspelt billing key
{ cat "$W/es.lua"; echo 'billing.schedules = "x"'; } >"$W/es-badkey.lua"
cd "$W" || exit 1
ES="--config es.lua"
ESS="--config es-sched.lua"

# ---------------------------------------------------------------- usage
expect_exit "no mode is a usage error" 2 "--period YYYY-MM, --schedules or --report" -- $ES bill
expect_exit "a malformed period is refused" 2 "YYYY-MM" -- $ES bill --period 2026-9
expect_exit "the current month needs --open-period" 2 "has not ended" -- $ES bill --period "$(date -u +%Y-%m)"
expect_exit "--report needs a period" 2 "needs --period" -- $ES bill --report
# --report with no database yet: nothing to report, and none made (it used to make an empty one)
sed 's|state/es.db|state/none.db|' es.lua >es-nodb.lua
expect_exit "no database yet: exit 3, saying so" 3 "^entrasync bill: no database at state/none.db yet: run 'entrasync pull' first$" \
  -- --config es-nodb.lua bill --report --period 2026-09
check "no database yet: none made" test ! -e state/none.db
# --open-period where it means nothing: refused, not ignored
expect_exit "--open-period with --schedules is a usage error" 2 "^entrasync bill: --open-period is for invoicing the month still going \(bill --period YYYY-MM --open-period\): drop it$" \
  -- $ES bill --schedules --open-period --dry-run
expect_exit "--open-period with --report is a usage error" 2 "--open-period is for invoicing the month still going" \
  -- $ES bill --report --period 2026-09 --open-period
expect_exit "--open-period with a month that has ended is a usage error" 2 \
  "^entrasync bill: period 2026-09 has ended: --open-period is for the month still going; drop it$" \
  -- $ES bill --period 2026-09 --open-period --dry-run
# the same reached as `report billing`: its messages name what was typed
expect_exit "report billing needs a period, named as typed" 2 "^entrasync report billing: give the month: --period YYYY-MM" \
  -- $ES report billing --format json
check "report billing: no message names 'bill'" sh -c "! grep -q 'entrasync bill:' '$T_OUT/err'"
expect_exit "an unknown tenant is named with a suggestion" 2 "did you mean 'contoso.com'" \
  -- $ES bill --period 2026-09 --tenant contoso.co
expect_exit "a misspelt billing key is reported with file:line and a suggestion" 2 \
  "es-badkey.lua:[0-9]+: unknown key 'schedules' in billing \(did you mean 'schedule'\?\)" \
  -- --config es-badkey.lua bill --schedules

# ---------------------------------------------------------------- data
es $ES bill --period 2026-09 --dry-run   # creates the database
# a dry run reads Syncro: while another run (a sync pacing itself to Syncro's 180 a minute) holds the lock, it waits its turn
rm -f state/es.db.lock.held
python3 -c 'import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0); os.write(fd, b"%d\n" % os.getpid()); open(sys.argv[1] + ".held", "w").close(); time.sleep(60)' state/es.db.lock &
HOLD_PID=$!
i=0; while [ ! -e state/es.db.lock.held ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
expect_exit "bill --dry-run while another run holds the lock: exit 3" 3 "holds the lock" -- $ES bill --period 2026-09 --dry-run
expect_exit "bill --report while another run holds the lock: exit 3" 3 "holds the lock" -- $ES bill --period 2026-09 --report
kill "$HOLD_PID" 2>/dev/null; wait "$HOLD_PID" 2>/dev/null
sql "INSERT INTO tenants(id, name) VALUES ('contoso.com','Contoso'), ('fabrikam.com','Fabrikam'),
       ('northwind.example','Northwind'), ('woodgrove.example','Woodgrove');
     WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 30)
     INSERT INTO license_snapshots(tenant_id, day, sku_id, sku_part_number, enabled, consumed)
     SELECT 'contoso.com', printf('2026-09-%02d', n), 'cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46', 'SPB', 25,
            CASE WHEN n = 11 THEN 22 ELSE 20 END FROM d
     UNION ALL SELECT 'contoso.com', printf('2026-09-%02d', n), '4b9405b0-7788-4568-add1-99614e613b69',
            'EXCHANGESTANDARD', 5, 3 FROM d
     UNION ALL SELECT 'contoso.com', printf('2026-09-%02d', n), 'c5928f49-12ba-48f7-ada3-0d743a3601d5',
            'VISIOCLIENT', 2, 2 FROM d
     UNION ALL SELECT 'contoso.com', printf('2026-09-%02d', n), 'f30db892-07e9-47e9-837c-80727f46fd3d',
            'FLOW_FREE', 10000, 14 FROM d
     UNION ALL SELECT t, printf('2026-09-%02d', n), '3b555118-da6a-4418-894f-7df1e2096870',
            'O365_BUSINESS_ESSENTIALS', 12, 10 FROM d, (SELECT 'fabrikam.com' AS t UNION ALL
            SELECT 'northwind.example' UNION ALL SELECT 'woodgrove.example');"

# ---------------------------------------------------------------- dry run
expect_exit "dry run: drafts, exit 1 for the tenants that cannot be billed" 1 "" \
  -- $ES bill --period 2026-09 --dry-run
check "dry run: Contoso's draft lists its lines and total" \
  grep -q "Contoso: DRAFT invoice for customer 101" "$T_OUT/out"
check "dry run: peak seats of Business Premium at the catalog price" \
  grep -Eq "22 x Microsoft 365 Business Premium @ 22.00 = 484.00" "$T_OUT/out"
check "dry run: the minimum of 5 Exchange seats at 4.00" grep -q "5 x Exchange Online (Plan 1) @ 4.00 = 20.00" "$T_OUT/out"
check "dry run: total" grep -q "total 504.00" "$T_OUT/out"
check "dry run: Visio has seats and no price: listed as unbilled" grep -q "UNBILLED: VISIOCLIENT" "$T_OUT/out"
check "dry run: the free SKU is not listed as unbilled" sh -c "! grep -q 'UNBILLED: FLOW_FREE' '$T_OUT/out'"
check "dry run: a tenant without Syncro customer is reported" grep -q "Northwind: unmapped" "$T_OUT/out"
check "dry run: a policy error names bill() and the file:line" \
  grep -Eq "Woodgrove: FAILED: policy error in bill\(\): broken.lua:4: attempt to index a nil value" "$T_OUT/out"
check "dry run: the traceback shows the policy, not the wrapper" sh -c "! grep -q 'entrasync-bill-' '$T_OUT/out'"
cp "$T_OUT/out" "$W/dry-run.out"
if [ "${VALGRIND:-0}" = 1 ]; then
  echo "skip - dry run with TMPDIR missing (valgrind itself needs a TMPDIR)"
else
  TMPDIR=$W/no-such-folder expect_exit "dry run with TMPDIR naming a missing folder: the hooks need no temporary file" 1 "" \
    -- $ES bill --period 2026-09 --dry-run
  check "dry run with TMPDIR missing: the same drafts and errors" cmp -s "$W/dry-run.out" "$T_OUT/out"
fi
check "dry run: nothing was written to Syncro" test "$(writes)" = 0
check "dry run: nothing was stored" test "$(sql 'select count(*) from billing_invoices') $(sql 'select count(*) from billing_intents')" = "0 0"

# ---------------------------------------------------------------- a tenant billed by its recurring invoice
# is not invoiced per period too (it would pay twice): bill --period says so and leaves it out, exit 0
W0=$(writes)
expect_ok "tenants with a schedule: not invoiced per period" -- $ESS bill --period 2026-09 --tenant contoso.com,fabrikam.com
check "with a schedule: Contoso said billed by its own schedule, with the way to invoice it instead" \
  grep -q "Contoso: not invoiced for 2026-09: billed by its recurring invoice 'contoso MONTHLY microsoft 365' (its billing_schedule; bill --schedules keeps it in step); to invoice it per period instead, set billing_schedule = false in its entry of the config" "$T_OUT/out"
check "with a schedule: Fabrikam said billed by billing.schedule's" \
  grep -q "Fabrikam: not invoiced for 2026-09: billed by its recurring invoice 'no such schedule' (billing.schedule of the config;" "$T_OUT/out"
check "with a schedule: no invoice, nothing sent, nothing recorded" \
  test "$(invoices 101) $(invoices 102) $(writes) $(sql 'select count(*) from billing_invoices')" = "0 0 $W0 0"
expect_ok "billing_schedule = false: the tenant is invoiced per period (dry run)" \
  -- --config es-sched-fab-off.lua bill --period 2026-09 --tenant contoso.com,fabrikam.com --dry-run
check "billing_schedule = false: Fabrikam's draft, Contoso still left to its schedule" \
  sh -c "grep -q 'Fabrikam: DRAFT invoice for customer 102' '$T_OUT/out' && grep -q 'Contoso: not invoiced for 2026-09: billed by its recurring invoice' '$T_OUT/out'"
expect_ok "billing_schedule = false: bill --schedules has no schedule to keep for it, not a failure" \
  -- --config es-sched-fab-off.lua bill --schedules --period 2026-09 --tenant fabrikam.com --dry-run
check "billing_schedule = false: --schedules says it is invoiced per period" \
  grep -q "Fabrikam: invoiced: billed by bill --period (billing_schedule = false in its entry of the config)" "$T_OUT/out"
expect_ok "with a schedule, --json: status scheduled, said in a note" -- $ESS bill --period 2026-09 --tenant contoso.com --json
check "with a schedule, --json: status scheduled and its note" \
  test "$(py '[(t["status"], "error" in t, "recurring invoice" in t["note"]) for t in d["tenants"]][0]' <"$T_OUT/out")" = "('scheduled', False, True)"

# ---------------------------------------------------------------- invoices
expect_ok "invoices for Contoso and Fabrikam" -- $ES bill --period 2026-09 --tenant contoso.com,fabrikam.com
check "one Contoso invoice with two lines" test "$(invoices 101) $(ctl GET 'invoices?customer_id=101' | py 'len(d["invoices"][-1]["line_items"])')" = "1 2"
check "one Fabrikam invoice" test "$(invoices 102)" = 1
check "the invoice note carries the period and the marker" \
  sh -c "ctl() { :; }; python3 -c \"import urllib.request,json; d=json.load(urllib.request.urlopen('$URL/_fake/invoices?customer_id=101')); print(d['invoices'][-1]['note'])\" | grep -Eq '2026-09 \(entrasync ref ES-[0-9a-f]{16}\)'"
check "the run and its audit rows are stored" test "$(sql "select count(*) from audit where action='bill.invoice' and result='ok'")" = 2
NLINES=$(ctl GET invoices | py 'sum(len(i["line_items"]) for i in d["invoices"] if "2026-09" in (i["note"] or ""))')
check "every write has its audit row: each invoice made, each line added" \
  test "$(sql "select count(*) from audit where action='bill.invoice.create' and result='ok'")/$(sql "select count(*) from audit where action='bill.invoice.line' and result='ok'")" = "2/$NLINES"
expect_ok "audit shows the billing writes" -- $ES audit --tenant contoso.com
check "audit: an invoice is named as one, not as a user" \
  sh -c "grep -Eq 'bill.invoice.create  invoice:[0-9]+' '$T_OUT/out' && ! grep -q 'user invoice:' '$T_OUT/out'"
sql "UPDATE billing_invoices SET state = 'created' WHERE tenant_id = 'contoso.com' AND period = '2026-09'"
expect_exit "report: an invoice whose lines were still being added is said incomplete, exit 1" 1 \
  "Contoso: invoice [0-9]+ for 2026-09 is incomplete in Syncro" -- $ES bill --report --period 2026-09 --tenant contoso.com
sql "UPDATE billing_invoices SET state = 'done' WHERE tenant_id = 'contoso.com' AND period = '2026-09'"
W1=$(writes)
expect_ok "a second run changes nothing" -- $ES bill --period 2026-09 --tenant contoso.com,fabrikam.com
check "second run: reports the existing invoice" grep -q "Contoso: already invoiced for 2026-09: invoice" "$T_OUT/out"
check "second run: no write sent" test "$(writes)" = "$W1"
sql "UPDATE license_snapshots SET consumed = 24 WHERE tenant_id = 'contoso.com' AND sku_part_number = 'SPB' AND day = '2026-09-30'"
expect_ok "drift after invoicing is reported" -- $ES bill --period 2026-09 --tenant contoso.com
check "drift: invoiced 22, now 24" grep -q "DRIFT: Microsoft 365 Business Premium: invoiced 22, now 24" "$T_OUT/out"
check "drift: still no write" test "$(writes)" = "$W1"
expect_ok "--json output" -- $ES bill --period 2026-09 --tenant contoso.com --json
check "--json: status exists, invoice id, drift and unbilled" \
  test "$(py '[(t["status"], t["invoice_id"] > 7001, t["drift"][0]["quantity_now"], t["unbilled"]) for t in d["tenants"]][0]' <"$T_OUT/out")" \
  = "('exists', True, 24, ['VISIOCLIENT'])"

# an invoiced month whose bill() fails now: the invoice stands, the failure is said, exit 1
sed 's/^  bill = function(sku, t)$/  bill = function(sku, t) if t.name == "Contoso" then return { product_id = sku.nope.x } end/' \
  "$W/policy.lua" >"$W/policy-broken-now.lua"
sed 's|policy = "policy.lua"|policy = "policy-broken-now.lua"|' "$W/es.lua" >"$W/es-broken-now.lua"
if grep -q 'sku.nope' "$W/policy-broken-now.lua"; then
  expect_exit "already invoiced, bill() fails now: said, exit 1" 1 \
    "Contoso: already invoiced for 2026-09.*|WARNING: bill\(\) fails now, so what changed since cannot be told" \
    -- --config es-broken-now.lua bill --period 2026-09 --tenant contoso.com
  check "already invoiced, bill() fails now: the warning names the policy's line" \
    grep -q "WARNING: bill() fails now, so what changed since cannot be told: .*policy-broken-now.lua:[0-9]*" "$T_OUT/out"
fi

# ---------------------------------------------------------------- an invoice deleted in Syncro
FAB_INV=$(sql "select invoice_id from billing_invoices where tenant_id = 'fabrikam.com' and period = '2026-09'")
python3 -c "
import urllib.request
urllib.request.urlopen(urllib.request.Request('$URL/api/v1/invoices/$FAB_INV', method='DELETE',
    headers={'Authorization': 'Bearer $KEY'})).read()"
expect_exit "an invoice deleted in Syncro is not 'already invoiced': said so, with the way out" 1 \
  "invoice $FAB_INV \(recorded for 2026-09\) is no longer in Syncro: it was deleted there; nothing is made again by itself \(to invoice the month again: entrasync bill --period 2026-09 --tenant fabrikam.com --reinvoice\)" \
  -- $ES bill --period 2026-09 --tenant fabrikam.com
check "deleted: nothing made by itself" test "$(invoices 102)" = 0
# a dry run says what the real run would do with it
W0=$(writes)
expect_ok "--reinvoice --dry-run: the new invoice's draft" -- $ES bill --period 2026-09 --tenant fabrikam.com --reinvoice --dry-run
check "--reinvoice --dry-run: a draft instead of the deleted invoice, nothing sent or stored" \
  sh -c "grep -q 'Fabrikam: DRAFT invoice for customer 102, 2026-09, instead of invoice $FAB_INV, deleted in Syncro (dry run: nothing sent)' '$T_OUT/out' && test \"\$(sqlite3 '$W/state/es.db' \"select state from billing_invoices where tenant_id = 'fabrikam.com' and period = '2026-09'\")\" = done"
check "--reinvoice --dry-run: no write" test "$(writes) $(invoices 102)" = "$W0 0"
# the same invoice deleted while its lines were still being added (state 'created')
sql "UPDATE billing_invoices SET state = 'created' WHERE tenant_id = 'fabrikam.com' AND period = '2026-09'"
# and a line it was adding when the run was killed (its intent recorded, no answer recorded)
sql "INSERT INTO billing_intents(tenant_id, period, action, target, payload, state, created_at)
     VALUES ('fabrikam.com', '2026-09', 'invoice.line', 'p:501', '{\"product_id\": 501}', 'pending', '2026-10-02T08:00:00Z')"
expect_exit "dry run of an interrupted invoice deleted in Syncro: said deleted, as the real run says" 1 \
  "invoice $FAB_INV \(recorded for 2026-09\) is no longer in Syncro: it was deleted there" \
  -- $ES bill --period 2026-09 --tenant fabrikam.com --dry-run
expect_ok "--reinvoice --dry-run of it: the new invoice's draft" -- $ES bill --period 2026-09 --tenant fabrikam.com --reinvoice --dry-run
check "--reinvoice --dry-run of the interrupted one: a draft instead of it" \
  grep -q "Fabrikam: DRAFT invoice for customer 102, 2026-09, instead of invoice $FAB_INV, deleted in Syncro" "$T_OUT/out"
check "the dry runs left the interrupted line's intent as it was" \
  test "$(sql "select state from billing_intents where tenant_id = 'fabrikam.com' and target = 'p:501' and created_at = '2026-10-02T08:00:00Z'")" = pending
sql "UPDATE billing_invoices SET state = 'done' WHERE tenant_id = 'fabrikam.com' AND period = '2026-09'"
expect_exit "--reinvoice is for invoices" 2 "--reinvoice is for invoices" -- $ES bill --report --period 2026-09 --reinvoice
# a tenant its schedule bills now (billing.schedule): its deleted invoice is not made again
W0=$(writes)
expect_ok "--reinvoice of a tenant with a schedule: not invoiced again" -- $ESS bill --period 2026-09 --tenant fabrikam.com --reinvoice
check "--reinvoice with a schedule: said, nothing sent, its row left as it was" \
  sh -c "grep -q \"Fabrikam: not invoiced for 2026-09: billed by its recurring invoice 'no such schedule'\" '$T_OUT/out' && test \"\$(sqlite3 '$W/state/es.db' \"select state from billing_invoices where tenant_id = 'fabrikam.com' and period = '2026-09'\")\" = done"
check "--reinvoice with a schedule: no write, no invoice" test "$(writes) $(invoices 102)" = "$W0 0"
expect_ok "--reinvoice makes a new one" -- $ES bill --period 2026-09 --tenant fabrikam.com --reinvoice
check "--reinvoice: the new invoice names the deleted one" grep -q "instead of invoice $FAB_INV, deleted in Syncro" "$T_OUT/out"
check "--reinvoice: the line intent of the deleted invoice closed with it" \
  test "$(sql "select state || ': ' || error from billing_intents where tenant_id = 'fabrikam.com' and target = 'p:501' and created_at = '2026-10-02T08:00:00Z'")" \
  = "failed: its invoice $FAB_INV was deleted in Syncro and replaced (--reinvoice)"
check "--reinvoice: no billing write left pending" test "$(sql "select count(*) from billing_intents where state = 'pending'")" = 0
check "--reinvoice: one Fabrikam invoice again, a new id, audited" \
  test "$(invoices 102)/$(sql "select invoice_id != $FAB_INV from billing_invoices where tenant_id = 'fabrikam.com' and period = '2026-09'")/$(sql "select count(*) from audit where action = 'bill.invoice.reinvoice' and object_id = 'invoice:$FAB_INV'")" = "1/1/1"
expect_ok "--reinvoice with the invoice in Syncro: kept" -- $ES bill --period 2026-09 --tenant fabrikam.com --reinvoice
check "--reinvoice with the invoice there: reported as invoiced, still one" \
  sh -c "grep -q 'Fabrikam: already invoiced for 2026-09' '$T_OUT/out' && test \"\$(sqlite3 '$W/state/es.db' \"select count(*) from audit where action = 'bill.invoice.reinvoice'\")\" = 1"
W1=$(writes)

# ---------------------------------------------------------------- schedules
expect_exit "schedules: a tenant without a matching schedule fails, naming the schedules" 1 \
  "customer 102 has no schedule named 'no such schedule' \(it has no schedule\)" \
  -- $ESS bill --schedules --period 2026-09 --tenant contoso.com,fabrikam.com --dry-run
check "schedules dry run: Contoso's changes are shown" grep -q "update Microsoft 365 Business Premium: quantity 4 -> 24" "$T_OUT/out"
check "schedules dry run: nothing written" test "$(writes)" = "$W1"
expect_ok "schedules: Contoso's recurring invoice put in step" \
  -- $ESS bill --schedules --period 2026-09 --tenant contoso.com
check "schedules: Business Premium now 24" test "$(sched_qty 503)" = "['24.0']"
check "schedules: Managed User (never billed by entrasync) untouched" test "$(sched_qty 505)" = "['4.0']"
check "schedules: an audit row per change, old -> new" \
  test "$(sql "select count(*) from audit where action='bill.schedule.update' and before like '%\"quantity\":4%' and after like '%\"quantity\":24%'") $(sql "select count(*) from audit where action='bill.schedule.add'")" = "1 1"
W2=$(writes)
expect_ok "schedules: a second run writes nothing" -- $ESS bill --schedules --period 2026-09 --tenant contoso.com --schedule 301
check "schedules: second run sent nothing" test "$(writes)" = "$W2"
sql "UPDATE license_snapshots SET consumed = 10 WHERE tenant_id = 'contoso.com' AND sku_part_number = 'SPB'"
expect_exit "schedules: a large drop is held" 1 "HELD: the billed quantity would drop by 14" \
  -- $ESS bill --schedules --period 2026-09 --tenant contoso.com --schedule 301
check "held: nothing written" test "$(writes) $(sched_qty 503)" = "$W2 ['24.0']"
check "held: the run records the tenant as held" test "$(sql "select status from run_tenants order by rowid desc limit 1")" = held
expect_ok "billing.max_decrease of 20 units lets the drop of 14 through (dry run)" \
  -- --config es-guard20.lua bill --schedules --period 2026-09 --tenant contoso.com --dry-run
check "max_decrease 20: nothing held" sh -c "grep -q 'update Microsoft 365 Business Premium: quantity 24 -> 10' '$T_OUT/out' && ! grep -q HELD '$T_OUT/out'"
expect_ok "--allow-decrease applies it" \
  -- $ESS bill --schedules --period 2026-09 --tenant contoso.com --schedule 301 --allow-decrease
check "allowed: Business Premium now 10" test "$(sched_qty 503)" = "['10.0']"

# two Microsoft tenants of one Syncro customer naming the same schedule: each would set its lines to its own
# seats in turn (the recurring invoice billing only the last one's); neither is kept in step, each says why
sql "INSERT INTO tenants(id, name) VALUES ('contoso-emea.example', 'Contoso EMEA');
     WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 30)
     INSERT INTO license_snapshots(tenant_id, day, sku_id, sku_part_number, enabled, consumed)
     SELECT 'contoso-emea.example', printf('2026-09-%02d', n), 'cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46', 'SPB', 10, 7 FROM d"
{ cat "$W/es-sched.lua"; echo 'tenants[#tenants + 1] = { id = "contoso-emea.example", name = "Contoso EMEA", syncro_customer_id = 101,'
  echo '  billing_schedule = "Contoso monthly Microsoft 365" }'; } >"$W/shared.lua"
W3=$(writes)
expect_exit "one schedule named by two tenants of the customer: both refused, exit 1" 1 \
  "Contoso EMEA: FAILED: schedule 'Contoso monthly Microsoft 365' of customer 101 is also tenant contoso.com's" \
  -- --config shared.lua bill --schedules --period 2026-09 --tenant contoso.com,contoso-emea.example
check "shared schedule: Contoso refused too, naming the other tenant" \
  grep -q "Contoso: FAILED: schedule 'contoso MONTHLY microsoft 365' of customer 101 is also tenant contoso-emea.example's" "$T_OUT/out"
check "shared schedule: nothing written, Business Premium still 10" test "$(writes) $(sched_qty 503)" = "$W3 ['10.0']"
expect_exit "shared schedule: one tenant billed alone is refused as well" 1 "is also tenant contoso.com's" \
  -- --config shared.lua bill --schedules --period 2026-09 --tenant contoso-emea.example
check "shared schedule, one tenant: nothing written" test "$(writes) $(sched_qty 503)" = "$W3 ['10.0']"
# the same schedule named by its id by one tenant, by its name by the other: the same refusal, whichever is billed
sed 's/billing_schedule = "Contoso monthly Microsoft 365" }/billing_schedule = 301 }/' "$W/shared.lua" >"$W/shared-id.lua"
expect_exit "one schedule named by id (301) and by name: both refused, exit 1" 1 \
  "Contoso EMEA: FAILED: schedule '301' of customer 101 is also tenant contoso.com's \(schedule 301, which it names 'contoso MONTHLY microsoft 365'\)" \
  -- --config shared-id.lua bill --schedules --period 2026-09 --tenant contoso.com,contoso-emea.example
check "by id and by name: Contoso refused too" \
  grep -q "Contoso: FAILED: schedule 'contoso MONTHLY microsoft 365' of customer 101 is also tenant contoso-emea.example's (schedule 301, which it names '301')" "$T_OUT/out"
check "by id and by name: nothing written, Business Premium still 10" test "$(writes) $(sched_qty 503)" = "$W3 ['10.0']"
expect_exit "by id and by name: the tenant naming it by id billed alone is refused" 1 "is also tenant contoso.com's" \
  -- --config shared-id.lua bill --schedules --period 2026-09 --tenant contoso-emea.example
expect_exit "by id and by name: the tenant naming it by name billed alone is refused" 1 "is also tenant contoso-emea.example's" \
  -- --config shared-id.lua bill --schedules --period 2026-09 --tenant contoso.com
check "by id and by name, one tenant at a time: nothing written" test "$(writes) $(sched_qty 503)" = "$W3 ['10.0']"

# a tenant whose config names another schedule now: its lines on the one before are zeroed (they would bill it
# twice), audited, and forgotten; lines entrasync never kept there are not touched
ctl POST schedules '{"id": 310, "customer_id": 101, "name": "Contoso 2027 Microsoft 365", "frequency": "Monthly",
  "next_run": "2026-10-01", "lines": []}' >/dev/null
# sched_qty_of SCHEDULE PRODUCT
sched_qty_of() { ctl GET schedules | py "[l['quantity'] for s in d['schedules'] if s['id']==$1 for l in s['lines'] if l['product_id']==$2]"; }
{ cat "$W/es-sched.lua"; echo 'tenants[1].billing_schedule = "Contoso 2027 Microsoft 365"'; } >"$W/moved.lua"
W4=$(writes)
expect_ok "schedule changed, dry run: the lines on the one before would be set to 0" \
  -- --config moved.lua bill --schedules --period 2026-09 --tenant contoso.com --dry-run
check "schedule changed, dry run: schedule 301 named, its lines' changes shown, nothing sent" \
  sh -c "grep -q \"schedule 301 'Contoso monthly Microsoft 365': the tenant's schedule before: its lines there would be set to 0 (they bill on schedule 310 now)\" '$T_OUT/out' && grep -q 'zero Microsoft 365 Business Premium: quantity 10 -> 0' '$T_OUT/out' && test \"\$(sqlite3 '$W/state/es.db' 'select count(*) from billing_schedule_lines where schedule_id = 301')\" = 2"
check "schedule changed, dry run: nothing written" test "$(writes)" = "$W4"
expect_ok "schedule changed: the new one put in step, the one before zeroed" \
  -- --config moved.lua bill --schedules --period 2026-09 --tenant contoso.com
check "schedule changed: Business Premium 10 on 310, 0 on 301; Managed User (never entrasync's) still 4 on 301" \
  test "$(sched_qty_of 310 503) $(sched_qty 503) $(sched_qty 505)" = "['10.0'] ['0.0'] ['4.0']"
check "schedule changed: an audit row per line zeroed, the lines on 301 no longer kept" \
  test "$(sql "select count(*) from audit where action = 'bill.schedule.zero' and object_id like 'schedule:301/%'") $(sql 'select count(*) from billing_schedule_lines where schedule_id = 301')" = "2 0"
W5=$(writes)
expect_ok "schedule changed: a second run writes nothing" -- --config moved.lua bill --schedules --period 2026-09 --tenant contoso.com
check "schedule changed, second run: nothing sent, 301 not named" sh -c "test \"\$(python3 -c 'import json,urllib.request; print(sum(json.load(urllib.request.urlopen(\"$URL/_fake/stats\"))[\"requests\"][\"writes\"].values()))')\" = $W5 && ! grep -q 'schedule 301' '$T_OUT/out'"
expect_exit "no schedule named any more: said, with the schedule whose lines still bill it, nothing touched" 1 \
  "Contoso: not_configured: no schedule named for the tenant .*; its lines on schedule 310, kept in step before, still bill it" \
  -- $ES bill --schedules --period 2026-09 --tenant contoso.com
check "no schedule named any more: nothing written" test "$(writes) $(sched_qty_of 310 503)" = "$W5 ['10.0']"
# a million seats and more are printed as digits, not as 1e+06
sql "UPDATE license_snapshots SET consumed = 1250000 WHERE tenant_id = 'contoso.com' AND sku_part_number = 'SPB'"
expect_ok "a quantity of a million and more (dry run)" \
  -- --config moved.lua bill --schedules --period 2026-09 --tenant contoso.com --dry-run --allow-decrease
check "a quantity of a million and more: printed plainly" \
  grep -q "update Microsoft 365 Business Premium: quantity 10 -> 1250000$" "$T_OUT/out"
sql "UPDATE license_snapshots SET consumed = 10 WHERE tenant_id = 'contoso.com' AND sku_part_number = 'SPB'"

# bill --schedules on the 1st of a month, before that day's pull: the seats as the month before ended (what the
# schedule was last put in step with), said; a later day of a month without a snapshot: run entrasync pull first
if command -v faketime >/dev/null 2>&1; then
  # at DAY ARGS...: entrasync at DAY 00:10 UTC, output in $T_OUT/out, exit status in $AT_RC
  at() { day=$1; shift; AT_RC=0
    TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "$day 00:10:00" "$ENTRASYNC" "$@" >"$T_OUT/out" 2>"$T_OUT/err" || AT_RC=$?; }
  W6=$(writes)
  at 2026-10-01 --config moved.lua bill --schedules --tenant contoso.com
  check "1st of the month before its pull: exit 0, planned from the month before, nothing to change" \
    sh -c "test $AT_RC = 0 && grep -q \"Contoso: schedule 310 'Contoso 2027 Microsoft 365': 0 changes, 2 lines already right\" '$T_OUT/out' && grep -q 'from the licences of 2026-09: none pulled for the month yet' '$T_OUT/out'"
  check "1st of the month: nothing written" test "$(writes)" = "$W6"
  at 2026-10-02 --config moved.lua bill --schedules --tenant contoso.com
  check "a later day with no snapshot of the month: exit 1, run entrasync pull first" \
    sh -c "test $AT_RC = 1 && grep -q 'Contoso: no_data: no licence snapshot of the tenant in 2026-10 yet: run entrasync pull first' '$T_OUT/out'"
else
  echo "skip - bill --schedules on the 1st of a month needs faketime (apt-get install faketime)"
fi

# ---------------------------------------------------------------- reconciliation
expect_ok "report: table" -- $ES bill --report --period 2026-09 --tenant contoso.com,fabrikam.com
check "report: SPB purchased 25, assigned and peak 10, invoiced 22, 3 not billed, 12 billed not assigned" \
  sh -c "grep -A1 -E '^Contoso +SPB +25 +10 +10 +22 +484.00\$' '$T_OUT/out' | grep -Eq '^    3 purchased not billed \(66.00\); 12 billed not assigned\$'"
check "report: the table fits 80 columns" sh -c "! awk 'length > 80' '$T_OUT/out' | grep -q ."
check "report: Visio without price" sh -c "grep -A1 VISIOCLIENT '$T_OUT/out' | grep -q '^    no price for 2 assigned'"
expect_ok "report: csv" -- $ES bill --report --period 2026-09 --tenant fabrikam.com --format csv
check "report csv: header and Fabrikam's row" \
  sh -c "head -1 '$T_OUT/out' | grep -q '^period,tenant_id,tenant,sku_id' && grep -q '^2026-09,fabrikam.com,Fabrikam,3b555118-da6a-4418-894f-7df1e2096870,O365_BUSINESS_ESSENTIALS,Microsoft 365 Business Basic,billed,12,10,10,10,6.00,60.00,yes,[0-9]*,2,0,no,12.00' '$T_OUT/out'"
expect_ok "report: json" -- $ES bill --report --period 2026-09 --tenant contoso.com,fabrikam.com --json
check "report json: totals" sh -c "python3 -c \"import json; d=json.load(open('$T_OUT/out')); assert d['totals']['billed_cents'] == 484*100+2000+6000, d['totals']; assert d['totals']['leak_cents'] == 6600+1200\""
expect_exit "report: html to a file (Woodgrove's bill() fails: not reconciled, exit 1)" 1 \
  "billing report written to report.html" -- $ES bill --report --period 2026-09 --format html --out report.html
check "report html: the tenant whose bill() fails is said not reconciled, with no rows" \
  sh -c "grep -q 'Woodgrove: bill() could not be planned, so the tenant is not reconciled' report.html && ! grep -q '<td>Woodgrove</td>' report.html"
check "report html: the leaks come first" \
  sh -c "python3 -c \"s=open('report.html').read(); a=s.index('id=\\\"leaks\\\"'); b=s.index('id=\\\"all\\\"'); assert a < b and s.index('VISIOCLIENT') < b\""
check "report html: the problems are listed" grep -q "Northwind: no Syncro customer" report.html
check "report: sent nothing" test "$(writes)" = "$(writes)"

# a month whose snapshots stop early is billed from its last day, and said so
sql "DELETE FROM license_snapshots WHERE tenant_id = 'fabrikam.com' AND day > '2026-09-03'"
expect_ok "snapshots stopping on the 3rd: the plan still made" -- $ES bill --period 2026-09 --tenant fabrikam.com --dry-run
check "snapshots stopping on the 3rd: a warning with the day" \
  grep -q "Fabrikam: the licence snapshots of 2026-09 stop at 2026-09-03 (of 30 days)" "$T_OUT/err"

# one Microsoft tenant listed twice (its domain and its GUID, as the stored organization says): neither is billed
FAB_GUID=2a6b1c4d-7e8f-4a9b-8c0d-1e2f3a4b5c6d
sql "INSERT OR REPLACE INTO kv(key, value, updated_at) VALUES
       ('graph.organization.fabrikam.com', '{\"id\": \"$FAB_GUID\"}', '2026-10-01T00:00:00Z'),
       ('graph.organization.$FAB_GUID', '{\"id\": \"$FAB_GUID\"}', '2026-10-01T00:00:00Z');
     INSERT OR IGNORE INTO tenants(id, name) VALUES ('$FAB_GUID', 'Fabrikam again');
     INSERT INTO license_snapshots(tenant_id, day, sku_id, sku_part_number, enabled, consumed)
       SELECT '$FAB_GUID', day, sku_id, sku_part_number, enabled, consumed FROM license_snapshots WHERE tenant_id = 'fabrikam.com'"
{ cat "$W/es.lua"; echo "tenants[#tenants + 1] = { id = \"$FAB_GUID\", name = \"Fabrikam2\", syncro_customer_id = 102 }"; } >"$W/twice.lua"
BEFORE=$(invoices 102)
expect_exit "a tenant listed twice: exit 1" 1 "" -- --config twice.lua bill --period 2026-09 --tenant "fabrikam.com,$FAB_GUID" --reinvoice
check "listed twice: both refused, each naming the other" \
  sh -c "grep -q 'the same Microsoft tenant as tenant $FAB_GUID of the config: list it once; neither is billed' '$T_OUT/out' '$T_OUT/err' && grep -q 'the same Microsoft tenant as tenant fabrikam.com of the config: list it once' '$T_OUT/out' '$T_OUT/err'"
check "listed twice: no invoice made" test "$(invoices 102)" = "$BEFORE"
