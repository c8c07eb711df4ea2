#!/bin/sh
# test_sync_second_contact — a linked user's update must not make a second
# contact with an e-mail. A user renamed to an address a contact made by
# hand already has, and a user the policy moves to a customer that already
# has a contact with their e-mail, are conflicts: nothing is written, the
# contact keeps its e-mail and customer, `conflicts` lists the user with
# what resolves it (the dry run says the same). Sorted out in Syncro (the
# other contact deleted), the next sync updates and the conflict closes;
# resolved by `link` to the other contact, the next sync updates that one.
# A conflict also closes by itself when the user's change is undone, or
# when the user is gone; a store that refuses to close it fails the tenant
# saying so (the conflict stays open). A rename whose customer's contacts
# cannot be listed skips the user, saying why, nothing written. The user's
# own contact holding the new address already is no conflict. Two tenants
# feeding one customer: a new user with the address of the other tenant's
# linked user, and two new users with one address in one run (the dry run
# too), are conflicts, not second contacts. Against both fakes.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/second"
cd "$W" || exit 1
# users of department Labs go to customer 102, the others to 101 (the tenant's)
cat >pol.lua <<'PEOF'
local p = require "entrasync.policy"
return {
  include = function(u) return p.has_mail(u) and not p.is_guest(u) end,
  contact = function(u)
    local c = p.contact(u)
    if u.department == "Labs" then c.customer_id = 102 end
    return c
  end,
}
PEOF
sync_config c.lua pol.lua 6000 "$(demo_tenants Contoso)"
es --config c.lua sync
check "first sync: ok" test "$(sql "select status from runs order by id desc limit 1")" = ok
open_conflicts() { sql "select count(*) from conflicts where resolved_at is null"; }
seed_contact() {  # CUSTOMER NAME EMAIL: a contact made by hand; prints its id
  sctl POST seed "{\"contacts\":[{\"customer_id\":$1,\"name\":\"$2\",\"email\":\"$3\"}]}" |
    jq_py "d['created']['contacts'][0]"
}
# contacts_of EMAIL: "id:customer" of every contact with this e-mail (any case), by id
contacts_of() {
  contacts_json | python3 -c '
import json, sys
d = json.load(sys.stdin); items = d.get("contacts", d) if isinstance(d, dict) else d
print(" ".join("%s:%s" % (x["id"], x["customer_id"]) for x in sorted(items, key=lambda x: x["id"])
               if (x.get("email") or "").lower() == sys.argv[1].lower()))' "$1"
}

# ---- renamed to the address of a contact made by hand (same customer)
MIA=$(sql "select object_id from users where json_extract(json, '\$.mail') = 'mia.nguyen@contoso.com'")
MIA_C=$(sql "select contact_id from links where object_id = '$MIA'")
check "Mia is linked" test -n "$MIA_C"
TAKEN=$(seed_contact 101 "Shared Old" "Taken.Address@Contoso.com")
NEW=taken.address@contoso.com
gctl PATCH "tenants/contoso/users/$MIA" "{\"mail\": \"$NEW\"}" >/dev/null

clear_log
es --config c.lua sync --dry-run
check "dry run: a conflict naming the other contact and Mia's" grep -q "^  ! Mia Nguyen <$NEW>: conflict: contact #$TAKEN of customer 101 has the e-mail $NEW already: giving it to the user's contact #$MIA_C would make a second one; nothing written$" "$T_OUT/out"
es --config c.lua sync --dry-run --json
check "--json: the conflict with its candidate, the linked contact and the message" \
  test "$(jq_py "[(a['candidates'], a.get('contact_id'), a['reason'][:20]) for t in d['tenants'] for a in t['plan']
    if a['action'] == 'conflict']" <"$T_OUT/out")" = "[([$TAKEN], $MIA_C, 'contact #$TAKEN of cus')]"
