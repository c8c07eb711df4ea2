#!/bin/sh
# test_cli_tenants — how every command takes --tenant: pull, sync and
# report take several (repeated or comma-separated, the same way), the
# one-tenant commands (status, audit, conflicts) refuse a second instead of
# dropping one; a tenant is named the same way everywhere (config id, name,
# its GUID or a verified domain known from the pulls), and an unknown one
# gets the same message with the nearest name. Against the fake Graph and
# the fake Syncro, a config naming Contoso by its domain.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/cli_tenants"
cd "$T_OUT/cli_tenants" || exit 1
mail_policy policy.lua
sync_config c.lua policy.lua 6000 "  { id = \"contoso.com\", name = \"Contoso\", syncro_customer_id = 101 },
$(demo_tenants Fabrikam Northwind)"
# jpath FILE EXPR: a Python expression over the JSON in FILE (as d)
jpath() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# ---- several tenants: repeated and comma-separated alike
expect_ok "pull --tenant contoso.com --tenant Northwind" -- --config c.lua pull --tenant contoso.com --tenant Northwind
check "pull, repeated: Contoso pulled" grep -q "^Contoso: ok" "$T_OUT/out"
check "pull, repeated: Northwind pulled" grep -q "^Northwind: ok" "$T_OUT/out"
check "pull, repeated: not Fabrikam" sh -c "! grep -q '^Fabrikam' '$T_OUT/out'"
expect_ok "pull --tenant Contoso,Northwind" -- --config c.lua pull --tenant Contoso,Northwind
check "pull, comma-separated: both" test "$(grep -c '^\(Contoso\|Northwind\): ok' "$T_OUT/out")" = 2
expect_ok "sync --dry-run --tenant contoso.com,Northwind" -- --config c.lua sync --dry-run --json --tenant contoso.com,Northwind
check "sync, comma-separated: both tenants" \
  test "$(jpath "$T_OUT/out" 'sorted(t["id"] for t in d["tenants"])')" = "['$NORTHWIND', 'contoso.com']"
expect_ok "sync --dry-run --tenant Contoso --tenant Northwind" -- --config c.lua sync --dry-run --json --tenant Contoso --tenant Northwind
check "sync, repeated: both tenants" \
  test "$(jpath "$T_OUT/out" 'sorted(t["id"] for t in d["tenants"])')" = "['$NORTHWIND', 'contoso.com']"
expect_ok "report licenses --tenant Contoso --tenant Northwind" -- --config c.lua report licenses --format json --tenant Contoso --tenant Northwind
check "report, repeated: both tenants" \
  test "$(jpath "$T_OUT/out" 'sorted(t["tenant_id"] for t in d["tenants"])')" = "['$NORTHWIND', 'contoso.com']"
expect_ok "report licenses --tenant Contoso,Northwind" -- --config c.lua report licenses --format json --tenant Contoso,Northwind
check "report, comma-separated: both tenants" \
  test "$(jpath "$T_OUT/out" 'sorted(t["tenant_id"] for t in d["tenants"])')" = "['$NORTHWIND', 'contoso.com']"

# ---- one-tenant commands: a second is refused, not dropped
for c in status audit conflicts; do
  expect_exit "$c --tenant twice: usage error" 2 "option '--tenant' is given twice" -- --config c.lua $c --tenant Contoso --tenant Northwind
  expect_exit "$c --tenant a,b: usage error" 2 "names one tenant here" -- --config c.lua $c --tenant Contoso,Northwind
done
expect_exit "another option given twice: usage error" 2 "option '--limit' is given twice" -- --config c.lua audit --limit 1 --limit 2

# ---- one resolution: the GUID of a tenant configured by its domain, once pulled
for c in "pull" "sync --dry-run" "report licenses" status audit conflicts; do
  # shellcheck disable=SC2086
  expect_ok "$c --tenant GUID of contoso.com" -- --config c.lua $c --tenant "$CONTOSO"
done
expect_ok "pull --tenant GUID: pulls Contoso" -- --config c.lua pull --tenant "$CONTOSO"
check "pull --tenant GUID: Contoso only" test "$(grep -c ': ok' "$T_OUT/out")" = 1

# ---- one message for an unknown tenant, with the nearest name
for c in "pull" "sync --dry-run" "report licenses" status audit conflicts; do
  # shellcheck disable=SC2086
  expect_exit "$c --tenant contso: unknown, did you mean Contoso" 2 "^entrasync ${c%% *}: unknown tenant 'contso' \(did you mean 'Contoso'\?\)$" \
    -- --config c.lua $c --tenant contso
done
