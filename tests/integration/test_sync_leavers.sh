#!/bin/sh
# test_sync_leavers — what a leaver's mark (p.mark) leaves on a contact and
# what a hand-made link gives the next sync. A user who leaves is marked
# ("[left] DATE disabled" above the notes a technician typed); back in scope
# the mark is taken out again (the technician's text kept, also what was
# typed while the user was away) and a second departure is marked again.
# Notes near Syncro's limit: the mark still fits (the old notes cut, saying
# so), the user marked, nothing fails. A leaver whose contact was deleted by
# hand: on a plain sync the link is dropped with "nothing left to mark", and
# no verify line (no verify ran). A contact linked by hand (`entrasync
# link`, a conflict resolved): the next sync's "before" is what Syncro has
# and only the fields that differ are sent. Against both fakes.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/leavers"
cd "$W" || exit 1
cat >pol.lua <<'PEOF'
local p = require "entrasync.policy"
return {
  include = function(u) return p.has_mail(u) and p.is_member(u) and not p.is_disabled(u) end,
  contact = p.contact,
  on_leave = p.mark("[left]"),
}
PEOF
sync_config c.lua pol.lua 6000 "$(demo_tenants Contoso)"
esr() { es "$@"; ES_RC=$?; }   # es, its exit code in ES_RC
# user N of the links, by object id: "object_id contact_id"
nth_link() { sql "select object_id || ' ' || contact_id from links order by object_id limit 1 offset $1"; }
put_contact() {
  curl -s -X PUT -H "Authorization: Bearer $SKEY" -H "Content-Type: application/json" -d "$2" \
    "$SURL/api/v1/contacts/$1" >/dev/null
}
# notes_of ID: the contact's notes as the fake holds them (JSON-quoted)
notes_of() {
  contacts_json | python3 -c '
import json, sys
d = json.load(sys.stdin); items = d.get("contacts", d) if isinstance(d, dict) else d
print(json.dumps([x.get("notes") for x in items if x["id"] == int(sys.argv[1])][0]))' "$1"
}
TODAY=$(date -u +%Y-%m-%d)

esr --config c.lua sync
check "first sync: ok" test "$ES_RC $(sql "select status from runs order by id desc limit 1")" = "0 ok"

# ---- a leaver marked, back in scope: the mark taken out, the technician's text kept; marked again
set -- $(nth_link 0); ANN=$1; ANN_C=$2
put_contact "$ANN_C" '{"notes": "Prefers phone"}'
gctl POST "tenants/contoso/users/$ANN/disable" '{}' >/dev/null
esr --config c.lua sync
check "disabled: marked" test "$ES_RC $(notes_of "$ANN_C")" = "0 \"[left] $TODAY disabled\\nPrefers phone\""
# a technician adds a line while the user is away
put_contact "$ANN_C" "{\"notes\": \"[left] $TODAY disabled\\nPrefers phone\\nLaptop returned\"}"
gctl POST "tenants/contoso/users/$ANN/enable" '{}' >/dev/null
clear_log
esr --config c.lua sync
check "back: one update, the mark taken out, the notes kept" \
  test "$ES_RC $(writes contacts.update) $(notes_of "$ANN_C")" = "0 1 \"Prefers phone\\nLaptop returned\""
check "back: the plan shows the notes going back" grep -q "^      notes: .*\[left\] $TODAY disabled.* → Prefers phone" "$T_OUT/out"
clear_log
esr --config c.lua sync
check "back, next sync: nothing written, no mark recorded" \
  test "$ES_RC $(all_writes) $(sql "select count(*) from links where marked is not null")" = "0 0 0"
gctl POST "tenants/contoso/users/$ANN/disable" '{}' >/dev/null
esr --config c.lua sync
check "left again: marked again" \
  test "$ES_RC $(notes_of "$ANN_C")" = "0 \"[left] $TODAY disabled\\nPrefers phone\\nLaptop returned\""
gctl POST "tenants/contoso/users/$ANN/enable" '{}' >/dev/null
esr --config c.lua sync
check "back again: unmarked again" test "$ES_RC $(notes_of "$ANN_C")" = "0 \"Prefers phone\\nLaptop returned\""

