#!/bin/sh
# test_discover — `entrasync tenants discover` (the CSP partner's customers,
# whether each is mapped and reachable, ready-to-paste config entries with
# the Syncro customer suggested) against the fake Graph (partner tenant
# tailspin-it.com) and the fake Syncro: a config with no tenants yet, names
# Syncro holds twice or only in another form, a customer whose
# /organization is denied, entries that stay valid Lua whatever the names
# hold, contact-domain ties, token failures, contracts that went and the
# partner's own tenant configured.
# (The first discover checks live in test_pull.sh.)
. tests/lib.sh
. tests/integration/fakes_lib.sh

HERE=$PWD
graph_test test_discover discover --seed 1   # W, URL, ctl METHOD PATH [JSON]
fake_start syncro "$W" "$HERE/tests/fakes/fake_syncro.py" --api-key k --data none --rate-limit 0
fake_url SYN syncro
syn() { fake_ctl "$SYN" "$@"; }
cd "$W" || exit 1
echo 'local p = require "entrasync.policy" return { include = function(u) return true end, contact = p.contact }' >policy.lua
ROLES='"User.Read.All", "GroupMember.Read.All", "Organization.Read.All", "SecurityEvents.Read.All", "Directory.Read.All"'
# every customer reachable (Woodgrove's consent is missing in the demo data) until the end
ctl POST "tenants/woodgrove/grants/$CID" "{\"consent\": true, \"roles\": [$ROLES]}" >/dev/null

# mkconfig FILE [TENANT-LINES]: graph, syncro, policy and csp; tenants only
# when TENANT-LINES are given ("-" for an empty tenants = {}).
mkconfig() {
  cat >"$1" <<EOF
database = "state/es.db"
graph = { client_id = "$CID", client_secret = "$SECRET", authority = "$URL", endpoint = "$URL" }
syncro = { base_url = "$SYN/api/v1", api_key = "k" }
policy = "policy.lua"
csp = { partner_tenant = "tailspin-it.com" }
EOF
  case ${2:-} in
    '') ;;
    -) echo 'tenants = {}' >>"$1" ;;
    *) printf 'tenants = {\n%s\n}\n' "$2" >>"$1" ;;
  esac
}

# ---------------------------------------------------------------- no tenants yet
# A new partner runs discover before the config lists any tenant (operations.md, step 3).
mkconfig none.lua
expect_ok "discover: a config without tenants" -- --config none.lua tenants discover
check "discover without tenants: every customer offered" \
  sh -c "grep -c '^{ id = ' '$T_OUT/out' | grep -qx 4"
mkconfig empty.lua -
expect_ok "discover: a config with tenants = {}" -- --config empty.lua tenants discover
expect_exit "check still wants tenants" 2 "tenants is missing" -- --config none.lua check
expect_exit "check still wants tenants (empty)" 2 "tenants is empty" -- --config empty.lua check
expect_exit "tenants (the list) still wants them" 2 "tenants is missing" -- --config none.lua tenants
expect_exit "sync still wants them" 2 "tenants is missing" -- --config none.lua sync

# ---------------------------------------------------------------- Syncro by name
# Syncro holds the name twice, in capitals (non-ASCII letters), or with
# punctuation: discover says what the sync would, not "create it".
ctl POST tenants '{"key": "dup", "id": "c0ffee00-0000-4000-8000-0000000000d1", "displayName": "Dup Co", "domain": "dup.example", "users": 2}' >/dev/null
ctl POST tenants '{"key": "aero", "id": "c0ffee00-0000-4000-8000-0000000000a1", "displayName": "Ærø Bådebyggeri ApS", "domain": "aero.example", "users": 2}' >/dev/null
ctl POST tenants '{"key": "acme", "id": "c0ffee00-0000-4000-8000-0000000000a2", "displayName": "Acme Inc", "domain": "acme.example", "users": 2}' >/dev/null
syn POST seed '{"customers": [{"id": 202, "business_name": "Dup Co"}, {"id": 203, "business_name": "DUP CO"},
  {"id": 204, "business_name": "Acme, Inc."}, {"id": 205, "business_name": "ÆRØ BÅDEBYGGERI APS"}]}' >/dev/null
