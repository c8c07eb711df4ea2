#!/bin/sh
# test_forget — a customer offboarded, against both fakes: with its entry
# out of the config, `entrasync tenants` lists it apart, status marks it,
# reports leave it out (and say so; --tenant still reports it), no alert
# goes to it; `entrasync tenants forget` refuses a tenant still in the
# config, an unknown or ambiguous one, a held run lock; --dry-run counts
# what the real one then deletes; the real one deletes every row of that
# tenant and nothing of the others, keeps its audit trail (--audit deletes
# it), writes nothing to Syncro; the metrics lose its series; its last
# failure no longer makes status exit 1 once it is out of the config; the next
# sync of the others writes nothing; and the customer taken back later is
# pulled afresh and matched to its Syncro contacts again, without a
# duplicate contact. A tenant's id written in capitals, or given as one of
# its domains instead of its GUID (and back), is the same tenant (for
# `tenants`, `status`, `forget` and the reports before the next pull renames
# its rows); listed twice (GUID and domain), neither entry is synced until
# it is listed once.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/forget"
cd "$W" || exit 1
mail_policy pol.lua
mkconfig c.lua pol.lua
sync_config two.lua pol.lua 6000 "$(demo_tenants Contoso Northwind)"

es --config c.lua sync
check "first sync of the three tenants" test "$(sql "select count(*) from run_tenants where status = 'ok'")" = 3
LINKS_F=$(sql "select count(*) from links where tenant_id = '$FABRIKAM'")
check "Fabrikam has links to its Syncro contacts" test "$LINKS_F" -gt 0
# every table's rows of a tenant, in one line
rows_of() {
  sql "select (select count(*) from tenants where id = '$1') || ' ' || (select count(*) from users where tenant_id = '$1')
    || ' ' || (select count(*) from groups where tenant_id = '$1') || ' ' || (select count(*) from delta_state where tenant_id = '$1')
    || ' ' || (select count(*) from links where tenant_id = '$1') || ' ' || (select count(*) from license_snapshots where tenant_id = '$1')
    || ' ' || (select count(*) from secure_score_snapshots where tenant_id = '$1')
    || ' ' || (select count(*) from intents where tenant_id = '$1') || ' ' || (select count(*) from run_tenants where tenant_id = '$1')
    || ' ' || (select count(*) from tenant_run_counts where tenant_id = '$1')
    || ' ' || (select count(*) from kv where key like '%' || '$1' || '%')"
}
# Fabrikam's last sync failed (as it might, on its way out)
sql "update run_tenants set status = 'failed', reason = 'Syncro customer: gone' where tenant_id = '$FABRIKAM'
  and run_id = (select max(run_id) from run_tenants)"
expect_exit "status: Fabrikam's failure counts while it is in the config" 1 "" -- --config c.lua status
F_BEFORE=$(rows_of "$FABRIKAM")
C_BEFORE=$(rows_of "$CONTOSO")
N_BEFORE=$(rows_of "$NORTHWIND")
AUDIT_F=$(sql "select count(*) from audit where tenant_id = '$FABRIKAM'")
check "Fabrikam has an audit trail" test "$AUDIT_F" -gt 0

# ---- still in the config: refused
expect_exit "forget a tenant still in the config" 2 "" -- --config c.lua tenants forget Fabrikam
check "refused: says it is in the config, where, and what to do" \
  grep -Eq "^entrasync tenants forget: tenant $FABRIKAM \(Fabrikam\) is still in the config \(c\.lua:[0-9]+\): take its entry out of the config first" "$T_OUT/err"
expect_exit "forget by its id while in the config" 2 "" -- --config c.lua tenants forget "$FABRIKAM"
check "nothing deleted" test "$(rows_of "$FABRIKAM")" = "$F_BEFORE"

# ---- out of the config: listed apart, marked, left out of reports
expect_ok "tenants with Fabrikam out of the config" -- --config two.lua tenants
check "tenants: Fabrikam listed after the configured ones" \
  sh -c "grep -n '' '$T_OUT/out' | grep '$FABRIKAM' | grep -q '^4:'"
check "tenants: says how to forget it" \
  grep -q "not in the config any more: 'entrasync tenants forget $FABRIKAM' deletes what the database keeps of it" "$T_OUT/out"
expect_ok "status with Fabrikam out of the config: its old failure no longer counts" -- --config two.lua status
check "status marks it" grep -q "^Fabrikam ($FABRIKAM)  \[not in the config any more\]$" "$T_OUT/out"
check "status: says how to forget it" \
  grep -q "^  'entrasync tenants forget $FABRIKAM' deletes what the database keeps of it$" "$T_OUT/out"
