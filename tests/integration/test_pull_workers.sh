#!/bin/sh
# test_pull_workers — `entrasync pull --workers N` against the fake Graph:
# the tenants dealt to forked worker processes give the same mirror as one
# process; the caps are shared out; a worker killed mid-pull fails only its
# own tenants, with a message saying so, and the next pull converges;
# graph.pull_workers and --workers are checked.
. tests/lib.sh
. tests/integration/fakes_lib.sh

BIG=b1b1b1b1-0000-4000-8000-00000000b16b   # the demo ids (CID, CONTOSO...) come from fakes_lib
graph_test test_pull_workers pull_workers --seed 11
ctl POST tenants '{"key": "big", "id": "'$BIG'", "displayName": "Big Corp", "domain": "big.example", "users": 1500}' >/dev/null

printf 'return { groups = { "All Staff" }, include = function(u) return true end }\n' >"$W/policy.lua"
# mkconfig FILE DATABASE [GRAPH-FIELDS]: fakes_lib's config for these four
# tenants, with its own database and extra graph fields
mkconfig() {
  fake_config "$1" "$URL" 'base_url = "http://127.0.0.1:9/api/v1", api_key = "fake-syncro-key"' policy.lua \
    "  { id = \"$CONTOSO\", name = \"Contoso\", syncro_customer_id = 1 },
  { id = \"fabrikam.com\", name = \"Fabrikam\", syncro_customer_id = 2 },
  { id = \"$NORTHWIND\", name = \"Northwind\", syncro_customer_id = 3 },
  { id = \"$BIG\", name = \"Big\", syncro_customer_id = 5 },"
  sed -i "s#^database = \"state/es.db\"#database = \"$2\"#; s#^graph = { #graph = { ${3:+$3 }#" "$1"
}
cd "$W" || exit 1
mkconfig one.lua state/one.db
mkconfig three.lua state/three.db
# what a mirror holds, tenant by tenant: users present and removed, group
# members, licence rows, score days (ids, not times)
mirror() {
  sqlite3 "$1" "select tenant_id, count(*), sum(removed is null) from users group by tenant_id order by 1;
    select tenant_id, count(*) from group_members group by tenant_id order by 1;
    select tenant_id, count(*) from license_snapshots group by tenant_id order by 1;
    select tenant_id, count(*) from secure_score_snapshots group by tenant_id order by 1;"
}

expect_ok "one process: first pull" -- --config one.lua pull --workers 1
expect_ok "three workers: first pull" -- --config three.lua --log-level debug pull --workers 3
check "three workers: every tenant ok" sh -c "grep -c ': ok: ' '$T_OUT/out' | grep -qx 4"
check "three workers: the log says how the tenants were spread" \
  grep -q "4 tenants over 3 worker processes, 22 requests in flight each" "$T_OUT/err"
check "three workers: the same mirror as one process" test "$(mirror state/three.db)" = "$(mirror state/one.db)"
check "three workers: the run and its 4 tenants are recorded once" \
  test "$(sqlite3 state/three.db "select count(*) from run_tenants where run_id = (select max(id) from runs)")" = 4

# changes, then an incremental pull each way
ctl POST tenants/contoso/users '{"givenName": "Wendy", "surname": "Worker", "department": "Ops"}' >/dev/null
U=$(ctl GET tenants/northwind/users | jq_py '[u for u in d["users"] if u["_state"] == "active"][0]["id"]')
ctl PATCH "tenants/northwind/users/$U" '{"jobTitle": "Parallel"}' >/dev/null
expect_ok "one process: incremental pull" -- --config one.lua pull --workers 1
expect_ok "three workers: incremental pull" -- --config three.lua pull --workers 3
check "incremental: the same mirror as one process" test "$(mirror state/three.db)" = "$(mirror state/one.db)"
check "incremental: the change arrived" \
  test "$(sqlite3 state/three.db "select json_extract(json,'\$.jobTitle') from users where object_id='$U'")" = Parallel

# A worker killed mid-pull: Big's delta page is slow, so its worker is
# still running when killed; Big fails with a message naming the worker,
# the other tenants (other workers) are ok, and the next pull brings what
# the killed one did not store.
B=$(ctl GET tenants/big/users | jq_py '[u for u in d["users"] if u["_state"] == "active"][0]["id"]')
ctl PATCH "tenants/big/users/$B" '{"jobTitle": "Late"}' >/dev/null
late() { sqlite3 "$1" "select json_extract(json,'\$.jobTitle') from users where object_id='$B'"; }
ctl POST faults '{"match": "/users/delta", "tenant": "big", "latency_ms": 3000, "times": 1}' >/dev/null
mkconfig kill.lua state/three.db "pull_workers = 3,"
"$ENTRASYNC" --config kill.lua --log-level debug pull >"$W/kill.out" 2>"$W/kill.err" &
PID=$!
i=0
while [ $i -lt 200 ] && ! grep -q "pull worker [0-9] (pid [0-9]*): [0-9]* tenants: Big" "$W/kill.err"; do
  sleep 0.05; i=$((i + 1))
done
VICTIM=$(sed -n 's/.*pull worker [0-9] (pid \([0-9]*\)): [0-9]* tenants: Big.*/\1/p' "$W/kill.err")
sleep 0.5
kill -9 "$VICTIM"
wait $PID
RC=$?
check "killed worker: the pull exits 1 (a tenant failed)" test "$RC" = 1
check "killed worker: its tenant's message names the worker and how it ended" \
  grep -q "Big: FAILED.*its pull worker (pid $VICTIM) was killed by signal 9" "$W/kill.out"
check "killed worker: the other tenants are ok" sh -c "grep -c ': ok: ' '$W/kill.out' | grep -qx 3"
check "killed worker: graph.pull_workers was used" grep -q "over 3 worker processes" "$W/kill.err"
check "killed worker: Big's change is not stored yet" test "$(late state/three.db)" != Late
expect_ok "killed worker: tenants" -- --config kill.lua tenants
check "killed worker: 'tenants' shows Big's pull failed, not the one before" \
  sh -c "grep ' Big ' '$T_OUT/out' | grep -q ' failed '"
check "killed worker: its row keeps why" \
  test "$(sqlite3 state/three.db "select last_status || ' ' || (last_error like '%pull worker (pid $VICTIM) was killed by signal 9%') from tenants where name = 'Big'")" = "failed 1"
expect_ok "after the killed worker: the next pull" -- --config three.lua pull --workers 3
expect_ok "after the killed worker: one process pulls too" -- --config one.lua pull --workers 1
check "after the killed worker: Big's change arrived" test "$(late state/three.db)" = Late
check "after the killed worker: the same mirror as one process" \
  test "$(mirror state/three.db)" = "$(mirror state/one.db)"

# configuration and option errors
mkconfig bad.lua state/bad.db "pull_workers = 0,"
expect_exit "graph.pull_workers 0 is refused with file:line" 2 "bad.lua:2: graph.pull_workers 0 must be 1 to 16" -- \
  --config bad.lua pull
mkconfig bad.lua state/bad.db "pull_workers = 2.5,"
expect_exit "graph.pull_workers 2.5 is refused" 2 "pull_workers.*integer" -- --config bad.lua pull
expect_exit "--workers 17 is refused" 2 "--workers '17' must be a number from 1 to 16" -- \
  --config one.lua pull --workers 17
expect_exit "--workers x is refused" 2 "--workers 'x'" -- --config one.lua pull --workers x
fakes_stop
