#!/bin/sh
# tests/report-demo.sh [OUTDIR] — `make report-demo`: starts the fake Graph,
# pulls its demo tenants over 100 simulated days (faketime moves
# entrasync's clock with the fake's; without faketime, one day), writes the
# HTML report (OUTDIR/report.html, default build/report-demo) and renders it
# in headless Chromium to OUTDIR/report.png, to look at. Needs python3;
# chromium (Debian package) for the PNG. ENTRASYNC = the binary (default
# ./entrasync).
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$HERE/build/report-demo}
ES_BIN=${ENTRASYNC:-$HERE/entrasync}
DAYS=${DEMO_DAYS:-100}
START=2025-01-01
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT/state" "$OUT/port"
python3 "$HERE/tests/fakes/fake_graph.py" --port 0 --port-file "$OUT/port" --seed 7 --now "${START}T12:00:00Z" \
  >"$OUT/fake.log" 2>&1 &
FAKE_PID=$!
trap 'kill $FAKE_PID 2>/dev/null' EXIT INT TERM
i=0
while [ ! -s "$OUT/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
URL=http://127.0.0.1:$(cat "$OUT/port")
cat >"$OUT/policy.lua" <<'EOF'
return {
  include = function(u) return true end,
  license = function(sku, t)
    if sku.part == "FLOW_FREE" then return { hide = true } end
    return nil
  end,
  secure_score = function(s, prev, t)
    if prev and s.percent < prev.percent - 2 then
      return { alert = string.format("Secure Score fell from %.2f%% to %.2f%% on %s", prev.percent, s.percent, s.date) }
    end
  end,
}
EOF
cat >"$OUT/es.lua" <<EOF
database = "state/es.db"
graph = { client_id = "4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59", client_secret = "Xq7Q~entrasync.fake-demo-secret_0001",
          authority = "$URL", endpoint = "$URL" }
syncro = { base_url = "http://127.0.0.1:9/api/v1", api_key = "demo" }
policy = "policy.lua"
tenants = {
  { id = "6babcaad-604b-40ac-a9d7-9fd97c0b779f", name = "Contoso", syncro_customer_id = 1 },
  { id = "fabrikam.com", name = "Fabrikam", syncro_customer_id = 2 },
  { id = "9c8b7a6d-5e4f-4321-a0b9-c8d7e6f5a4b3", name = "Northwind", syncro_customer_id = 3 },
}
EOF
cd "$OUT"
command -v faketime >/dev/null 2>&1 || DAYS=1
d=0
while [ $d -lt "$DAYS" ]; do
  day=$(date -u -d "$START + $d days" +%F)
  curl -sf -X POST -H 'Content-Type: application/json' --data "{\"set\": \"${day}T12:00:00Z\"}" "$URL/_fake/clock" >/dev/null
  [ $d = 40 ] && curl -sf -X PATCH -H 'Content-Type: application/json' --data '{"enabled": 40}' \
    "$URL/_fake/tenants/contoso/skus/SPE_E3" >/dev/null
  if [ "$DAYS" -gt 1 ]; then
    FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "$day 12:00:00" "$ES_BIN" --config es.lua --log-level error pull >/dev/null || true
  else
    "$ES_BIN" --config es.lua --log-level error pull >/dev/null || true
  fi
  d=$((d + 1))
done
"$ES_BIN" --config es.lua report securescore --format html --title "entrasync demo: licences and Secure Score" \
  --out report.html
"$ES_BIN" --config es.lua report securescore
"$ES_BIN" --config es.lua report findings
if command -v chromium >/dev/null 2>&1; then
  prof=$(mktemp -d)
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
    --disable-sync --no-first-run --user-data-dir="$prof" --hide-scrollbars --screenshot="$OUT/report.png" \
    --window-size=1280,2000 "file://$OUT/report.html" >/dev/null 2>&1 || true
  rm -rf "$prof"
  [ -s "$OUT/report.png" ] && echo "rendered $OUT/report.png"
else
  echo "chromium not installed (apt-get install chromium): no PNG; open $OUT/report.html"
fi