expect_ok "report licenses without Fabrikam" -- --config two.lua report licenses --format csv
check "the report leaves it out" sh -c "! grep -q '$FABRIKAM\|Fabrikam' '$T_OUT/out'"
check "the report has the others" grep -q "Contoso" "$T_OUT/out"
check "the report says what it left out" \
  grep -q "^entrasync report: left out 1 tenant not in the config any more: Fabrikam ($FABRIKAM) ('--tenant ID' reports it" "$T_OUT/err"
expect_ok "report licenses --tenant Fabrikam" -- --config two.lua report licenses --tenant Fabrikam --format csv
check "--tenant still reports it" grep -q "Fabrikam" "$T_OUT/out"
clear_log
expect_exit "report findings --alerts --tenant Fabrikam" 0 "" -- --config two.lua report findings --tenant Fabrikam --alerts
check "no alert goes to a customer out of the config" \
  grep -q "^alert Fabrikam/[a-z_]*: skipped: the tenant is not in the config any more" "$T_OUT/err"
check "Syncro: nothing written by the alerts" test "$(all_writes)" = 0

# ---- refusals
expect_exit "forget an unknown tenant" 2 "" -- --config two.lua tenants forget nosuch.example
check "unknown: named" grep -q "the database holds no tenant 'nosuch.example' (by id, default domain or name" "$T_OUT/err"
expect_exit "forget without a tenant" 2 "" -- --config two.lua tenants forget
expect_exit "--dry-run without forget" 2 "" -- --config two.lua tenants --dry-run
hold_lock state/es.db.lock 60
expect_exit "forget while the run lock is held" 3 "" -- --config two.lua tenants forget Fabrikam
kill "$HOLD_PID" 2>/dev/null; wait "$HOLD_PID" 2>/dev/null
check "nothing deleted by the refusals" test "$(rows_of "$FABRIKAM")" = "$F_BEFORE"

# ---- the dry run, then the real one
expect_ok "forget --dry-run" -- --config two.lua tenants forget fabrikam --dry-run
DRY=$(sed -n 's/^would forget tenant Fabrikam (\(.*\)): /\1: /p' "$T_OUT/out")
check "dry run: what would go" test -n "$DRY"
check "dry run: the users and links counted as the database holds them" \
  grep -q "$(sql "select count(*) from users where tenant_id = '$FABRIKAM'") mirrored users, .*$LINKS_F links to Syncro contacts" "$T_OUT/out"
check "dry run: nothing deleted" test "$(rows_of "$FABRIKAM")" = "$F_BEFORE"
clear_log
expect_ok "forget" -- --config two.lua tenants forget fabrikam
check "the real one deletes what the dry run said" \
  test "$(sed -n 's/^forgot tenant Fabrikam (\(.*\)): /\1: /p' "$T_OUT/out")" = "$DRY"
check "its audit trail is kept, and said so" grep -q "^kept: its $AUDIT_F audit rows" "$T_OUT/out"
check "says Syncro was not touched" grep -q "^Nothing was changed in Syncro or Microsoft 365" "$T_OUT/out"
check "Syncro: no request at all" test "$(sctl GET requests | jq_py "len(d['requests'])")" = 0
check "every row of Fabrikam is gone" test "$(rows_of "$FABRIKAM")" = "0 0 0 0 0 0 0 0 0 0 0"
check "its conflicts, billing and ticket rows too" test "$(sql "select (select count(*) from conflicts where tenant_id = '$FABRIKAM')
  + (select count(*) from billing_invoices where tenant_id = '$FABRIKAM') + (select count(*) from ticket_actions where tenant_id = '$FABRIKAM')")" = 0
check "the audit rows stay" test "$(sql "select count(*) from audit where tenant_id = '$FABRIKAM'")" = "$AUDIT_F"
expect_ok "audit --tenant of the forgotten tenant: its rows still shown" -- --config two.lua audit --tenant "$FABRIKAM" --json
check "audit --tenant of the forgotten tenant: every row" test "$(jq_py "len(d)" <"$T_OUT/out")" = "$AUDIT_F"
check "Contoso untouched" test "$(rows_of "$CONTOSO")" = "$C_BEFORE"
check "Northwind untouched" test "$(rows_of "$NORTHWIND")" = "$N_BEFORE"
check "the database is consistent" test "$(sql "pragma integrity_check; pragma foreign_key_check")" = ok
expect_exit "forget it again" 2 "" -- --config two.lua tenants forget Fabrikam
expect_ok "status after" -- --config two.lua status
check "status: gone" sh -c "! grep -q '$FABRIKAM\|not in the config any more' '$T_OUT/out'"
expect_ok "metrics after" -- --config two.lua metrics
check "metrics: its series are gone" sh -c "! grep -q 'tenant=\"$FABRIKAM\"' '$T_OUT/out'"
check "metrics: the others' are there" grep -q "tenant=\"$CONTOSO\"" "$T_OUT/out"
expect_ok "report after" -- --config two.lua report licenses
check "report: nothing left out any more" sh -c "! grep -q 'left out' '$T_OUT/err'"

