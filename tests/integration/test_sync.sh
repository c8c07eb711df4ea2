#!/bin/sh
# test_sync — `entrasync sync` end to end against the fake Graph and the
# fake Syncro: a dry run sends no write (the fake's request log), the first
# sync creates and adopts (one contact with the e-mail, in another case) and
# reports a conflict (two contacts), a second run sends zero writes, an
# incremental change is one update, each on_leave outcome (delete, mark,
# keep) and a user who comes back, the removal and empty-source guards and
# --allow-removals, 422 recorded and the run goes on, 404 on update drops
# the link and the user is planned again (created, or a merged duplicate
# adopted), a leaver's deleted contact, a bad policy in one tenant
# while the others sync, --tenant, --json, the run lock (exit 3), a 401.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/sync" --rate-limit 0
cd "$W" || exit 1
ES=$ENTRASYNC
es() { "$ES" "$@" >"$T_OUT/out" 2>"$T_OUT/err"; }

cat >policy.lua <<'EOF'
local p = require "entrasync.policy"
return {
  include = function(u, t)
    if u.department == "Contractors" then return false, "contractor" end
    if p.is_disabled(u) then return false, "account disabled" end
    if p.is_guest(u) or not p.has_mail(u) then return false, "guest or no mail" end
    local svc, why = p.is_service_account(u)
    if svc then return false, why end
    return true
  end,
  contact = p.contact,
  on_leave = function(c, why, t)
    if why == "deleted" then return "delete" end
    if why == "disabled" then return p.mark("[left]")(c, why, t) end
    return "keep"
  end,
}
EOF
mkconfig c.lua "$W/policy.lua"

# ---- dry run: the plan, no write
clear_log
expect_ok "dry run exits 0" -- --config c.lua sync --dry-run
check "dry run prints creates per tenant" grep -q "^  + .*@contoso.com" "$T_OUT/out"
check "dry run says nothing is written" grep -q "dry run: nothing is written" "$T_OUT/out"
check "dry run sent no write to Syncro" test "$(all_writes)" = 0
expect_ok "dry run --json" -- --config c.lua sync --dry-run --json
check "dry run JSON has the tenants with counts" test "$(report 'len(d["tenants"]), t("Contoso")["status"], t("Contoso")["created"] > 10, d["dry_run"]')" = "3, ok, True, True"
planned create "$CONTOSO" > creates.txt
A_ID=$(sed -n 1p creates.txt | cut -d' ' -f1); A_MAIL=$(sed -n 1p creates.txt | cut -d' ' -f2)
B_ID=$(sed -n 2p creates.txt | cut -d' ' -f1); B_MAIL=$(sed -n 2p creates.txt | cut -d' ' -f2)
C_ID=$(sed -n 3p creates.txt | cut -d' ' -f1); C_MAIL=$(sed -n 3p creates.txt | cut -d' ' -f2)
D_ID=$(sed -n 4p creates.txt | cut -d' ' -f1); D_MAIL=$(sed -n 4p creates.txt | cut -d' ' -f2)
N_CONTOSO=$(wc -l < creates.txt)
check "the dry run plans Contoso users" test "$N_CONTOSO" -gt 8

