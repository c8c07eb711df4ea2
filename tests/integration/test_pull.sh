#!/bin/sh
# test_pull — `entrasync pull` and `entrasync tenants` against the fake
# Graph (tests/fakes/fake_graph.py, started here on 127.0.0.1): tokens and
# their AADSTS messages, the first pull and incremental delta rounds,
# @removed changed/deleted, resync on 410/syncStateNotFound that replaces
# the mirror atomically (an interrupted one reports nobody removed), a
# crash mid-round resumed without loss, groups, organization, licences,
# Secure Score, $batch 429 parts, throttling without stalling the other
# tenants, 5xx / dropped connection / malformed page / 401 mid-run,
# certificate credentials (PS256 and RS256), CSP discovery, secrets kept out.
. tests/lib.sh
. tests/integration/fakes_lib.sh

# (CID, SECRET and the demo tenants' ids come from fakes_lib.sh)
BIG=b1b1b1b1-0000-4000-8000-00000000b16b
PARTNER=e5a1c0de-1111-4abc-9def-0123456789ab
graph_test test_pull pull --seed 7   # W, URL, ctl METHOD PATH [JSON]
sql() { sqlite3 -cmd ".timeout 30000" "$W/state/es.db" "$1"; }
active_users() { ctl GET "tenants/$1" | jq_py 'd["users"]'; }
graph_requests() {  # graph_requests TENANT: top-level Graph requests logged since the last clear
  ctl GET "requests?tenant=$1&kind=graph&summary=1" | jq_py 'd["total"]'
}
# accepts TENANT KIND PATH-PART: the distinct Accept-Encoding values of those
# requests (logged since the last clear), comma-separated; "none" if no request
accepts() {
  ctl GET "requests?tenant=$1&kind=$2" | jq_py "','.join(sorted({str(r['accept_encoding']) for r in d['requests'] if '$3' in r['path'] and not r['batch']})) or 'none'"
}

ctl POST tenants '{"key": "big", "id": "'$BIG'", "displayName": "Big Corp", "domain": "big.example", "users": 2100}' >/dev/null

cat >"$W/policy.lua" <<'EOF'
return {
  groups = { "All Staff", "Managers" },
  include = function(u) return true end,
}
EOF
cat >"$W/nogroups.lua" <<'EOF'
return { include = function(u) return true end }
EOF

# mkconfig FILE [GRAPH-LINES]: a config for the fake with the demo tenants.
mkconfig() {
  cred=${2:-}
  [ -n "$cred" ] || cred="client_secret = \"$SECRET\","
  cat >"$1" <<EOF
database = "state/es.db"
graph = {
  client_id = "$CID",
  $cred
  authority = "$URL",
  endpoint = "$URL",
}
syncro = { base_url = "http://127.0.0.1:9/api/v1", api_key = "fake-syncro-key" }
policy = "policy.lua"
tenants = {
  { id = "$CONTOSO", name = "Contoso", syncro_customer_id = 1 },
  { id = "fabrikam.com", name = "Fabrikam", syncro_customer_id = 2 },
  { id = "$NORTHWIND", name = "Northwind", syncro_customer_id = 3 },
  { id = "$WOODGROVE", name = "Woodgrove", syncro_customer_id = 4 },
  { id = "$BIG", name = "Big", syncro_customer_id = 5, policy = "nogroups.lua" },
}
csp = { partner_tenant = "$PARTNER" }
EOF
}
mkconfig "$W/es.lua"
cd "$W" || exit 1
ES="--config es.lua"

