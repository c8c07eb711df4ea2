#!/bin/sh
# fakes_lib — starting the loopback fakes (tests/fakes/fake_*.py) and talking
# to their control APIs (/_fake/...), shared by the integration tests.
# Sourced, never run: run directly (by tests/run.sh) it does nothing.
# Each fake listens on 127.0.0.1 port 0 (the kernel picks a free port, which
# the fake writes to its port file), so test files can run side by side.
#   fake_start graph "$W" tests/fakes/fake_graph.py --seed 1
#   fake_start syncro "$W" tests/fakes/fake_syncro.py --data demo
#   fake_url GURL graph; fake_url SURL syncro   # start both, then wait
#   fake_ctl "$GURL" POST faults '{"status": 503}'
#   fake_config c.lua "$GURL" "base_url = \"$SURL/api/v1\", api_key = \"k\"" policy.lua "$TENANT_LINES"
# Every fake started (and every pid in EXTRA_PIDS) is stopped when the test
# file exits. The benchmarks (tests/bench/*.sh) use it too.
case "${0##*/}" in fakes_lib.sh) exit 0 ;; esac

# The fakes' demo data (tests/fakes/graph_data.py): the app registration
# the fake Graph knows, and its demo tenants (Woodgrove has not consented
# to the app: its token requests fail with AADSTS700016).
CID=4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59
SECRET='Xq7Q~entrasync.fake-demo-secret_0001'
CONTOSO=6babcaad-604b-40ac-a9d7-9fd97c0b779f
FABRIKAM=2a6b1c4d-7e8f-4a9b-8c0d-1e2f3a4b5c6d
NORTHWIND=9c8b7a6d-5e4f-4321-a0b9-c8d7e6f5a4b3
WOODGROVE=0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0

FAKE_PIDS=

# fakes_stop: stops every fake started here and the EXTRA_PIDS.
fakes_stop() {
  # shellcheck disable=SC2086
  [ -n "$FAKE_PIDS${EXTRA_PIDS:-}" ] && kill $FAKE_PIDS ${EXTRA_PIDS:-} 2>/dev/null
  return 0
}
trap fakes_stop EXIT
trap 'fakes_stop; exit 143' INT TERM

# fake_start NAME DIR SCRIPT [ARGS...]: starts `python3 SCRIPT --port 0
# --port-file DIR/NAME.port ARGS...` in the background, its output in
# DIR/NAME.log, its pid in fake_pid_NAME (and FAKE_PIDS). Does not wait for
# it: fake_url does (so that two fakes start side by side).
fake_start() {
  _fake_name=$1 _fake_dir=$2 _fake_script=$3; shift 3
  mkdir -p "$_fake_dir"
  rm -f "$_fake_dir/$_fake_name.port"
  python3 "$_fake_script" --port 0 --port-file "$_fake_dir/$_fake_name.port" "$@" \
    >"$_fake_dir/$_fake_name.log" 2>&1 &
  FAKE_PIDS="$FAKE_PIDS $!"
  eval "fake_pid_$_fake_name=\$!; fake_dir_$_fake_name=\$_fake_dir"
}

# fake_url VAR NAME [SECONDS]: waits (SECONDS, default 15, at most) until
# fake NAME has written its port and sets VAR to its base URL
# (http://127.0.0.1:PORT). When the fake died or never became ready: a FAIL
# line with its log, and the test file exits 1.
fake_url() {
  eval "_fake_pid=\$fake_pid_$2; _fake_dir=\$fake_dir_$2"
  _fake_i=0
  while [ ! -s "$_fake_dir/$2.port" ]; do
    if ! kill -0 "$_fake_pid" 2>/dev/null || [ $_fake_i -ge $((${3:-15} * 20)) ]; then
      sleep 0.1   # a port file written just before it exited
      [ -s "$_fake_dir/$2.port" ] && break
      echo "FAIL - the fake $2 did not start"; sed 's/^/    /' "$_fake_dir/$2.log"; exit 1
    fi
    sleep 0.05; _fake_i=$((_fake_i + 1))
  done
  eval "$1=http://127.0.0.1:\$(cat \"\$_fake_dir/\$2.port\")"
}

