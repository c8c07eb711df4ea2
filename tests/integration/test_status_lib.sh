#!/bin/sh
# test_status_lib — shared setup for the operator tests (test_status.sh,
# test_audit.sh, test_daemon.sh, test_metrics.sh), on top of the sync tests'
# library (the fakes, control-API helpers): a config with three demo
# tenants where Woodgrove has not consented (its pull fails), a policy,
# JSON / SQL / lock / polling helpers. Sourced, never run: run directly (by
# tests/run.sh) it does nothing.
case "${0##*/}" in test_status_lib.sh) exit 0 ;; esac

# the fakes, ctl / gctl / sctl and the demo ids come from the sync tests' library
. tests/integration/test_sync_lib.sh

WOODGROVE=0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0

# ops_start DIR: both fakes with their demo data; sets W, GURL, SURL, writes
# policy.lua and c.lua and cds into W. Every process a test starts in the
# background should be added to EXTRA_PIDS so the trap stops it too.
ops_start() {
  start_fakes "$1"
  EXTRA_PIDS=   # stopped on exit with the fakes (fakes_lib.sh)
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
