#!/bin/sh
# test_sync_verify — `sync --verify`: each customer's contacts are listed
# and every link checked. Nothing gone: nothing written. A contact deleted
# in Syncro while its user did not change (which a plain sync cannot see):
# its link is dropped and the user created again in the same run; one merged
# into a duplicate: the duplicate adopted; a leaver's: unlinked, nothing
# made. A contact not listed is asked for by id first. The dry run shows it
# all and writes nothing. More not listed than the removal guard allows (a
# list Syncro cut short would look the same): left alone, reported, until
# --allow-removals. One moved to another customer by hand: left alone,
# reported. Another contact with a linked one's e-mail: listed as a
# duplicate (whose it is, when linked), nothing done. A list, or an unlisted
# contact, that cannot be had: left unchecked, reported. Against both fakes.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/verify"
cd "$W" || exit 1
cat >pol.lua <<'PEOF'
local p = require "entrasync.policy"
return {
  include = function(u)
    if p.is_disabled(u) then return false, "account disabled" end
    return p.has_mail(u) and not p.is_guest(u)
  end,
  contact = p.contact,
  on_leave = function(c, why, t) return p.mark("[left]")(c, why, t) end,
}
PEOF
sync_config c.lua pol.lua 6000 "$(demo_tenants Contoso)"
es --config c.lua sync
check "first sync: ok" test "$(sql "select status from runs order by id desc limit 1")" = ok
LINKS=$(sql "select count(*) from links")
check "first sync: users linked" test "$LINKS" -gt 12
# user N of the links, by object id: "object_id contact_id email"
nth_link() { sql "select object_id || ' ' || contact_id || ' ' || json_extract(fields, '\$.email') from links order by object_id limit 1 offset $1"; }
del_contact() { curl -s -X DELETE -H "Authorization: Bearer $SKEY" "$SURL/api/v1/contacts/$1" >/dev/null; }
listings() { sctl GET requests | jq_py "len([r for r in d['requests'] if r['method'] == 'GET' and r['path'] == '/api/v1/contacts'])"; }
link_of() { sql "select contact_id from links where object_id = '$1'"; }
esr() { es "$@"; ES_RC=$?; }   # es, its exit code in ES_RC

# ---- nothing gone: the check costs the listing, writes nothing
clear_log
esr --config c.lua sync --verify
check "nothing gone: exit 0" test "$ES_RC" = 0
check "nothing gone: every link verified" grep -q "^  verified: $LINKS linked contacts in Syncro, 0 gone$" "$T_OUT/out"
check "nothing gone: no write" test "$(all_writes)" = 0
check "nothing gone: the customer listed (one request a page)" test "$(listings)" -ge 1
clear_log
es --config c.lua sync
check "plain sync: no listing" test "$(listings)" = 0

# ---- deleted in Syncro, the users unchanged in Entra
set -- $(nth_link 0); ANN=$1; ANN_C=$2; ANN_MAIL=$3
set -- $(nth_link 1); BO=$1; BO_C=$2; BO_MAIL=$3
set -- $(nth_link 2); CY=$1; CY_C=$2; CY_MAIL=$3
del_contact "$ANN_C"
del_contact "$BO_C"
KEPT=$(sctl POST seed "{\"contacts\":[{\"customer_id\":101,\"name\":\"Kept In Merge\",\"email\":\"$BO_MAIL\"}]}" |
  jq_py "d['created']['contacts'][0]")
clear_log
es --config c.lua sync
check "plain sync: the deleted contacts unseen (nothing made)" test "$(writes contacts.create)" = 0
# Cy leaves (disabled: on_leave marks) and Cy's contact was deleted
del_contact "$CY_C"
gctl POST "tenants/contoso/users/$CY/disable" '{}' >/dev/null