expect_ok "discover: names Syncro holds in other forms" -- --config none.lua tenants discover
check "discover: a name two customers have: both ids, set syncro_customer_id (not: create it)" \
  grep -q '^{ id = "c0ffee00-0000-4000-8000-0000000000d1", name = "Dup Co", syncro_customer = "Dup Co" },  -- dup.example; CHECK IN SYNCRO: no customer has its domains; 2 customers have this business name: 202 .Dup Co., 203 .DUP CO.; set the tenant.s syncro_customer_id to the one to use$' "$T_OUT/out"
check "discover: the name in capitals, non-ASCII letters too, is the same name" \
  grep -q '^{ id = "c0ffee00-0000-4000-8000-0000000000a1", name = "Ærø Bådebyggeri ApS", syncro_customer_id = 205 },  -- aero.example; ÆRØ BÅDEBYGGERI APS, by name$' "$T_OUT/out"
check "discover: a name with other punctuation is listed as similar" \
  grep -q '^{ id = "c0ffee00-0000-4000-8000-0000000000a2", name = "Acme Inc", syncro_customer = "Acme Inc" },  -- acme.example; CHECK IN SYNCRO: no customer has its domains; no customer has this business name (similar: 204 .Acme, Inc..); set' "$T_OUT/out"
# the sync finds the customer by the name in another case the same way
mkconfig aero.lua '{ id = "aero.example", syncro_customer = "Ærø Bådebyggeri ApS" },'
expect_ok "sync: a tenant named by its Syncro customer's name in other capitals" -- --config aero.lua sync --dry-run --tenant aero.example
check "sync: ... finds that customer" grep -q 'Syncro customer #205' "$T_OUT/out"

# ---------------------------------------------------------------- /organization denied
# Consent without permissions: a token, and every read denied. Discover says
# so; a tenant configured by a verified domain that is not its default one
# is still known as mapped by what its last pull stored.
mkconfig other.lua '{ id = "contosoltd2716.onmicrosoft.com", syncro_customer_id = 101 },'
expect_ok "a pull of a tenant configured by another verified domain" -- --config other.lua pull
ctl POST "tenants/contoso/grants/$CID" '{"roles": []}' >/dev/null
es --config other.lua tenants discover; echo $? >"$T_OUT/rc"
check "discover: a token that reads nothing is not 'token: ok'" \
  sh -c "grep '^  $CONTOSO ' '$T_OUT/out' | grep -q 'token: ok, but\$' && grep -A1 '^  $CONTOSO ' '$T_OUT/out' | grep -q '/organization denied: missing Organization.Read.All, and /users is denied too: every Graph read will be'"
check "discover: ... the tenant is known as mapped by its last pull" \
  sh -c "grep '^  $CONTOSO ' '$T_OUT/out' | grep -q ' mapped ' && ! grep -q '^{ id = \"$CONTOSO\"' '$T_OUT/out'"
check "discover: ... exits 1 (a customer it cannot read)" test "$(cat "$T_OUT/rc")" = 1
# User.Read.All alone (what a contact sync needs): usable, its licences and domains not: a note, exit 0
ctl POST "tenants/contoso/grants/$CID" '{"roles": ["User.Read.All"]}' >/dev/null
es --config other.lua tenants discover; echo $? >"$T_OUT/rc"
check "discover: User.Read.All alone is usable, said so, exit 0" \
  sh -c "test \"\$(cat '$T_OUT/rc')\" = 0 && grep -A1 '^  $CONTOSO ' '$T_OUT/out' | grep -q '/organization denied: missing Organization.Read.All: the users can be read (the sync works)'"
ctl POST "tenants/contoso/grants/$CID" "{\"roles\": [$ROLES]}" >/dev/null