# ---------------------------------------------------------------- first pull
# One backfilled Secure Score day carries fields Graph may add one day, at
# the top and in a controlScores entry: the stored raw object keeps them.
SDAY=$(ctl GET tenants/contoso/secure-scores | jq_py 'd["days"][3]')
python3 - "$URL" "$SDAY" >"$W/score_day.json" <<'EOF'
import json, sys, urllib.request
url, day = sys.argv[1], sys.argv[2]
def call(method, body):
    req = urllib.request.Request(url + "/_fake/tenants/contoso/secure-scores/" + day, method=method,
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
ctl = call("PATCH", {})["controlScores"]
ctl[0]["futureControlField"] = {"nested": [1, 2.5, None], "text": "caf\u00e9 \"quoted\""}
print(json.dumps(call("PATCH", {"controlScores": ctl, "futureTopLevel": {"a": [True, False]}, "tier": 7})))
EOF
ctl DELETE requests >/dev/null
expect_exit "first pull: a tenant without consent fails, exit 1" 1 "Woodgrove: FAILED" -- $ES pull
check "first pull: the others are ok" sh -c "grep -c ': ok: ' '$T_OUT/out' | grep -qx 4"
check "AADSTS700016 names the admin-consent URL for that tenant" \
  grep -q "AADSTS700016.*$URL/$WOODGROVE/adminconsent?client_id=$CID" "$T_OUT/out"
check "mirror holds every active Contoso user" \
  test "$(sql "select count(*) from users where tenant_id='$CONTOSO' and removed is null")" = "$(active_users contoso)"
check "mirror holds every active Big user (3 pages)" \
  test "$(sql "select count(*) from users where tenant_id='$BIG' and removed is null")" = "$(active_users big)"
check "first pull of Big took 3 delta pages of at most 999" \
  test "$(ctl GET "requests?tenant=big&path=users/delta&summary=1" | jq_py 'd["total"]')" = 3
check "the delta state holds a deltaLink and no round in progress" \
  test "$(sql "select count(*) from delta_state where resource='users' and delta_link is not null and next_link is null and resync=0")" = 4
check "users carry the selected properties" \
  sh -c "test \"\$(sqlite3 state/es.db \"select count(*) from users where tenant_id='$CONTOSO' and json_extract(json,'\$.assignedLicenses') is not null and json_extract(json,'\$.userPrincipalName') is not null\")\" -gt 0"
check "no @odata annotations stored" test "$(sql "select count(*) from users where json like '%@odata%'")" = 0
check "groups resolved by name with their transitive members" \
  test "$(sql "select count(*) from groups where tenant_id='$CONTOSO' and display_name in ('All Staff','Managers')")" = 2
check "group members are users of the mirror" \
  test "$(sql "select count(*) from group_members m join users u on u.tenant_id=m.tenant_id and u.object_id=m.object_id where m.tenant_id='$CONTOSO'")" -gt 0
check "organization: default domain and name" \
  test "$(sql "select default_domain from tenants where id='$CONTOSO'")" = contoso.com
check "licences: today's snapshot has every SKU" \
  test "$(sql "select count(*) from license_snapshots where tenant_id='$CONTOSO' and day=date('now')")" = "$(ctl GET tenants/contoso/skus | jq_py 'len(d["skus"])')"
check "Secure Score: 90 days backfilled" \
  test "$(sql "select count(*) from secure_score_snapshots where tenant_id='$CONTOSO'")" = 90
check "Secure Score: controlScores kept raw, once (in the day's object, not again in a column)" \
  test "$(sql "select count(*) from secure_score_snapshots where tenant_id='$CONTOSO' and json_extract(raw, '\$.controlScores') like '%controlName%' and controls is null")" = 90
check "Secure Score: the whole object kept raw, unknown fields included (JSON-equal)" \
  python3 -c '
import json, sqlite3, sys
raw = sqlite3.connect(sys.argv[1]).execute("select raw from secure_score_snapshots where tenant_id = ? and day = ?",
                                           (sys.argv[2], sys.argv[3])).fetchone()[0]
a, b = json.loads(raw), json.load(open(sys.argv[4]))
sys.exit(0 if a == b and "futureControlField" in a["controlScores"][0] and "futureTopLevel" in a else 1)
' state/es.db "$CONTOSO" "$SDAY" "$W/score_day.json"
check "Secure Score: every backfilled day has its raw object" \
  test "$(sql "select count(*) from secure_score_snapshots where tenant_id='$CONTOSO' and json_extract(raw,'\$.id') is not null")" = 90
check "first pull: token answers asked uncompressed" test "$(accepts contoso token /token)" = identity
check "first pull: user pages asked gzipped" expr "$(accepts contoso graph users/delta)" : ".*gzip"
check "first pull: the \$batch that backfills 90 days of scores asked gzipped" \
  expr "$(accepts contoso graph /\$batch)" : ".*gzip"
check "first pull: member pages asked uncompressed" test "$(accepts contoso graph transitiveMembers)" = identity
check "tenant rows record the pull" \
  test "$(sql "select count(*) from tenants where last_pull_at is not null and last_status='ok'")" = 4
check "the failed tenant's error is recorded" \
  sh -c "sqlite3 state/es.db \"select last_error from tenants where id='$WOODGROVE'\" | grep -q AADSTS700016"
check "the run and its tenants are recorded" \
  test "$(sql "select count(*) from run_tenants rt join runs r on r.id=rt.run_id where r.kind='pull'")" = 5
check "the client secret is in no output" sh -c "! grep -qF '$SECRET' '$T_OUT/out' '$T_OUT/err'"
check "no secret or token in the database" sh -c "sqlite3 state/es.db .dump | grep -qvF '$SECRET' && ! sqlite3 state/es.db .dump | grep -qE 'fake\\.[A-Za-z0-9_-]{20}|$SECRET'"

expect_exit "tenants: lists the last pull" 0 "Contoso +[0-9T:-]+Z +ok" -- $ES tenants
check "tenants: the failed one shows its error" grep -q "last error: .*AADSTS700016" "$T_OUT/out"

# ---------------------------------------------------------------- incremental
U=$(ctl GET tenants/contoso/users | jq_py '" ".join([u["id"] for u in d["users"] if u["_state"] == "active" and u.get("department")][:3])')
set -- $U
ctl PATCH "tenants/contoso/users/$1" '{"jobTitle": "Chief Tester", "department": null}' >/dev/null
# $2's department is cleared, then the user is deleted (restored below: Graph then sends it whole, so
# the department it had before must not come back from the store)
DEPT2=$(ctl GET tenants/contoso/users | jq_py "[u['department'] for u in d['users'] if u['id'] == '$2'][0]")
ctl PATCH "tenants/contoso/users/$2" '{"department": null}' >/dev/null
ctl POST "tenants/contoso/users/$2/soft-delete" >/dev/null
ctl POST "tenants/contoso/users/$3/hard-delete" >/dev/null
NEW=$(ctl POST tenants/contoso/users '{"displayName": "Newt New", "givenName": "Newt"}' | jq_py 'd["id"]')
ctl DELETE requests >/dev/null
expect_ok "incremental pull of one tenant" -- $ES pull --tenant Contoso
check "incremental: 2 requests + 1 per declared group" test "$(graph_requests contoso)" -le 4
# the groups' first member pages ride in the $batch, under the ids stored
# by the first pull (confirmed by the look-ups in the same batch)
check "incremental: 2 requests, the member pages in the \$batch" test "$(graph_requests contoso)" = 2
check "incremental: both groups' member pages were \$batch parts" \
  test "$(ctl GET "requests?tenant=contoso&kind=batch-part&path=transitiveMembers&summary=1" | jq_py 'd["total"]')" = 2
# (both hold users only, so their transitive members are their direct
# members that are not soft-deleted)
ACTIVE=$(ctl GET tenants/contoso/users | jq_py '" ".join(u["id"] for u in d["users"] if u["_state"] == "active")')
check "incremental: the groups' members stored as Graph has them" \
  test "$(sql "select count(*) from group_members where tenant_id='$CONTOSO'")" = \
    "$(ctl GET tenants/contoso/groups | jq_py 'sum(len([m for m in g["members"] if m in "'"$ACTIVE"'".split()]) for g in d["groups"] if g["displayName"] in ("All Staff", "Managers"))')"
check "incremental: only Contoso was pulled" test "$(graph_requests fabrikam)" = 0
check "changed property applied" test "$(sql "select json_extract(json,'\$.jobTitle') from users where object_id='$1'")" = "Chief Tester"
check "property set to null applied" test "$(sql "select json_type(json,'\$.department') from users where object_id='$1'")" = null
check "unchanged properties kept" test -n "$(sql "select json_extract(json,'\$.userPrincipalName') from users where object_id='$1'")"
check "soft-deleted user recorded as removed 'changed'" test "$(sql "select removed from users where object_id='$2'")" = changed
check "hard-deleted user recorded as removed 'deleted'" test "$(sql "select removed from users where object_id='$3'")" = deleted
check "new user added" test "$(sql "select json_extract(json,'\$.givenName') from users where object_id='$NEW'")" = Newt
check "Secure Score: only the new day asked for" \
  sh -c "python3 - '$URL' <<'EOF'
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1] + '/_fake/requests?tenant=contoso&path=secureScores'))
sys.exit(0 if d['requests'] and all('top=1' in r['path'] for r in d['requests']) else 1)
EOF"
check "incremental: the hourly \$batch (a few KB) asked uncompressed" test "$(accepts contoso graph /\$batch)" = identity
check "incremental: the delta page of changed properties asked uncompressed" \
  test "$(accepts contoso graph users/delta)" = identity