clear_log
esr --config c.lua sync --verify --dry-run
check "dry run: exit 0" test "$ES_RC" = 0
check "dry run: Ann's link to be dropped, Ann created" sh -c "grep -q '^  - .*<$ANN_MAIL>: contact #$ANN_C is gone from Syncro: link to be dropped\$' '$T_OUT/out' && grep -q '^  + .*<$ANN_MAIL>\$' '$T_OUT/out'"
check "dry run: Bo's duplicate to be adopted" grep -q "<$BO_MAIL> (adopt existing contact #$KEPT" "$T_OUT/out"
check "dry run: Cy (left) unlinked, nothing more" sh -c "grep -q '^  - .*<$CY_MAIL>: contact #$CY_C is gone' '$T_OUT/out' && ! grep -q '<$CY_MAIL> (#' '$T_OUT/out'"
check "dry run: three gone" grep -q "^  verified: $((LINKS - 3)) linked contacts in Syncro, 3 gone (their users planned again)$" "$T_OUT/out"
check "dry run: no write, links as they were" test "$(all_writes) $(link_of "$ANN") $(link_of "$BO")" = "0 $ANN_C $BO_C"

clear_log
esr --config c.lua sync --verify --json
check "verify: exit 0" test "$ES_RC" = 0
check "verify: JSON counts" test "$(report 't("Contoso")["verified"]["present"], t("Contoso")["verified"]["gone"], t("Contoso")["created"], t("Contoso")["adopted"]')" = "$((LINKS - 3)), 3, 1, 1"
check "verify: JSON plan names the gone contact" test "$(report '[a["action"] for a in t("Contoso")["plan"] if a.get("gone_contact") == '"$ANN_C"']')" = "['create']"
check "verify: Ann has a new contact" test "$(contacts_with "$ANN_MAIL") $(link_of "$ANN")" != "1 $ANN_C"
check "verify: Ann's new contact linked" test "$(contacts_with "$ANN_MAIL")" = 1 -a -n "$(link_of "$ANN")"
check "verify: Bo linked to the kept duplicate, no second contact" test "$(link_of "$BO") $(contacts_with "$BO_MAIL")" = "$KEPT 1"
check "verify: Cy unlinked, nothing made" test "$(link_of "$CY")x $(contacts_with "$CY_MAIL")" = "x 0"
check "verify: one create" test "$(writes contacts.create)" = 1
check "verify: audit of the three unlinks" test "$(sql "select count(*) from audit where action = 'unlink' and actor = 'entrasync' and result = 'ok' and after like '%sync --verify%'")" = 3
clear_log
esr --config c.lua sync --verify
check "verify again: nothing gone, no write" test "$(all_writes) $(grep -c ' gone from Syncro' "$T_OUT/out")" = "0 0"

# ---- a contact made in Syncro beside a linked one, with its e-mail: listed as a duplicate, nothing done
set -- $(nth_link 10); DUP_C=$2; DUP_MAIL=$3
DUP_UP=$(echo "$DUP_MAIL" | tr '[:lower:]' '[:upper:]')
HAND=$(sctl POST seed "{\"contacts\":[{\"customer_id\":101,\"name\":\"Typed Again\",\"email\":\"$DUP_UP\"}]}" |
  jq_py "d['created']['contacts'][0]")
clear_log
esr --config c.lua sync --verify --json
check "duplicate: exit 0, nothing written" test "$ES_RC $(all_writes)" = "0 0"
check "duplicate: counted and listed in JSON" test "$(report 't("Contoso")["verified"]["duplicates"], len(t("Contoso")["duplicates"])')" = "1, 1"
esr --config c.lua sync --verify
check "duplicate: the line names both contacts and what to do" grep -q "^  duplicate: contact #$DUP_C (.* <$DUP_MAIL>, linked) and contact #$HAND (Typed Again, not linked) of customer 101 have the same e-mail: merge or delete one in Syncro$" "$T_OUT/out"
# the other contact linked to a user of another tenant of the customer: said whose it is
sql "insert into tenants (id, name) values ('other-tenant', 'Other');
  insert into links (tenant_id, object_id, contact_id, customer_id, fields, created_at, updated_at)
  values ('other-tenant', 'u-other', $HAND, 101, '{}', 'x', 'x')"
esr --config c.lua sync --verify
check "duplicate of another tenant's user: said whose" grep -q "^  duplicate: contact #$DUP_C (.* <$DUP_MAIL>, linked) and contact #$HAND (Typed Again, linked to user u-other of tenant other-tenant) of customer 101 " "$T_OUT/out"
sql "delete from links where tenant_id = 'other-tenant'; delete from tenants where id = 'other-tenant'"
del_contact "$HAND"

