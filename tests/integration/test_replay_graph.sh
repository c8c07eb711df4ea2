#!/bin/sh
# test_replay_graph — the recorded replay behind bench_pull.sh: pulls from the
# fake Graph recorded (POST /_fake/record: a first pull with a dropped
# response and its retry, 1% changed, an incremental pull), then the fake
# stopped and build/replay-graph (tests/bench/replay_graph.c) serving the
# record on the fake's port; the same pulls into a fresh store give the same
# users and memberships with no miss, and every recorded response is served.
# An unknown request gets a 500 and counts as a miss; SIGTERM prints the
# counts and exits 0. Builds build/replay-graph when it is missing (skips
# when it cannot).
[ -n "${ENTRASYNC:-}" ] || ENTRASYNC=$(pwd)/build/entrasync
. tests/lib.sh
. tests/integration/fakes_lib.sh

FAKE=${FAKE_GRAPH:-tests/fakes/fake_graph.py}
REPLAY=${REPLAY_GRAPH:-build/replay-graph}
if [ ! -x "$REPLAY" ] && [ -z "${REPLAY_GRAPH:-}" ]; then
  make -s build/replay-graph >"$T_OUT/make.log" 2>&1 || true
fi
if [ ! -x "$REPLAY" ] || [ ! -f "$FAKE" ]; then
  echo "skip - test_replay_graph: no $REPLAY (make build/replay-graph) or no fake Graph"
  exit 0
fi
case $REPLAY in /*) ;; *) REPLAY=$(pwd)/$REPLAY ;; esac
W=$T_OUT/replay
mkdir -p "$W"
LAT=2

fake_start graph "$W" "$FAKE" --seed 11 --tenants 3x40 --latency-ms $LAT
fake_url URL graph
PORT=${URL##*:}
ctl() { fake_ctl "$URL" "$@"; }

fake_graph_config "$URL" state/es.db >"$W/es.lua"
printf 'return { groups = { "All Staff" }, include = function(u) return true end }\n' >"$W/policy.lua"

# pulls LABEL: the first pull, 2 users changed per tenant (on the fake only
# while recording), the incremental pull; then the store's users and
# memberships into $W/LABEL.dump.
pulls() {
  (cd "$W" && es --config es.lua --log-level warn pull) || { fail "$1: first pull" "exit $?"; return 1; }
  if [ "$1" = fake ]; then
    ctl GET tenants | python3 -c '
import json, sys, urllib.request
url = sys.argv[1]
for t in [t for t in json.load(sys.stdin)["tenants"] if not t["partner"]]:
    us = json.load(urllib.request.urlopen(url + "/_fake/tenants/%s/users" % t["key"]))["users"]
    for u in [u for u in us if u["_state"] == "active"][:2]:
        urllib.request.urlopen(urllib.request.Request(
            url + "/_fake/tenants/%s/users/%s" % (t["key"], u["id"]), method="PATCH",
            data=json.dumps({"jobTitle": "Changed"}).encode(),
            headers={"Content-Type": "application/json"})).read()' "$URL"
  fi
  (cd "$W" && es --config es.lua --log-level warn pull) || { fail "$1: incremental pull" "exit $?"; return 1; }
  sqlite3 "$W/state/es.db" "select tenant_id, object_id, json, removed from users order by 1, 2;
    select * from group_members order by 1, 2, 3;" >"$W/$1.dump"
}

# http METHOD URL: prints the status and the body (one line each)
http() {
  python3 -c '
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(urllib.request.Request(sys.argv[2], method=sys.argv[1]))
    print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())' "$1" "$2"
}

# --- record ---------------------------------------------------------------------------------
ctl POST record "{\"file\": \"$W/rec.jsonl\"}" >/dev/null
ctl POST faults '{"match": "/users/delta", "drop": true, "times": 1}' >/dev/null
pulls fake || exit 0
REC=$(ctl DELETE record | jq_py 'd["records"]')
LOGGED=$(( $(ctl GET 'requests?kind=token&summary=1' | jq_py 'd["total"]') + \
  $(ctl GET 'requests?kind=graph&summary=1' | jq_py 'd["total"]') ))
check "every token and Graph exchange recorded ($REC lines, $LOGGED logged)" \
  [ "$REC" = "$(grep -c . "$W/rec.jsonl")" -a "$REC" = "$LOGGED" -a "$REC" -gt 20 ]
check "the recorded users changed in the incremental pull" grep -q '"jobTitle":"Changed"' "$W/fake.dump"
check "the dropped response recorded as such" grep -q '"drop":"close"' "$W/rec.jsonl"

# --- replay on the fake's port (deltaLinks and nextLinks are absolute URLs) -----------------
kill "$fake_pid_graph" 2>/dev/null; wait "$fake_pid_graph" 2>/dev/null
rm -rf "$W/state"
"$REPLAY" --port "$PORT" --port-file "$W/replay.port" --latency-ms $LAT "$W/rec.jsonl" 2>"$W/replay.err" &
RPID=$!
EXTRA_PIDS=$RPID
i=0
while [ ! -s "$W/replay.port" ] && [ $i -lt 100 ] && kill -0 $RPID 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
if [ ! -s "$W/replay.port" ]; then
  fail "replay-graph starts on the fake's port $PORT" "$(cat "$W/replay.err")"; exit 0
fi
pulls replay || exit 0
check "the replayed pulls store the same users and memberships" cmp -s "$W/fake.dump" "$W/replay.dump"
# counts: the stats without the server's CPU seconds and the network phase
counts() { http GET "$URL/_replay/stats" | tail -n 1 | sed 's/,"cpu_seconds":[0-9.]*,"phase_seconds":[0-9.]*}$/}/'; }
# phase: the network phase (first request to last answer) since the last stats call
phase() { http GET "$URL/_replay/stats" | tail -n 1 | sed 's/.*"phase_seconds":\([0-9.]*\)}$/\1/'; }
PHASE=$(phase)
check "the pulls' network phase is reported, at least the latency ($PHASE s)" \
  python3 -c "import sys; sys.exit(0 if float('$PHASE') >= $LAT / 1000 else 1)"
check "the phase restarts at each stats call" [ "$(phase)" = 0.000000 ]
STATS=$(counts)
check "no miss, every recorded response served ($STATS)" \
  [ "$STATS" = "{\"requests\":$REC,\"misses\":0,\"unserved\":0}" ]

MISS=$(http GET "$URL/v1.0/users/unknown")
check "an unknown request gets a 500" [ "$(echo "$MISS" | head -n 1)" = 500 ]
check "and counts as a miss" [ "$(counts)" = "{\"requests\":$((REC + 1)),\"misses\":1,\"unserved\":0}" ]

kill -TERM $RPID; wait $RPID; rc=$?
check "SIGTERM: exit 0 ($rc)" [ "$rc" = 0 ]
check "SIGTERM: the counts on stderr" grep -q "^replay-graph: $((REC + 1)) requests, 1 misses$" "$W/replay.err"
check "the miss reported on stderr" grep -q '^replay-graph: miss: GET /v1.0/users/unknown$' "$W/replay.err"
