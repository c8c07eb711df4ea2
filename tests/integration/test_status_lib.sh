#!/bin/sh
# test_status_lib — shared setup for the operator tests (test_status.sh,
# test_audit.sh, test_daemon.sh, test_metrics.sh), on top of the sync tests'
# library (the fakes, control-API helpers): a config with three demo
# tenants where Woodgrove has not consented (its pull fails), a policy,
# JSON and SQL helpers (the lock and
# polling helpers come with the sync tests' library too). Sourced, never run: run directly (by
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
# sql QUERY: against the test database, waiting (30 s at most) while a run
# or the daemon writes: a "database is locked" must not read as an empty
# answer.
sql() { sqlite3 -cmd ".timeout 30000" state/es.db "$1"; }
