#!/bin/sh
# test_pull_batch_next — a $batch answer that holds only some of its parts
# (the fake's batch_partial fault): Graph may answer a batch "as soon as any
# of the individual requests has completed", with a nextLink to follow for
# the rest. The pull follows it and takes the parts it brings as those of
# the first answer (organization, SKUs, Secure Score, group look-ups and
# member pages land in the store; a 429 part on a followed page is asked
# again alone); parts left out without a nextLink are asked again in
# another $batch round; a tenant fails, saying so, only when Graph keeps
# leaving a part out. A nextLink that is itself refused: its parts asked
# again. Normal runs send no more requests.
. tests/lib.sh
. tests/integration/fakes_lib.sh

graph_test test_pull_batch_next batch_next --seed 1 --tenants demo   # W, URL, ctl METHOD PATH [JSON]
cd "$W" || exit 1
sql() { sqlite3 -cmd ".timeout 30000" state/es.db "$1"; }
cat >policy.lua <<'EOF'
return { groups = { "All Staff", "Managers" }, include = function(u) return true end }
EOF
fake_config c.lua "$URL" "base_url = \"http://127.0.0.1:9/api/v1\", api_key = \"k\"" policy.lua \
  "  { id = \"$CONTOSO\", name = \"Contoso\", syncro_customer_id = 1 },
  { id = \"$FABRIKAM\", name = \"Fabrikam\", syncro_customer_id = 2 },"
# requests TENANT [KIND] [PATH-REGEX]: requests logged since the last clear
requests() { ctl GET "requests?tenant=$1&kind=${2:-graph}&path=${3:-.}&summary=1" | jq_py 'd["total"]'; }
# batch_gets TENANT: the GETs on a $batch answer's nextLink logged since the last clear
batch_gets() {
  ctl GET "requests?tenant=$1&kind=graph" |
    jq_py "len([r for r in d['requests'] if r['method'] == 'GET' and r['path'].startswith('/v1.0/\$batch?')])"
}
# spe_e3: today's stored count of enabled SPE_E3 seats in Contoso
spe_e3() { sql "select enabled from license_snapshots where tenant_id = '$CONTOSO' and day = date('now') and sku_part_number = 'SPE_E3'"; }
# pull_with NAME FAULT [ARGS...]: a pull (of Contoso, or ARGS) with FAULT set and the request log cleared: ok
pull_with() {
  ctl POST faults "$2" >/dev/null
  ctl DELETE requests >/dev/null
  _name=$1; shift 2
  expect_ok "$_name: ok" -- --config c.lua pull ${1+"$@"}
}
# asked NAME WANT: "requests/nextLink GETs/member pages on their own" of Contoso is WANT
asked() {
  check "$1: Graph requests/nextLinks followed/member pages alone" \
    test "$(requests contoso)/$(batch_gets contoso)/$(requests contoso graph transitiveMembers)" = "$2"
}
# group_ok NAME: the store holds the group's members as Graph has them (its
# active direct members: the two groups hold users only)
group_ok() {
  active=$(ctl GET tenants/contoso/users | jq_py "' '.join(u['id'] for u in d['users'] if u['_state'] == 'active')")
  want=$(ctl GET "tenants/contoso/groups/$(echo "$1" | sed 's/ /%20/g')" | python3 -c "
import json, sys
act = set(sys.argv[1].split())
print(' '.join(sorted(m for m in json.load(sys.stdin)['members'] if m in act)))" "$active")
  have=$(sql "select group_concat(object_id, ' ') from (select m.object_id from group_members m join groups g
    on g.tenant_id = m.tenant_id and g.group_id = m.group_id where g.tenant_id = '$CONTOSO' and g.display_name = '$1'
    order by 1)")
  test -n "$want" && test "$want" = "$have"
}
groups_ok() { group_ok Managers && group_ok "All Staff"; }

# ---- a first pull: the organization in the answer, the rest on the pages behind its nextLink
# (org | skus scores | profiles g0 | g1)
pull_with "first pull: a \$batch answer with one part and a nextLink" \
  '{"match": "batch", "tenant": "contoso", "batch_partial": 1, "next_parts": 2}'
check "first pull: no part reported missing" sh -c "! grep -q 'lacks part' '$T_OUT/out' '$T_OUT/err'"
check "first pull: the nextLinks were followed (three pages)" test "$(batch_gets contoso)" = 3
check "first pull: the organization landed" test "$(sql "select default_domain from tenants where id = '$CONTOSO'")" = contoso.com
check "first pull: the SKUs landed (from a followed page)" \
  test "$(sql "select count(*) from license_snapshots where tenant_id = '$CONTOSO' and day = date('now')")" = \
       "$(ctl GET tenants/contoso/skus | jq_py 'len(d["skus"])')"
check "first pull: 90 days of Secure Score landed (from the followed page)" \
  test "$(sql "select count(*) from secure_score_snapshots where tenant_id = '$CONTOSO'")" = 90
check "first pull: the control profiles landed" \
  test "$(sql "select count(*) from kv where key = 'securescore.profiles:$CONTOSO' and value like '[{%'")" = 1
check "first pull: both groups' members landed" groups_ok
check "first pull: Fabrikam (no fault) followed no nextLink" test "$(batch_gets fabrikam)" = 0

# ---- incremental: a look-up in the answer, its member page on a followed page
MGRS=$(ctl GET tenants/contoso/groups/Managers | jq_py "' '.join(d['members'])")
NEW=$(ctl GET tenants/contoso/users | jq_py "[u['id'] for u in d['users'] if u['_state'] == 'active' and u['id'] not in '$MGRS'.split()][-1]")
ctl POST "tenants/contoso/groups/Managers/members" "{\"add\": [\"$NEW\"]}" >/dev/null
ctl PATCH tenants/contoso/skus/SPE_E3 '{"enabled": 321}' >/dev/null
# parts: org skus scores g0 | m0 g1 | m1 (no control profiles: stored today)
pull_with "incremental: parts on two followed pages" \
  '{"match": "batch", "tenant": "contoso", "batch_partial": 4, "next_parts": 2}' --tenant Contoso
asked "incremental: delta, the \$batch, two nextLinks" 4/2/0
check "incremental: the SKU change landed" test "$(spe_e3)" = 321
check "incremental: both groups' members (one added to Managers) landed from the followed pages" groups_ok
check "incremental: the added member is stored" \
  test "$(sql "select count(*) from group_members where tenant_id = '$CONTOSO' and object_id = '$NEW'")" -ge 1

# ---- an answer with no part yet: everything from the pages behind its nextLink (an empty one
# first; then org skus scores g0 | m0 g1 m1)
sql "update tenants set default_domain = null where id = '$CONTOSO'; delete from kv where key = 'graph.organization.$CONTOSO'"
ctl PATCH tenants/contoso/skus/SPE_E3 '{"enabled": 320}' >/dev/null
pull_with "no part in the answer" \
  '{"match": "batch", "tenant": "contoso", "batch_partial": 0, "next_empty": 1, "next_parts": 4}' --tenant Contoso
asked "no part in the answer: delta, the \$batch, three nextLinks" 5/3/0
check "no part in the answer: the organization landed" \
  test "$(sql "select default_domain from tenants where id = '$CONTOSO'")/$(sql "select count(*) from kv where key = 'graph.organization.$CONTOSO'")" = contoso.com/1
check "no part in the answer: the SKU change landed" test "$(spe_e3)" = 320
check "no part in the answer: both groups' members whole" groups_ok

# ---- a 429 part on a followed page: asked again alone in the next round
pull_with "a 429 part behind the nextLink" '[{"match": "batch", "tenant": "contoso", "batch_partial": 3},
  {"match": "Managers", "tenant": "contoso", "status": 429, "retry_after": "1"}]' --tenant Contoso
check "a 429 part behind the nextLink: retried in a second \$batch" test "$(requests contoso graph batch)" = 3
check "a 429 part behind the nextLink: logged as throttled" grep -q "batch part g1 got 429" "$T_OUT/err"
check "a 429 part behind the nextLink: both groups' members whole" groups_ok

# ---- nextLinks that bring nothing are not followed forever: after 20, the parts are asked again
pull_with "nextLinks to empty pages" '{"match": "batch", "tenant": "contoso", "batch_partial": 0, "next_empty": 40}' \
  --tenant Contoso
check "nextLinks to empty pages: 20 followed, then a second \$batch" \
  test "$(batch_gets contoso)/$(requests contoso graph batch)" = 20/22
check "nextLinks to empty pages: said so" grep -q "lacks parts 'org', .* after its last nextLink: asked again" "$T_OUT/err"

# ---- parts left out without a nextLink: asked again in another $batch round
ctl PATCH tenants/contoso/skus/SPE_E3 '{"enabled": 322}' >/dev/null
pull_with "parts left out, no nextLink" '{"match": "batch", "tenant": "contoso", "batch_partial": 2, "next_link": false}' \
  --tenant Contoso
check "parts left out: two \$batch requests, the second without the two answered" \
  test "$(requests contoso graph batch)/$(ctl GET "requests?tenant=contoso&kind=batch-part" | jq_py "sorted(len([r for r in d['requests'] if r['batch'] == b]) for b in {r['batch'] for r in d['requests']})")" = "2/[5, 7]"
check "parts left out: the SKU change landed" test "$(spe_e3)" = 322

# ---- left out for good: the tenant fails after the bounded rounds, saying so; Fabrikam ok
ctl POST faults '{"match": "batch", "tenant": "contoso", "batch_partial": 0, "next_link": false, "times": 0}' >/dev/null
ctl DELETE requests >/dev/null
expect_exit "a part Graph never answers: Contoso fails, saying which" 1 \
  "Contoso: FAILED: .*the \\\$batch answer lacks parts 'org' \(GET /organization\), 'skus' .*, asked 6 times: Graph did not answer them; the next pull asks again" -- --config c.lua pull
check "never answered: Fabrikam ok" grep -q "Fabrikam: ok" "$T_OUT/out"
check "never answered: six \$batch rounds, no more" test "$(requests contoso graph batch)" = 6
ctl DELETE faults >/dev/null

# ---- the nextLink itself refused (expired, say): the parts it was to bring asked again in a new $batch
ctl PATCH tenants/contoso/skus/SPE_E3 '{"enabled": 323}' >/dev/null
pull_with "the nextLink refused" '[{"match": "batch", "tenant": "contoso", "batch_partial": 1},
  {"match": "batch[?]", "tenant": "contoso", "status": 404}]' --tenant Contoso
check "the nextLink refused: its parts in a second \$batch" \
  test "$(batch_gets contoso)/$(requests contoso graph batch)" = 1/3
check "the nextLink refused: said so" grep -q "GET on the \$batch answer's nextLink failed (.*404.*): its [0-9]* parts asked again" "$T_OUT/err"
check "the nextLink refused: the SKU change landed" test "$(spe_e3)" = 323
check "the nextLink refused: both groups' members whole" groups_ok
ctl DELETE faults >/dev/null

# ---- normal runs: no more requests than before
pull_with "no fault" '[]'
check "no fault: 2 Graph requests per tenant (delta page and \$batch)" test "$(requests contoso)/$(requests fabrikam)" = 2/2
fake_alive graph
