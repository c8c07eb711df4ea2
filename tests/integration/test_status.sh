#!/bin/sh
# test_status — `entrasync status`, `conflicts`, `link` and `unlink` against
# a store built by real syncs against the fake Graph and the fake Syncro:
# the per-tenant last pull / sync (ok, failed with the reason, held with the
# reason), the counts, users mirrored, contacts linked and conflicts open as
# the database has them, text and JSON, --tenant, exit codes; the conflict
# of a user whose e-mail two contacts share, resolved by hand with link
# (audited, and the next sync updates that contact instead of creating
# one), unlink, the refusals (contact linked to someone else, the run lock
# held, unknown user).
. tests/integration/test_status_lib.sh

ops_start "$T_OUT/status"
ES=$ENTRASYNC

# ---- before anything ran
expect_exit "status with no database: exit 0" 0 "No database yet" -- --config c.lua status
check "status with no database: every tenant never ran" test "$(grep -c 'never pulled or synced' "$T_OUT/out")" = 3
check "status did not create the database" test ! -e state/es.db
expect_ok "status --json with no database" -- --config c.lua status --json
check "status --json: three tenants, status never" \
  test "$(jpath "$T_OUT/out" '[t["status"] for t in d["tenants"]]')" = "['never', 'never', 'never']"
expect_exit "conflicts with no database" 0 "No open conflicts" -- --config c.lua conflicts
expect_exit "status --tenant unknown: exit 2" 2 "unknown tenant 'nope'" -- --config c.lua status --tenant nope
expect_exit "status --tenant with a typo: the nearest configured name" 2 "unknown tenant .contso. \(did you mean .Contoso.\?\)" -- --config c.lua status --tenant contso
expect_exit "sync --tenant with a typo: the nearest configured name" 2 "unknown tenant .Contso. \(did you mean .Contoso.\?\)" -- --config c.lua sync --dry-run --tenant Contso
expect_exit "status with a bad option: exit 2" 2 "unknown option" -- --config c.lua status --jsn

