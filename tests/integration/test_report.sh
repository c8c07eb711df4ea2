#!/bin/sh
# test_report — `entrasync report licenses|securescore|findings` against the
# fake Graph (and the fake Syncro for --alerts), every number checked
# against the fake's own: Contoso is pulled once a day over 120 simulated
# days (the fake's clock, and entrasync's through faketime), so its Secure
# Score history reaches beyond Graph's 90 days and its licence history has
# runs of unused seats; its SKU TEAMS_ROOMS_PILOT_LEGACY is missing from
# Microsoft's name table. Then: licence numbers, daily scores, trends,
# ranking, findings (unused, over-assigned, disabled and deleted users,
# warning/suspended/locked-out seats), formats (80-column table, exact CSV
# headers, two-decimal percents, JSON, self-contained HTML), the policy
# hooks, and alerts as Syncro tickets (dry run, one per tenant and kind,
# updates instead of duplicates; alerts = { ... } of the config: enabled,
# --no-alerts, problem type, subject prefix, unused days).
. tests/lib.sh
. tests/integration/fakes_lib.sh

HERE=$(pwd)
FAKE=tests/fakes/fake_graph.py
FAKE_SYNCRO=tests/fakes/fake_syncro.py
EXPECT="python3 $HERE/tests/fixtures/reports/expect.py"
if [ ! -f "$FAKE" ] || ! command -v python3 >/dev/null; then
  echo "skip - test_report: no fake Graph or python3"
  exit 0
fi
W=$T_OUT/report
mkdir -p "$W"
# (CID, SECRET and the demo tenants' ids come from fakes_lib.sh)
START=2025-01-01
DAYS=120

fake_start graph "$W" "$FAKE" --seed 7 --now "${START}T12:00:00Z"
fake_url URL graph

# ctl METHOD PATH [JSON]: the fake Graph's control API; prints the answer.
ctl() { fake_ctl "$URL" "$@"; }
# ctl_at URL METHOD PATH [JSON]: the same for another fake.
ctl_at() { fake_ctl "$@"; }
py() { jq_py "$1"; }

