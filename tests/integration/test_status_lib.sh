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

# ops_config FILE [EXTRA-TOP-LEVEL-LINES]: the config for the fakes
# (Contoso, Fabrikam and Woodgrove, which fails).
ops_config() {
  sync_config "$1" policy.lua 6000 "$(demo_tenants Contoso Fabrikam Woodgrove)" "${2:-}"
}

# jpath FILE EXPR: a Python expression over the JSON in FILE (as d).
jpath() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
# sql QUERY: against the test database, waiting (30 s at most) while a run
# or the daemon writes: a "database is locked" must not read as an empty
# answer.
sql() { sqlite3 -cmd ".timeout 30000" state/es.db "$1"; }