# existing contacts: A with its e-mail in upper case and another name (adopt),
# B twice (conflict)
A_UP=$(echo "$A_MAIL" | tr '[:lower:]' '[:upper:]')
sctl POST seed "{\"contacts\":[
  {\"id\":2001,\"customer_id\":101,\"name\":\"Old Name\",\"email\":\"$A_UP\",\"mobile\":\"+1 555 0000\"},
  {\"id\":2002,\"customer_id\":101,\"name\":\"B one\",\"email\":\"$B_MAIL\"},
  {\"id\":2003,\"customer_id\":101,\"name\":\"B two\",\"email\":\"$B_MAIL\"}]}" >/dev/null
expect_ok "dry run shows the adoption and the conflict" -- --config c.lua sync --dry-run
check "dry run: adopt line with the name change" grep -q "adopt existing contact #2001" "$T_OUT/out"
check "dry run: field: old → new" grep -q "name: Old Name → " "$T_OUT/out"
check "dry run: conflict with both candidates" grep -q "! .*conflict: contacts #2002, #2003" "$T_OUT/out"
check "still no write" test "$(all_writes)" = 0

# ---- first sync
clear_log
expect_ok "first sync exits 0" -- --config c.lua sync
check "first sync created contacts" test "$(writes contacts.create)" -ge $((N_CONTOSO + 10))
check "A adopted: one contact with its e-mail" test "$(contacts_with "$A_MAIL")" = 1
check "A adopted: its name updated" test "$(contact_field "$A_MAIL" name)" != "Old Name"
check "A adopted: fields Entra lacks kept" test "$(contact_field "$A_MAIL" mobile)" != ""
check "B: conflict, nothing created" test "$(contacts_with "$B_MAIL")" = 2
check "B: conflict reported" grep -q "conflict: contacts #2002, #2003" "$T_OUT/out"
check "no duplicate e-mails in Syncro" test -z "$(dup_emails "$B_MAIL")"
check "conflict recorded in the store" test "$(sqlite3 state/es.db "select count(*) from conflicts where resolved_at is null")" = 1
check "audit rows with before/after" test "$(sqlite3 state/es.db "select count(*) from audit where action = 'adopt' and before like '%Old Name%'")" = 1
check "intents all closed" test "$(sqlite3 state/es.db "select count(*) from intents where state in ('pending','sent')")" = 0

# ---- second run: zero writes
clear_log
expect_ok "second sync exits 0" -- --config c.lua sync
check "second sync sends zero writes" test "$(all_writes)" = 0
check "second sync: of the customers given by id only one is asked for (the run's check of the API token)" test "$(sctl GET requests | jq_py "len([r for r in d['requests'] if r['path'].startswith('/api/v1/customers/')])")" = 1
check "second sync reports unchanged" grep -q "0 created, 0 adopted, 0 updated.*0 Syncro writes sent" "$T_OUT/out"

# ---- a policy change re-plans every user from the store (no write when nothing differs)
echo "-- the same policy, another hash" >> policy.lua
clear_log
expect_ok "policy changed: sync" -- --config c.lua sync --json
check "policy changed: reported, every user re-planned" test "$(report 't("Contoso")["policy_changed"], t("Contoso")["unchanged"] > 20')" = "True, True"
check "policy changed: zero writes" test "$(all_writes)" = 0
expect_ok "policy unchanged again" -- --config c.lua sync --json
check "policy unchanged: not reported" test "$(report 't("Contoso")["policy_changed"]')" = "False"

# ---- incremental: one change in Entra, one update
gctl PATCH "tenants/contoso/users/$C_ID" '{"jobTitle":"Chief Test Officer"}' >/dev/null
clear_log
expect_ok "incremental sync" -- --config c.lua sync
check "incremental: exactly one write, an update" test "$(all_writes) $(writes contacts.update)" = "1 1"
check "incremental: the title changed in Syncro" test "$(contact_field "$C_MAIL" title)" = "Chief Test Officer"
check "incremental: field: old → new shown" grep -q "title: .* → Chief Test Officer" "$T_OUT/out"

# ---- on_leave: disabled → mark, deleted → delete, out of scope → keep
# a technician typed a note into C's contact in Syncro: the mark goes above it, never over it
C_CONTACT=$(sql "select contact_id from links where object_id = '$C_ID'")
curl -s -X PUT -H "Authorization: Bearer $SKEY" -H "Content-Type: application/json" \
  -d '{"notes": "VIP: call before any change"}' "$SURL/api/v1/contacts/$C_CONTACT" >/dev/null
gctl POST "tenants/contoso/users/$C_ID/disable" '{}' >/dev/null
gctl POST "tenants/contoso/users/$D_ID/soft-delete" '{}' >/dev/null
gctl PATCH "tenants/contoso/users/$A_ID" '{"department":"Contractors"}' >/dev/null
clear_log
expect_ok "leavers sync" -- --config c.lua sync
check "disabled: marked ([left] in notes)" test "$(contact_field "$C_MAIL" notes | head -c 6)" = '[left]'
check "disabled: the technician's note kept under the mark" \
  test "$(contact_field "$C_MAIL" notes)" = "[left] $(date -u +%Y-%m-%d) disabled
VIP: call before any change"
check "disabled: the plan shows the notes as Syncro had them" grep -q "notes: VIP: call before any change → \[left\] $(date -u +%Y-%m-%d) disabled" "$T_OUT/out"
check "disabled: so does the audit" test "$(sql "select json_extract(before, '\$.notes') from audit where contact_id = $C_CONTACT and action = 'mark'")" = "VIP: call before any change"
check "leavers: the contact read once before the mark" \
  test "$(sctl GET requests | jq_py "len([r for r in d['requests'] if r['method'] == 'GET' and r['path'] == '/api/v1/contacts/$C_CONTACT'])")" = 1
check "deleted: contact deleted in Syncro" test "$(contacts_with "$D_MAIL")" = 0
check "out of scope: contact kept" test "$(contacts_with "$A_MAIL")" = 1
check "leavers: one update and one delete" test "$(writes contacts.update) $(writes contacts.delete) $(writes contacts.create)" = "1 1 0"
check "leavers shown with why" grep -q "(#[0-9]*, deleted: delete)" "$T_OUT/out"
clear_log
expect_ok "leavers again: nothing more to do" -- --config c.lua sync
check "marks are not written twice" test "$(all_writes)" = 0

# ---- a leaver whose contact was deleted in Syncro: read for the mark, found gone; nothing is sent to it,
# the link is dropped, and the dry run says the same
E_ID=$(sed -n 5p creates.txt | cut -d' ' -f1)
E_CONTACT=$(sql "select contact_id from links where object_id = '$E_ID'")
curl -s -X DELETE -H "Authorization: Bearer $SKEY" "$SURL/api/v1/contacts/$E_CONTACT" >/dev/null
gctl POST "tenants/contoso/users/$E_ID/disable" '{}' >/dev/null
clear_log
expect_ok "a leaver whose contact is gone: dry run" -- --config c.lua sync --dry-run
check "dry run: the link to be dropped, no mark planned" \
  sh -c "grep -q '(#$E_CONTACT, disabled) — contact deleted in Syncro: link to be dropped, nothing left to mark\$' '$T_OUT/out' && ! grep -q '#$E_CONTACT, disabled: marked' '$T_OUT/out'"
clear_log
expect_ok "a leaver whose contact is gone: sync" -- --config c.lua sync
check "sync: no write sent to the gone contact, the link dropped" \
  test "$(all_writes) $(sql "select count(*) from links where object_id = '$E_ID'")" = "0 0"

# ---- they come back: updated, never duplicated
gctl POST "tenants/contoso/users/$C_ID/enable" '{}' >/dev/null
gctl PATCH "tenants/contoso/users/$A_ID" '{"department":"Sales","jobTitle":"Back Again"}' >/dev/null
clear_log
expect_ok "comeback sync" -- --config c.lua sync
check "comeback: no create" test "$(writes contacts.create)" = 0
check "comeback: A updated" test "$(contact_field "$A_MAIL" title)" = "Back Again"
check "comeback: one contact each" test "$(contacts_with "$A_MAIL") $(contacts_with "$C_MAIL")" = "1 1"

# ---- removal guard: 6 of ~28 linked contacts deleted > max(5, 10%)
tail -n 6 creates.txt | cut -d' ' -f1 > gone.txt
while read -r id; do gctl POST "tenants/contoso/users/$id/soft-delete" '{}' >/dev/null; done < gone.txt
gctl PATCH "tenants/contoso/users/$C_ID" '{"jobTitle":"Still Updated"}' >/dev/null
clear_log
expect_exit "guard: tenant held, exit 1" 1 "held: 6 of [0-9]+ linked contacts" -- --config c.lua sync
check "guard: no delete sent" test "$(writes contacts.delete)" = 0
check "guard: other actions still applied" test "$(contact_field "$C_MAIL" title)" = "Still Updated"
check "guard: the others tenants ok" grep -q "^  = ok" "$T_OUT/out"
es --config c.lua sync --json
check "guard: JSON status held with the reason" test "$(report 't("Contoso")["status"], t("Contoso")["held"], "linked" in t("Contoso")["reason"]')" = "held, 6, True"
clear_log
expect_ok "guard: --allow-removals releases it" -- --config c.lua sync --allow-removals
check "guard: the 6 deletes sent" test "$(writes contacts.delete)" = 6

# ---- empty source: Graph has no users while links exist
gctl GET "tenants/northwind" >/dev/null
sqlite3 state/es.db "select object_id from users where tenant_id = '$NORTHWIND' and removed is null" > nw.txt
while read -r id; do gctl POST "tenants/northwind/users/$id/soft-delete" '{}' >/dev/null; done < nw.txt
clear_log
expect_exit "empty source: held" 1 "no users while [0-9]+ contacts are linked" -- --config c.lua sync --tenant Northwind
check "empty source: nothing deleted or marked" test "$(all_writes)" = 0

# ---- --tenant and unknown tenants
expect_exit "--tenant unknown: usage error" 2 "unknown tenant 'Nope'" -- --config c.lua sync --tenant Nope
expect_ok "--tenant by name" -- --config c.lua sync --tenant fabrikam --dry-run
check "--tenant: only that tenant" test "$(grep -c '^  = ' "$T_OUT/out")" = 1

# ---- 422: recorded against the contact, the run goes on
gctl POST tenants/fabrikam/users '{"displayName":"Bad Mail","mail":"bad.mail@fabrikam","userPrincipalName":"bad.mail@fabrikam.com","accountEnabled":true,"userType":"Member"}' >/dev/null
gctl POST tenants/fabrikam/users '{"displayName":"Good Mail","mail":"good.mail@fabrikam.com","userPrincipalName":"good.mail@fabrikam.com","accountEnabled":true,"userType":"Member"}' >/dev/null
clear_log
expect_exit "422: exit 1" 1 "Bad Mail.*invalid.*Email is not an email" -- --config c.lua sync --tenant Fabrikam
check "422: the other new user created" test "$(contacts_with good.mail@fabrikam.com)" = 1
check "422: audit row of the failure" test "$(sqlite3 state/es.db "select count(*) from audit where result like 'invalid:%'")" = 1
BAD_ID=$(gctl GET tenants/fabrikam/users | jq_py "[u['id'] for u in d['users'] if u.get('mail') == 'bad.mail@fabrikam'][0]")
gctl PATCH "tenants/fabrikam/users/$BAD_ID" '{"mail":"bad.mail@fabrikam.com"}' >/dev/null
clear_log
expect_ok "422: mended in Entra, created by the next run" -- --config c.lua sync --tenant Fabrikam
check "422: one create, the mended address" test "$(writes contacts.create) $(contacts_with bad.mail@fabrikam.com)" = "1 1"

# ---- 404 on update (the contact deleted in Syncro): link dropped, the user
# planned again in the same run: created again, or, when a technician merged
# the contact into another with the e-mail, that one adopted; a leaver's mark
# on a deleted contact: link dropped, nothing to mark. None is an error.
FAB=$(sqlite3 state/es.db "select object_id || ' ' || contact_id from links where tenant_id = '$FABRIKAM' order by object_id limit 1")
FAB_ID=${FAB% *}; FAB_CONTACT=${FAB#* }
FAB_MAIL=$(sqlite3 state/es.db "select json_extract(fields, '\$.email') from links where object_id = '$FAB_ID'")
curl -s -X DELETE -H "Authorization: Bearer $SKEY" "$SURL/api/v1/contacts/$FAB_CONTACT" >/dev/null
gctl PATCH "tenants/fabrikam/users/$FAB_ID" '{"jobTitle":"Renamed Role"}' >/dev/null
clear_log
expect_ok "404 on update: the run is ok" -- --config c.lua sync --tenant Fabrikam
check "404: said in the plan, not as a failure" grep -q "(#$FAB_CONTACT) — contact deleted in Syncro: link dropped, the user planned again" "$T_OUT/out"
check "404: no error" test "$(grep -c '^  error:\|FAILED' "$T_OUT/out")" = 0
check "404: created again in the same run" test "$(writes contacts.create) $(contacts_with "$FAB_MAIL")" = "1 1"
check "404: the new contact has the new title" test "$(contact_field "$FAB_MAIL" title)" = "Renamed Role"
NEW_CONTACT=$(sqlite3 state/es.db "select contact_id from links where object_id = '$FAB_ID'")
check "404: linked to the new contact" test -n "$NEW_CONTACT" -a "$NEW_CONTACT" != "$FAB_CONTACT"
check "404: audit of the update's 404 and of the create" test "$(sqlite3 state/es.db "select group_concat(action || ':' || substr(result, 1, 9), ' ') from (select action, result from audit where object_id = '$FAB_ID' order by id desc limit 2)")" = "create:ok update:not_found"
clear_log
expect_ok "404: the next run" -- --config c.lua sync --tenant Fabrikam
check "404: the next run writes nothing" test "$(all_writes)" = 0

# merged in Syncro: the linked contact deleted, a hand-made one with the e-mail kept
FAB2=$(sqlite3 state/es.db "select object_id || ' ' || contact_id from links where tenant_id = '$FABRIKAM' and object_id > '$FAB_ID' order by object_id limit 1")
FAB2_ID=${FAB2% *}; FAB2_CONTACT=${FAB2#* }
FAB2_MAIL=$(sqlite3 state/es.db "select json_extract(fields, '\$.email') from links where object_id = '$FAB2_ID'")
sctl POST seed "{\"contacts\":[{\"id\":2901,\"customer_id\":102,\"name\":\"Kept In Merge\",\"email\":\"$FAB2_MAIL\"}]}" >/dev/null
curl -s -X DELETE -H "Authorization: Bearer $SKEY" "$SURL/api/v1/contacts/$FAB2_CONTACT" >/dev/null
gctl PATCH "tenants/fabrikam/users/$FAB2_ID" '{"jobTitle":"Merged Role"}' >/dev/null
clear_log
expect_ok "merged: the run is ok" -- --config c.lua sync --tenant Fabrikam
check "merged: the kept contact adopted, nothing created" test "$(writes contacts.create) $(grep -c "adopt existing contact #2901" "$T_OUT/out")" = "0 1"
check "merged: linked to the kept contact" test "$(sqlite3 state/es.db "select contact_id from links where object_id = '$FAB2_ID'")" = 2901
check "merged: one contact with the e-mail, with the new title" test "$(contacts_with "$FAB2_MAIL") $(contact_field "$FAB2_MAIL" title)" = "1 Merged Role"

# a leaver (disabled: on_leave marks) whose contact was deleted in Syncro
FAB3=$(sqlite3 state/es.db "select object_id || ' ' || contact_id from links where tenant_id = '$FABRIKAM' and object_id > '$FAB2_ID' order by object_id limit 1")
FAB3_ID=${FAB3% *}; FAB3_CONTACT=${FAB3#* }
curl -s -X DELETE -H "Authorization: Bearer $SKEY" "$SURL/api/v1/contacts/$FAB3_CONTACT" >/dev/null
gctl POST "tenants/fabrikam/users/$FAB3_ID/disable" '{}' >/dev/null
clear_log
expect_ok "deleted leaver: the run is ok" -- --config c.lua sync --tenant Fabrikam
check "deleted leaver: said, nothing sent, nothing made" test "$(grep -c "(#$FAB3_CONTACT, disabled) — contact deleted in Syncro: link dropped, nothing left to mark$" "$T_OUT/out") $(grep -c "verified:" "$T_OUT/out") $(all_writes)" = "1 0 0"
check "deleted leaver: link dropped" test "$(sqlite3 state/es.db "select count(*) from links where object_id = '$FAB3_ID'")" = 0
gctl POST "tenants/fabrikam/users/$FAB3_ID/enable" '{}' >/dev/null

# ---- a bad policy in one tenant; the others sync
printf 'return {\n  include = function(u) return true end,\n  contact = function(u) return { name = u.displayName } end,\n  on_leve = "keep",\n}\n' > bad.lua
mkconfig c2.lua "$W/policy.lua" 6000
sed -i "s|{ id = \"$NORTHWIND\", name = \"Northwind\", syncro_customer_id = 103 }|{ id = \"$NORTHWIND\", name = \"Northwind\", syncro_customer_id = 103, policy = \"$W/bad.lua\" }|" c2.lua
gctl PATCH "tenants/fabrikam/users/$FAB_ID" '{"jobTitle":"Other Role"}' >/dev/null
clear_log
expect_exit "bad policy: exit 1 naming file:line" 1 "bad.lua:4: unknown key 'on_leve'" -- --config c2.lua sync
check "bad policy: the other tenants synced" test "$(writes contacts.update)" = 1
es --config c2.lua sync --json
check "bad policy: JSON failed vs ok" test "$(report 't("Northwind")["status"], t("Contoso")["status"]')" = "failed, ok"

# ---- a policy that fails at run time: the error on one line, its traceback folded (not '?' for its line breaks)
printf 'return {\n  include = function(u) return true end,\n  contact = function(u)\n    return { name = u.nothing.x }\n  end,\n}\n' > rt.lua
mkconfig c4.lua "$W/policy.lua" 6000
sed -i "s|{ id = \"$CONTOSO\", name = \"Contoso\", syncro_customer_id = 101 }|{ id = \"$CONTOSO\", name = \"Contoso\", syncro_customer_id = 101, policy = \"$W/rt.lua\" }|" c4.lua
expect_exit "a run-time policy error: exit 1" 1 "" -- --config c4.lua sync
check "run-time policy error: its line and its traceback, on one line" \
  grep -q "rt.lua:4: attempt to index a nil value (field 'nothing') (traceback: [^ ]*rt.lua:4: in " "$T_OUT/out"
check "run-time policy error: no line break shown as '?'" sh -c "! grep -q '?stack traceback' '$T_OUT/out'"

# ---- a tenant whose token fails (app not consented there); the others sync
mkconfig c3.lua "$W/policy.lua" 6000 '{ id = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", name = "Woodgrove", syncro_customer_id = 101 },'
es --config c3.lua sync --json
check "token failure: exit 1" test $? = 1
check "token failure: Woodgrove failed with AADSTS700016, the others ok" test "$(report 't("Woodgrove")["status"], "700016" in t("Woodgrove")["reason"], t("Fabrikam")["status"] != "failed" or t("Fabrikam")["errors"] != [], t("Contoso")["status"]')" = "failed, True, True, ok"

# ---- the run lock
hold_lock state/es.db.lock 300   # held until killed
expect_exit "a second concurrent sync exits 3" 3 "another entrasync run \\(pid $HOLD_PID\\) holds the lock" -- --config c.lua sync
kill "$HOLD_PID" 2>/dev/null; wait "$HOLD_PID" 2>/dev/null

# ---- 401: clear message, the run stops
sctl POST config '{"api_key":"another-key"}' >/dev/null
expect_exit "401: exit 1 with the permissions" 1 "401.*API token" -- --config c.lua sync
# a token revoked while nothing is to be written, every customer mapped by id and verified: still found out
sctl POST config "{\"api_key\":\"$SKEY\"}" >/dev/null
sync_config c5.lua "$W/policy.lua" 6000 "  { id = \"$FABRIKAM\", name = \"Fabrikam\", syncro_customer_id = 102 },"
es --config c5.lua sync
clear_log
es --config c5.lua sync
check "nothing to write for Fabrikam, and (before) no request at all" test "$(all_writes)" = 0
sctl POST config '{"api_key":"another-key"}' >/dev/null
expect_exit "401 with nothing to write: found out all the same (one customer asked a run)" 1 "401.*API token" -- --config c5.lua sync
sctl POST config "{\"api_key\":\"$SKEY\"}" >/dev/null
check "secrets never printed" sh -c "! grep -q '$SKEY\|$SECRET' '$T_OUT/out' '$T_OUT/err'"
check "no duplicate e-mails at the end" test -z "$(dup_emails "$B_MAIL")"