clear_log
es --config two.lua sync
check "the next sync of the others: ok" test "$(sql "select status from runs order by id desc limit 1")" = ok
check "the next sync of the others writes nothing" test "$(all_writes)" = 0

# ---- taken back: pulled afresh, matched to its contacts again, no duplicate
clear_log
es --config c.lua sync
check "back in the config: synced" test "$(sql "select status from run_tenants where tenant_id = '$FABRIKAM'
  order by run_id desc limit 1")" = ok
check "its users pulled afresh" test "$(sql "select count(*) from users where tenant_id = '$FABRIKAM'")" -gt 0
check "matched to its Syncro contacts again" \
  test "$(sql "select count(*) from links where tenant_id = '$FABRIKAM'")" = "$LINKS_F"
check "no contact created" test "$(writes create)" = 0
check "no duplicate contact" test -z "$(dup_emails)"

# ---- --audit, and an ambiguous name
sync_config contoso.lua pol.lua 6000 "$(demo_tenants Contoso)"
sql "update tenants set name = 'Twin' where id in ('$FABRIKAM', '$NORTHWIND')"
expect_exit "forget an ambiguous name" 2 "" -- --config contoso.lua tenants forget twin
check "ambiguous: both named, asks for the id" \
  grep -q "'twin' names 2 tenants: .*$FABRIKAM (Twin).*; give the id" "$T_OUT/err"
expect_ok "forget --audit" -- --config contoso.lua tenants forget "$FABRIKAM" --audit
check "--audit: its audit rows are gone too" test "$(sql "select count(*) from audit where tenant_id = '$FABRIKAM'")" = 0
check "--audit: counted in the line" grep -Eq "[0-9]+ audit rows$" "$T_OUT/out"
check "--audit: the others' audit rows stay" test "$(sql "select count(*) from audit where tenant_id = '$CONTOSO'")" -gt 0
# ---- the same tenant written in capitals in the config is still the same tenant
CONTOSO_UP=$(echo "$CONTOSO" | tr a-f A-F)
sync_config upper.lua pol.lua 6000 "  { id = \"$CONTOSO_UP\", name = \"Contoso\", syncro_customer_id = 101 },"
clear_log
es --config upper.lua sync
check "the id in capitals: synced" test "$(sql "select status from runs order by id desc limit 1")" = ok
check "the id in capitals: no contact created" test "$(writes create)" = 0
check "the id in capitals: one Contoso in the database, in lower case" \
  test "$(sql "select group_concat(id) from tenants where lower(id) = '$CONTOSO'")" = "$CONTOSO"
check "the id in capitals: no duplicate contact" test -z "$(dup_emails)"

# ---- the same tenant named by one of its domains, then by its GUID again: one tenant, its links kept
sync_config domain.lua pol.lua 6000 "  { id = \"contoso.com\", name = \"Contoso\", syncro_customer_id = 101 },"
LINKS_C=$(sql "select count(*) from links where tenant_id = '$CONTOSO'")
# before the pull that renames its rows, the database's GUID row is that configured tenant: never "not in the config"
C_GUID=$(rows_of "$CONTOSO")
expect_ok "tenants: the config names Contoso by a domain, the database by its GUID" -- --config domain.lua tenants
check "tenants: the domain's line says which row it is, with that row's users" \
  sh -c "grep -q '^contoso.com .* $(sql "select users_present from tenants where id = '$CONTOSO'")\$' '$T_OUT/out' && grep -q 'known to the database as $CONTOSO: the next pull or sync renames its rows to contoso.com' '$T_OUT/out'"
check "tenants: the GUID row is not offered to forget" sh -c "! grep -q 'tenants forget $CONTOSO' '$T_OUT/out'"
expect_exit "forget it by the config's domain: refused" 2 \
  "tenant contoso.com \\(Contoso\\) is still in the config \\(domain.lua:[0-9]+\\) \\(the database's $CONTOSO is the same Microsoft tenant, named another way\\)" \
  -- --config domain.lua tenants forget contoso.com
expect_exit "forget it by the database's GUID: refused" 2 "is still in the config" -- --config domain.lua tenants forget "$CONTOSO"
check "nothing of it deleted" test "$(rows_of "$CONTOSO")" = "$C_GUID"
expect_ok "report licenses: the config names Contoso by a domain, the database by its GUID" -- \
  --config domain.lua report licenses --format csv
check "report: Contoso is reported, not left out as a tenant out of the config" \
  sh -c "grep -q '^$CONTOSO,' '$T_OUT/out' && ! grep -q 'left out.*$CONTOSO' '$T_OUT/err'"
