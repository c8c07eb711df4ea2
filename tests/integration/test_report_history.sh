#!/bin/sh
# test_report_history — `entrasync report securescore|findings` over a
# history written with sqlite3 (no Graph: the one pull, against a closed
# port, only makes the database and its tenants), for what a history can
# hold that the daily pulls of test_report.sh do not: a configured tenant
# with no Secure Score stored, in every format; a tenant whose newest score
# is months old (stale: marked '*', named under the table), beside one a
# day behind (Microsoft's own lag: not marked); --days N, which leaves out
# that stale tenant's days: every format still lists it, with no days;
# seats unused in each of 21 licence snapshots spread over 151 days: the
# finding says so, not "151 days in a row".
. tests/lib.sh
. tests/integration/fakes_lib.sh

if ! command -v sqlite3 >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then
  echo "skip - test_report_history: needs sqlite3 and python3"
  exit 0
fi
W=$T_OUT/report_history
mkdir -p "$W"
cat >"$W/policy.lua" <<'EOF'
return { include = function() return true end }
EOF
cat >"$W/es.lua" <<'EOF'
database = "state/es.db"
graph = { client_id = "4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59", client_secret = "unused-secret",
          authority = "http://127.0.0.1:9", endpoint = "http://127.0.0.1:9" }
syncro = { base_url = "http://127.0.0.1:9/api/v1", api_key = "unused-key" }
policy = "policy.lua"
tenants = {
  { id = "contoso.com", name = "Contoso", syncro_customer_id = 101 },
  { id = "fabrikam.com", name = "Fabrikam", syncro_customer_id = 102 },
  { id = "northwind.example", name = "Northwind", syncro_customer_id = 103 },
  { id = "woodgrove.example", name = "Woodgrove", syncro_customer_id = 104 },
}
EOF
cd "$W" || exit 1
ES="--config es.lua --log-level error"
sql() { sqlite3 -cmd ".timeout 30000" state/es.db "$1"; }
py() { jq_py "$1"; }

es $ES pull   # fails (nothing listens on port 9): the database and its three tenants
check "the database holds the four configured tenants" test "$(sql "select count(*) from tenants")" = 4
# Contoso: 40 daily scores up to 2026-11-27; Fabrikam: 40 up to 2026-11-26 (a day behind: Microsoft's lag);
# Northwind: none; Woodgrove: 40 up to 2026-08-27, the best (its pulls failing since)
sql "WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 39)
     INSERT INTO secure_score_snapshots(tenant_id, day, current_score, max_score)
     SELECT 'contoso.com', date('2026-11-27', printf('-%d days', n)), 40 + n * 0.1, 100 FROM d
     UNION ALL SELECT 'fabrikam.com', date('2026-11-26', printf('-%d days', n)), 50, 100 FROM d
     UNION ALL SELECT 'woodgrove.example', date('2026-08-27', printf('-%d days', n)), 90, 100 FROM d;"

# ---------------------------------------------------------------- a tenant with no Secure Score
expect_ok "report securescore (table)" -- $ES report securescore
check "table: the tenant with no score is a line of its own" \
  grep -Eq '^    Northwind +\(no Secure Score yet\)$' "$T_OUT/out"
check "table: the three with scores are ranked" test "$(grep -cE '^  [123] ' "$T_OUT/out")" = 3
expect_ok "report securescore --format csv" -- $ES report securescore --format csv
check "csv: the tenant with no score is a row with only its id and name" \
  grep -qx 'northwind.example,Northwind,,,,' "$T_OUT/out"
expect_ok "report securescore --format json" -- $ES report securescore --format json
check "json: the tenant with no score is listed, latest null, rank 0" \
  test "$(py '[(t["secure_score"]["latest"], t["secure_score"]["rank"]) for t in d["tenants"] if t["tenant_id"] == "northwind.example"]' <"$T_OUT/out")" = "[(None, 0)]"
expect_ok "report securescore --format html" -- $ES report securescore --format html
check "html: the ranking names the tenant with no score" \
  grep -q '<td>Northwind</td><td colspan="8" class="sub">No Secure Score yet.</td>' "$T_OUT/out"

# ---------------------------------------------------------------- a stale tenant
expect_ok "report securescore (table)" -- $ES report securescore
check "table: the stale tenant is marked '*'" grep -Eq '^  1 Woodgrove\* +2026-08-27 ' "$T_OUT/out"
check "table: the stale tenant is named with its day under the table" \
  grep -q "^\* score of an older day (none stored since: see 'entrasync status'): Woodgrove" "$T_OUT/out"