# a contact with no notes before its mark: back, its notes are blank again
set -- $(nth_link 3); DEE=$1; DEE_C=$2
gctl POST "tenants/contoso/users/$DEE/disable" '{}' >/dev/null
esr --config c.lua sync
check "no notes: marked" test "$ES_RC $(notes_of "$DEE_C")" = "0 \"[left] $TODAY disabled\""
gctl POST "tenants/contoso/users/$DEE/enable" '{}' >/dev/null
esr --config c.lua sync
check "no notes, back: the mark taken out" test "$ES_RC $(notes_of "$DEE_C")" = "0 \"\""

# ---- notes near Syncro's limit: the mark fits, the old notes cut (said), the user marked
set -- $(nth_link 1); BO=$1; BO_C=$2
put_contact "$BO_C" "{\"notes\": \"$(python3 -c 'print("x" * 16380)')\"}"
gctl POST "tenants/contoso/users/$BO/disable" '{}' >/dev/null
esr --config c.lua sync
check "long notes: exit 0, marked" sh -c "test $ES_RC = 0 && grep -q ' 1 marked, ' '$T_OUT/out'"
check "long notes: the mark on top, within the limit, the cut said" test "$(notes_of "$BO_C" | python3 -c '
import json, sys
n = json.loads(sys.stdin.read())
print(n.startswith("[left] '"$TODAY"' disabled\nxxx"), len(n.encode()) <= 16384, "cut" in n[-80:])')" = "True True True"
esr --config c.lua sync
check "long notes, again: exit 0, kept" sh -c "test $ES_RC = 0 && grep -q ' 0 marked, .* 0 errors' '$T_OUT/out'"
gctl POST "tenants/contoso/users/$BO/enable" '{}' >/dev/null
esr --config c.lua sync
check "long notes, back: the whole old notes back" test "$ES_RC $(notes_of "$BO_C" | python3 -c '
import json, sys; print(json.loads(sys.stdin.read()) == "x" * 16380)')" = "0 True"

# ---- a leaver's contact deleted by hand, a plain sync: nothing left to mark, no verify line
set -- $(nth_link 2); CY=$1; CY_C=$2
curl -s -X DELETE -H "Authorization: Bearer $SKEY" "$SURL/api/v1/contacts/$CY_C" >/dev/null
gctl POST "tenants/contoso/users/$CY/disable" '{}' >/dev/null
esr --config c.lua sync --dry-run --json
check "deleted leaver, dry run --json: no verified counts" test "$ES_RC $(report '"verified" in t("Contoso")')" = "0 False"
clear_log
esr --config c.lua sync
check "deleted leaver: nothing left to mark" \
  grep -q "#$CY_C.* — contact deleted in Syncro: link dropped, nothing left to mark$" "$T_OUT/out"
check "deleted leaver: no verify line" sh -c "! grep -q 'verified:' '$T_OUT/out'"
check "deleted leaver: unlinked, nothing made" test "$ES_RC $(sql "select count(*) from links where object_id = '$CY'") $(writes contacts.create)" = "0 0 0"

# ---- a conflict linked by hand: the next sync's before is Syncro's, only what differs is sent
gctl POST tenants/contoso/users '{"displayName": "Lee Gu", "givenName": "Lee", "surname": "Gu",
  "mail": "lee.gu@contoso.com", "userPrincipalName": "lee.gu@contoso.com", "accountEnabled": true,
  "userType": "Member", "jobTitle": "Head of Research", "mobilePhone": "425-555-0199"}' >/dev/null
esr --config c.lua sync
check "Lee Gu: a conflict" grep -q "^  ! Lee Gu <lee.gu@contoso.com>: conflict: contacts #1004, #1005 " "$T_OUT/out"
expect_ok "link Lee Gu to #1004" -- --config c.lua link --tenant "$CONTOSO" lee.gu@contoso.com 1004
clear_log
esr --config c.lua sync --json
check "linked by hand: only what differs sent, its before Syncro's" test "$ES_RC $(report '[(a["action"], sorted(a["before"].items()), sorted(a["after"].items())) for a in t("Contoso")["plan"] if a.get("contact_id") == 1004][0]')" = \
  "0 ('update', [('mobile', None), ('title', 'Director')], [('mobile', '425-555-0199'), ('title', 'Head of Research')])"
check "linked by hand: one update" test "$(writes contacts.update)" = 1
check "linked by hand: the audit has what differs only" test "$(sql "select after from audit where contact_id = 1004 and action = 'update'")" = '{"mobile":"425-555-0199","title":"Head of Research"}'
clear_log
esr --config c.lua sync
check "linked by hand, next sync: nothing written" test "$ES_RC $(all_writes)" = "0 0"

fakes_alive