# ---------------------------------------------------------------- entries stay valid Lua
# Names with control characters (a CR, a tab, a newline in a Syncro
# customer's name): every entry is still one line, and the lines pasted
# into tenants = { } make a config that loads.
ctl POST tenants '{"key": "ctrl", "id": "c0ffee00-0000-4000-8000-0000000000c1", "displayName": "Tab\tCo\r\nLtd\u0001", "domain": "ctrl.example", "users": 2}' >/dev/null
syn POST seed '{"customers": [{"id": 210, "business_name": "Ctrl\nCo -- x\r"}], "contacts": [{"customer_id": 210, "name": "a", "email": "a@ctrl.example"}]}' >/dev/null
es --config none.lua tenants discover
check "discover: control characters escaped in the entry, none in its comment" \
  grep -q '^{ id = "c0ffee00-0000-4000-8000-0000000000c1", name = "Tab\\tCo\\r\\nLtd\\001", syncro_customer_id = 210 },  -- ctrl.example; Ctrl Co -- x , by contact domain ctrl.example (1 contact)$' "$T_OUT/out"
{ sed '/^tenants/d' none.lua; echo 'tenants = {'; grep '^{ id = ' "$T_OUT/out"; echo '}'; } >pasted.lua
expect_ok "discover: the entries pasted make a config that loads" -- --config pasted.lua check

# ---------------------------------------------------------------- tokens, contracts, exit status
expect_ok "discover: every customer reachable, exit 0" -- --config other.lua tenants discover
# no consent in one customer, a token endpoint that stays unavailable for another
ctl DELETE "tenants/woodgrove/grants/$CID" >/dev/null
ctl POST faults '{"kind": "token", "tenant": "fabrikam", "status": 503, "retry_after": "0", "times": 0}' >/dev/null
expect_exit "discover: exit 1 when a customer cannot be reached" 1 "" -- --config none.lua tenants discover
check "discover: no consent: the entry says to grant it" \
  grep -q "^{ id = \"$WOODGROVE\", .* (no token yet: grant admin consent first)\$" "$T_OUT/out"
check "discover: a token endpoint unavailable: its own reason, not consent" \
  sh -c "grep '^{ id = \"$FABRIKAM\"' '$T_OUT/out' | grep -q '(token failed: .*HTTP 503.*)\$' && ! grep '^{ id = \"$FABRIKAM\"' '$T_OUT/out' | grep -q consent"
ctl DELETE faults >/dev/null
ctl POST "tenants/woodgrove/grants/$CID" "{\"consent\": true, \"roles\": [$ROLES]}" >/dev/null
# ---------------------------------------------------------------- contact-domain ties and sums
ctl POST tenants '{"key": "tie", "id": "c0ffee00-0000-4000-8000-0000000000e1", "displayName": "Tie Co", "domain": "tie.example", "users": 2}' >/dev/null
ctl POST tenants '{"key": "named", "id": "c0ffee00-0000-4000-8000-0000000000e2", "displayName": "Named Co", "domain": "named.example", "users": 2}' >/dev/null
ctl POST tenants '{"key": "sum", "id": "c0ffee00-0000-4000-8000-0000000000e3", "displayName": "Sum Co", "domain": "sum.example", "users": 2}' >/dev/null
SUM_INITIAL=$(ctl GET tenants/sum | jq_py '[x for x in d["domains"] if x.endswith(".onmicrosoft.com")][0]')
syn POST seed '{"customers": [{"id": 220, "business_name": "Alpha"}, {"id": 221, "business_name": "Beta"},
    {"id": 222, "business_name": "Other"}, {"id": 223, "business_name": "NAMED CO"},
    {"id": 224, "business_name": "S1"}, {"id": 225, "business_name": "S2"}],
  "contacts": [{"customer_id": 220, "name": "a", "email": "a@tie.example"}, {"customer_id": 220, "name": "b", "email": "b@tie.example"},
    {"customer_id": 221, "name": "c", "email": "c@tie.example"}, {"customer_id": 221, "name": "d", "email": "d@TIE.example"},
    {"customer_id": 222, "name": "e", "email": "e@named.example"}, {"customer_id": 223, "name": "f", "email": "f@named.example"},
    {"customer_id": 224, "name": "g", "email": "g@sum.example"}, {"customer_id": 224, "name": "h", "email": "h@sum.example"},
    {"customer_id": 225, "name": "i", "email": "i@sum.example"}, {"customer_id": 225, "name": "j", "email": "j@'"$SUM_INITIAL"'"},
    {"customer_id": 225, "name": "k", "email": "k@'"$SUM_INITIAL"'"}]}' >/dev/null
