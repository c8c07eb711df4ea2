#!/bin/sh
# test_untrusted_text — text the customer controls, printed: a tenant whose
# organization displayName holds terminal escape sequences and a newline
# (Microsoft's organization name, stored when the config names the tenant
# by id only), and a user whose displayName is a spreadsheet formula.
# `tenants`, `status`, `report` (table, and the stderr note of a tenant left
# out) print no control character and no forged line; `report licenses
# --by-user --format csv` starts the formula's cell with a quote; a sync's
# plan prints a user's display name with escape sequences and a newline the same way.
. tests/lib.sh
. tests/integration/fakes_lib.sh
ROOT=$(pwd)

W=$T_OUT/untrusted
mkdir -p "$W"
fake_start graph "$W" tests/fakes/fake_graph.py --seed 3 --tenants demo
fake_url GURL graph
EVIL_NAME='Evil\u001b]0;owned\u0007\u001b[2J\nok - forged line\u009b31m'
EVIL=$(fake_ctl "$GURL" POST tenants "{\"key\": \"evil\", \"displayName\": \"$EVIL_NAME\", \"users\": 3}" |
  jq_py 'd["id"]')
check "the fake made the tenant" test -n "$EVIL"
fake_ctl "$GURL" POST tenants/evil/users '{"displayName": "=HYPERLINK(\"http://x.example\",\"pay\")",
  "userPrincipalName": "formula@evil.example", "accountEnabled": false,
  "assignedLicenses": [{"skuId": "05e9a617-0261-4cee-bb44-138d3ef5d965", "disabledPlans": []}]}' >/dev/null
cd "$W" || exit 1
echo 'local p = require "entrasync.policy" return { include = function(u) return true end, contact = p.contact }' >pol.lua
fake_config es.lua "$GURL" 'base_url = "http://127.0.0.1:9/api/v1", api_key = "k"' pol.lua \
  "  { id = \"$EVIL\", syncro_customer_id = 1 },"
es --config es.lua --log-level warn pull
check "pulled, with Microsoft's organization name stored" \
  test "$(sqlite3 state/es.db "select instr(name, 'forged') > 0 from tenants where id = '$EVIL'")" = 1

# no ESC, BEL, C1 CSI (U+009B) nor a line starting with the forged text
clean() {
  ! grep -q "$(printf '\033')" "$1" && ! grep -q "$(printf '\007')" "$1" && ! grep -q "$(printf '\302\233')" "$1" &&
    ! grep -q '^ok - forged' "$1"
}
es --config es.lua tenants
cp "$T_OUT/out" tenants.txt
check "tenants: the name printed without control characters" clean tenants.txt
check "tenants: the name is there, controls as '?'" grep -q 'Evil?\]0;owned??\[2J?ok - forged line?31m' tenants.txt
es --config es.lua status
cp "$T_OUT/out" status.txt
check "status: the name printed without control characters" clean status.txt
check "status: the name is there, controls as '?'" grep -q 'Evil?\]0;owned??\[2J?ok - forged line?31m' status.txt
es --config es.lua report licenses
cp "$T_OUT/out" report.txt
check "report table: no control characters" clean report.txt
es --config es.lua report findings
cp "$T_OUT/out" findings.txt
check "report findings: no control characters" clean findings.txt
es --config es.lua report licenses --by-user --format csv
cp "$T_OUT/out" users.csv
check "report CSV: the formula's cell starts with a quote" \
  grep -q ',"'"'"'=HYPERLINK(""http://x.example"",""pay"")",' users.csv
check "report CSV: no cell starts with =" sh -c "! grep -Eq ',\"?=' users.csv"
check "report CSV: no control characters" clean users.csv
# out of the config: the stderr note names it
fake_config none.lua "$GURL" 'base_url = "http://127.0.0.1:9/api/v1", api_key = "k"' pol.lua \
  "  { id = \"$CONTOSO\", syncro_customer_id = 1 },"
es --config none.lua report licenses
cp "$T_OUT/err" note.txt
check "report: the note of the tenant left out names it" grep -q 'left out 1 tenant' note.txt
check "report: ... without control characters" clean note.txt
es --config none.lua tenants forget "$EVIL" --dry-run
cp "$T_OUT/out" forget.txt
check "tenants forget: the name printed without control characters" clean forget.txt

# ---- a sync's plan: a user's display name and a Syncro error, printed
fake_start syncro "$W" "$ROOT/tests/fakes/fake_syncro.py" --api-key k --data demo
fake_url SURL syncro
fake_ctl "$GURL" POST tenants/evil/users '{"displayName": "Mallory\u001b[31m\nok - forged plan line",
  "userPrincipalName": "mallory@evil.example", "mail": "mallory@evil.example", "accountEnabled": true}' >/dev/null
fake_config sync.lua "$GURL" "base_url = \"$SURL/api/v1\", api_key = \"k\"" pol.lua \
  "  { id = \"$EVIL\", name = \"Evil\", syncro_customer_id = 101 },"
es --config sync.lua --log-level warn sync --dry-run
cp "$T_OUT/out" plan.txt
check "sync --dry-run: the user's name in the plan, without control characters" \
  sh -c "clean() { ! grep -q \"\$(printf '\\033')\" \"\$1\" && ! grep -q '^ok - forged' \"\$1\"; }; clean plan.txt && grep -q 'Mallory?\\[31m?ok - forged plan line' plan.txt"
es --config sync.lua --log-level warn sync
es --config sync.lua audit
cp "$T_OUT/out" audit.txt
check "audit: the user's name and the written values, without control characters" \
  sh -c "! grep -q \"\$(printf '\\033')\" audit.txt && ! grep -q '^ok - forged' audit.txt && grep -q 'Mallory?\\[31m?ok - forged plan line' audit.txt"