ctl POST "tenants/contoso/users/$2/restore" >/dev/null
expect_ok "restored user pull" -- $ES pull --tenant Contoso
check "restored user present again" test -z "$(sql "select removed from users where object_id='$2'")"
check "restored user: the department cleared before the deletion stays cleared (was '$DEPT2')" \
  test -z "$(sql "select json_extract(json,'\$.department') from users where object_id='$2'")"
# group_count NAME: the members Graph lists for the group (users only, not
# soft-deleted); stored_count NAME: the member rows stored for it
group_count() {
  ctl GET tenants/contoso/groups | jq_py 'sum(len([m for m in g["members"] if m in "'"$(ctl GET tenants/contoso/users | jq_py '" ".join(u["id"] for u in d["users"] if u["_state"] == "active")')"'".split()]) for g in d["groups"] if g["displayName"] == "'"$1"'")'
}
stored_count() {
  sql "select count(*) from group_members m join groups g using (tenant_id, group_id) where m.tenant_id='$CONTOSO' and g.display_name='$1'"
}
check "restored user: back among the groups' members" \
  test "$(stored_count 'All Staff')/$(stored_count Managers)" = "$(group_count 'All Staff')/$(group_count Managers)"
# Membership unchanged since the last pull: a member page that is the very
# text the stored rows came from (its digest on the group's row) is not read
# again; rows changed in the store since drop that digest (triggers), and
# the page is then read and the rows mended.
expect_ok "unchanged groups: pulled" -- $ES --log-level debug pull --tenant Contoso
check "unchanged groups: both member pages recognised, not read" \
  test "$(grep -c 'the member page is the one its stored members came from' "$T_OUT/err")" = 2
check "unchanged groups: their members kept" \
  test "$(stored_count 'All Staff')/$(stored_count Managers)" = "$(group_count 'All Staff')/$(group_count Managers)"
check "unchanged groups: their page keys (digest:bytes) are stored" \
  test "$(sql "select count(*) from groups where tenant_id='$CONTOSO' and page_digest glob '[0-9a-f]*:[1-9]*' and instr(page_digest, ':') = 33")" = 2
sql "delete from group_members where rowid = (select m.rowid from group_members m join groups g using (tenant_id, group_id) where m.tenant_id='$CONTOSO' and g.display_name='All Staff' limit 1)"
check "a member row deleted in the store: its group's page key goes with it" \
  test "$(sql "select count(*) from groups where tenant_id='$CONTOSO' and display_name='All Staff' and page_digest is null")" = 1
expect_ok "a member row deleted in the store: pulled" -- $ES --log-level debug pull --tenant Contoso
check "a member row deleted in the store: only the other group's page taken as stored" \
  test "$(grep -c 'the member page is the one its stored members came from' "$T_OUT/err")" = 1
check "a member row deleted in the store: the row is back" \
  test "$(stored_count 'All Staff')" = "$(group_count 'All Staff')"

# A group deleted and created again under its name (a new id): the member
# page asked for under the stored id is dropped, the new group's members
# are fetched under its own, and the old group leaves the store with its
# members. A group the policy stops naming leaves it too.
OLDG=$(sql "select group_id from groups where tenant_id='$CONTOSO' and display_name='Managers'")
ctl DELETE tenants/contoso/groups/Managers >/dev/null
NEWG=$(ctl POST tenants/contoso/groups '{"displayName": "Managers", "members": ["'$1'", "'$NEW'"]}' | jq_py 'd["id"]')
ctl DELETE requests >/dev/null
expect_ok "a recreated group: pulled" -- $ES pull --tenant Contoso
check "a recreated group: its members fetched under its new id" \
  test "$(ctl GET "requests?tenant=contoso&kind=graph&path=groups/$NEWG/transitiveMembers&summary=1" | jq_py 'd["total"]')" = 1
check "a recreated group: stored with its own members" \
  test "$(sql "select count(*) from group_members where tenant_id='$CONTOSO' and group_id='$NEWG'")" = 2
check "a recreated group: the old one is gone with its members" \
  test "$(sql "select count(*) from groups where group_id='$OLDG'")/$(sql "select count(*) from group_members where group_id='$OLDG'")" = 0/0
check "a recreated group: the log says a stored group was dropped" grep -q "1 stored group no longer named" "$T_OUT/err"
ctl DELETE requests >/dev/null
expect_ok "a recreated group: the next pull" -- $ES pull --tenant Contoso
check "a recreated group: the next pull takes its members from the \$batch" \
  test "$(graph_requests contoso)/$(ctl GET "requests?tenant=contoso&kind=batch-part&path=groups/$NEWG/transitiveMembers&summary=1" | jq_py 'd["total"]')" = 2/1
printf 'return { groups = { "All Staff" }, include = function(u) return true end }\n' >onegroup.lua
sed 's#^policy = "policy.lua"#policy = "onegroup.lua"#' es.lua >onegroup-es.lua
expect_ok "a group no longer named: pulled" -- --config onegroup-es.lua pull --tenant Contoso
check "a group no longer named: gone from the store" \
  test "$(sql "select count(*) from groups where tenant_id='$CONTOSO' and display_name='Managers'")" = 0
check "a group no longer named: a member keeps only the groups still named" \
  test "$(sql "select count(*) from group_members where tenant_id='$CONTOSO' and object_id='$NEW' and group_id='$NEWG'")" = 0