check "table: a tenant a day behind is not marked" grep -Eq '^  2 Fabrikam +2026-11-26 ' "$T_OUT/out"
check "table: nor named under it" sh -c "! grep -A2 '^\* score of' '$T_OUT/out' | grep -q Fabrikam"
expect_ok "report securescore --format json" -- $ES report securescore --format json
check "json: stale is true for the stale tenant only" \
  test "$(py '[t["tenant_id"] for t in d["tenants"] if t["secure_score"]["stale"]]' <"$T_OUT/out")" = "['woodgrove.example']"
expect_ok "report securescore --format html" -- $ES report securescore --format html
check "html: the stale tenant is marked in the ranking, and the mark explained" \
  sh -c "grep -q '<td>Woodgrove\*</td>' '$T_OUT/out' && grep -q 'The score of an older day' '$T_OUT/out'"

# ---------------------------------------------------------------- --days N: a tenant with no day in the window
expect_ok "report securescore --days 7 --format csv" -- $ES report securescore --days 7 --format csv
check "csv --days: a tenant with no day in the window is a row with only its id and name" \
  grep -qx 'woodgrove.example,Woodgrove,,,,' "$T_OUT/out"
check "csv --days: the others' days in the window (7 + 6 + the empty rows)" test "$(tail -n +2 "$T_OUT/out" | wc -l)" = 15
CSV_TENANTS=$(tail -n +2 "$T_OUT/out" | cut -d, -f1 | sort -u | tr '\n' ' ')
expect_ok "report securescore --days 7 --format json" -- $ES report securescore --days 7 --format json
JSON_TENANTS=$(py '" ".join(sorted(t["tenant_id"] for t in d["tenants"])) + " "' <"$T_OUT/out")
check "--days: CSV and JSON list the same tenants" test "$CSV_TENANTS" = "$JSON_TENANTS"
check "json --days: the stale tenant's days are empty" \
  test "$(py '[len(t["secure_score"]["days"]) for t in d["tenants"] if t["tenant_id"] == "woodgrove.example"]' <"$T_OUT/out")" = "[0]"
expect_ok "report securescore --days 7 (table)" -- $ES report securescore --days 7
check "table --days: the stale tenant says it has no score in the window" \
  grep -qx '(no Secure Score in the last 7 days: the newest is of 2026-08-27)' "$T_OUT/out"
expect_ok "report securescore --days 7 --format html" -- $ES report securescore --days 7 --format html
check "html --days: the stale tenant's chart says none in the window, not none stored" \
  grep -q 'No Secure Score in the days shown: the newest is of 2026-08-27.' "$T_OUT/out"

# ---------------------------------------------------------------- unused seats over snapshots with gaps
# Contoso: 21 snapshots from 2026-06-30 to 2026-11-27 (every 7 or 8 days), 3 of 10 E3 seats free in each
sql "WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < 20)
     INSERT INTO license_snapshots(tenant_id, day, sku_id, sku_part_number, enabled, consumed)
     SELECT 'contoso.com', date('2026-06-30', printf('+%d days', (n * 15 + 1) / 2)),
            '05e9a617-0261-4cee-bb44-138d3ef5d965', 'SPE_E3', 10, 7 FROM i;"
check "21 licence snapshots over 151 days" \
  test "$(sql "select count(*) || ' ' || (julianday(max(day)) - julianday(min(day)) + 1) from license_snapshots")" = "21 151.0"
expect_ok "report findings --format json" -- $ES report findings --format json
check "findings: unused in all 21 snapshots over 151 days, not 151 days in a row" \
  test "$(py '[f["message"] for f in d["findings"] if f["kind"] == "unused"]' <"$T_OUT/out")" = \
    "['Microsoft 365 E3: 3 of 10 seats unused in all 21 snapshots over 151 days']"
check "json: the unused finding has days 151 and snapshots 21" \
  test "$(py '[(f["days"], f["snapshots"]) for f in d["findings"] if f["kind"] == "unused"]' <"$T_OUT/out")" = "[(151, 21)]"
# a snapshot 8 days after the newest (seats still free): 8 days without one end the run
sql "INSERT INTO license_snapshots(tenant_id, day, sku_id, sku_part_number, enabled, consumed)
     VALUES ('contoso.com', '2026-12-06', '05e9a617-0261-4cee-bb44-138d3ef5d965', 'SPE_E3', 10, 7);"
expect_ok "report findings --format json, after 8 days with no snapshot" -- $ES report findings --format json
check "json: 8 days with no snapshot end the run: no unused finding" \
  test "$(py '[f for f in d["findings"] if f["kind"] == "unused"]' <"$T_OUT/out")" = "[]"
