#!/bin/sh
# test_pull_interrupted — a first pull writes straight into the empty mirror
# (no staging): an interrupted one leaves a partial mirror, and no sync may
# plan from it. Against the fake Graph and the fake Syncro: Big's first
# pull stops after its first delta page (the next page keeps failing), a
# sync with the fault still on fails Big without a single Syncro write for
# it (the other tenants sync), a crash (SIGKILL) between pages does the
# same, and once the fault is gone the sync's pull resumes the round from
# the saved page and plans the whole tenant.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/pull_interrupted" --rate-limit 0
cd "$W" || exit 1
ES=$ENTRASYNC
BIG=b1b1b1b1-0000-4000-8000-00000000b16b
BIG_CUSTOMER=150

gctl POST tenants '{"key": "big", "id": "'$BIG'", "displayName": "Big Corp", "domain": "big.example", "users": 1300}' >/dev/null
sctl POST customers '{"id": '$BIG_CUSTOMER', "business_name": "Big Corp", "email": "it@big.example"}' >/dev/null

mail_policy policy.lua
mkconfig c.lua "$W/policy.lua" 60000 "{ id = \"$BIG\", name = \"Big\", syncro_customer_id = $BIG_CUSTOMER },"
big_contacts() { sctl GET "contacts?customer_id=$BIG_CUSTOMER" | jq_py 'len(d["contacts"])'; }
big_mirror() { sql "select count(*) from users where tenant_id='$BIG' and removed is null"; }

# ---- the first pull stops after page 1 of Big (page 2 keeps failing)
gctl POST faults '{"status": 500, "tenant": "big", "match": "users/delta.*skiptoken", "times": 0}' >/dev/null
expect_exit "interrupted first pull: Big fails" 1 "Big: FAILED" -- --config c.lua pull --tenant Big
check "interrupted first pull: the mirror is partial (one page, written straight in)" test "$(big_mirror)" = 999
check "interrupted first pull: nothing staged" test "$(sql "select count(*) from users_staging")" = 0
check "interrupted first pull: a round in progress, no deltaLink yet" \
  test "$(sql "select count(*) from delta_state where tenant_id='$BIG' and next_link like '%skiptoken%' and delta_link is null and resync = 0")" = 1
check "interrupted first pull: the result says the round did not complete" \
  grep -q "users round did not complete (the mirror is partial)" "$T_OUT/out" "$T_OUT/err"

# ---- a sync while the round cannot finish: Big is not planned
clear_log
expect_exit "sync after the interrupted first pull: exit 1 (Big failed)" 1 "" -- --config c.lua sync --json
check "sync: Big failed, its pull named" \
  test "$(report 't("Big")["status"], "pull from Graph" in (t("Big").get("reason") or ""), len(t("Big")["plan"])')" = "failed, True, 0"
check "sync: the other tenants synced" test "$(report 't("Contoso")["status"], t("Northwind")["status"]')" = "ok, ok"
check "sync: not one Syncro contact for Big" test "$(big_contacts)" = 0
check "sync: the mirror is still the partial page" test "$(big_mirror)" = 999

# ---- a crash between pages (SIGKILL once page 1 is committed) is no different
gctl DELETE faults >/dev/null
gctl POST faults '{"latency_ms": 3000, "tenant": "big", "match": "users/delta.*skiptoken", "times": 0}' >/dev/null
rm -f state/es.db state/es.db-wal state/es.db-shm
"$ES" --config c.lua pull --tenant Big >crash.out 2>&1 &
PID=$!
i=0
while [ "$(sqlite3 state/es.db "select count(*) from delta_state where tenant_id='$BIG' and next_link is not null" 2>/dev/null)" != 1 ] &&
  [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
kill -9 $PID 2>/dev/null
wait $PID 2>/dev/null
check "crash mid first pull: one page committed, round in progress" \
  test "$(big_mirror)/$(sql "select count(*) from delta_state where tenant_id='$BIG' and delta_link is null and next_link is not null")" = 999/1
gctl DELETE faults >/dev/null
gctl POST faults '{"status": 503, "tenant": "big", "match": "users/delta.*skiptoken", "times": 0}' >/dev/null
clear_log
expect_exit "sync after the crash: exit 1" 1 "" -- --config c.lua sync --json
check "sync after the crash: Big not planned, no contact" \
  test "$(report 't("Big")["status"], len(t("Big")["plan"])')/$(big_contacts)" = "failed, 0/0"

# ---- the fault gone: the sync's pull resumes the round and plans all of Big
gctl DELETE faults >/dev/null
# The killed pull's page-2 request may still be held by the fake (3 s latency) and be
# logged at any time from now: count only the requests that arrive from here on.
T_MARK=$(python3 -c 'import time; print(time.time())')
expect_ok "sync once Graph answers: ok" -- --config c.lua sync --json
# since_mark EXPR: EXPR over rs, Big's users/delta requests that arrived after the mark
since_mark() {
  gctl GET 'requests?tenant=big&path=users/delta' |
    jq_py "(lambda rs: $1)([r for r in d['requests'] if r['real_time'] >= $T_MARK - 0.001])"
}
N_DELTA=$(since_mark "len(rs)")
check "the round resumed from the saved page (one users/delta request for Big)" test "$N_DELTA" = 1
[ "$N_DELTA" = 1 ] || echo "    since the mark (seq, ms, fault): $(since_mark "[(r['seq'], r['ms'], r['fault']) for r in rs]")"
check "the mirror holds every active Big user" test "$(big_mirror)" = "$(gctl GET tenants/big | jq_py 'd["users"]')"
check "the round completed: a deltaLink, no round in progress" \
  test "$(sql "select count(*) from delta_state where tenant_id='$BIG' and delta_link is not null and next_link is null")" = 1
WANT=$(sql "select count(*) from users where tenant_id='$BIG' and removed is null and json_extract(json,'\$.mail') is not null and json_extract(json,'\$.userType') = 'Member'")
check "Big planned from the whole mirror: a contact per included user ($WANT)" test "$(big_contacts)" = "$WANT"
check "more contacts than the partial page held" test "$(big_contacts)" -gt 999
fakes_alive
