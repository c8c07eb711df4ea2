#!/bin/sh
# test_sync_leavers — what a leaver's mark (p.mark) leaves on a contact.
# Notes near Syncro's limit: the mark still fits (the old notes cut, saying
# so), the user marked, nothing fails. A leaver whose contact was deleted by
# hand: on a plain sync the link is dropped with "nothing left to mark", and
# no verify line (no verify ran). Against both fakes.
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

fakes_alive