expect_ok "a group named again: pulled" -- $ES pull --tenant Contoso
# A look-up part throttled (429) while the member page beside it came: the
# page is dropped, and fetched on its own once the look-up's retry answers.
# A member part throttled alone: sent again in the next $batch round.
ALLG=$(sql "select group_id from groups where tenant_id='$CONTOSO' and display_name='All Staff'")
# all_staff_stored: All Staff's stored members; member_requests KIND: its
# member pages asked for as KIND (graph: on their own; batch-part) since the last clear
all_staff_stored() { sql "select count(*) from group_members where tenant_id='$CONTOSO' and group_id='$ALLG'"; }
member_requests() { ctl GET "requests?tenant=contoso&kind=$1&path=groups/$ALLG/transitiveMembers&summary=1" | jq_py 'd["total"]'; }
ALLN=$(all_staff_stored)
ctl POST faults '{"status": 429, "retry_after": "0.2", "tenant": "contoso", "match": "displayName eq .All Staff", "times": 1}' >/dev/null
ctl DELETE requests >/dev/null
expect_ok "a throttled look-up part: pulled" -- $ES pull --tenant Contoso
check "a throttled look-up part: the members fetched on their own after its retry" test "$(member_requests graph)" = 1
check "a throttled look-up part: the members kept" test "$(all_staff_stored)" = "$ALLN"
ctl POST faults '{"status": 429, "retry_after": "0.2", "tenant": "contoso", "match": "groups/'$ALLG'/transitiveMembers", "times": 1}' >/dev/null
ctl DELETE requests >/dev/null
expect_ok "a throttled member part: pulled" -- $ES pull --tenant Contoso
check "a throttled member part: sent again in a second \$batch, never on its own" \
  test "$(member_requests batch-part)/$(ctl GET "requests?tenant=contoso&kind=graph&path=transitiveMembers&summary=1" | jq_py 'd["total"]')" = 2/0
check "a throttled member part: the members kept" test "$(all_staff_stored)" = "$ALLN"
# A member part that failed (503), its look-up fine: asked for on its own
# (where the HTTP core retries what is safe).
ctl POST faults '{"status": 503, "tenant": "contoso", "match": "groups/'$ALLG'/transitiveMembers", "times": 1}' >/dev/null
ctl DELETE requests >/dev/null
expect_ok "a failed member part: pulled" -- $ES pull --tenant Contoso
check "a failed member part: the members fetched on their own" test "$(member_requests graph)" = 1
check "a failed member part: the members kept" test "$(all_staff_stored)" = "$ALLN"
ctl DELETE faults >/dev/null

# Nine groups: with their member parts, more than the 20 parts a $batch
# holds; a group's look-up and its member part are never split over two
# (an answer could come before the other's): every group is stored whole,
# its members from the $batch, from the second pull on (a separate database).
NINE=$(ctl GET tenants/contoso/groups | jq_py '", ".join(repr(g["displayName"]).replace("\x27", "\"") for g in d["groups"][:9])')
printf 'return { groups = { %s }, include = function(u) return true end }\n' "$NINE" >nine.lua
sed -e 's#^policy = "policy.lua"#policy = "nine.lua"#' -e 's#state/es.db#state/nine.db#' es.lua >nine-es.lua
expect_ok "nine groups: the first pull" -- --config nine-es.lua pull --tenant Contoso
ctl DELETE requests >/dev/null
expect_ok "nine groups: the second pull" -- --config nine-es.lua pull --tenant Contoso
check "nine groups: all nine stored" test "$(sqlite3 state/nine.db "select count(*) from groups where tenant_id='$CONTOSO'")" = 9
check "nine groups: two \$batch requests, their member pages in them, none on its own" \
  test "$(ctl GET "requests?tenant=contoso&kind=graph&path=batch&summary=1" | jq_py 'd["total"]')/$(ctl GET "requests?tenant=contoso&kind=graph&path=transitiveMembers&summary=1" | jq_py 'd["total"]')/$(ctl GET "requests?tenant=contoso&kind=batch-part&path=transitiveMembers&summary=1" | jq_py 'd["total"]')" = 2/0/9
check "nine groups: the same members as the first pull stored" \
  test "$(sqlite3 state/nine.db "select count(*) from group_members where tenant_id='$CONTOSO'")" = "$(grep -o '([0-9]* members)' "$T_OUT/out" | tr -dc 0-9)"

# A tenant's batch results and its row are one unit of work: when storing
# them fails (here a trigger refuses today's licence snapshot), none is kept,
# the tenant fails with the store's message, and its user pages (committed
# each with its delta state) stay; the next pull stores everything.
# (the stored organization made stale first: a kept result would rewrite it)
sql "UPDATE kv SET value = '{\"stale\":true}' WHERE key = 'graph.organization.$CONTOSO'"
ctl PATCH "tenants/contoso/users/$1" '{"jobTitle": "Unit of Work"}' >/dev/null
sql "CREATE TRIGGER test_boom BEFORE INSERT ON license_snapshots WHEN NEW.tenant_id = '$CONTOSO'
  BEGIN SELECT RAISE(ABORT, 'boom: the disk says no'); END"
expect_exit "results that cannot be stored fail the tenant" 1 "Contoso: FAILED: .*storing what the pull brought \(none of it kept\).*boom: the disk says no" -- $ES pull --tenant Contoso
check "a failed unit of work keeps none of its results (organization not rewritten)" \
  test "$(sql "select value from kv where key = 'graph.organization.$CONTOSO'")" = '{"stale":true}'
check "the tenant's row records the failure" test "$(sql "select last_status from tenants where id = '$CONTOSO'")" = failed
check "the user page committed with its delta state stays" \
  test "$(sql "select json_extract(json,'\$.jobTitle') from users where object_id='$1'")" = "Unit of Work"
sql "DROP TRIGGER test_boom"
expect_ok "the next pull stores the results" -- $ES pull --tenant Contoso
check "the tenant's row is ok again" test "$(sql "select last_status from tenants where id = '$CONTOSO'")" = ok
check "the organization stored again" \
  test "$(sql "select json_extract(value, '\$.displayName') from kv where key = 'graph.organization.$CONTOSO'")" = "Contoso, Ltd"

# ---------------------------------------------------------------- resync
PRESENT=$(sql "select count(*) from users where tenant_id='$CONTOSO' and removed is null")
ctl POST faults '{"delta_gone": true, "mode": "410", "tenant": "contoso"}' >/dev/null
ctl POST "tenants/contoso/users/$1/hard-delete" >/dev/null
expect_ok "410 on the deltaLink: full resync" -- $ES pull --tenant Contoso
check "resync reported" grep -q "full resync" "$T_OUT/out"
check "resync: user gone during the expiry is marked removed" test -n "$(sql "select removed from users where object_id='$1'")"
check "resync: the others stay present" \
  test "$(sql "select count(*) from users where tenant_id='$CONTOSO' and removed is null")" = $((PRESENT - 1))
check "resync: staging emptied, state clean" \
  test "$(sql "select count(*) from users_staging")/$(sql "select resync from delta_state where tenant_id='$CONTOSO'")" = 0/0
ctl POST faults '{"delta_gone": true, "mode": "syncStateNotFound", "tenant": "fabrikam"}' >/dev/null
expect_ok "syncStateNotFound: full resync" -- $ES pull --tenant fabrikam.com
check "syncStateNotFound resync reported" grep -q "full resync" "$T_OUT/out"