check "report: its rows are not renamed by a report" test "$(rows_of "$CONTOSO")" = "$C_GUID"
es --config domain.lua status
check "status: shown as configured, the rename said" \
  sh -c "! grep -q '$CONTOSO.*not in the config any more' '$T_OUT/out' && grep -q 'the config names it contoso.com: the next pull or sync renames its rows to that' '$T_OUT/out'"
clear_log
es --config domain.lua sync
check "by its domain: synced" test "$(sql "select status from runs order by id desc limit 1")" = ok
check "by its domain: says the database knew it by its GUID" \
  grep -q "tenant contoso.com: the database knew this Microsoft tenant as $CONTOSO: its rows (links to Syncro contacts, history) now go by contoso.com" "$T_OUT/err"
check "by its domain: its links moved" test "$(sql "select count(*) from links where tenant_id = 'contoso.com'")" = "$LINKS_C"
check "by its domain: no row left under the GUID" test "$(sql "select count(*) from tenants where id = '$CONTOSO'")" = 0
check "by its domain: no contact created" test "$(writes create)" = 0
clear_log
es --config c.lua sync
check "by its GUID again: renamed back" test "$(sql "select count(*) from links where tenant_id = '$CONTOSO'")" = "$LINKS_C"
check "by its GUID again: no contact created" test "$(writes create)" = 0
check "by its GUID again: no duplicate contact" test -z "$(dup_emails)"
check "the database is still consistent" test "$(sql "pragma integrity_check; pragma foreign_key_check")" = ok
# report --alerts (the run lock held) renames the rows first, as a pull does: its alerts go to its customer
clear_log
expect_ok "report findings --alerts --dry-run: the config names Contoso by a domain, the database by its GUID" -- \
  --config domain.lua report findings --alerts --dry-run
check "--alerts: Contoso's alerts are planned, not skipped as out of the config" \
  sh -c "! grep -q '^alert Contoso/.*not in the config any more' '$T_OUT/err' && grep -q '^alert Contoso/' '$T_OUT/err'"
check "--alerts: its rows renamed first" test "$(sql "select count(*) from links where tenant_id = 'contoso.com'")" = "$LINKS_C"
check "--alerts --dry-run: nothing written to Syncro" test "$(all_writes)" = 0
es --config c.lua pull   # by its GUID again

# ---- the rename fails on a database error (here a trigger refuses it): the run does not start, nothing is
# half renamed, and once the database lets it the next run renames as before
LINKS_C=$(sql "select count(*) from links where tenant_id = '$CONTOSO'")
sql "create trigger no_rename before update of tenant_id on links begin select raise(abort, 'refused by the test'); end"
clear_log
es --config domain.lua sync
REKEY_RC=$?
check "rename refused: exit 3 (could not start)" test "$REKEY_RC" = 3
check "rename refused: says what failed" \
  grep -q "^entrasync sync: tenant contoso.com: the database knew this Microsoft tenant as $CONTOSO, and renaming its rows to the config's id failed (none was renamed): store: renaming a tenant: refused by the test$" "$T_OUT/err"
check "rename refused: nothing sent to Syncro" test "$(all_writes)" = 0
check "rename refused: every row still under the GUID" test "$(sql "select count(*) from links where tenant_id = '$CONTOSO'")
$(sql "select count(*) from tenants where id = 'contoso.com'")" = "$LINKS_C
0"
es --config domain.lua pull
check "rename refused: pull does not start either" test "$?" = 3
sql "drop trigger no_rename"
clear_log
es --config domain.lua sync
check "let through: the next sync renames and syncs" test "$(sql "select count(*) from links where tenant_id = 'contoso.com'") $(writes create)" = "$LINKS_C 0"
es --config c.lua sync
check "and back by its GUID" test "$(sql "select count(*) from links where tenant_id = '$CONTOSO'")" = "$LINKS_C"

# ---- the same tenant listed twice (its GUID, then its domain): neither is synced until it is listed once
sync_config twice.lua pol.lua 6000 "$(demo_tenants Contoso)
  { id = \"contoso.com\", name = \"Contoso again\", syncro_customer_id = 101 },"
clear_log
es --config twice.lua sync
TWICE_RC=$?
check "listed twice: exit 1" test "$TWICE_RC" = 1
check "listed twice: a warning before the pull" \
  grep -q "tenants $CONTOSO and contoso.com of the config are the same Microsoft tenant" "$T_OUT/err"
check "listed twice: the second fails, saying why" \
  grep -q "the same Microsoft tenant as tenant $CONTOSO (line [0-9]* of the config): list it once; neither is synced until then" "$T_OUT/out"
check "listed twice: the first fails too (under two ids its rows would split)" \
  test "$(sql "select status from run_tenants where tenant_id = '$CONTOSO' order by run_id desc limit 1")" = failed
check "listed twice: no contact created" test "$(writes create)" = 0
check "listed twice: no duplicate contact" test -z "$(dup_emails)"
fakes_alive
