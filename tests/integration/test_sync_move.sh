#!/bin/sh
# test_sync_move — a policy that moves contacts to a Syncro customer that
# does not exist (a mistyped customer_id): Syncro answers the update 404,
# which is not taken for a contact deleted in Syncro: the contact is asked
# for, found, left where it is with its link, and the run says the customer
# is missing; once the policy names a real customer the same contacts move
# there, none made twice.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/sync_move" --rate-limit 0
cd "$W" || exit 1
mail_policy policy.lua
mkconfig c.lua "$W/policy.lua"
expect_ok "a first sync" -- --config c.lua sync
# the Northwind users of one department go to another customer
DEPT=$(sql "select json_extract(json, '\$.department') from users where tenant_id = '$NORTHWIND' and removed is null and json_extract(json, '\$.mail') is not null and json_extract(json, '\$.department') is not null group by 1 order by count(*) desc limit 1")
N=$(sql "select count(*) from users u join links l on l.tenant_id = u.tenant_id and l.object_id = u.object_id where u.tenant_id = '$NORTHWIND' and json_extract(u.json, '\$.department') = '$DEPT'")
check "some linked Northwind users in $DEPT ($N)" test "$N" -ge 1
move_policy() {
  cat >move.lua <<PEOF
local p = require "entrasync.policy"
return {
  include = function(u) return p.has_mail(u) and not p.is_guest(u) end,
  contact = function(u)
    local c = p.contact(u)
    if u.department == "$DEPT" then c.customer_id = $1 end
    return c
  end,
}
PEOF
}
move_policy 9999
sed "s|{ id = \"$NORTHWIND\", name = \"Northwind\", syncro_customer_id = 103 }|{ id = \"$NORTHWIND\", name = \"Northwind\", syncro_customer_id = 103, policy = \"$W/move.lua\" }|" c.lua >m.lua
contacts_total() { contacts_json | jq_py 'len(d.get("contacts", d) if isinstance(d, dict) else d)'; }
BEFORE=$(contacts_total)
links_n() { sql "select count(*) from links where tenant_id = '$NORTHWIND'"; }
LINKS=$(links_n)
expect_exit "customer 9999 does not exist: exit 1" 1 "Syncro customer 9999 \(the policy's customer_id\) not found: contact #[0-9]+ stays with customer 103, its link kept" -- --config m.lua sync
check "not taken for contacts deleted in Syncro" sh -c "! grep -q 'deleted in Syncro' '$T_OUT/out'"
check "every link kept" test "$(links_n)" = "$LINKS"
check "nothing made" test "$(contacts_total)" = "$BEFORE"
check "the audit says invalid, not a dropped link" test "$(sql "select count(*) from audit where result like 'not_found: deleted in Syncro%'")" = 0
# the policy mended: a real customer
sctl POST customers '{"id": 150, "business_name": "Northwind HR Services", "email": "hr@northwind.example"}' >/dev/null
move_policy 150
expect_ok "customer 150: the same contacts move" -- --config m.lua sync
check "no contact made: the same ones moved" test "$(contacts_total)" = "$BEFORE"
check "they are with customer 150 now" test "$(sql "select count(*) from links where tenant_id = '$NORTHWIND' and customer_id = 150")" = "$N"
check "no duplicate contact" test -z "$(dup_emails)"
