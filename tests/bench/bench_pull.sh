#!/bin/sh
# bench_pull.sh — `entrasync pull` end to end against the fake Graph with
# added latency (default 100 tenants x 1,000 users, 10 ms per request): a
# first pull, then an incremental pull after 1% of the users changed.
# Reports wall time, entrasync's own CPU time (user+sys), the fake's CPU
# time, the latency x round trips lower bound the concurrency caps allow,
# Graph requests per tenant (from the fake's request log; token requests
# apart) and the store throughput measured by the binary (users written to
# the mirror / CPU seconds spent writing them). The fake pre-renders the
# data set (--eager --warm-select) so that its own CPU per request is small.
# Then the same incremental pull again, replayed: the fake records the
# exchange (POST /_fake/record), is stopped, and build/replay-graph
# (tests/bench/replay_graph.c, REPLAY_GRAPH) serves the record byte for byte
# on the fake's port (deltaLinks are absolute URLs) with the same latency,
# into a copy of the store taken before the pull: the wall time with a
# server that costs next to no CPU; then replayed at other latencies
# (REPLAY_SWEEP, default "0 30" ms; "" for none), each line with its wall at
# zero CPU (the recorded run's round trips x that latency): at 0 ms the wall
# is the CPU's alone, and the latency from which the wall follows the round
# trips shows. Skipped when REPLAY_GRAPH is not built.
# Usage: ENTRASYNC=./entrasync [REPLAY_GRAPH=build/replay-graph] [REPLAY_ROUNDS=5]
#        [REPLAY_WORKERS="auto 1 2"] [REPLAY_SWEEP="0 30"] sh tests/bench/bench_pull.sh [TENANTS USERS LATENCY_MS]
set -u
cd "$(dirname "$0")/../.." || exit 2
ENTRASYNC=${ENTRASYNC:-$(pwd)/entrasync}
case $ENTRASYNC in /*) ;; *) ENTRASYNC=$(pwd)/$ENTRASYNC ;; esac
REPLAY_GRAPH=${REPLAY_GRAPH:-$(pwd)/build/replay-graph}
case $REPLAY_GRAPH in /*) ;; *) REPLAY_GRAPH=$(pwd)/$REPLAY_GRAPH ;; esac
NT=${1:-100}
NU=${2:-1000}
LAT=${3:-10}
D=$(mktemp -d "${TMPDIR:-/tmp}/entrasync-bench-pull.XXXXXX")
# the fake (started, waited for, its control API, the config for its
# tenants) as in the integration tests; its port in $D/graph.port, its log
# in $D/graph.log
. tests/integration/fakes_lib.sh
RPID=
trap 'fakes_stop; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$D"' EXIT
fake_start graph "$D" "${FAKE_GRAPH:-tests/fakes/fake_graph.py}" --seed 3 --tenants "${NT}x${NU}" \
  --latency-ms "$LAT" --eager --warm-select "id,displayName,givenName,surname,mail,userPrincipalName,userType,accountEnabled,department,officeLocation,jobTitle,businessPhones,mobilePhone,streetAddress,city,state,postalCode,country,companyName,employeeId,onPremisesSyncEnabled,createdDateTime,assignedLicenses"
FAKE_PID=$fake_pid_graph
fake_url URL graph 60

# fake GET|POST|PATCH|DELETE PATH [JSON]
fake() { fake_ctl "$URL" "$@"; }

fake_graph_config "$URL" state/bench.db >"$D/es.lua"
printf 'return { groups = { "All Staff" }, include = function(u) return true end }\n' >"$D/policy.lua"
NTEN=$(grep -c 'syncro_customer_id' "$D/es.lua")

# requests KIND: requests of that kind in the fake's log since the last clear
requests() { fake GET "requests?kind=$1&summary=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
store_rate() {  # users written / CPU seconds spent writing them (the binary's store_seconds)
  sqlite3 "$D/state/bench.db" "select sum(json_extract(counts,'\$.users_written')), sum(json_extract(counts,'\$.store_seconds'))
    from run_tenants where run_id = (select max(id) from runs)" | awk -F'|' '{ if ($2 > 0) printf "%d users in %.3f CPU s = %.0f users per CPU second", $1, $2, $1 / $2; else printf "%d users", $1 }'
}

# entrasync's own CPU time (GNU time, when installed), to tell latency-bound from CPU-bound
TIMER=${TIMER_CMD:-}
[ -z "$TIMER" ] && [ -x /usr/bin/time ] && TIMER="/usr/bin/time -o $D/cpu -f %U+%S"
cpu() { [ -s "$D/cpu" ] && printf ", entrasync CPU %s s (user+sys)" "$(tail -n 1 "$D/cpu" | bc)"; }

[ -n "${BENCH_KEEP:-}" ] && echo "bench_pull: keeping $D"
echo "bench_pull: $NTEN tenants x $NU users, fake Graph latency $LAT ms/request ($(nproc) cores)"
# CPU seconds the fake (or process PID) has used so far (Linux /proc), to show who bounds the wall time
fake_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/${1:-$FAKE_PID}/stat" 2>/dev/null || echo 0; }

# The wall time the last pull would take at zero CPU: only the latency,
# the round trips and entrasync's concurrency caps (src/graph/graph.c: 64 token
# requests in flight on the login lane, 64 Graph requests over all tenants,
# 4 per tenant). Simulated from the fake's request log: each tenant's token,
# then its delta pages one after the other, and in parallel its $batch then
# its group's member pages one after the other, every request taking one
# latency, started in submission order as the caps allow. Prints
# "SECONDS (N round trips ...)".
latency_bound() {
  fake GET requests | python3 -c '
import json, sys, collections
lat = float(sys.argv[1]) / 1000
rows = json.load(sys.stdin)["requests"]
ntok = sum(1 for r in rows if r["kind"] == "token")
graph = [r for r in rows if r["kind"] == "graph"]
delta, members, other = collections.Counter(), collections.Counter(), collections.Counter()
for r in graph:
    t = r["tenant"]
    if "/users/delta" in r["path"]: delta[t] += 1
    elif "/transitiveMembers" in r["path"]: members[t] += 1
    else: other[t] += 1          # the $batch (and any follow-up page: counted after it)
tenants = sorted(set(delta) | set(members) | set(other))
# successors: token -> [delta chain, batch chain (batch, follow-ups, member pages)]
chains = {t: [["g"] * delta[t], ["g"] * (other[t] + members[t])] for t in tenants}
login_q = collections.deque(tenants[:ntok])
graph_q = collections.deque()
running = []                      # (end, kind, tenant, chain index)
per_tenant = collections.Counter()
now = rounds = 0.0
def start():
    while login_q and sum(1 for r in running if r[1] == "token") < 64:
        running.append((now + lat, "token", login_q.popleft(), -1))
    busy = sum(1 for r in running if r[1] == "graph")
    for item in list(graph_q):
        if busy >= 64: break
        t, c = item
        if per_tenant[t] >= 4: continue
        graph_q.remove(item); per_tenant[t] += 1; busy += 1
        running.append((now + lat, "graph", t, c))
start()
while running:
    now = min(r[0] for r in running)
    done = [r for r in running if r[0] == now]
    running = [r for r in running if r[0] != now]
    for _, kind, t, c in done:
        if kind == "token":
            for i, ch in enumerate(chains[t]):
                if ch: ch.pop(); graph_q.append((t, i))
        else:
            per_tenant[t] -= 1
            if chains[t][c]: chains[t][c].pop(); graph_q.append((t, c))
    start()
ms = sorted(r["ms"] for r in rows if r["kind"] in ("token", "graph"))
print("%.3f s (%d round trips of %g ms under the caps: %d token + %d Graph requests); "
      "the fake took %.1f ms per request (median; max %.1f) from arrival to answer" % (
    now, round(now / lat), lat * 1000, ntok, len(graph), ms[len(ms) // 2] if ms else 0, ms[-1] if ms else 0))' "$LAT"
}

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
  echo "    wall at zero CPU (latency x round trips under the caps): $(latency_bound); load average $(cut -d' ' -f1-3 /proc/loadavg)"
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
# the store as the incremental pull finds it, for the replay (the pull before has exited)
sqlite3 "$D/state/bench.db" ".backup '$D/before-incremental.db'"
fake POST record "{\"file\": \"$D/incremental.rec\"}" >/dev/null
run_pull "incremental pull:" 2 ", target <= 2 + 1 group"
fake DELETE record >/dev/null
changed() { sqlite3 "$D/state/bench.db" "select count(*) from users where json_extract(json,'\$.jobTitle') = 'Changed'"; }
CHANGED=$(changed)
echo "changed users stored: $CHANGED"
[ -s "$D/err2" ] && { echo "stderr of the incremental pull:"; head -5 "$D/err2"; }

# The incremental pull again, into the store as it was, from the C server
# replaying what the fake answered. Same config: the replay takes the fake's
# port, since the stored deltaLinks (and any nextLink) are absolute URLs.
if [ ! -x "$REPLAY_GRAPH" ]; then
  echo "incremental pull, replayed from a C server: skipped (no $REPLAY_GRAPH: make build/replay-graph)"
  exit 0
fi
BOUND=$(latency_bound)
PORT=${URL##*:}
kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
# restore: the store as the incremental pull found it; then sync, so that the
# pull's first checkpoint does not wait for the copy's 200 MB of dirty pages
restore() {
  rm -f "$D/state/bench.db" "$D/state/bench.db-wal" "$D/state/bench.db-shm"
  cp "$D/before-incremental.db" "$D/state/bench.db"
  sync
}
# replay_start MS: (re)starts the replay server on the fake's port with MS ms latency
replay_start() {
  if [ -n "$RPID" ]; then kill -TERM "$RPID"; wait "$RPID" 2>/dev/null; fi
  rm -f "$D/replay.port"
  "$REPLAY_GRAPH" --port "$PORT" --port-file "$D/replay.port" --latency-ms "$1" "$D/incremental.rec" 2>>"$D/replay.err" &
  RPID=$!
  EXTRA_PIDS=$RPID
  i=0
  while [ ! -s "$D/replay.port" ] && [ $i -lt 100 ] && kill -0 $RPID 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
  [ -s "$D/replay.port" ] || { echo "bench_pull: replay-graph did not start on port $PORT"; cat "$D/replay.err"; exit 1; }
}
stats() {  # requests misses unserved cpu_seconds phase_seconds, from the replay's /_replay/stats
  python3 -c 'import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1] + "/_replay/stats"))
print(d["requests"], d["misses"], d["unserved"], d["cpu_seconds"], d["phase_seconds"])' "$URL"
}
# replay_rounds MS WORKERS...: REPLAY_ROUNDS rounds (default 5) of a pull for
# each worker setting ("auto": as `pull` chooses; N: --workers N), each into
# the restored store, interleaved; one line per pull in $D/rounds. The
# network phase is the server's: from the first request's arrival to the
# last answer's sending.
ROUNDS=${REPLAY_ROUNDS:-5}
: >"$D/rounds"
replay_rounds() {
  lat_ms=$1
  shift
  wks=$*
  replay_start "$lat_ms"
  r=0
  while [ $r -lt "$ROUNDS" ]; do
    for wk in $wks; do
      restore
      R0=$(stats)
      WARG=
      [ "$wk" = auto ] || WARG="--workers $wk"
      t0=$(date +%s.%N)
      # shellcheck disable=SC2086
      (cd "$D" && $TIMER "$ENTRASYNC" --config es.lua --log-level warn pull $WARG >"$D/out3" 2>"$D/err3")
      rc=$?
      t1=$(date +%s.%N)
      # auto: one per online CPU, at most one per 16 tenants (graph_pull_workers_auto)
      used=$wk
      [ "$wk" = auto ] && used=$(python3 -c 'import os, sys; print(max(1, min(os.cpu_count(), int(sys.argv[1]) // 16, 16)))' "$NTEN")
      # shellcheck disable=SC2046
      set -- $(stats)
      # shellcheck disable=SC2086
      set -- "$@" $R0
      echo "$wk ${used:-1} $rc $(echo "$t1 - $t0" | bc) $( [ -s "$D/cpu" ] && tail -n 1 "$D/cpu" | bc || echo 0) $(echo "$4 - $9" | bc) $(($1 - $6)) $(($2 - $7)) $5 $lat_ms" >>"$D/rounds"
      [ "$rc" = 0 ] || LAST_RC=$rc
      MISSES=$(($2 - $7 + ${MISSES:-0}))
    done
    r=$((r + 1))
  done
}
LAST_RC=0
# REPLAY_WORKERS (default "auto 1 2") at the bench's latency; then the
# default alone at REPLAY_SWEEP's latencies (default "0 30"): where the pull
# stops being bound by its CPU and starts being bound by the round trips (at
# 0 ms the wall is the CPU's alone)
# shellcheck disable=SC2086
replay_rounds "$LAT" ${REPLAY_WORKERS:-auto 1 2}
for ms in ${REPLAY_SWEEP-0 30}; do
  [ "$ms" = "$LAT" ] || replay_rounds "$ms" auto
done
RTS=$(echo "$BOUND" | sed -n 's/.*(\([0-9]*\) round trips.*/\1/p')
python3 - "$D/rounds" "${RTS:-0}" <<'EOF2'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rts = int(sys.argv[2])
for key in dict.fromkeys((r[9], r[0]) for r in rows):
    rs = [r for r in rows if (r[9], r[0]) == key]
    def med(i):
        v = sorted(float(r[i]) for r in rs); return v[len(v) // 2], v[0], v[-1]
    w, c, s, p = med(3), med(4), med(5), med(8)
    bound = rts * float(key[0]) / 1000
    print("incremental pull, replayed from a C server at %s ms, --workers %s (%s worker processes; %d rounds): exit %s, "
          "wall %.3f s (%.3f-%.3f), network phase %.3f s (%.3f-%.3f), entrasync CPU %.3f s (%.3f-%.3f, user+sys), "
          "server CPU %.3f s, %s requests, %s misses per round; wall at zero CPU %.3f s (%d round trips)%s" % (
          key[0], key[1], "/".join(sorted(set(r[1] for r in rs))), len(rs), "/".join(sorted(set(r[2] for r in rs))),
          w[0], w[1], w[2], p[0], p[1], p[2], c[0], c[1], c[2], s[0], rs[-1][6], max(int(r[7]) for r in rs), bound, rts,
          ": wall %.2fx that" % (w[0] / bound) if bound > 0 else ""))
EOF2
set -- $(stats)
echo "    replay-graph: ${MISSES:-0} misses over all rounds; $3 recorded responses not served in the last round"
echo "    wall at zero CPU (latency x round trips under the caps, from the recorded run): $BOUND; load average $(cut -d' ' -f1-3 /proc/loadavg)"
RCHANGED=$(changed)
echo "changed users stored by the replayed pull: $RCHANGED (the recorded pull: $CHANGED)"
if [ "${MISSES:-0}" != 0 ] || [ "$RCHANGED" != "$CHANGED" ] || [ "$LAST_RC" != 0 ]; then
  echo "bench_pull: THE REPLAY DID NOT MATCH THE RECORDED EXCHANGE (misses ${MISSES:-0}, changed users $RCHANGED vs $CHANGED, exit $LAST_RC): its wall time is not comparable"
  echo "    (entrasync's \$batch depends on the UTC day: secureScores \$top, control profiles; a record made before midnight misses after it)"
  grep 'miss:' "$D/replay.err" | head -5
  [ -s "$D/err3" ] && head -5 "$D/err3"
fi
kill -TERM $RPID; wait $RPID 2>/dev/null; RPID= EXTRA_PIDS=
exit 0