cat >"$W/plain.lua" <<'EOF'
return { include = function(u) return true end }
EOF
cat >"$W/hooks.lua" <<'EOF'
return {
  include = function(u) return true end,
  license = function(sku, t)
    if sku.part == "POWER_BI_STANDARD" then return { hide = true } end
    if sku.part == "SPE_E3" then return { name = "Microsoft 365 E3 (billed)", unit_price = 33.75, billable = true } end
    if sku.part == "FLOW_FREE" then return { hide = true } end
    if sku.part == "ENTERPRISEPACK" or sku.part == "EMS" then return { group = "E3 bundle" } end
    return nil
  end,
  secure_score = function(s, prev, t)
    if prev and s.max > 0 then return { alert = string.format("score %.2f%% on %s (was %.2f%%)", s.percent, s.date, prev.percent) } end
  end,
}
EOF
mkconfig() {  # mkconfig POLICY SYNCRO_URL
  fake_config "$W/es.lua" "$URL" "base_url = \"$2\", api_key = \"fake-syncro-key\"" "$1" \
"  { id = \"$CONTOSO\", name = \"Contoso\", syncro_customer_id = 101 },
  { id = \"fabrikam.com\", name = \"Fabrikam\", syncro_customer = \"Fabrikam Inc\" },
  { id = \"$NORTHWIND\", name = \"Northwind\", syncro_customer = \"Northwind Traders\" },"
}
mkconfig plain.lua "http://127.0.0.1:9/api/v1"
cd "$W" || exit 1
ES="--config es.lua --log-level warn"
sql() { sqlite3 -cmd ".timeout 30000" state/es.db "$1"; }
day_of() { date -u -d "$START + $1 days" +%F; }

expect_exit "report before any pull: no database, exit 3" 3 "run 'entrasync pull' first" -- $ES report licenses

# ---------------------------------------------------------------- 120 simulated days
FT=
if command -v faketime >/dev/null 2>&1; then FT=faketime; fi
if [ -z "$FT" ]; then
  echo "skip - 120 simulated days need faketime (apt-get install faketime); one day only"
  DAYS=1
fi
USER_DIS=$(ctl GET tenants/contoso/users | py '[u for u in d["users"] if u.get("_state")=="active" and u.get("accountEnabled") and any(l["skuId"]=="05e9a617-0261-4cee-bb44-138d3ef5d965" for l in u.get("assignedLicenses") or [])][0]["userPrincipalName"]')
USER_DEL=$(ctl GET tenants/contoso/users | py '[u for u in d["users"] if u.get("_state")=="active" and u.get("accountEnabled") and any(l["skuId"]=="05e9a617-0261-4cee-bb44-138d3ef5d965" for l in u.get("assignedLicenses") or [])][1]["userPrincipalName"]')
# Seat counts come from the fake's demo data: read them rather than assume them.
sku_field() { ctl GET tenants/contoso/skus | py '[s["prepaidUnits"]["enabled"] for s in d["skus"] if s["skuPartNumber"]=="'$1'"][0]'; }
E3_PURCHASED=$(sku_field SPE_E3)
BP_PURCHASED=$(sku_field O365_BUSINESS_PREMIUM)
BP_OVER=$((BP_PURCHASED + 2))
d=0; T0=$(date +%s)
pull_failed=0
while [ $d -lt $DAYS ]; do
  day=$(day_of $d)
  ctl POST clock "{\"set\": \"${day}T12:00:00Z\"}" >/dev/null
  case $d in
    100) ctl PATCH tenants/contoso/skus/TEAMS_ROOMS_PILOT_LEGACY '{"consumedUnits": 4}' >/dev/null ;;
    101) ctl PATCH tenants/contoso/skus/TEAMS_ROOMS_PILOT_LEGACY '{"consumedUnits": null}' >/dev/null ;;
    110) ctl POST "tenants/contoso/users/$USER_DIS/disable" >/dev/null ;;
    115) ctl POST "tenants/contoso/users/$USER_DEL/soft-delete" >/dev/null ;;
  esac
  if [ $d = $((DAYS - 1)) ]; then   # the newest day: over-assigned, warning, suspended, locked out
    ctl PATCH tenants/contoso/skus/O365_BUSINESS_PREMIUM "{\"consumedUnits\": $BP_OVER}" >/dev/null
    ctl PATCH tenants/contoso/skus/TEAMS_ROOMS_PILOT_LEGACY '{"warning": 2, "suspended": 1, "lockedOut": 1, "capabilityStatus": "Warning"}' >/dev/null
  fi
  if [ -n "$FT" ]; then
    FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "$day 12:00:00" "$ENTRASYNC" $ES pull --tenant Contoso >>pulls.log 2>&1 || pull_failed=$((pull_failed + 1))
  else
    "$ENTRASYNC" $ES pull --tenant Contoso >>pulls.log 2>&1 || pull_failed=$((pull_failed + 1))
  fi
  d=$((d + 1))
done
NEWEST=$(day_of $((DAYS - 1))); echo "# pulls took $(( $(date +%s) - T0 )) s"
if [ -n "$FT" ]; then
  FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "$NEWEST 12:00:00" "$ENTRASYNC" $ES pull --tenant Fabrikam,Northwind >>pulls.log 2>&1 || pull_failed=$((pull_failed + 1))
else
  "$ENTRASYNC" $ES pull --tenant Fabrikam,Northwind >>pulls.log 2>&1 || pull_failed=$((pull_failed + 1))
fi
check "every daily pull succeeded" test "$pull_failed" = 0
SCORE_DAYS=$((DAYS + 89))
check "$DAYS days of licence snapshots kept for Contoso" test "$(sql "select count(distinct day) from license_snapshots where tenant_id='$CONTOSO'")" = "$DAYS"
check "$SCORE_DAYS days of Secure Score kept for Contoso (90 from the first pull + one a day)" \
  test "$(sql "select count(*) from secure_score_snapshots where tenant_id='$CONTOSO'")" = "$SCORE_DAYS"

