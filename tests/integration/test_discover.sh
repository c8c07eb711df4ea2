#!/bin/sh
# test_discover — `entrasync tenants discover` (the CSP partner's customers,
# whether each is mapped and reachable, ready-to-paste config entries with
# the Syncro customer suggested) against the fake Graph (partner tenant
# tailspin-it.com) and the fake Syncro: a config with no tenants yet, names
# Syncro holds twice or only in another form, a customer whose
# /organization is denied, entries that stay valid Lua whatever the names
# hold, contact-domain ties, token failures and contracts that went.
# (The first discover checks live in test_pull.sh.)
. tests/lib.sh
. tests/integration/fakes_lib.sh

HERE=$PWD
graph_test test_discover discover --seed 1   # W, URL, ctl METHOD PATH [JSON]
fake_start syncro "$W" "$HERE/tests/fakes/fake_syncro.py" --api-key k --data none --rate-limit 0
fake_url SYN syncro
syn() { fake_ctl "$SYN" "$@"; }
cd "$W" || exit 1
echo 'return { include = function(u) return true end }' >policy.lua

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