# An interrupted resync (Big: 3 pages; the 2nd keeps failing) reports nobody
# removed and leaves the live mirror alone; the next pull resumes and swaps.
BIGN=$(sql "select count(*) from users where tenant_id='$BIG' and removed is null")
ctl POST faults '[{"delta_gone": true, "tenant": "big"}, {"status": 500, "tenant": "big", "match": "users/delta.*skiptoken", "times": 0}]' >/dev/null
expect_exit "interrupted resync: tenant fails" 1 "Big: FAILED" -- $ES pull --tenant Big
check "interrupted resync: mirror untouched" \
  test "$(sql "select count(*) from users where tenant_id='$BIG' and removed is null")/$(sql "select count(*) from users where tenant_id='$BIG' and removed is not null")" = "$BIGN/0"
check "interrupted resync: first page staged, resume point kept" \
  test "$(sql "select count(*) from users_staging where tenant_id='$BIG'")/$(sql "select resync from delta_state where tenant_id='$BIG' and next_link like '%skiptoken%'")" = "999/1"
ctl DELETE faults >/dev/null
ctl DELETE requests >/dev/null
expect_ok "resumed resync completes" -- $ES pull --tenant Big
check "resumed resync started from the saved page" \
  sh -c "python3 - '$URL' <<'EOF'
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1] + '/_fake/requests?tenant=big&path=users/delta'))
sys.exit(0 if d['requests'] and 'skiptoken' in d['requests'][0]['path'] and len(d['requests']) == 2 else 1)
EOF"
check "resumed resync: everyone present, nobody removed" \
  test "$(sql "select count(*) from users where tenant_id='$BIG' and removed is null")/$(sql "select count(*) from users where tenant_id='$BIG' and removed is not null")" = "$BIGN/0"

# ---------------------------------------------------------------- crash mid-round
mkdir -p crash && cp es.lua policy.lua nogroups.lua crash/
sed -i 's#state/es.db#state/crash.db#' crash/es.lua
ctl POST faults '{"latency_ms": 3000, "tenant": "big", "match": "users/delta.*skiptoken", "times": 0}' >/dev/null
(cd crash && exec "$ENTRASYNC" --config es.lua pull --tenant Big >/dev/null 2>&1) &
PULL_PID=$!
i=0
while [ $i -lt 100 ]; do
  n=$(sqlite3 crash/state/crash.db "select count(*) from users" 2>/dev/null || echo 0)
  [ "${n:-0}" -gt 0 ] && break
  sleep 0.1; i=$((i + 1))
done
kill -9 $PULL_PID 2>/dev/null; wait $PULL_PID 2>/dev/null
check "crash: the first page was committed with its resume point" \
  test "$(sqlite3 crash/state/crash.db "select count(*) from users")/$(sqlite3 crash/state/crash.db "select count(*) from delta_state where next_link like '%skiptoken%'")" = "999/1"
ctl DELETE faults >/dev/null
ctl DELETE requests >/dev/null
(cd crash && es --config es.lua pull --tenant Big); rc=$?
check "crash: the next pull succeeds" test $rc = 0
# (the killed pull's slowed request may be logged after the clear: it
# carries the latency fault, the resumed pull's requests none)
check "crash: it resumed from the saved page (2 pages, not 3)" \
  test "$(ctl GET "requests?tenant=big&path=users/delta" | jq_py 'len([r for r in d["requests"] if not r["fault"]])')" = 2
check "crash: nothing lost" \
  test "$(sqlite3 crash/state/crash.db "select count(*) from users where removed is null")" = "$BIGN"

# ---------------------------------------------------------------- faults
ctl POST faults '{"status": 429, "retry_after": "1.5", "tenant": "contoso", "match": "users/delta"}' >/dev/null
ctl DELETE requests >/dev/null
expect_exit "429 with a fractional Retry-After is waited out" 1 "" -- $ES pull
check "429: contoso ok" grep -q "^Contoso: ok" "$T_OUT/out"
check "429: the throttle headers are logged" grep -q "graph.throttle.*ResourceUnitLimitExceeded" "$T_OUT/err"
check "429: contoso waited >= 1.4 s, the other tenants did not wait for it" sh -c "python3 - '$URL' <<'EOF'
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1] + '/_fake/requests?kind=graph'))['requests']
c = [r for r in d if r['tenant'] == '$CONTOSO' and 'users/delta' in r['path']]
first429 = [r for r in c if r['status'] == 429][0]
retry = [r for r in c if r['status'] == 200][0]
others_done = max(r['real_time'] + r['ms'] / 1000 for r in d if r['tenant'] in ('$FABRIKAM', '$NORTHWIND'))
ok = retry['real_time'] - first429['real_time'] >= 1.4 and others_done < retry['real_time']
sys.exit(0 if ok else 1)
EOF"

ctl POST faults '[{"status": 503, "tenant": "fabrikam", "match": "users/delta"}, {"status": 500, "tenant": "northwind", "match": "batch"}, {"drop": "mid-body", "tenant": "contoso", "match": "users/delta"}]' >/dev/null
expect_exit "500/503 and a dropped connection are retried" 1 "" -- $ES pull
check "retries: all consented tenants ok" sh -c "grep -c ': ok: ' '$T_OUT/out' | grep -qx 4"
ctl POST faults '{"drop": "no_response", "tenant": "contoso", "match": "users/delta", "times": 0}' >/dev/null
expect_exit "a connection that never gets an answer: the tenant fails, saying so and how often it tried" 1 \
  "Contoso: FAILED: .*GET /users/delta: no answer from Graph: .* \(after [0-9]+ attempts\)" -- $ES pull --tenant Contoso
ctl DELETE faults >/dev/null

ctl POST faults '{"malformed": true, "tenant": "contoso", "match": "users/delta"}' >/dev/null
expect_ok "a malformed page is fetched again" -- $ES pull --tenant Contoso
ctl POST faults '{"malformed": true, "tenant": "contoso", "match": "users/delta", "times": 0}' >/dev/null
BEFORE=$(sql "select delta_link from delta_state where tenant_id='$CONTOSO'")
expect_exit "a page that stays malformed fails the tenant" 1 "malformed JSON" -- $ES pull --tenant Contoso
check "malformed: delta state unchanged" test "$(sql "select delta_link from delta_state where tenant_id='$CONTOSO'")" = "$BEFORE"
ctl DELETE faults >/dev/null
# the $batch answer is read from its text: a malformed one fails its tenant
ctl POST faults '{"malformed": true, "tenant": "contoso", "match": "batch", "times": 1}' >/dev/null
expect_exit "a malformed \$batch answer fails its tenant, saying so" 1 \
  "Contoso: FAILED.*POST /\\\$batch: Graph sent malformed JSON \([0-9]+ bytes, status 200\): invalid JSON at byte offset" -- \
  $ES pull --tenant Contoso,Fabrikam