# ---------------------------------------------------------------- licences
expect_ok "report licenses --format csv" -- $ES report licenses --format csv --out lic.csv
expect_ok "report licenses --by-user --format csv" -- $ES report licenses --format csv --by-user --out users.csv
expect_ok "report licenses --format json" -- $ES report licenses --format json --by-user --out lic.json
$EXPECT licenses "$URL" contoso "$CONTOSO" lic.csv lic.json
$EXPECT licenses "$URL" fabrikam fabrikam.com lic.csv lic.json
$EXPECT licenses "$URL" northwind "$NORTHWIND" lic.csv lic.json
check "licences CSV header is exact" \
  test "$(head -n 1 lic.csv)" = "tenant_id,tenant_name,sku_id,sku_part_number,sku_name,purchased,assigned,available,license_day"
check "the SKU missing from the name table shows its part number" \
  grep -q "^$CONTOSO,Contoso,2b7f0e4a-9c1d-4e55-8a3b-6f0c7d1e9a42,TEAMS_ROOMS_PILOT_LEGACY,TEAMS_ROOMS_PILOT_LEGACY," lic.csv
check "the JSON marks it as not in the name table" \
  test "$(py '[l["known_sku"] for t in d["tenants"] for l in t["licenses"] if l["sku_part_number"]=="TEAMS_ROOMS_PILOT_LEGACY"]' <lic.json)" = "[False]"
check "a known SKU gets its friendly name" grep -q ",O365_BUSINESS_PREMIUM,Microsoft 365 Business Standard," lic.csv
check "--by-user CSV: the users' table alone, one header, every row as wide" python3 - users.csv <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == ["tenant_id", "tenant_name", "user_id", "user_principal_name", "display_name", "skus"], rows[0]
assert len(rows) > 1 and all(len(r) == 6 for r in rows), set(len(r) for r in rows)
PY
check "--by-user: the disabled user's row lists its licence" grep -q ",$USER_DIS,.*Microsoft 365 E3" users.csv
check "the licence CSV is one table" sh -c "! grep -q '^\$' lic.csv"
if [ "$DAYS" = 120 ]; then
  check "SPE_E3 seats free all $DAYS days: unused_days = $DAYS" \
    test "$(py '[l["unused_days"] for t in d["tenants"] for l in t["licenses"] if l["sku_part_number"]=="SPE_E3"]' <lic.json)" = "[$DAYS]"
  check "a full day (day 100) restarts the run: unused_days = 19" \
    test "$(py '[l["unused_days"] for t in d["tenants"] for l in t["licenses"] if l["sku_part_number"]=="TEAMS_ROOMS_PILOT_LEGACY"]' <lic.json)" = "[19]"
fi
expect_ok "report licenses (table)" -- $ES report licenses --by-user
cp "$T_OUT/out" lic.txt
check "licences table fits 80 columns" sh -c "! awk 'length(\$0) > 80' lic.txt | grep -q ."
check "licences table: Contoso's E3 row" grep -Eq "Microsoft 365 E3 +$E3_PURCHASED +[0-9]+ +[0-9]+ +[0-9]+\.[0-9]{2}$" lic.txt

