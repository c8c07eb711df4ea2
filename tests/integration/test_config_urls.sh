#!/bin/sh
# test_config_urls — the service URLs as people write them: a graph.endpoint
# with Graph's API version at its end (".../v1.0", as Graph's own URLs and
# the fakes' README show it) is taken off with a warning instead of every
# request going to /v1.0/v1.0/...; a syncro.base_url without /api/v1 is
# warned about at load, and the 404 of its customer search says to look at
# base_url, not that a contact is missing.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/config_urls"
cd "$T_OUT/config_urls" || exit 1
mail_policy policy.lua

# ---- graph.endpoint with /v1.0 (and /beta, any case) at its end
# with_endpoint FILE SUFFIX: FILE's graph.endpoint (not its authority) with SUFFIX after it
with_endpoint() { sed -i "s|endpoint = \"$GURL\"|endpoint = \"$GURL$2\"|" "$1"; }
fake_config v1.lua "$GURL" "base_url = \"$SURL/api/v1\", api_key = \"$SKEY\"" policy.lua "$(demo_tenants Contoso)"
with_endpoint v1.lua /v1.0/
expect_ok "check: an endpoint ending in /v1.0 passes" -- --config v1.lua check
check "check: ... with a warning that it is taken off" grep -q "graph.endpoint ends in '/v1.0': taken off" "$T_OUT/err"
expect_ok "pull with an endpoint ending in /v1.0: works" -- --config v1.lua pull
check "pull: Contoso pulled" grep -q "^Contoso: ok" "$T_OUT/out"
fake_config beta.lua "$GURL" "base_url = \"$SURL/api/v1\", api_key = \"$SKEY\"" policy.lua "$(demo_tenants Contoso)"
with_endpoint beta.lua /BETA
expect_ok "pull with an endpoint ending in /BETA: works" -- --config beta.lua pull
check "check: the /BETA is named" grep -q "graph.endpoint ends in '/BETA': taken off" "$T_OUT/err"

# ---- syncro.base_url without /api/v1
fake_config nb.lua "$GURL" "base_url = \"$SURL\", api_key = \"$SKEY\"" policy.lua "$(demo_tenants Fabrikam)"
expect_ok "check: a base_url without /api/v1 passes" -- --config nb.lua check
check "check: ... with a warning naming /api/v1" grep -q "syncro.base_url does not end in /api/v1" "$T_OUT/err"
fake_config ok.lua "$GURL" "base_url = \"$SURL/api/v1\", api_key = \"$SKEY\"" policy.lua "$(demo_tenants Fabrikam)"
expect_ok "check: a base_url with /api/v1: no such warning" -- --config ok.lua check
check "check: ... none" sh -c "! grep -q 'does not end in /api/v1' '$T_OUT/err'"
expect_exit "sync with a base_url without /api/v1 fails" 1 "" -- --config nb.lua sync --dry-run
check "the customer search's 404 points at base_url" \
  grep -q "find customer 'Fabrikam Inc': the customer search answered 404 Not Found.*syncro.base_url" "$T_OUT/out" "$T_OUT/err"
check "... and does not talk about a contact" sh -c "! cat '$T_OUT/out' '$T_OUT/err' | grep -q 'contact 0 not found'"