check "a malformed \$batch answer: the other tenant is ok" grep -q "Fabrikam: ok" "$T_OUT/out"
expect_ok "after a malformed \$batch answer: the next pull is ok" -- $ES pull --tenant Contoso
ctl DELETE faults >/dev/null

ctl POST faults '{"expire_token_after": 2, "tenant": "contoso", "kind": "graph"}' >/dev/null
ctl DELETE requests >/dev/null
expect_ok "401 InvalidAuthenticationToken mid-run: new token, request retried" -- $ES pull --tenant Contoso
check "401: a second token was requested" \
  test "$(ctl GET "requests?tenant=contoso&kind=token&summary=1" | jq_py 'd["total"]')" = 2

# the token endpoint's own transient error (AADSTS90033, answered 400): asked again, not a failure
ctl DELETE faults >/dev/null
ctl POST faults '{"kind": "token", "tenant": "contoso", "status": 400, "error": "temporarily_unavailable", "aadsts": 90033, "times": 2}' >/dev/null
ctl DELETE requests >/dev/null
expect_ok "token temporarily_unavailable twice: asked again, the pull ok" -- $ES pull --tenant Contoso
check "temporarily_unavailable: three token requests" \
  test "$(ctl GET "requests?tenant=contoso&kind=token&summary=1" | jq_py 'd["total"]')" = 3
ctl POST faults '{"kind": "token", "tenant": "contoso", "status": 400, "error": "temporarily_unavailable", "aadsts": 90033, "times": 0}' >/dev/null
expect_exit "token temporarily_unavailable for good: the tenant fails after three tries" 1 "Contoso: FAILED.*temporarily_unavailable" -- $ES pull --tenant Contoso
ctl DELETE faults >/dev/null

ctl POST faults '{"status": 429, "retry_after": "1", "tenant": "contoso", "match": "subscribedSkus"}' >/dev/null
ctl DELETE requests >/dev/null
expect_ok "\$batch: a 429 part is retried alone" -- $ES pull --tenant Contoso
check "\$batch: the second batch held only the throttled part" sh -c "python3 - '$URL' <<'EOF'
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1] + '/_fake/requests?tenant=contoso'))['requests']
parts = [r for r in d if r['kind'] == 'batch-part']
batches = {}
for r in parts: batches.setdefault(r['batch'], []).append(r)
sizes = sorted(len(v) for v in batches.values())
sys.exit(0 if len(batches) == 2 and sizes[0] == 1 and 'subscribedSkus' in [v for v in batches.values() if len(v) == 1][0][0]['path'] else 1)
EOF"
check "\$batch: the retry came after the part's Retry-After" grep -q "batch part skus got 429" "$T_OUT/err"

# A token is renewed before it expires: with 2-second tokens and a slow first
# page, the next page goes out with a fresh token, without a 401 first.
ctl POST config '{"token_lifetime": 2}' >/dev/null
ctl POST faults '{"latency_ms": 2500, "tenant": "big", "match": "users/delta", "times": 1}' >/dev/null
sed 's#state/es.db#state/tok.db#' es.lua >tok.lua
ctl DELETE requests >/dev/null
expect_ok "short-lived token renewed before expiry" -- --config tok.lua pull --tenant Big
# (two token requests; more when the pull outlives a second 2-second token,
# as under valgrind: still never a 401)
check "renewal: a new token before the first expired, no 401" \
  test "$(ctl GET "requests?tenant=big&kind=token&summary=1" | jq_py 'min(d["total"], 2)')/$(ctl GET "requests?tenant=big&status=401&summary=1" | jq_py 'd["total"]')" = 2/0
ctl POST config '{"token_lifetime": 3599}' >/dev/null
ctl DELETE faults >/dev/null

# A group the policy names that the tenant lacks fails that tenant clearly.
printf 'return { groups = { "No Such Group" }, include = function(u) return true end }\n' >missing.lua
sed 's#policy = "nogroups.lua"#policy = "missing.lua"#' es.lua >grp.lua
expect_exit "a missing policy group is named" 1 "Big: FAILED: .*group 'No Such Group' does not exist" -- --config grp.lua pull --tenant Big

# ---------------------------------------------------------------- permissions and credentials
ctl POST tenants/northwind/grants/$CID '{"remove_roles": ["SecurityEvents.Read.All"]}' >/dev/null
# a read the users' sync does without (Secure Score, licences, the organization): a warning, the tenant ok
expect_exit "403 on Secure Score: the tenant is ok, the missing application permission named in a warning" 0 \
  "^  warning: tenant [0-9a-f-]*: the app lacks the application permission SecurityEvents\.Read\.All in this tenant \(403 Authorization_RequestDenied on GET /security/secureScores.*\): the users were pulled.*adminconsent" -- $ES pull --tenant Northwind
check "403: the users were still pulled" grep -q "^Northwind: ok: " "$T_OUT/out"
"$ENTRASYNC" $ES status --tenant Northwind >status.out 2>&1
check "403: status says ok, with the warning" grep -q "last pull .*: ok, with a warning: .*SecurityEvents.Read.All" status.out
ctl POST tenants/northwind/grants/$CID '{"roles": ["User.Read.All", "GroupMember.Read.All"]}' >/dev/null
expect_exit "User.Read.All only (as a plain contact sync needs): ok, the two others named" 0 \
  "Organization\.Read\.All" -- $ES pull --tenant Northwind
check "User.Read.All only: both missing permissions in the warning" \
  sh -c "grep -q '^Northwind: ok: ' '$T_OUT/out' && grep -q '^  warning: .* lacks the application permissions Organization.Read.All, SecurityEvents.Read.All in this tenant (403 Authorization_RequestDenied on GET /organization, GET /subscribedSkus, GET /security/secureScores' '$T_OUT/out'"
ctl POST tenants/northwind/grants/$CID '{"add_roles": ["Organization.Read.All", "SecurityEvents.Read.All", "Directory.Read.All",
  "User.EnableDisableAccount.All", "User.RevokeSessions.All", "User-PasswordProfile.ReadWrite.All"]}' >/dev/null