# ---------------------------------------------------------------- secure score
expect_ok "report securescore --format csv" -- $ES report securescore --format csv --out ss.csv
expect_ok "report securescore --format json" -- $ES report securescore --format json --out ss.json
check "securescore CSV header is exact" test "$(head -n 1 ss.csv)" = "tenant_id,tenant_name,date,current_score,max_score,percent"
check "every percent has two decimals" sh -c "tail -n +2 ss.csv | awk -F, '\$6 !~ /^[0-9]+\\.[0-9][0-9]\$/' | grep -q . && exit 1 || exit 0"
$EXPECT scores "$URL" "$CONTOSO" ss.csv ss.json "$CID" "$SECRET" "$SCORE_DAYS"
$EXPECT scores "$URL" "$NORTHWIND" ss.csv ss.json "$CID" "$SECRET" 90
$EXPECT ranking ss.json
expect_ok "report securescore (table)" -- $ES report securescore
cp "$T_OUT/out" ss.txt
check "securescore table fits 80 columns" sh -c "! awk 'length(\$0) > 80' ss.txt | grep -q ."
check "securescore table ranks 3 tenants" test "$(grep -cE '^  [123] ' ss.txt)" = 3
expect_ok "report securescore --tenant Contoso --days 7 (table)" -- $ES report securescore --tenant Contoso --days 7
check "--days 7 shows 7 daily rows" test "$(grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2} ' "$T_OUT/out")" = 7
expect_ok "report securescore --days 30 --format csv" -- $ES report securescore --days 30 --format csv
check "--days 30: 30 rows per tenant" test "$(tail -n +2 "$T_OUT/out" | wc -l)" = 90
ctl GET tenants/contoso/secure-scores >/dev/null   # (the fake keeps its own model; nothing to set)

# --controls: the pull stored Contoso's secureScoreControlProfiles, so each
# control of the breakdown carries the title (and maxScore) of the fake's
# profile with its id. The fake's answer is read over Graph itself.
cat >profiles.py <<'PYEOF'
import json, sys, urllib.parse, urllib.request
url, tid, cid, secret, report = sys.argv[1:6]  # [6]: print a title
body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": cid, "client_secret": secret,
                               "scope": "https://graph.microsoft.com/.default"}).encode()
tok = json.loads(urllib.request.urlopen(urllib.request.Request(
    "%s/%s/oauth2/v2.0/token" % (url, tid), data=body)).read().decode())["access_token"]
req = urllib.request.Request(url + "/v1.0/security/secureScoreControlProfiles",
                             headers={"Authorization": "Bearer " + tok})
prof = {p["id"]: p for p in json.loads(urllib.request.urlopen(req).read().decode())["value"]}
t = [t for t in json.load(open(report))["tenants"] if t["tenant_id"] == tid][0]
ctl = t["secure_score"]["controls"]
bad = [c["name"] for c in ctl if c["name"] not in prof or c.get("title") != prof[c["name"]]["title"]
       or c.get("max") != prof[c["name"]]["maxScore"]]
if not ctl or bad:
    sys.exit("controls %d, without their profile's title/max: %s" % (len(ctl), bad[:5]))
if len(sys.argv) > 6:
    print(ctl[0]["title"])
PYEOF
expect_ok "report securescore --controls --format json" -- $ES report securescore --tenant Contoso --controls --format json --out ctl.json
check "--controls: every control has its profile's title and maxScore" \
  python3 profiles.py "$URL" "$CONTOSO" "$CID" "$SECRET" ctl.json
TITLE=$(python3 profiles.py "$URL" "$CONTOSO" "$CID" "$SECRET" ctl.json title 2>/dev/null | cut -c1-40)
expect_ok "report securescore --controls (table)" -- $ES report securescore --tenant Contoso --controls
check "--controls table shows a control's title (${TITLE:-none})" sh -c '[ -n "$1" ] && grep -qF "$1" "$2"' _ "$TITLE" "$T_OUT/out"
# profiles ride in the daily $batch: fetched once per pull day, not again the same day
profile_parts() { ctl GET "requests?tenant=$CONTOSO&kind=batch-part&path=secureScoreControlProfiles&summary=1" | py 'd["total"]'; }
check "profiles fetched on each of the $DAYS pull days" test "$(profile_parts)" = "$DAYS"
SEQ=$(ctl GET "requests?summary=1" | py 'd["last_seq"]')
if [ -n "$FT" ]; then
  FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "$NEWEST 18:00:00" "$ENTRASYNC" $ES pull --tenant Contoso >>pulls.log 2>&1
