#!/bin/sh
# bench_pull.sh — `entrasync pull` end to end against the fake Graph with
# added latency (default 100 tenants x 1,000 users, 10 ms per request): a
# first pull, then an incremental pull after 1% of the users changed.
# Reports wall time, Graph requests per tenant (from the fake's request
# log; token requests apart) and the store throughput measured by the
# binary (users written to the mirror / seconds spent writing them).
# Usage: ENTRASYNC=./entrasync sh tests/bench/bench_pull.sh [TENANTS USERS LATENCY_MS]
set -u
cd "$(dirname "$0")/../.." || exit 2
ENTRASYNC=${ENTRASYNC:-$(pwd)/entrasync}
case $ENTRASYNC in /*) ;; *) ENTRASYNC=$(pwd)/$ENTRASYNC ;; esac
NT=${1:-100}
NU=${2:-1000}
LAT=${3:-10}
D=$(mktemp -d "${TMPDIR:-/tmp}/entrasync-bench-pull.XXXXXX")
python3 "${FAKE_GRAPH:-tests/fakes/fake_graph.py}" --port 0 --port-file "$D/port" --seed 3 --tenants "${NT}x${NU}" \
  --latency-ms "$LAT" --eager --warm-select "id,displayName,givenName,surname,mail,userPrincipalName,userType,accountEnabled,department,officeLocation,jobTitle,businessPhones,mobilePhone,streetAddress,city,state,postalCode,country,companyName,employeeId,onPremisesSyncEnabled,createdDateTime,assignedLicenses" >"$D/fake.log" 2>&1 &
FAKE_PID=$!
trap 'kill $FAKE_PID 2>/dev/null; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$D"' EXIT INT TERM
i=0
while [ ! -s "$D/port" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$D/port" ] || { echo "bench_pull: the fake did not start"; cat "$D/fake.log"; exit 1; }
URL=http://127.0.0.1:$(cat "$D/port")

# fake GET|POST|PATCH|DELETE PATH [JSON]
fake() {
  python3 - "$URL/_fake/$2" "$1" "${3:-}" <<'EOF'
import sys, urllib.request
url, method, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req).read().decode())
EOF
}

fake GET tenants | python3 -c '
import json, sys
ts = [t for t in json.load(sys.stdin)["tenants"] if not t["partner"]]
print("database = \"state/bench.db\"")
print("graph = { client_id = \"4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59\", client_secret = \"Xq7Q~entrasync.fake-demo-secret_0001\",")
print("  authority = \"'"$URL"'\", endpoint = \"'"$URL"'\" }")
print("syncro = { base_url = \"http://127.0.0.1:9/api/v1\", api_key = \"unused\" }")
print("policy = \"policy.lua\"")
print("tenants = {")
for i, t in enumerate(ts):
    print("  { id = \"%s\", syncro_customer_id = %d }," % (t["id"], i + 1))
print("}")
' >"$D/es.lua"
printf 'return { groups = { "All Staff" }, include = function(u) return true end }\n' >"$D/policy.lua"
NTEN=$(grep -c 'syncro_customer_id' "$D/es.lua")

# requests KIND: requests of that kind in the fake's log since the last clear
requests() { fake GET "requests?kind=$1&summary=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
store_rate() {  # users written / store seconds of the last run, from the store
  sqlite3 "$D/state/bench.db" "select sum(json_extract(counts,'\$.users_written')), sum(json_extract(counts,'\$.store_seconds'))
    from run_tenants where run_id = (select max(id) from runs)" | awk -F'|' '{ if ($2 > 0) printf "%d users in %.3f s = %.0f users/s", $1, $2, $1 / $2; else printf "%d users", $1 }'
}

# entrasync's own CPU time (GNU time, when installed), to tell latency-bound from CPU-bound
TIMER=${TIMER_CMD:-}
[ -z "$TIMER" ] && [ -x /usr/bin/time ] && TIMER="/usr/bin/time -o $D/cpu -f %U+%S"
cpu() { [ -s "$D/cpu" ] && printf ", entrasync CPU %s s" "$(tail -n 1 "$D/cpu" | bc)"; }

[ -n "${BENCH_KEEP:-}" ] && echo "bench_pull: keeping $D"
echo "bench_pull: $NTEN tenants x $NU users, fake Graph latency $LAT ms/request ($(nproc) cores)"
# CPU seconds the fake has used so far (Linux /proc), to show who bounds the wall time
fake_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$FAKE_PID/stat" 2>/dev/null || echo 0; }

# run_pull LABEL N TARGET: one timed pull, its Graph requests from the fake's log.
run_pull() {
  fake DELETE requests >/dev/null
  f0=$(fake_cpu)
  t0=$(date +%s.%N)
  (cd "$D" && $TIMER "$ENTRASYNC" --config es.lua --log-level warn pull >"$D/out$2" 2>"$D/err$2")
  rc=$?
  t1=$(date +%s.%N)
  f1=$(fake_cpu)
  G=$(requests graph); T=$(requests token)
  echo "$1 exit $rc, wall $(echo "$t1 - $t0" | bc) s$(cpu), fake Graph CPU $(echo "$f1 - $f0" | bc) s, Graph requests $G ($(echo "scale=2; $G / $NTEN" | bc)/tenant$3) + $T token requests; store: $(store_rate)"
}
run_pull "first pull:      " 1 ""

# 1% of the users change (jobTitle) in every tenant
fake GET tenants | python3 -c '
import json, sys, urllib.request
url = sys.argv[1]; pct = 0.01
for t in [t for t in json.load(sys.stdin)["tenants"] if not t["partner"]]:
    us = json.load(urllib.request.urlopen(url + "/_fake/tenants/%s/users" % t["key"]))["users"]
    active = [u for u in us if u["_state"] == "active"]
    for u in active[:max(1, int(len(active) * pct))]:
        req = urllib.request.Request(url + "/_fake/tenants/%s/users/%s" % (t["key"], u["id"]),
                                     data=json.dumps({"jobTitle": "Changed"}).encode(), method="PATCH",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
' "$URL"
run_pull "incremental pull:" 2 ", target <= 2 + 1 group"
echo "changed users stored: $(sqlite3 "$D/state/bench.db" "select count(*) from users where json_extract(json,'\$.jobTitle') = 'Changed'")"
[ -s "$D/err2" ] && { echo "stderr of the incremental pull:"; head -5 "$D/err2"; }
exit 0