expect_exit "the permissions granted again: no warning" 0 "" -- $ES pull --tenant Northwind
check "no warning once granted" sh -c "! grep -q 'warning' '$T_OUT/out'"

mkconfig bad.lua 'client_secret = "wrong-secret",'
expect_exit "wrong secret: AADSTS7000215 explained" 1 "AADSTS7000215.*graph.client_secret" -- --config bad.lua pull --tenant Contoso
check "wrong secret: not echoed" sh -c "! grep -q wrong-secret '$T_OUT/out' '$T_OUT/err'"
ctl POST apps/$CID/expire-secrets '{}' >/dev/null
expect_exit "expired secret: AADSTS7000222 explained" 1 "secret has expired \(AADSTS7000222\)" -- $ES pull --tenant Contoso
ctl PATCH apps/$CID '{"secrets": [{"keyId": "k", "value": "'"$SECRET"'", "endDateTime": "2099-12-31T00:00:00Z"}]}' >/dev/null
ctl POST tenants/fabrikam/grants/$CID '{"consent": false}' >/dev/null
expect_exit "consent missing: AADSTS65001 with the consent URL" 1 "AADSTS65001.*adminconsent" -- $ES pull --tenant Fabrikam
ctl POST tenants/fabrikam/grants/$CID '{"consent": true}' >/dev/null
sed "s/\"fabrikam.com\"/\"nosuch.example\"/" es.lua >nosuch.lua
expect_exit "unknown tenant: AADSTS90002" 1 "nosuch.example.*AADSTS90002|AADSTS90002.*nosuch" -- --config nosuch.lua pull --tenant nosuch.example

openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 -subj /CN=entrasync-test >/dev/null 2>&1
ctl POST apps/$CID/certificates "$(python3 -c 'import json; print(json.dumps({"pem": open("cert.pem").read()}))')" >/dev/null
mkconfig cert.lua 'certificate = "cert.pem", private_key = "key.pem",'
expect_ok "certificate credentials (PS256, x5t#S256)" -- --config cert.lua pull --tenant Contoso
mkconfig rs.lua 'certificate = "cert.pem", private_key = "key.pem", jwt_alg = "RS256",'
expect_ok "certificate credentials (RS256, x5t)" -- --config rs.lua pull --tenant Contoso
openssl req -x509 -newkey rsa:2048 -nodes -keyout key2.pem -out cert2.pem -days 2 -subj /CN=other >/dev/null 2>&1
mkconfig cert2.lua 'certificate = "cert2.pem", private_key = "key2.pem",'
expect_exit "unregistered certificate: AADSTS700027 explained" 1 "AADSTS700027.*upload graph.certificate" -- --config cert2.lua pull --tenant Contoso
check "the private key is in no output" sh -c "! grep -q 'PRIVATE KEY' '$T_OUT/out' '$T_OUT/err'"

# ---------------------------------------------------------------- CSP discovery
expect_exit "tenants discover (exit 1: Woodgrove has not consented)" 1 "" -- $ES tenants discover
check "discover: every customer listed" sh -c "grep -c 'token: ' '$T_OUT/out' | grep -qx 5"
check "discover: mapped by id or domain" sh -c "grep '$FABRIKAM' '$T_OUT/out' | grep -q ' mapped '"
check "discover: a customer without consent shows why" sh -c "grep -A1 '$WOODGROVE' '$T_OUT/out' | grep -q AADSTS700016"
ctl POST tenants '{"key": "newco", "id": "c0ffee00-0000-4000-8000-000000000001", "displayName": "NewCo", "domain": "newco.example", "users": 3}' >/dev/null
expect_exit "discover: a new customer (exit 1: Woodgrove has not consented)" 1 "" -- $ES tenants discover
check "discover: a paste-ready entry for the unmapped customer" \
  grep -q '^{ id = "c0ffee00-0000-4000-8000-000000000001", name = "NewCo", syncro_customer = "NewCo" },' "$T_OUT/out"
check "discover: Syncro unreachable is said, the name match kept" \
  sh -c "grep -q 'Syncro could not be read' '$T_OUT/out' && grep -q 'NewCo\".*-- .*by name' '$T_OUT/out'"

# The suggestion by the e-mail domains of Syncro contacts (the fake Syncro).
SYN_FAKE=tests/fakes/fake_syncro.py
[ -f "$SYN_FAKE" ] || SYN_FAKE=$OLDPWD/tests/fakes/fake_syncro.py
fake_start syncro "$W" "$SYN_FAKE" --api-key fake-syncro-key --data none
fake_url SYN_URL syncro
python3 - "$SYN_URL/_fake/seed" <<'EOF'
import json, sys, urllib.request
c = lambda i, n: {"id": i, "business_name": n}
k = lambda cid, e: {"customer_id": cid, "name": e.split("@")[0], "email": e}
body = {"customers": [c(77, "NewCo Holdings Ltd"), c(78, "Reseller Inc"), c(79, "NewCo")],
        "contacts": [k(77, "a@newco.example"), k(77, "b@NewCo.example"), k(77, "c@newco.example"),
                     k(78, "d@newco.example"), k(79, "e@other.example")]}
urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=json.dumps(body).encode(), method="POST",
                                              headers={"Content-Type": "application/json"}))
EOF
fake_ctl "$SYN_URL" POST config '{"page_size":{"contacts":2,"customers":2}}' >/dev/null
sed "s|http://127.0.0.1:9/api/v1|$SYN_URL/api/v1|" es.lua >syn.lua
expect_exit "discover with Syncro (exit 1: Woodgrove has not consented)" 1 "" -- --config syn.lua tenants discover
check "discover: suggested by contact domain (most contacts wins, paged, case-insensitive)" \
  grep -q '^{ id = "c0ffee00-0000-4000-8000-000000000001", name = "NewCo", syncro_customer_id = 77 },  -- .*NewCo Holdings Ltd, by contact domain newco.example (3 contacts)' "$T_OUT/out"