else
  "$ENTRASYNC" $ES pull --tenant Contoso >>pulls.log 2>&1
fi
check "a second pull the same day: ok, and the profiles are not fetched again" \
  test "$?/$(profile_parts)" = "0/$DAYS"
check "a second pull the same day: still one \$batch" \
  test "$(ctl GET "requests?since=$SEQ&tenant=$CONTOSO&path=batch&kind=graph&summary=1" | py 'd["total"]')" = 1

# ---------------------------------------------------------------- findings
expect_ok "report findings --format json" -- $ES report findings --format json --out f.json
kinds() { py '" ".join(sorted(set(f["kind"] for f in d["findings"] if f["tenant_id"]=="'$1'")))' <f.json; }
check "over-assignment found (O365_BUSINESS_PREMIUM: $BP_OVER assigned, $BP_PURCHASED purchased)" \
  test "$(py '[f["count"] for f in d["findings"] if f["kind"]=="over_assigned" and f["sku_id"]=="f245ecc8-75af-4f8e-b61f-27d8114de5f3" and f["tenant_id"]=="'$CONTOSO'"]' <f.json)" = "[2]"
check "disabled user still holding a licence found" \
  test "$(py '[f["user_principal_name"] for f in d["findings"] if f["kind"]=="disabled_user" and f["tenant_id"]=="'$CONTOSO'"]' <f.json | grep -c "$USER_DIS")" = 1
check "deleted user last seen holding a licence found" \
  test "$(py '[f["user_principal_name"] for f in d["findings"] if f["kind"]=="deleted_user"]' <f.json)" = "['$USER_DEL']"
check "warning (2), suspended (1) and locked-out (1) seats found" \
  test "$(py '[(f["kind"], f["count"]) for f in d["findings"] if f["sku_id"]=="2b7f0e4a-9c1d-4e55-8a3b-6f0c7d1e9a42" and f["kind"]!="unused"]' <f.json)" = "[('suspended', 1), ('locked_out', 1), ('warning', 2)]"
if [ "$DAYS" = 120 ]; then
  check "unused: SPE_E3 free for 120 days in a row (threshold 30)" \
    test "$(py '[(f["days"], f["count"]) for f in d["findings"] if f["kind"]=="unused" and f["tenant_id"]=="'$CONTOSO'" and f["sku_id"]=="05e9a617-0261-4cee-bb44-138d3ef5d965"]' <f.json)" = "[(120, $(py '[l["available"] for t in d["tenants"] for l in t["licenses"] if l["sku_part_number"]=="SPE_E3"][0]' <lic.json))]"
  expect_ok "report findings --days 10" -- $ES report findings --days 10 --format json --out f10.json
  check "--days 10: the 19-day run of TEAMS_ROOMS is unused too" \
    test "$(py '[f["days"] for f in d["findings"] if f["kind"]=="unused" and f["sku_id"]=="2b7f0e4a-9c1d-4e55-8a3b-6f0c7d1e9a42"]' <f10.json)" = "[19]"
fi
expect_ok "report findings --format csv" -- $ES report findings --format csv
check "findings CSV header" test "$(head -n 1 "$T_OUT/out")" = "tenant_id,tenant_name,severity,kind,sku_id,sku_name,user_principal_name,count,days,message"
expect_ok "report findings (table)" -- $ES report findings
check "findings table fits 80 columns" sh -c "! awk 'length(\$0) > 80' '$T_OUT/out' | grep -q ."

# ---------------------------------------------------------------- HTML
expect_ok "report --format html" -- $ES report securescore --format html --out report.html
check "HTML: one trend chart per tenant" test "$(grep -o 'aria-label="Secure Score trend of ' report.html | wc -l)" = 3
check "HTML: licence bars and findings" sh -c "grep -q 'class=\"bar\"' report.html && grep -q '<h2>Findings</h2>' report.html"
check "HTML: self-contained (no script, no external URL)" \
  sh -c "! grep -Eiq '<script|<link|src=|url\\(|@import|https?://' report.html"