expect_ok "discover: contact-domain ties and sums" -- --config none.lua tenants discover
check "discover: a tie in contacts is said, with both customers" \
  grep -q "^{ id = \"c0ffee00-0000-4000-8000-0000000000e1\", name = \"Tie Co\", syncro_customer = \"Tie Co\" },  -- tie.example; CHECK IN SYNCRO: 2 customers have 2 contacts each in its domains: 220 'Alpha', 221 'Beta'; set the tenant's syncro_customer_id to the one to use\$" "$T_OUT/out"
check "discover: a tie broken by the tenant's name" \
  grep -q "^{ id = \"c0ffee00-0000-4000-8000-0000000000e2\", name = \"Named Co\", syncro_customer_id = 223 },  -- named.example; NAMED CO, by contact domain named.example (1 contact; as many as another customer's, and its name is the tenant's)\$" "$T_OUT/out"
check "discover: contacts summed over the tenant's domains" \
  grep -q "^{ id = \"c0ffee00-0000-4000-8000-0000000000e3\", name = \"Sum Co\", syncro_customer_id = 225 },  -- sum.example; S2, by contact domains .*sum.example.* (3 contacts)\$" "$T_OUT/out"

# ---------------------------------------------------------------- the listing's columns
cat >columns.py <<'PY'
import re, sys
rows = [l.rstrip("\n") for l in open(sys.argv[1], encoding="utf-8") if re.match(r"  [0-9a-f-]{36}  ", l)]
at = {l.index("mapped") - (4 if "not mapped" in l else 0) for l in rows}
sys.exit(0 if len(rows) >= 8 and len(at) == 1 and not any("\t" in l for l in rows) else 1)
PY
es --config none.lua tenants discover   # Northwind's domain is 36 characters long
check "discover: the listing's columns line up for long domains and non-ASCII names; control characters are spaces" \
  python3 columns.py "$T_OUT/out"

# ---------------------------------------------------------------- a configured customer whose contract went
ctl DELETE "tenants/partner/contracts/$NORTHWIND" >/dev/null
mkconfig gone.lua "{ id = \"$NORTHWIND\", name = \"Northwind\", syncro_customer_id = 103 },"
expect_ok "discover: a configured tenant no longer in /contracts" -- --config gone.lua tenants discover
check "discover: ... is said to be no customer any more" \
  grep -q "^  $NORTHWIND (Northwind) (gone.lua:7): configured, but no longer one of your customers per /contracts" "$T_OUT/out"

# ---------------------------------------------------------------- the partner's own tenant configured
# An MSP often syncs its own staff too: its partner tenant in tenants = { },
# by its GUID or by a verified domain other than csp.partner_tenant's. It is
# in no contract, and is not "no longer one of your customers" (take it out,
# forget it) nor "maybe a verified domain of one whose domains could not be read".
PARTNER=$(ctl GET tenants/partner | jq_py 'd["id"]')
PARTNER_INITIAL=$(ctl GET tenants/partner | jq_py '[x for x in d["domains"] if x.endswith(".onmicrosoft.com")][0]')
ctl DELETE "tenants/woodgrove/grants/$CID" >/dev/null   # a customer whose domains cannot be read
mkconfig own.lua "{ id = \"$PARTNER\", name = \"Tailspin (us)\", syncro_customer_id = 900 },
{ id = \"$PARTNER_INITIAL\", name = \"Tailspin again\", syncro_customer_id = 900 },
{ id = \"$NORTHWIND\", name = \"Northwind\", syncro_customer_id = 103 },"
es --config own.lua tenants discover
check "discover: the partner's own tenant, configured by its GUID, is not told to be taken out" \
  sh -c "! grep -q '$PARTNER' '$T_OUT/out'"
check "discover: ... nor when configured by another of its verified domains" \
  sh -c "! grep -q '$PARTNER_INITIAL' '$T_OUT/out'"
check "discover: ... while a configured tenant with no contract still is" \
  grep -q "^  $NORTHWIND (Northwind) (own.lua:9): configured, but no longer one of your customers per /contracts" "$T_OUT/out"