# fake_alive NAME...: every fake named still runs (else a FAIL line).
fake_alive() {
  for _fake_name in "$@"; do
    eval "_fake_pid=\$fake_pid_$_fake_name"
    kill -0 "$_fake_pid" 2>/dev/null && continue
    echo "FAIL - the fake $_fake_name stopped (killed from outside?)"
    return 1
  done
  return 0
}

# fake_ctl URL METHOD PATH [JSON]: a fake's control API (URL/_fake/PATH);
# prints the answer (the error's body too) and fails on an HTTP error. With
# curl when it has --fail-with-body (a process start ten times cheaper than
# Python's), else with Python.
if command -v curl >/dev/null 2>&1 && curl --help all 2>/dev/null | grep -q -- --fail-with-body; then
  fake_ctl() {
    if [ -n "${4:-}" ]; then
      curl -sS -g --fail-with-body -X "$2" -H 'Content-Type: application/json' --data-binary "$4" "$1/_fake/$3"
    else
      curl -sS -g --fail-with-body -X "$2" -H 'Content-Type: application/json' "$1/_fake/$3"
    fi
    _fake_rc=$?; echo; return $_fake_rc
  }
else
  fake_ctl() {
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
fi

# jq_py EXPR: a Python expression over the JSON on stdin (as d); prints it.
jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# graph_test NAME DIR [FAKE-ARGS...]: the fake Graph for the test NAME, or
# the test skipped when there is none: W=$T_OUT/DIR made, the fake started
# there with FAKE-ARGS, URL its address, ctl METHOD PATH [JSON] its control
# API.
graph_test() {
  FAKE=${FAKE_GRAPH:-tests/fakes/fake_graph.py}
  if [ ! -f "$FAKE" ]; then
    echo "skip - $1: no fake Graph at $FAKE"
    exit 0
  fi
  W=$T_OUT/$2
  mkdir -p "$W"
  shift 2
  fake_start graph "$W" "$FAKE" "$@"
  fake_url URL graph
  ctl() { fake_ctl "$URL" "$@"; }
}

# fake_config FILE GRAPH_URL SYNCRO POLICY TENANTS [EXTRA]: writes FILE, a
# config for the fakes: line 1 the database state/es.db, line 2 the demo
# app on the fake Graph at GRAPH_URL (its authority and its endpoint),
# line 3 syncro = { SYNCRO } (SYNCRO: its fields, base_url, api_key...),
# then the policy file POLICY, the tenants TENANTS (table entries, one a
# line) and EXTRA (top-level lines).
fake_config() {
  cat >"$1" <<EOF
database = "state/es.db"
graph = { client_id = "$CID", client_secret = "$SECRET", authority = "$2", endpoint = "$2" }
syncro = { $3 }
policy = "$4"
tenants = {
$5
}
EOF
  if [ -n "${6:-}" ]; then printf '%s\n' "$6" >>"$1"; fi
}

# fake_graph_config URL DB: prints a config for every tenant of the fake
# Graph at URL but the partner (Syncro customers 1, 2... in the fake's
# order, Syncro unreachable: for pulls only), the database DB, the policy
# policy.lua.
fake_graph_config() {
  fake_ctl "$1" GET tenants | python3 -c '
import json, sys
url, db, cid, secret = sys.argv[1:5]
print("database = \"%s\"" % db)
print("graph = { client_id = \"%s\", client_secret = \"%s\"," % (cid, secret))
print("  authority = \"%s\", endpoint = \"%s\" }" % (url, url))
print("syncro = { base_url = \"http://127.0.0.1:9/api/v1\", api_key = \"unused\" }")
print("policy = \"policy.lua\"")
print("tenants = {")
for i, t in enumerate(t for t in json.load(sys.stdin)["tenants"] if not t["partner"]):
    print("  { id = \"%s\", syncro_customer_id = %d }," % (t["id"], i + 1))
print("}")' "$1" "$2" "$CID" "$SECRET"
}