# ---------------------------------------------------------------- usage
expect_exit "unknown report kind: did you mean" 2 "did you mean 'licenses'" -- $ES report licences
expect_exit "unknown format" 2 "unknown format 'xml'" -- $ES report licenses --format xml
expect_exit "unknown tenant" 2 "unknown tenant .nosuch." -- $ES report licenses --tenant nosuch
expect_exit "bad --days" 2 "whole number" -- $ES report securescore --days x
expect_exit "--by-user only with licenses" 2 "by-user" -- $ES report securescore --by-user

# ---------------------------------------------------------------- policy hooks
mkconfig hooks.lua "http://127.0.0.1:9/api/v1"
es $ES report licenses --format json --out hooks.json
E3_COST=$(python3 -c "print(33.75 * $E3_PURCHASED)")
if true; then
  check "license hook renames and prices a SKU" \
    test "$(py '[(l["sku_name"], l["unit_price"], l["monthly_cost"]) for l in d["tenants"][0]["licenses"] if l["sku_part_number"]=="SPE_E3"]' <hooks.json)" = "[('Microsoft 365 E3 (billed)', 33.75, $E3_COST)]"
  check "license hook hides a SKU" \
    test "$(py 'sum(1 for t in d["tenants"] for l in t["licenses"] if l["sku_part_number"] in ("POWER_BI_STANDARD","FLOW_FREE"))' <hooks.json)" = 0
  check "license hook groups a bundle (numbers added up)" \
    test "$(py '[(l["sku_name"], l["sku_part_number"], l["purchased"]) for t in d["tenants"] for l in t["licenses"] if l["group"]]' <hooks.json)" = \
         "$(ctl GET tenants/fabrikam/skus | py '[("E3 bundle", "EMS+ENTERPRISEPACK", sum(s["prepaidUnits"]["enabled"] for s in d["skus"] if s["skuPartNumber"] in ("ENTERPRISEPACK","EMS")))]')"
  expect_ok "secure_score hook: report findings" -- $ES report findings --format json --out hookf.json
  check "secure_score hook's alert becomes a finding per tenant" \
    test "$(py 'sum(1 for f in d["findings"] if f["kind"]=="score_alert")' <hookf.json)" = 3
  check "the alert carries the hook's text (newest day and percent)" \
    grep -q "score [0-9.]*% on $NEWEST (was" hookf.json
fi
mkconfig plain.lua "http://127.0.0.1:9/api/v1"

# ---------------------------------------------------------------- alerts into Syncro
if [ ! -f "$HERE/$FAKE_SYNCRO" ]; then
  echo "skip - alerts: no fake Syncro"
  exit 0
fi
fake_start syncro "$W" "$HERE/$FAKE_SYNCRO" --api-key fake-syncro-key --data none --rate-limit 0
fake_url SURL syncro
ctl_at "$SURL" POST seed '{"customers": [{"id": 101, "business_name": "Contoso"}, {"id": 102, "business_name": "Fabrikam Inc"}]}' >/dev/null
mkconfig plain.lua "$SURL/api/v1"
tickets() { ctl_at "$SURL" GET "state?kind=tickets" | py "$1"; }
NALERTS=$(py 'len(set((f["tenant_id"], f["kind"]) for f in d["findings"] if f["tenant_id"] != "'$NORTHWIND'"))' <f.json)
NALL=$(py 'len(set((f["tenant_id"], f["kind"]) for f in d["findings"]))' <f.json)