es --config c.lua sync
check "sync: the same conflict" grep -q "^  ! Mia Nguyen <$NEW>: conflict: contact #$TAKEN of customer 101 " "$T_OUT/out"
check "sync: nothing written to Syncro" test "$(all_writes)" = 0
check "one contact with the new address" test "$(contacts_of "$NEW")" = "$TAKEN:101"
check "Mia's contact keeps its e-mail" test "$(contacts_of mia.nguyen@contoso.com)" = "$MIA_C:101"
check "the link keeps what was written" test "$(sql "select json_extract(fields, '\$.email') from links where object_id = '$MIA'")" = mia.nguyen@contoso.com
check "one open conflict" test "$(open_conflicts)" = 1
expect_ok "conflicts" -- --config c.lua conflicts
check "conflicts: the message" grep -q "contact #$TAKEN of customer 101 has the e-mail $NEW already" "$T_OUT/out"
check "conflicts: the candidate" grep -q "candidate contacts: #$TAKEN$" "$T_OUT/out"
check "conflicts: how to resolve it" grep -q "^    resolve: delete or merge in Syncro the contact that is not this person's (the next sync then updates #$MIA_C), or keep a candidate instead: entrasync link --tenant $CONTOSO $MIA CONTACT_ID \[--customer ID\]$" "$T_OUT/out"
expect_ok "conflicts --json" -- --config c.lua conflicts --json
check "conflicts --json: the linked contact" test "$(jq_py "[c['linked_contact'] for c in d]" <"$T_OUT/out")" = "[$MIA_C]"
es --config c.lua sync
check "a second sync: still the conflict, still nothing written" test "$(all_writes)" = 0
check "still one open conflict, not two" test "$(open_conflicts)" = 1

# sorted out in Syncro: the hand-made contact deleted; the next sync updates Mia's and closes the conflict
curl -s -X DELETE -H "Authorization: Bearer $SKEY" "$SURL/api/v1/contacts/$TAKEN" >/dev/null
clear_log
es --config c.lua sync
check "Mia's contact gets the new address" grep -q "^      email: mia.nguyen@contoso.com → $NEW$" "$T_OUT/out"
check "one update, nothing else" test "$(writes contacts.update) $(all_writes)" = "1 1"
check "one contact with the new address: Mia's" test "$(contacts_of "$NEW")" = "$MIA_C:101"
check "the conflict is closed" test "$(open_conflicts)" = 0

# ---- the user's own contact has the new address already (a technician typed it): no conflict
gctl PATCH "tenants/contoso/users/$MIA" '{"mail": "mia.n@contoso.com"}' >/dev/null
curl -s -X PUT -H "Authorization: Bearer $SKEY" -H "Content-Type: application/json" \
  -d '{"name": "Mia Nguyen", "email": "Mia.N@contoso.com"}' "$SURL/api/v1/contacts/$MIA_C" >/dev/null
clear_log
es --config c.lua sync
check "its own contact: an update, not a conflict" grep -q "^  ~ Mia Nguyen <mia.n@contoso.com> (#$MIA_C)$" "$T_OUT/out"
check "no conflict" test "$(open_conflicts)" = 0

# ---- moved by the policy to a customer that has a contact with their e-mail already
MAIL=jonas.lambert@contoso.com
JONAS=$(sql "select object_id from users where json_extract(json, '\$.mail') = '$MAIL'")
JONAS_C=$(sql "select contact_id from links where object_id = '$JONAS'")
OTHER=$(seed_contact 102 "J. Lambert" "Jonas.Lambert@contoso.com")
gctl PATCH "tenants/contoso/users/$JONAS" '{"department": "Labs"}' >/dev/null
clear_log
es --config c.lua sync
check "the move is a conflict" grep -q "^  ! Jonas Lambert <$MAIL>: conflict: contact #$OTHER of customer 102 has the e-mail $MAIL already: moving the user's contact #$JONAS_C there from customer 101 would make a second one; nothing written$" "$T_OUT/out"
check "nothing written" test "$(all_writes)" = 0
check "the contact stays with customer 101" test "$(contacts_of "$MAIL")" = "$JONAS_C:101 $OTHER:102"
# resolved by linking Jonas to the contact customer 102 has
expect_ok "link Jonas to the other contact" -- --config c.lua link --tenant Contoso --customer 102 "$MAIL" "$OTHER"
check "link closes the conflict" test "$(open_conflicts)" = 0
clear_log
es --config c.lua sync
check "the next sync updates that contact" grep -q "^  ~ Jonas Lambert <$MAIL> (#$OTHER)$" "$T_OUT/out"
check "no contact created or moved" test "$(writes contacts.create) $(contacts_of "$MAIL")" = "0 $JONAS_C:101 $OTHER:102"
check "no conflict" test "$(open_conflicts)" = 0