# ---- a conflict: two contacts of Contoso's customer share a user's e-mail
es --config c.lua sync --dry-run --json --tenant Contoso
CONF_MAIL=$(jpath "$T_OUT/out" '[a["user"] for a in d["tenants"][0]["plan"] if a["action"] == "create"][0].split("<")[1].rstrip(">")')
CONF_ID=$(jpath "$T_OUT/out" '[a["object_id"] for a in d["tenants"][0]["plan"] if a["action"] == "create"][0]')
check "a Contoso user to put in conflict" test -n "$CONF_MAIL"
rm -rf state
sctl POST seed "{\"contacts\":[
  {\"id\":3001,\"customer_id\":101,\"name\":\"Twin One\",\"email\":\"$CONF_MAIL\"},
  {\"id\":3002,\"customer_id\":101,\"name\":\"Twin Two\",\"email\":\"$CONF_MAIL\"}]}" >/dev/null

# ---- first sync: Contoso and Fabrikam ok, Woodgrove fails (no consent)
expect_exit "first sync: exit 1 (Woodgrove fails)" 1 "" -- --config c.lua sync
expect_exit "status after the sync: exit 1" 1 "" -- --config c.lua status
cp "$T_OUT/out" status.txt
check "status: Contoso's sync ok with its counts" \
  sh -c "sed -n '/^Contoso/,/^\$/p' status.txt | grep -Eq 'last sync .*: ok\$' && sed -n '/^Contoso/,/^\$/p' status.txt | grep -q 'created '"
check "status: Woodgrove failed, with the AADSTS reason" \
  sh -c "sed -n '/^Woodgrove/,/^\$/p' status.txt | grep -q 'failed: .*AADSTS700016'"
check "status: the pull is shown as the sync's first step" grep -q "last pull .*first step of the sync" status.txt
USERS=$(sql "select count(*) from users where tenant_id='$CONTOSO' and removed is null")
LINKS=$(sql "select count(*) from links where tenant_id='$CONTOSO'")
check "status: Contoso's users mirrored and contacts linked as in the database" \
  sh -c "sed -n '/^Contoso/,/^\$/p' status.txt | grep -q 'users mirrored $USERS.*contacts linked $LINKS, conflicts open 1'"
check "status: points to the conflicts command" grep -q "entrasync conflicts --tenant $CONTOSO" status.txt
check "status: no daemon" grep -q "^Daemon: not running" status.txt
check "status: how the app signs in to Graph" grep -qx "Graph sign-in: client secret (its expiry is in the app registration)" status.txt

expect_exit "status --json: exit 1" 1 "" -- --config c.lua status --json
cp "$T_OUT/out" status.json
check "status --json: statuses per tenant in config order" \
  test "$(jpath status.json '[(t["name"], t["status"]) for t in d["tenants"]]')" = "[('Contoso', 'ok'), ('Fabrikam', 'ok'), ('Woodgrove', 'failed')]"
check "status --json: Contoso counts match the database" \
  test "$(jpath status.json '[(t["users_mirrored"], t["contacts_linked"], t["conflicts_open"]) for t in d["tenants"] if t["name"] == "Contoso"][0]')" = "($USERS, $LINKS, 1)"
CREATED=$(sql "select count(*) from audit where tenant_id='$CONTOSO' and action='create' and result='ok'")
check "status --json: the sync's counts (created) match the audit trail" \
  test "$(jpath status.json '[t["last_sync"]["counts"]["created"] for t in d["tenants"] if t["name"] == "Contoso"][0]')" = "$CREATED"
check "status --json: Woodgrove's reason" \
  sh -c "python3 -c 'import json,sys; d=json.load(open(\"status.json\")); w=[t for t in d[\"tenants\"] if t[\"name\"]==\"Woodgrove\"][0]; sys.exit(0 if \"AADSTS700016\" in w[\"last_sync\"][\"reason\"] else 1)'"
check "status --json: daemon not running, no next run" \
  test "$(jpath status.json '(d["daemon"]["running"], d["daemon"]["next_run_at"])')" = "(False, None)"
expect_exit "status --tenant Contoso: exit 0 (only an ok tenant)" 0 "^Contoso" -- --config c.lua status --tenant contoso
check "status --tenant shows only that tenant" sh -c "! grep -q Fabrikam '$T_OUT/out'"

# ---- conflicts
expect_ok "conflicts lists the open conflict" -- --config c.lua conflicts
check "conflicts: both candidates and the link command" \
  sh -c "grep -q 'candidate contacts: #3001 #3002' '$T_OUT/out' && grep -q 'entrasync link --tenant $CONTOSO $CONF_ID CONTACT_ID' '$T_OUT/out'"
check "conflicts: the user's mail" grep -q "<$CONF_MAIL>" "$T_OUT/out"
expect_ok "conflicts --json" -- --config c.lua conflicts --json --tenant Contoso
check "conflicts --json: one, with candidates" \
  test "$(jpath "$T_OUT/out" '(len(d), d[0]["object_id"], d[0]["candidates"])')" = "(1, '$CONF_ID', [3001, 3002])"
expect_exit "conflicts --tenant Fabrikam: none" 0 "No open conflicts" -- --config c.lua conflicts --tenant Fabrikam
# a tenant the config and the store do not have is a mistake, not "no conflicts" (nor "no writes")
expect_exit "conflicts --tenant with a typo: exit 2, the nearest name" 2 "unknown tenant 'contso' [(]did you mean 'Contoso'[?][)]" \
  -- --config c.lua conflicts --tenant contso
expect_exit "conflicts --tenant with a domain no tenant has: exit 2" 2 "unknown tenant 'nobody.example'" \
  -- --config c.lua conflicts --tenant nobody.example
expect_ok "conflicts --tenant by a verified domain of a tenant configured by its GUID: that tenant's" \
  -- --config c.lua conflicts --tenant contoso.com
check "conflicts --tenant contoso.com: Contoso's conflict" grep -q "^$CONTOSO  " "$T_OUT/out"
es --config c.lua status --tenant contoso.com
check "status --tenant by that verified domain: Contoso's block, and only it" \
  sh -c "grep -q 'Contoso' '$T_OUT/out' && ! grep -q 'Fabrikam' '$T_OUT/out'"
expect_exit "audit --tenant with a typo: exit 2" 2 "unknown tenant 'Nope'" -- --config c.lua audit --tenant Nope
expect_exit "audit --tenant by id: ok" 0 "" -- --config c.lua audit --tenant "$CONTOSO" --limit 1

# ---- link: refusals first
expect_exit "link without --tenant: exit 2" 2 "--tenant is required" -- --config c.lua link "$CONF_MAIL" 3001
expect_exit "link an unknown user: exit 2" 2 "no user 'nobody@contoso.com'" -- --config c.lua link --tenant Contoso nobody@contoso.com 3001
TAKEN=$(sql "select contact_id from links where tenant_id='$CONTOSO' limit 1")
expect_exit "link to a contact linked to someone else: exit 2" 2 "already linked to user" -- --config c.lua link --tenant Contoso "$CONF_MAIL" "$TAKEN"
# Syncro's contact ids are global: another customer's linked contact is refused too (the next sync would move it)
FAB_TAKEN=$(sql "select contact_id || ' ' || customer_id from links where tenant_id='$FABRIKAM' limit 1")
expect_exit "link to another customer's linked contact: exit 2, its customer named" 2 \
  "contact #${FAB_TAKEN% *} is already linked to user [0-9a-f-]* of tenant $FABRIKAM [(]customer #${FAB_TAKEN#* }[)]" \
  -- --config c.lua link --tenant Contoso "$CONF_MAIL" "${FAB_TAKEN% *}"
hold_lock state/es.db.lock 30
expect_exit "link while another run holds the lock: exit 3" 3 "holds the lock" -- --config c.lua link --tenant Contoso "$CONF_MAIL" 3001
# a sync going on (its row "running", the lock held): status says so, by pid, and is not a failure
sql "insert into runs (kind, started_at, status) values ('sync', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 'running')"
GOING=$(sql "select max(id) from runs")
# (status exits 1 here for Woodgrove, which failed: the run going on adds nothing to that)
expect_exit "status while a sync runs" 1 "^Run: sync #$GOING started .*, still going [(]pid $HOLD_PID[)]" -- --config c.lua status
expect_exit "status --json while a sync runs" 1 "" -- --config c.lua status --json
check "status --json: the run going on, with its pid" \
  test "$(jq_py "(d['run']['id'], d['run']['state'], d['run']['pid'])" <"$T_OUT/out")" = "($GOING, 'running', $HOLD_PID)"
kill "$HOLD_PID" 2>/dev/null; wait "$HOLD_PID" 2>/dev/null
expect_exit "status once that run is gone without finishing" 1 "^Run: sync #$GOING started .* did not finish" -- --config c.lua status
check "status --tenant Contoso (ok): exit 1 all the same, the run did not finish" sh -c "'$ENTRASYNC' --config c.lua status --tenant Contoso >/dev/null 2>&1; test \$? = 1"
sql "delete from runs where id = $GOING"
check "the refusals changed nothing" test "$(sql "select count(*) from links where contact_id in (3001, 3002)")" = 0

# ---- link by mail resolves the conflict
expect_ok "link by mail, the tenant named by a verified domain" -- --config c.lua link --tenant contoso.com "$CONF_MAIL" 3001
check "link: says what it did" grep -q "linked user $CONF_ID of $CONTOSO to contact #3001" "$T_OUT/out"
check "link: the link is in the store" test "$(sql "select contact_id from links where tenant_id='$CONTOSO' and object_id='$CONF_ID'")" = 3001
check "link: the conflict is resolved" test "$(sql "select count(*) from conflicts where resolved_at is null")" = 0
check "link: audited with the operator's name" \
  test "$(sql "select count(*) from audit where action='link' and contact_id=3001 and actor like 'operator:%' and after like '%3001%'")" = 1
expect_exit "conflicts: none left" 0 "No open conflicts" -- --config c.lua conflicts
expect_exit "link again: already linked" 0 "already linked to contact #3001" -- --config c.lua link --tenant Contoso "$CONF_ID" 3001

# ---- the next sync updates the linked contact, creates nothing for that user
sctl DELETE requests >/dev/null
es --config c.lua sync --tenant Contoso
check "next sync: the linked contact is updated" \
  test "$(sql "select count(*) from audit where action='update' and contact_id=3001 and result='ok'")" = 1
check "next sync: no contact created for that user" \
  test "$(sql "select count(*) from audit where action='create' and object_id='$CONF_ID'")" = 0
check "next sync: Syncro has the user's name on #3001" \
  sh -c "sctl() { :; }; python3 -c 'import json,urllib.request,sys; c=json.load(urllib.request.urlopen(\"$SURL/_fake/contacts?email=$CONF_MAIL&customer_id=101\")); items=c.get(\"contacts\", c) if isinstance(c, dict) else c; t=[x for x in items if x[\"id\"]==3001][0]; sys.exit(0 if t[\"name\"] != \"Twin One\" else 1)'"

# ---- unlink
expect_ok "unlink" -- --config c.lua unlink --tenant "$CONTOSO" "$CONF_ID"
check "unlink: the link is gone" test "$(sql "select count(*) from links where object_id='$CONF_ID'")" = 0
check "unlink: audited" test "$(sql "select count(*) from audit where action='unlink' and contact_id=3001 and before like '%3001%'")" = 1
expect_exit "unlink again (the tenant by a verified domain): was not linked" 0 "not linked" -- --config c.lua unlink --tenant CONTOSO.COM "$CONF_ID"
expect_exit "unlink with two users: exit 2" 2 "unexpected argument" -- --config c.lua unlink --tenant Contoso a b

# ---- held: Graph loses more than max(5, 10%) of the linked users
for u in $(sql "select object_id from links where tenant_id='$CONTOSO' limit 7"); do
  gctl DELETE "tenants/contoso/users/$u" >/dev/null
done
expect_exit "sync with too many removals: exit 1" 1 "" -- --config c.lua sync --tenant Contoso
expect_exit "status shows Contoso held: exit 1" 1 "" -- --config c.lua status --tenant Contoso
check "status: held with the guard's reason" grep -Eq "last sync .*: held: .+" "$T_OUT/out"
expect_exit "status --json: held" 1 "" -- --config c.lua status --json --tenant Contoso
check "status --json: status held, reason given" \
  test "$(jpath "$T_OUT/out" '(d["tenants"][0]["status"], bool(d["tenants"][0]["last_sync"]["reason"]))')" = "('held', True)"

# ---- a store that is not a database
rm -rf state && mkdir state && echo "not a database" > state/es.db
expect_exit "status on a broken store: exit 3" 3 "" -- --config c.lua status
expect_exit "audit on a broken store: exit 3" 3 "" -- --config c.lua audit