expect_ok "alerts --dry-run" -- $ES report findings --alerts --dry-run
check "dry run: a plan line per alert, skipped" test "$(grep -c 'skipped (dry run): would create a ticket' "$T_OUT/err")" = "$NALL"
check "dry run: Northwind's customer is known by name only" grep -q "alert Northwind/.*would create a ticket for customer 'Northwind Traders'" "$T_OUT/err"
check "dry run: no ticket in Syncro" test "$(tickets 'len(d["tickets"])')" = 0
expect_ok "alerts: tickets created" -- $ES report findings --alerts
check "Northwind (no such customer in Syncro) is skipped with a line" grep -q "alert Northwind/.*: skipped: customer 'Northwind Traders'.*no customer has this business name" "$T_OUT/err"
check "one ticket per tenant and kind" test "$(tickets 'len(d["tickets"])')" = "$NALERTS"
check "tickets go to the mapped customers (by id, and by name for Fabrikam)" \
  test "$(tickets 'sorted(set(t["customer_id"] for t in d["tickets"]))')" = "[101, 102]"
check "ticket subject names the tenant and the kind" \
  test "$(tickets 'sum(1 for t in d["tickets"] if t["subject"]=="[entrasync] Contoso: disabled users still hold licences")')" = 1
check "intent and result are in the audit trail" \
  test "$(sql "select count(*) from audit where action='alert.ticket_create' and result='intent'")" = "$NALERTS"
expect_ok "alerts again: nothing changed" -- $ES report findings --alerts
check "no duplicate tickets" test "$(tickets 'len(d["tickets"])')" = "$NALERTS"
check "every alert unchanged" test "$(grep -c ': unchanged (ticket' "$T_OUT/err")" = "$NALERTS"
# a second disabled user: the disabled_user alert of Contoso changes
ctl POST "tenants/contoso/users/$USER_DEL/restore" >/dev/null
ctl POST "tenants/contoso/users/$USER_DEL/disable" >/dev/null
FAKETIME_DONT_FAKE_MONOTONIC=1 ${FT:+faketime "$NEWEST 13:00:00"} "$ENTRASYNC" $ES pull --tenant Contoso >>pulls.log 2>&1
expect_ok "alerts after a change" -- $ES report findings --alerts
check "the changed alert updates its ticket" grep -q "alert Contoso/disabled_user: updated ticket" "$T_OUT/err"
check "still one ticket per tenant and kind" test "$(tickets 'len(d["tickets"])')" -le "$NALERTS"
check "the update is a comment on the open ticket" \
  test "$(tickets 'max(len(t.get("comments", [])) for t in d["tickets"] if "disabled users" in t["subject"] and t["customer_id"]==101)')" = 2

# ---------------------------------------------------------------- alerts from the config
cat >>es.lua <<'EOF'
alerts = { enabled = true, problem_type = "Licensing", subject_prefix = "[MSP]", unused_days = 100000 }
EOF
NT=$(tickets 'len(d["tickets"])')
expect_exit "--alerts and --no-alerts together: usage error" 2 "do not go together" -- $ES report findings --alerts --no-alerts
expect_ok "alerts.enabled, --no-alerts: no alerts this run" -- $ES report findings --no-alerts
check "--no-alerts: no alert line, no new ticket" \
  sh -c "! grep -q '^alert ' '$T_OUT/err' && test \"\$1\" = '$NT'" - "$(tickets 'len(d["tickets"])')"
expect_ok "alerts.enabled: --dry-run without --alerts plans the alerts" -- $ES report findings --dry-run
check "alerts.enabled: a plan line per alert" test "$(grep -c '^alert .*skipped (dry run)' "$T_OUT/err")" -ge 1
# forget the open tickets: the next run opens new ones, with the config's problem type and prefix
sql "DELETE FROM kv WHERE key LIKE 'alert.ticket:%'"
expect_ok "alerts.enabled: report raises alerts without --alerts" -- $ES report findings --format json --out fc.json
check "alerts.unused_days (100000) is the unused threshold: no unused finding" \
  test "$(py 'len([f for f in d["findings"] if f["kind"]=="unused"])' <fc.json)" = 0
check "new tickets carry alerts.subject_prefix and alerts.problem_type" \
  test "$(tickets 'sorted(set((t["subject"].split(" ")[0], t["problem_type"]) for t in d["tickets"]['"$NT"':]))')" = "[('[MSP]', 'Licensing')]"
exit 0