# ---- a conflict closes by itself when the change that made it is undone
SARA=$(sql "select l.object_id from links l join users u on u.object_id = l.object_id
  where json_extract(u.json, '\$.mail') like '%@contoso.com' and l.object_id not in ('$MIA', '$JONAS') limit 1")
SARA_MAIL=$(sql "select json_extract(json, '\$.mail') from users where object_id = '$SARA'")
HELD=$(seed_contact 101 "Front Office" "front.office@contoso.com")
gctl PATCH "tenants/contoso/users/$SARA" '{"mail": "front.office@contoso.com"}' >/dev/null
es --config c.lua sync
check "a rename onto the hand-made contact: a conflict" test "$(open_conflicts)" = 1
gctl PATCH "tenants/contoso/users/$SARA" "{\"mail\": \"$SARA_MAIL\"}" >/dev/null
clear_log
es --config c.lua sync
check "undone: nothing written" test "$(all_writes)" = 0
check "undone: the conflict is closed" test "$(open_conflicts)" = 0
check "the hand-made contact is left alone" test "$(contacts_of front.office@contoso.com)" = "$HELD:101"
check "no duplicate e-mail anywhere" test -z "$(dup_emails)"
check "the store is sound" test "$(sql "pragma integrity_check")" = ok

# ---- the store refuses to close a conflict: the tenant fails saying so, the conflict stays open
gctl PATCH "tenants/contoso/users/$SARA" '{"mail": "front.office@contoso.com"}' >/dev/null
es --config c.lua sync
check "renamed onto it again: a conflict" test "$(open_conflicts)" = 1
gctl PATCH "tenants/contoso/users/$SARA" "{\"mail\": \"$SARA_MAIL\"}" >/dev/null
sql "CREATE TRIGGER no_close BEFORE UPDATE ON conflicts BEGIN SELECT RAISE(ABORT, 'conflicts are read-only here'); END"
es --config c.lua sync; rc=$?
check "a refused close: exit 1, the store's message" sh -c "test $rc = 1 && grep -q 'error: closing the conflict of user $SARA: store: resolving a conflict: conflicts are read-only here' '$T_OUT/out'"
check "a refused close: the conflict stays open" test "$(open_conflicts)" = 1
sql "DROP TRIGGER no_close"
es --config c.lua sync
check "allowed again: the next sync closes it" test "$(open_conflicts)" = 0

# ---- the customer's contacts cannot be listed for a rename: the user is skipped, saying why, nothing written
gctl PATCH "tenants/contoso/users/$SARA" '{"mail": "sara.renamed@contoso.com"}' >/dev/null
sctl POST faults '{"method": "GET", "match": "/contacts$", "status": 422, "times": -1}' >/dev/null
clear_log
es --config c.lua sync; rc=$?
check "no list: exit 1, the user and the listing named" sh -c "test $rc = 1 && grep -q '^  error: .*<sara.renamed@contoso.com>: listing the contacts of Syncro customer 101' '$T_OUT/out'"
check "no list: nothing written, the contact keeps its e-mail" test "$(all_writes) $(sql "select json_extract(fields, '\$.email') from links where object_id = '$SARA'")" = "0 $SARA_MAIL"
sctl DELETE faults >/dev/null
clear_log
es --config c.lua sync
check "listed again: the rename is one update" test "$(all_writes) $(writes contacts.update) $(contacts_with sara.renamed@contoso.com)" = "1 1 1"

# ---- and a new user's conflict (two contacts with their e-mail) closes once the user is gone
seed_contact 101 "Kim One" "kim.new@contoso.com" >/dev/null
seed_contact 101 "Kim Two" "kim.new@contoso.com" >/dev/null
KIM=$(gctl POST tenants/contoso/users '{"displayName": "Kim New", "mail": "kim.new@contoso.com",
  "userPrincipalName": "kim.new@contoso.com", "accountEnabled": true, "userType": "Member"}' | jq_py "d['id']")
es --config c.lua sync
check "a new user with two contacts: a conflict" test "$(sql "select count(*) from conflicts where resolved_at is null and object_id = '$KIM'")" = 1
gctl DELETE "tenants/contoso/users/$KIM" >/dev/null
es --config c.lua sync --dry-run
check "a dry run closes nothing" test "$(open_conflicts)" = 1
es --config c.lua sync
check "the user gone: the conflict is closed" test "$(open_conflicts)" = 0
check "still no duplicate made" test -z "$(dup_emails kim.new@contoso.com)"

# ---- two tenants of one customer, one address: the second user is a conflict, not a second contact
# (Northwind feeds customer 101 too here)
sync_config two.lua pol.lua 6000 "$(demo_tenants Contoso)
  { id = \"$NORTHWIND\", name = \"Northwind\", syncro_customer_id = 101 },"
es --config two.lua sync
check "two tenants, one customer: ok" test "$(sql "select status from runs order by id desc limit 1")" = ok
# Mia (Contoso) has mia.n@contoso.com on her contact; a Northwind user gets that address too
SAME=$(gctl POST tenants/northwind/users '{"displayName": "Mia Nguyen (NW)", "mail": "mia.n@contoso.com",
  "userPrincipalName": "mia.nguyen@northwindtraders.com", "accountEnabled": true, "userType": "Member"}' |
  jq_py "d['id']")
clear_log
es --config two.lua sync
check "the address of a user of the other tenant: a conflict naming that user" grep -q "^  ! Mia Nguyen (NW) <mia.n@contoso.com>: conflict: contact #$MIA_C with this e-mail is linked to user $MIA of tenant $CONTOSO, who has it too: one contact cannot be two users'; leave one of them out of the policy, or give one another address; nothing created$" "$T_OUT/out"
check "no contact created" test "$(writes contacts.create)" = 0
expect_ok "conflicts" -- --config two.lua conflicts --tenant Northwind
check "conflicts: resolved as its message says" grep -q "^    resolve: as the message above says$" "$T_OUT/out"
# two new users with one address, in the two tenants, in one run
gctl POST tenants/contoso/users '{"displayName": "Pat Same", "mail": "pat.same@contoso.com",
  "userPrincipalName": "pat.same@contoso.com", "accountEnabled": true, "userType": "Member"}' >/dev/null
