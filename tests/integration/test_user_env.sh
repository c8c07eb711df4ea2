#!/bin/sh
# test_user_env — shared set-up of test_user.sh and test_ticket.sh (sourced
# by them; run on its own it only defines functions and prints nothing):
# the fake Graph and the fake Syncro on 127.0.0.1 (stopped by a trap), a
# config, a first pull, and small helpers (control APIs, SQL, links).
# The fake Graph serves the target's directory roles itself (a user flagged
# admin through POST /_fake/tenants/T/users/ID/admin holds Global
# Administrator), so the 403 diagnosis talks to it directly.

# (CID, SECRET and the demo tenants' ids come from fakes_lib.sh)
. tests/integration/fakes_lib.sh

SYNCRO_KEY='fake-syncro-key-0123456789'

# fakes_start DIR: starts the fakes; sets GRAPH_URL (authority, Graph API
# and control) and SYNCRO_URL.
fakes_start() {
  fake_start graph "$1" tests/fakes/fake_graph.py --seed 1
  fake_start syncro "$1" tests/fakes/fake_syncro.py --api-key "$SYNCRO_KEY" --data demo --rate-limit 0
  fake_url GRAPH_URL graph
  fake_url SYNCRO_URL syncro
}

gctl() { fake_ctl "$GRAPH_URL" "$1" "$2" "${3:-}"; }
sctl() { fake_ctl "$SYNCRO_URL" "$1" "$2" "${3:-}"; }
sql() { sqlite3 -cmd ".timeout 30000" "$W/state/es.db" "$1"; }
# fake_user TENANT ID FIELD: a field of the fake Graph's user (Python repr).
fake_user() { gctl GET "tenants/$1/users/$2" | jq_py "d.get('$3')"; }
# graph_calls METHOD REGEX: Graph API requests since the last clear.
graph_calls() {
  gctl GET "requests?kind=graph&path=$2" | jq_py "len([r for r in d['requests'] if r['method'] == '$1'])"
}
# user_id TENANT UPN-PREFIX: the object id of the fake Graph user.
user_id() {
  gctl GET "tenants/$1/users" | jq_py "[u['id'] for u in d['users'] if u['userPrincipalName'].startswith('$2') and u['_state'] == 'active'][0]"
}
# link TENANT OBJECT-ID CONTACT CUSTOMER [EMAIL]: a link as a sync would write it.
link() {
  sql "INSERT OR REPLACE INTO links (tenant_id, object_id, contact_id, customer_id, fields, created_at, updated_at)
       VALUES ('$1', '$2', $3, $4, '{\"email\":\"${5:-}\"}', '2026-11-01T10:00:00Z', '2026-11-20T10:00:00Z')"
}

# setup_workdir DIR POLICY-TEXT: config + policy in DIR (cd there), first pull.
setup_workdir() {
  W=$1
  mkdir -p "$W"
  printf '%s\n' "$2" >"$W/policy.lua"
  fake_config "$W/es.lua" "$GRAPH_URL" "base_url = \"$SYNCRO_URL/api/v1\", api_key = \"$SYNCRO_KEY\"" policy.lua \
"  { id = \"$CONTOSO\", name = \"Contoso\", syncro_customer_id = 101 },
  { id = \"fabrikam.com\", name = \"Fabrikam\", syncro_customer_id = 102 },"
  cd "$W" || exit 1
  if ! "$ENTRASYNC" --config es.lua pull >pull.out 2>&1; then
    echo "FAIL - the first pull failed"; cat pull.out; exit 1
  fi
}
