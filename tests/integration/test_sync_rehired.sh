#!/bin/sh
# test_sync_rehired — an account deleted in Entra and made again with the
# same address (a returning employee, an account rebuilt): the new user's
# e-mail matches the contact still linked to the deleted user (on_leave
# "keep"). The sync must not create a second contact with that e-mail: the
# new user is a conflict naming the contact, its holder and the command that
# frees it (dry run and real run alike); `conflicts` lists it; once the
# deleted user is unlinked, the next sync adopts the contact for the new
# user, updates only what differs and closes the conflict. The same when
# the old account is still there but out of the policy's scope (disabled,
# in another tenant of the same customer: a migration). Against both fakes.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/rehired"
cd "$W" || exit 1
mail_policy pol.lua
sync_config c.lua pol.lua 6000 "$(demo_tenants Contoso)"
MAIL=jonas.lambert@contoso.com

es --config c.lua sync
check "first sync: ok" test "$(sql "select status from runs order by id desc limit 1")" = ok
OLD=$(sql "select object_id from users where json_extract(json, '\$.mail') = '$MAIL'")
CONTACT=$(sql "select contact_id from links where object_id = '$OLD'")
check "the user is linked to a contact" test -n "$CONTACT"
check "one contact with the address" test "$(contacts_with "$MAIL")" = 1

# the account is deleted, and made again with the same address
gctl DELETE "tenants/contoso/users/$OLD" >/dev/null
gctl POST tenants/contoso/users '{"displayName": "Jonas Lambert", "givenName": "Jonas", "surname": "Lambert",
  "mail": "'$MAIL'", "userPrincipalName": "'$MAIL'", "accountEnabled": true, "userType": "Member",
  "jobTitle": "Returning Analyst"}' >/dev/null

clear_log
es --config c.lua sync --dry-run
check "dry run: a conflict, not a create" \
  grep -q "^  ! Jonas Lambert <$MAIL>: conflict: contact #$CONTACT with this e-mail is linked to user $OLD of tenant $CONTOSO, deleted from the directory: 'entrasync unlink --tenant $CONTOSO $OLD' lets the next sync adopt it for this user; nothing created$" "$T_OUT/out"
check "dry run: nothing created" grep -q " 0 created, " "$T_OUT/out"
es --config c.lua sync --dry-run --json
check "--json: the conflict with its one candidate and its message" test "$(jq_py "[(a['candidates'], a['reason'][:42])
  for t in d['tenants'] for a in t['plan'] if a['action'] == 'conflict']" <"$T_OUT/out")" = \
  "[([$CONTACT], 'contact #$CONTACT with this e-mail is linked t')]"

es --config c.lua sync
check "sync: the same conflict" grep -q "^  ! Jonas Lambert <$MAIL>: conflict: contact #$CONTACT " "$T_OUT/out"
check "sync: no contact created" test "$(writes create)" = 0
check "still one contact with the address" test "$(contacts_with "$MAIL")" = 1
check "the deleted user's contact is kept (on_leave keep)" grep -q " 1 kept, 1 conflict, " "$T_OUT/out"
expect_ok "conflicts" -- --config c.lua conflicts
check "conflicts: listed with what to do" \
  grep -q "contact #$CONTACT with this e-mail is linked to user $OLD of tenant $CONTOSO, deleted from the directory" "$T_OUT/out"
check "conflicts: the contact as candidate" grep -q "candidate contacts: #$CONTACT" "$T_OUT/out"
check "conflicts: resolved by the unlink, not by link" \
  sh -c "grep -q '^    resolve: as the message above says$' '$T_OUT/out' &&
    ! grep -q 'resolve: entrasync link' '$T_OUT/out'"
es --config c.lua sync
check "a second sync: still a conflict, still no create" test "$(writes create)" = 0
check "one open conflict, not two" test "$(sql "select count(*) from conflicts where resolved_at is null")" = 1

# freed as the message says: the next sync adopts it
expect_ok "unlink the deleted user" -- --config c.lua unlink --tenant "$CONTOSO" "$OLD"
clear_log
es --config c.lua sync
check "the contact adopted for the new user" grep -q "^  ~ Jonas Lambert <$MAIL> (adopt existing contact #$CONTACT)" "$T_OUT/out"
check "only what differs is written" grep -q "^      title: .* → Returning Analyst$" "$T_OUT/out"
NEW=$(sql "select object_id from users where json_extract(json, '\$.mail') = '$MAIL' and removed is null")
check "linked to the new user" test "$(sql "select object_id from links where contact_id = $CONTACT")" = "$NEW"
check "no contact created" test "$(writes create)" = 0
check "still one contact with the address" test "$(contacts_with "$MAIL")" = 1
check "the conflict is closed" test "$(sql "select count(*) from conflicts where resolved_at is null")" = 0

# ---- moved between two tenants of one customer (a tenant-to-tenant migration): the old account is
# still there, disabled (out of the policy's scope: its contact kept), the new one has its address
cat >enabled.lua <<'PEOF'
local p = require "entrasync.policy"
return {
  include = function(u) return p.has_mail(u) and not p.is_guest(u) and not p.is_disabled(u) end,
  contact = p.contact,
}
PEOF
sync_config two.lua enabled.lua 6000 "$(demo_tenants Northwind)
  { id = \"$FABRIKAM\", name = \"Fabrikam\", syncro_customer_id = 103 },"
es --config two.lua sync
check "Northwind and Fabrikam (one Syncro customer here): ok" test "$(sql "select status from runs order by id desc limit 1")" = ok
MOVED=$(sql "select json_extract(json, '\$.mail') from users u join links l on l.tenant_id = u.tenant_id
  and l.object_id = u.object_id where u.tenant_id = '$NORTHWIND' order by 1 limit 1")
MOVED_OLD=$(sql "select object_id from users where tenant_id = '$NORTHWIND' and json_extract(json, '\$.mail') = '$MOVED'")
MOVED_CONTACT=$(sql "select contact_id from links where tenant_id = '$NORTHWIND' and object_id = '$MOVED_OLD'")
gctl POST "tenants/northwind/users/$MOVED_OLD/disable" >/dev/null
es --config two.lua sync
check "the old account disabled: its contact kept" grep -q " 1 kept, " "$T_OUT/out"
gctl POST tenants/fabrikam/users '{"displayName": "Moved User", "mail": "'$MOVED'", "userPrincipalName": "'$MOVED'",
  "accountEnabled": true, "userType": "Member"}' >/dev/null
clear_log
es --config two.lua sync
check "the new account in the other tenant: a conflict naming the old one, out of scope" \
  grep -q "conflict: contact #$MOVED_CONTACT with this e-mail is linked to user $MOVED_OLD of tenant $NORTHWIND, who left the policy's scope (disabled or excluded): 'entrasync unlink --tenant $NORTHWIND $MOVED_OLD'" "$T_OUT/out"
check "no contact created for it" test "$(writes create)" = 0
check "still one contact with its address" test "$(contacts_with "$MOVED")" = 1
fakes_alive
