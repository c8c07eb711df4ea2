#!/bin/sh
# test_sync_policy — `entrasync policy test`: offline decisions with their
# reasons on the shipped fixtures (both file shapes), contact fields with
# customer routing, u.groups from "groups"/"memberOf", licences, each
# on_leave form, JSON output, errors (a policy failing on a user, a policy
# that does not load, a bad users file); and every shipped example policy
# loads and decides for every fixture user.
. tests/lib.sh

U=tests/fixtures/users
expect_ok "policy test on the default policy" -- policy test policies/default.lua --users $U/contoso.json --customer 101
check "included with its contact" grep -q 'contact: name = "Adele Vance", email = "adele.vance@contoso.com"' "$T_OUT/out"
check "customer from --customer" grep -q 'customer_id = "101"' "$T_OUT/out"
check "excluded with the reason" grep -q "include: no (guest account)" "$T_OUT/out"
check "disabled: leaves as disabled" grep -A1 "include: no (account disabled)" "$T_OUT/out" | grep -q "leaves as 'disabled'"
check "blank values are never written" grep -q 'title = "" (blank: never written)' "$T_OUT/out"
check "summary line" grep -q "^10 users: 5 included, 5 excluded, 0 policy errors" "$T_OUT/out"
expect_ok "policy test on an array file" -- policy test policies/default.lua --users $U/edge-cases.json
check "non-ASCII names" grep -q 'name = "José Núñez"' "$T_OUT/out"
check "no displayName: given + surname" grep -q 'name = "No Display"' "$T_OUT/out"

expect_ok "by-domain routes to another customer" -- policy test policies/examples/by-domain.lua --users $U/contoso.json --customer 101 --json
check "contoso.co.uk → customer 204" python3 -c "
import json; d = json.load(open('$T_OUT/out'))
m = [u for u in d['users'] if u['user'].startswith('Megan')][0]
a = [u for u in d['users'] if u['user'].startswith('Adele')][0]
assert m['contact']['customer_id'] == '204' and a['contact']['customer_id'] == '101', d"
expect_ok "by-group reads groups and memberOf" -- policy test policies/examples/by-group.lua --users $U/contoso.json --json
check "by-group: members in, others out with the reason" python3 -c "
import json; d = json.load(open('$T_OUT/out'))
inc = sorted(u['user'].split()[0] for u in d['users'] if u['include'])
assert inc == ['Adele', 'Megan'], inc
assert any(u.get('reason') == \"not in 'Sync - PSA Contacts'\" for u in d['users'])"
expect_ok "licences in notes" -- policy test policies/examples/licenses-in-notes.lua --users $U/contoso.json
check "licence names from the SKU ids (part number when the policy has no name)" grep -q 'notes = "Licences: FLOW_FREE, Microsoft 365 E3"' "$T_OUT/out"
expect_ok "on_leave per reason" -- policy test policies/examples/on-leave-mark.lua --users $U/contoso.json --json
check "on_leave: table, mark and keep" python3 -c "
import json; d = json.load(open('$T_OUT/out'))
ol = [u for u in d['users'] if u['user'].startswith('Adele')][0]['on_leave']
assert ol['deleted']['name'] == '[deleted] Adele Vance' and ol['deleted']['phone'] == '', ol
assert ol['disabled']['notes'].startswith('[left] ') and ol['out_of_scope'] == 'keep', ol"
expect_ok "on_leave delete" -- policy test policies/examples/on-leave-delete.lua --users $U/contoso.json
check "on_leave: delete" grep -q "deleted → delete; disabled → delete; out_of_scope → delete" "$T_OUT/out"

for f in policies/examples/*.lua; do
  expect_ok "example $(basename "$f") decides for every fixture user" -- policy test "$f" --users $U/contoso.json --customer 101
  expect_ok "example $(basename "$f") on the edge cases" -- policy test "$f" --users $U/edge-cases.json --customer 101
done

cat > "$T_OUT/boom.lua" <<'P'
return {
  include = function(u) return true end,
  contact = function(u) if u.displayName == "Lee Gu" then error("boom") end return { name = u.displayName } end,
  on_leave = function(c, why) if why == "disabled" then return 42 end return "keep" end,
}
P
expect_exit "a policy failing on a user: exit 1, the others evaluated" 1 "boom.lua:3: boom" -- policy test "$T_OUT/boom.lua" --users $U/contoso.json
check "on_leave errors name on_leave()" grep -q "disabled → error: .*on_leave()" "$T_OUT/out"
check "the other users are evaluated" grep -q "^10 users: 9 included" "$T_OUT/out"
printf 'return { include = function(u) return true end, on_leve = "keep" }\n' > "$T_OUT/typo.lua"
expect_exit "a policy that does not load: exit 2 with file:line" 2 "typo.lua:1: unknown key 'on_leve'" -- policy test "$T_OUT/typo.lua" --users $U/contoso.json
echo '{"users": []}' > "$T_OUT/bad.json"
expect_exit "a users file of another shape: exit 2" 2 "expected Graph users" -- policy test policies/default.lua --users "$T_OUT/bad.json"
expect_exit "missing --users: usage" 2 "missing --users" -- policy test policies/default.lua
expect_exit "unknown subcommand" 2 "unknown subcommand 'tset'.*did you mean 'test'" -- policy tset