# ---- a contact not listed that cannot be asked for (not a 404): its link left alone, reported
set -- $(nth_link 11); ASK=$1; ASK_C=$2
del_contact "$ASK_C"
sctl POST faults "{\"method\": \"GET\", \"match\": \"/contacts/$ASK_C\$\", \"status\": 422, \"times\": -1}" >/dev/null
clear_log
esr --config c.lua sync --verify
check "not asked: exit 1, the user and the contact named" sh -c "test $ES_RC = 1 && grep -q 'error: verify: user $ASK: contact #$ASK_C: .*its link is not checked' '$T_OUT/out'"
check "not asked: nothing made, the link kept" test "$(writes contacts.create) $(link_of "$ASK")" = "0 $ASK_C"
sctl DELETE faults >/dev/null
clear_log
esr --config c.lua sync --verify
check "asked again: gone, made again" test "$ES_RC $(writes contacts.create)" = "0 1"

# ---- more gone than the guard allows: left alone until --allow-removals
LINKS=$(sql "select count(*) from links")
for n in 3 4 5 6 7 8; do set -- $(nth_link $n); del_contact "$2"; done
clear_log
esr --config c.lua sync --verify
check "guard: exit 1" test "$ES_RC" = 1
check "guard: the error says why and what releases it" grep -q "verify: 6 of $LINKS linked contacts are not in Syncro's lists, more than the removal guard allows (5): left alone.*--allow-removals" "$T_OUT/out"
check "guard: nothing made, no link dropped, no contact asked for one by one" test "$(writes contacts.create) $(sql "select count(*) from links") $(sctl GET requests | jq_py "len([r for r in d['requests'] if r['method'] == 'GET' and r['path'].startswith('/api/v1/contacts/')])")" = "0 $LINKS 0"
clear_log
esr --config c.lua sync --verify --allow-removals
check "guard released: exit 0, six made again" test "$ES_RC $(writes contacts.create)" = "0 6"

# ---- not listed but there (moved to another customer by hand): left alone, reported
set -- $(nth_link 9); MOVED=$1; MOVED_C=$2; MOVED_MAIL=$3
curl -s -X PUT -H "Authorization: Bearer $SKEY" -H "Content-Type: application/json" -d '{"customer_id": 102}' "$SURL/api/v1/contacts/$MOVED_C" >/dev/null
clear_log
esr --config c.lua sync --verify
check "moved: exit 1, said with what to do" sh -c "test $ES_RC = 1 && grep -q 'verify: user $MOVED: contact #$MOVED_C was moved to Syncro customer 102 by hand; its link and the policy say customer 101: left as is' '$T_OUT/out'"
check "moved: asked for by id, nothing made, the link kept" test "$(sctl GET requests | jq_py "len([r for r in d['requests'] if r['path'] == '/api/v1/contacts/$MOVED_C'])") $(writes contacts.create) $(link_of "$MOVED")" = "1 0 $MOVED_C"
check "moved: one contact with the e-mail" test "$(contacts_with "$MOVED_MAIL")" = 1
curl -s -X PUT -H "Authorization: Bearer $SKEY" -H "Content-Type: application/json" -d '{"customer_id": 101}' "$SURL/api/v1/contacts/$MOVED_C" >/dev/null

# ---- a list that cannot be had: links unchecked, reported
sctl POST faults '{"method": "GET", "match": "/contacts$", "status": 422, "times": -1}' >/dev/null
clear_log
esr --config c.lua sync --verify
check "no list: exit 1, reported" sh -c "test $ES_RC = 1 && grep -q 'verify: .*customer 101.*the links to its contacts are not checked' '$T_OUT/out'"
check "no list: nothing dropped or made" test "$(writes contacts.create) $(sql "select count(*) from links")" = "0 $LINKS"
sctl DELETE faults >/dev/null

check "no duplicate e-mails at the end" test -z "$(dup_emails)"
fakes_alive