PAT_NW=$(gctl POST tenants/northwind/users '{"displayName": "Pat Same (NW)", "mail": "pat.same@contoso.com",
  "userPrincipalName": "pat.same@northwindtraders.com", "accountEnabled": true, "userType": "Member"}' | jq_py "d['id']")
es --config two.lua sync --dry-run
check "dry run: the first is created" grep -q "^  + Pat Same <pat.same@contoso.com>" "$T_OUT/out"
check "dry run: the second is a conflict on the contact the run would make" grep -q "^  ! Pat Same (NW) <pat.same@contoso.com>: conflict: the contact this run would make for user [0-9a-f-]* of tenant $CONTOSO has this e-mail too: " "$T_OUT/out"
clear_log
es --config two.lua sync
check "sync: one contact created" test "$(writes contacts.create)" = 1
check "sync: the second user is a conflict" grep -q "^  ! Pat Same (NW) <pat.same@contoso.com>: conflict: contact #[0-9]* with this e-mail " "$T_OUT/out"
check "one contact with the address" test "$(contacts_with pat.same@contoso.com)" = 1
check "two open conflicts" test "$(open_conflicts)" = 2
# the policy's business: here the duplicates leave Northwind, and their conflicts close
gctl DELETE "tenants/northwind/users/$SAME" >/dev/null
gctl DELETE "tenants/northwind/users/$PAT_NW" >/dev/null
es --config two.lua sync
check "the other users gone: the conflicts close" test "$(open_conflicts)" = 0
check "no duplicate e-mail in the end (but the two Kim contacts seeded)" test -z "$(dup_emails kim.new@contoso.com)"

# ---- two new users with one address that an unlinked contact has: the first adopts it, the second is a
# conflict on it (it used to get a contact of its own, a duplicate), in the dry run too
ADA_C=$(seed_contact 101 "Ada Shared" "ada.shared@contoso.com")
for n in One Two; do
  gctl POST tenants/contoso/users "{\"displayName\": \"Ada $n\", \"mail\": \"ada.shared@contoso.com\",
    \"userPrincipalName\": \"ada.$n@contoso.com\", \"accountEnabled\": true, \"userType\": \"Member\"}" >/dev/null