check "discover: Syncro read, no unreachable note" sh -c "! grep -q 'could not be read' '$T_OUT/out'"
# customers Syncro knows by name only, by a contact domain under a customer with no business name, not at all
ctl POST tenants '{"key": "bigcorp", "id": "c0ffee00-0000-4000-8000-000000000002", "displayName": "Bigcorp Ltd", "domain": "bigcorp.example", "users": 2}' >/dev/null
ctl POST tenants '{"key": "solo", "id": "c0ffee00-0000-4000-8000-000000000003", "displayName": "Solo", "domain": "solo.example", "users": 2}' >/dev/null
ctl POST tenants '{"key": "lonely", "id": "c0ffee00-0000-4000-8000-000000000004", "displayName": "Lonely Co", "domain": "lonely.example", "users": 2}' >/dev/null
fake_ctl "$SYN_URL" POST seed '{"customers": [{"id": 80, "business_name": "BIGCORP LTD"}, {"id": 81, "business_name": "", "firstname": "Pat", "lastname": "Solo"}],
  "contacts": [{"customer_id": 81, "name": "pat", "email": "pat@solo.example"}]}' >/dev/null
expect_exit "discover with Syncro: more customers (exit 1: Woodgrove has not consented)" 1 "" -- --config syn.lua tenants discover
check "discover: a Syncro customer of the same name (any case) by its id" \
  grep -q '^{ id = "c0ffee00-0000-4000-8000-000000000002", name = "Bigcorp Ltd", syncro_customer_id = 80 },  -- bigcorp.example; BIGCORP LTD, by name$' "$T_OUT/out"
check "discover: a customer with no business name named by its full name" \
  grep -q '^{ id = "c0ffee00-0000-4000-8000-000000000003", name = "Solo", syncro_customer_id = 81 },  -- solo.example; Pat Solo, by contact domain solo.example (1 contact)$' "$T_OUT/out"
check "discover: a customer Syncro does not have is said to be missing, not suggested by name" \
  grep -q '^{ id = "c0ffee00-0000-4000-8000-000000000004", name = "Lonely Co", syncro_customer = "Lonely Co" },  -- lonely.example; NOT IN SYNCRO: ' "$T_OUT/out"
# a tenant named in the config by a verified domain that is not its default one is mapped, not offered again
sed "s|id = \"$CONTOSO\"|id = \"contosoltd2716.onmicrosoft.com\"|" syn.lua >syn2.lua
expect_exit "discover: a tenant configured by another verified domain (exit 1: Woodgrove has not consented)" 1 "" -- --config syn2.lua tenants discover
check "discover: ... is mapped" sh -c "grep '^  $CONTOSO ' '$T_OUT/out' | grep ' mapped ' | grep -vq 'not mapped'"
check "discover: ... and no entry is offered for it" sh -c "! grep -q '^{ id = \"$CONTOSO\"' '$T_OUT/out'"
for k in bigcorp solo lonely; do ctl DELETE "tenants/$k" >/dev/null 2>&1; done
kill "$fake_pid_syncro" 2>/dev/null

sed '/^csp/d' es.lua >nocsp.lua
expect_exit "discover without csp.partner_tenant" 2 "csp.partner_tenant is not set" -- --config nocsp.lua tenants discover
# a customer's tenant given as the partner: Graph refuses /contracts there, and no permission would help
sed "s|^csp = .*|csp = { partner_tenant = \"$CONTOSO\" }|" es.lua >notpartner.lua
expect_exit "discover with a tenant that is no partner" 1 "" -- --config notpartner.lua tenants discover
check "discover with a tenant that is no partner: says so, names csp.partner_tenant, not a missing permission" \
  sh -c "grep -q 'is csp.partner_tenant your partner tenant' '$T_OUT/err' && ! grep -q 'it needs the application permission' '$T_OUT/err'"

# ---------------------------------------------------------------- usage
expect_exit "pull --tenant unknown: did you mean" 2 "unknown tenant 'Contosso' \(did you mean" -- $ES pull --tenant Contosso
expect_exit "tenants: unknown subcommand" 2 "unknown subcommand 'discovr' \(did you mean 'discover'\?\)" -- $ES tenants discovr

# ---------------------------------------------------------------- Secure Score paged below $top
# Graph may page secureScores below the $top asked for: the backfill follows
# the nextLinks until it has the days it asked for, read from each page's text.
ctl POST config '{"score_page_size": 30}' >/dev/null
ctl DELETE requests >/dev/null
sed 's#state/es.db#state/scorepages.db#' es.lua >scorepages.lua
expect_ok "a first pull with secureScores in pages of 30" -- --config scorepages.lua pull --tenant Contoso
check "paged Secure Score: 90 days stored, each with its raw object" \
  test "$(sqlite3 state/scorepages.db "select count(*), count(raw) from secure_score_snapshots where tenant_id='$CONTOSO'")" = "90|90"
check "paged Secure Score: the two pages after the \$batch's were fetched" \
  test "$(ctl GET "requests?tenant=contoso&path=secureScores" | jq_py "sorted(r['path'].split('skip=')[-1] for r in d['requests'] if 'skip=' in r['path'])")" = "['30', '60']"
# a follow-up page that is not JSON fails the tenant, saying which answer
rm -f state/scorepages.db*
ctl POST faults '{"malformed": true, "tenant": "contoso", "match": "secureScores.*skip=60", "times": 1}' >/dev/null
expect_exit "paged Secure Score: a malformed page fails its tenant, saying so" 1 \
  "Contoso: FAILED.*a secureScores page is malformed JSON: invalid JSON at byte offset" -- \
  --config scorepages.lua pull --tenant Contoso
check "paged Secure Score: the pages before it are kept" \
  test "$(sqlite3 state/scorepages.db "select count(*) from secure_score_snapshots where tenant_id='$CONTOSO'")" = 60
ctl DELETE faults >/dev/null
# the unfinished backfill is taken up again by the next pull (the days the
# failed page held are no gap in the history), and only by that one
ctl DELETE requests >/dev/null
expect_ok "paged Secure Score: the next pull" -- --config scorepages.lua pull --tenant Contoso
check "paged Secure Score: the unfinished backfill asked for again" \
  test "$(ctl GET "requests?tenant=contoso&path=secureScores" | jq_py "'top=90' in d['requests'][0]['path']")" = True
check "paged Secure Score: the history whole again" \
  test "$(sqlite3 state/scorepages.db "select count(*) from secure_score_snapshots where tenant_id='$CONTOSO'")" = 90
ctl DELETE requests >/dev/null
expect_ok "paged Secure Score: the pull after" -- --config scorepages.lua pull --tenant Contoso
check "paged Secure Score: then only the newest day" \
  test "$(ctl GET "requests?tenant=contoso&path=secureScores" | jq_py "[r['path'].split('top=')[-1] for r in d['requests']]")" = "['1']"
ctl POST config '{"score_page_size": 0}' >/dev/null
