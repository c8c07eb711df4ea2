#!/bin/sh
# test_contrib_docs — the example policies of docs/policies.md work as the
# text says: every block marked <!-- policy: NAME --> is extracted, passes
# `entrasync check`, and dry-runs against the fakes without a policy error;
# the filter examples pick the users they claim (department: only Sales and
# Support; group: only members of "Sync - PSA Contacts"; user type: no
# guests; domain: customer 102 for fabrikam.com); the protect example
# protects the admin account (user show, user disable refused) and the bill
# example drafts an invoice; the man page renders.
. tests/integration/test_status_lib.sh

DOC=$(pwd)/docs/policies.md
MAN=$(pwd)/docs/entrasync.1
ops_start "$T_OUT/docs"
mkdir -p docpol
python3 - "$DOC" docpol <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for name, body in re.findall(r"<!-- policy: (\w+) -->\s*```lua\n(.*?)```", text, re.S):
    open("%s/%s.lua" % (sys.argv[2], name), "w").write(body)
PY
N=$(ls docpol | wc -l)
check "docs/policies.md has the marked examples (5 filters + 7 hooks)" test "$N" = 12

# plan_of NAME TENANT: the dry-run JSON of that tenant with policy NAME (in plan.json)
plan_of() {
  ops_config "p_$1.lua"
  sed -i "s#^policy = .*#policy = \"docpol/$1.lua\"#" "p_$1.lua"
  "$ENTRASYNC" --config "p_$1.lua" sync --dry-run --json --tenant "$2" >plan.json 2>plan.err
}
created_ids() { jpath plan.json '" ".join(a["object_id"] for a in d["tenants"][0]["plan"] if a["action"] == "create")'; }
gjson() { gctl GET "tenants/$1/users/$2"; }

for f in docpol/*.lua; do
  pol=$(basename "$f" .lua)
  ops_config "p_$pol.lua"
  sed -i "s#^policy = .*#policy = \"docpol/$pol.lua\"#" "p_$pol.lua"
  expect_ok "docs example '$pol' passes entrasync check" -- --config "p_$pol.lua" check
  plan_of "$pol" Contoso; rc=$?
  check "docs example '$pol' dry-runs on Contoso without an error (exit $rc)" test $rc = 0
done

plan_of department Contoso
ok=1
for id in $(created_ids); do
  dep=$(gjson contoso "$id" | jq_py 'd.get("department")')
  case "$dep" in Sales|Support) ;; *) ok=0; echo "    $id is in department $dep" ;; esac
done
check "department example: only Sales and Support users planned" test $ok = 1
check "department example: some planned" test -n "$(created_ids)"

plan_of group Contoso
GROUP_MEMBERS=$(sqlite3 state/es.db "select m.object_id from group_members m join groups g on g.tenant_id = m.tenant_id and g.group_id = m.group_id where g.display_name = 'Sync - PSA Contacts'" 2>/dev/null)
ok=1
for id in $(created_ids); do
  echo "$GROUP_MEMBERS" | grep -qx "$id" || { ok=0; echo "    $id is not in the group"; }
done
check "group example: only members of 'Sync - PSA Contacts' planned" test $ok = 1
check "group example: some planned" test -n "$(created_ids)"

plan_of user_type Contoso
ok=1
for id in $(created_ids); do
  t=$(gjson contoso "$id" | jq_py 'd.get("userType")')
  [ "$t" = Member ] || { ok=0; echo "    $id is a $t"; }
done
check "user type example: only members planned" test $ok = 1

plan_of domain Fabrikam
check "domain example: every planned contact is a fabrikam.com address with customer_id 102" \
  test "$(jpath plan.json 'sorted(set((a["after"]["email"].split("@")[1], a["after"]["customer_id"]) for a in d["tenants"][0]["plan"] if a["action"] == "create"))')" = "[('fabrikam.com', '102')]"

# the protect example through `entrasync user`: the admin account is protected
plan_of protect Contoso
ADMIN_UPN=$(gctl GET tenants/contoso/users | jq_py "[u['userPrincipalName'] for u in d['users'] if u['userPrincipalName'].startswith('admin@') and u['_state'] == 'active'][0]")
"$ENTRASYNC" --config p_protect.lua user show "$ADMIN_UPN" >show.out 2>&1
check "protect example: user show says the admin account is protected" grep -q "protected: *yes: break-glass account" show.out
"$ENTRASYNC" --config p_protect.lua user disable "$ADMIN_UPN" --dry-run >dis.out 2>&1; rc=$?
check "protect example: disabling the admin account is refused (exit $rc)" \
  sh -c "test $rc = 1 && grep -q 'refused: the user is protected by the tenant.s policy: break-glass account' dis.out"

# the bill example through `entrasync bill` on this month's licence snapshots (from the pulls above)
ops_config p_bill.lua
sed -i 's#^policy = .*#policy = "docpol/bill.lua"#' p_bill.lua
"$ENTRASYNC" --config p_bill.lua bill --period "$(date -u +%Y-%m)" --open-period --dry-run --tenant Contoso >bill.out 2>&1
check "bill example: a draft for Contoso with the SPE_E3 line, no failure" \
  sh -c "grep -q 'Contoso: DRAFT invoice for customer 101' bill.out && grep -q 'x .*\\[SPE_E3\\]' bill.out && ! grep -q FAILED bill.out"

# the licence hook of the reports example, through `entrasync report`
ops_config p_rep.lua
sed -i 's#^policy = .*#policy = "docpol/reports.lua"#' p_rep.lua
"$ENTRASYNC" --config p_rep.lua pull --tenant Contoso >/dev/null 2>&1
"$ENTRASYNC" --config p_rep.lua report licenses --tenant Contoso --format json >rep.json 2>rep.err
if grep -q "is not called" rep.err; then
  echo "skip - reports example: this build does not call the license hook yet ($(grep -o 'lacks [a-z_]*' rep.err))"
else
  check "reports example: POWER_BI_STANDARD hidden, SPE_E3 priced" \
    test "$(jpath rep.json '(any(l["sku_part_number"] == "POWER_BI_STANDARD" for l in d["tenants"][0]["licenses"]), [l.get("unit_price") for l in d["tenants"][0]["licenses"] if l["sku_part_number"] == "SPE_E3"])')" = "(False, [33.75])"
fi

if command -v man >/dev/null 2>&1 && [ -f "$MAN" ]; then
  check "the man page renders without warnings" sh -c "MANWIDTH=80 man --warnings -l '$MAN' 2>&1 >/dev/null | (! grep .)"
  check "the man page documents every command" sh -c "for c in sync status audit conflicts link unlink daemon metrics check pull tenants; do MANWIDTH=80 man -l '$MAN' 2>/dev/null | grep -q \"^       \$c\" || { echo missing \$c; exit 1; }; done"
else
  echo "skip - man page rendering (man not installed or no docs/entrasync.1)"
fi
