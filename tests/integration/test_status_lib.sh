#!/bin/sh
# test_status_lib — shared setup for the operator tests (test_status.sh,
# test_audit.sh, test_daemon.sh, test_metrics.sh): starts the fake Graph
# and the fake Syncro on 127.0.0.1 (stopped by a trap), writes a config
# with three demo tenants (Woodgrove has not consented: its pull fails),
# and has control-API and JSON helpers. Sourced, never run: run directly
# (by tests/run.sh) it does nothing.
case "${0##*/}" in test_status_lib.sh) exit 0 ;; esac

. tests/lib.sh

CID=4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59
SECRET='Xq7Q~entrasync.fake-demo-secret_0001'
CONTOSO=6babcaad-604b-40ac-a9d7-9fd97c0b779f
FABRIKAM=2a6b1c4d-7e8f-4a9b-8c0d-1e2f3a4b5c6d
WOODGROVE=0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0
SKEY=ops-test-key
REPO=$(pwd)

# ops_start DIR: both fakes with their demo data; sets W, GURL, SURL and
# cds into W. Every process a test starts in the background should be
# added to EXTRA_PIDS so the trap stops it too.
ops_start() {
  W=$1
  mkdir -p "$W"
  python3 "$REPO/tests/fakes/fake_graph.py" --port 0 --port-file "$W/graph.port" --seed 1 --tenants demo \
    >"$W/graph.log" 2>&1 &
  GRAPH_PID=$!
  python3 "$REPO/tests/fakes/fake_syncro.py" --port 0 --port-file "$W/syncro.port" --api-key "$SKEY" --data demo \
    >"$W/syncro.log" 2>&1 &
  SYNCRO_PID=$!
  EXTRA_PIDS=
  trap 'kill $GRAPH_PID $SYNCRO_PID $EXTRA_PIDS 2>/dev/null' EXIT INT TERM
  i=0
  while { [ ! -s "$W/graph.port" ] || [ ! -s "$W/syncro.port" ]; } && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
  if [ ! -s "$W/graph.port" ] || [ ! -s "$W/syncro.port" ]; then
    echo "FAIL - the fakes did not start"; cat "$W/graph.log" "$W/syncro.log"; exit 1
  fi
  GURL=http://127.0.0.1:$(cat "$W/graph.port")
  SURL=http://127.0.0.1:$(cat "$W/syncro.port")
  cd "$W" || exit 1
  cat >policy.lua <<'EOF'
local p = require "entrasync.policy"
return {
  include = function(u, t)
    if p.is_disabled(u) then return false, "account disabled" end
    if p.is_guest(u) or not p.has_mail(u) then return false, "guest or no mail" end
    return true
  end,
  contact = p.contact,
  on_leave = function(c, why, t)
    if why == "deleted" then return "delete" end
    return "keep"
  end,
}
EOF
  ops_config c.lua
}

# ops_config FILE [EXTRA-TOP-LEVEL-LINES]: the config for the fakes.
ops_config() {
  cat >"$1" <<EOF
database = "state/es.db"
graph = { client_id = "$CID", client_secret = "$SECRET", authority = "$GURL", endpoint = "$GURL" }
syncro = { base_url = "$SURL/api/v1", api_key = "$SKEY", requests_per_minute = 6000 }
policy = "policy.lua"
tenants = {
  { id = "$CONTOSO", name = "Contoso", syncro_customer_id = 101 },
  { id = "$FABRIKAM", name = "Fabrikam", syncro_customer = "Fabrikam Inc" },
  { id = "$WOODGROVE", name = "Woodgrove", syncro_customer_id = 103 },
}
${2:-}
EOF
}

# ctl URL METHOD PATH [JSON]: a fake's control API (/_fake/PATH); prints the answer.
ctl() {
  python3 - "$1/_fake/$3" "$2" "${4:-}" <<'EOF'
import sys, urllib.request
url, method, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                             headers={"Content-Type": "application/json"})
try:
    print(urllib.request.urlopen(req).read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode()); sys.exit(1)
EOF
}
gctl() { ctl "$GURL" "$@"; }
sctl() { ctl "$SURL" "$@"; }
# jpath FILE EXPR: a Python expression over the JSON in FILE (as d).
jpath() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
# sql QUERY: against the test database.
sql() { sqlite3 state/es.db "$1"; }

# hold_lock FILE SECONDS: holds an flock on FILE (like another entrasync
# run) for SECONDS in the background; HOLD_PID is the holder.
hold_lock() {
  python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0); os.write(fd, b"%d\n" % os.getpid())
open(sys.argv[1] + ".held", "w").close()
time.sleep(float(sys.argv[2]))' "$1" "$2" &
  HOLD_PID=$!
  EXTRA_PIDS="$EXTRA_PIDS $HOLD_PID"
  i=0
  while [ ! -e "$1.held" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  rm -f "$1.held"
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds; fails after SECONDS.
wait_for() {
  limit=$1; shift
  n=0
  while ! "$@" >/dev/null 2>&1; do
    n=$((n + 1))
    [ $n -gt $((limit * 10)) ] && return 1
    sleep 0.1
  done
  return 0
}