done
es --config c.lua sync --dry-run
check "dry run: one adopts the contact" test "$(grep -c "^  ~ Ada [OT][nw][eo] <ada.shared@contoso.com> (adopt existing contact #$ADA_C)" "$T_OUT/out")" = 1
check "dry run: the other is a conflict on the contact adopted" grep -q "^  ! Ada [OT][nw][eo] <ada.shared@contoso.com>: conflict: contact #$ADA_C with this e-mail was adopted by this run for user [0-9a-f-]* of tenant $CONTOSO, who has it too: " "$T_OUT/out"
check "dry run: nothing created" test -z "$(grep '^  + Ada' "$T_OUT/out")"
clear_log
es --config c.lua sync
check "sync: no contact created, one conflict" test "$(writes contacts.create) $(open_conflicts)" = "0 1"
check "sync: one contact with the address" test "$(contacts_with ada.shared@contoso.com)" = 1
es --config c.lua sync
check "the next sync: the same conflict, on the link now" test "$(writes contacts.create) $(open_conflicts)" = "0 1"

# ---- a new user whose e-mail a linked contact has and whose UPN an unlinked one has: adopting that one
# would give it the e-mail too (a second contact), so the user is a conflict on both
gctl POST tenants/contoso/users '{"displayName": "Lin Orig", "mail": "lin@contoso.com",
  "userPrincipalName": "lin@contoso.com", "accountEnabled": true, "userType": "Member"}' >/dev/null
es --config c.lua sync
LIN_C=$(sql "select contact_id from links l join users u on u.object_id = l.object_id where json_extract(u.json, '\$.mail') = 'lin@contoso.com'")
check "Lin is linked" test -n "$LIN_C"
CLONE_C=$(seed_contact 101 "L Clone (typed)" "lin.clone@contoso.com")
LIN2=$(gctl POST tenants/contoso/users '{"displayName": "Lin Clone", "mail": "LIN@contoso.com",
  "userPrincipalName": "lin.clone@contoso.com", "accountEnabled": true, "userType": "Member"}' | jq_py "d['id']")
es --config c.lua sync --dry-run --json
check "dry run: a conflict on the linked contact and the one the UPN found" \
  test "$(jq_py "[(a['candidates'], a['reason'][:40]) for t in d['tenants'] for a in t['plan']
    if a['action'] == 'conflict' and a['object_id'] == '$LIN2']" <"$T_OUT/out")" = "[([$LIN_C, $CLONE_C], 'contact #$LIN_C with this e-mail is linked')]"
clear_log
es --config c.lua sync
check "sync: nothing written" test "$(all_writes)" = 0
check "the typed contact keeps its e-mail" test "$(contacts_of lin.clone@contoso.com)" = "$CLONE_C:101"
check "one contact with Lin's e-mail" test "$(contacts_with lin@contoso.com)" = 1
expect_ok "conflicts" -- --config c.lua conflicts
check "conflicts: both candidates" grep -q "candidate contacts: #$LIN_C #$CLONE_C$" "$T_OUT/out"
check "conflicts: resolved as the message says (not by a link to a contact that is another user's)" \
  sh -c "grep -A4 'Lin Clone' '$T_OUT/out' | grep -q '^    resolve: as the message above says$'"

# ---- more users with the address of a linked contact: every one is a conflict (the contact, taken by the
# first one's match, used to be hidden from the next, which got a contact of its own)
for n in Two Three; do
  gctl POST tenants/contoso/users "{\"displayName\": \"Lin $n\", \"mail\": \"lin@contoso.com\",
    \"userPrincipalName\": \"lin.$n@contoso.com\", \"accountEnabled\": true, \"userType\": \"Member\"}" >/dev/null
done
es --config c.lua sync --dry-run
check "dry run: both new users with Lin's address are conflicts on her contact" \
  test "$(grep -c "^  ! Lin T[a-z]* <lin@contoso.com>: conflict: contact #$LIN_C with this e-mail is linked to user " "$T_OUT/out")" = 2
clear_log
es --config c.lua sync
check "sync: none created, nothing written" test "$(writes contacts.create) $(all_writes)" = "0 0"
check "still one contact with Lin's e-mail" test "$(contacts_with lin@contoso.com)" = 1
es --config c.lua sync
check "the next sync: still none created" test "$(writes contacts.create) $(contacts_with lin@contoso.com)" = "0 1"
