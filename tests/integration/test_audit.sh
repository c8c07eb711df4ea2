#!/bin/sh
# test_audit — `entrasync audit` over the writes of real syncs against the
# fakes: creates with every field (none → value), an update of one field
# (old → new) after a change in Entra, a delete (value → none), and the
# filters (--tenant by name, --since as a date and as an age, --contact,
# --user by mail, --run, --limit) in text and JSON; usage errors.
. tests/integration/test_status_lib.sh

ops_start "$T_OUT/audit"

expect_exit "audit with no database: exit 0" 0 "nothing has been written" -- --config c.lua audit
es --config c.lua sync --tenant Contoso --tenant Fabrikam
check "first sync ok" test "$(sql "select count(*) from audit where action='create' and result='ok'")" -gt 20

# one user changes title in Entra, another is deleted
ID=$(sql "select object_id from links where tenant_id='$CONTOSO' order by object_id limit 1")
CONTACT=$(sql "select contact_id from links where object_id='$ID'")
MAIL=$(sql "select json_extract(json, '\$.mail') from users where object_id='$ID'")
OLD_TITLE=$(sql "select json_extract(json, '\$.jobTitle') from users where object_id='$ID'")
GONE=$(sql "select object_id from links where tenant_id='$CONTOSO' order by object_id limit 1 offset 1")
GONE_CONTACT=$(sql "select contact_id from links where object_id='$GONE'")
GONE_NAME=$(sql "select json_extract(json, '\$.displayName') from users where object_id='$GONE'")
gctl PATCH "tenants/contoso/users/$ID" '{"jobTitle": "Head of Audits"}' >/dev/null
gctl DELETE "tenants/contoso/users/$GONE" >/dev/null
sleep 1.1   # the second sync's rows get a later second than the first's
SECOND_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
expect_ok "second sync" -- --config c.lua sync --tenant Contoso
RUN2=$(sql "select max(id) from runs where kind='sync'")

expect_ok "audit --contact" -- --config c.lua audit --contact "$CONTACT"
check "audit --contact: the create, then the update" \
  test "$(grep -Eo '  (create|update)  contact #[0-9]+' "$T_OUT/out" | tr -s ' ' | tr '\n' '|')" = " create contact #$CONTACT| update contact #$CONTACT|"
check "audit: the update shows title old → new" grep -qF "    title: \"$OLD_TITLE\" → \"Head of Audits\"" "$T_OUT/out"
check "audit: the create shows none → the mail" grep -qF "    email: (none) → \"$MAIL\"" "$T_OUT/out"
check "audit: rows name the run and the user" grep -q "user $ID (.*)  run $RUN2  ok" "$T_OUT/out"
expect_ok "audit --tenant by name --user by mail" -- --config c.lua audit --tenant contoso --user "$MAIL"
check "audit --user: the same two rows" test "$(grep -c "contact #$CONTACT" "$T_OUT/out")" = 2
expect_ok "audit --contact for the deleted user" -- --config c.lua audit --contact "$GONE_CONTACT"
check "audit: the delete shows value → none" sh -c "grep -q '  delete  contact #$GONE_CONTACT' '$T_OUT/out' && grep -qF '    name: \"$GONE_NAME\" → (none)' '$T_OUT/out'"

expect_ok "audit --since the second sync (a date-time)" -- --config c.lua audit --since "$SECOND_START"
check "audit --since: only the second sync's rows" \
  test "$(grep -c '^20' "$T_OUT/out")" = "$(sql "select count(*) from audit where run_id=$RUN2")"
expect_ok "audit --run" -- --config c.lua audit --run "$RUN2"
check "audit --run: as many rows as the run wrote" \
  test "$(grep -c '^20' "$T_OUT/out")" = "$(sql "select count(*) from audit where run_id=$RUN2")"
expect_ok "audit --since an age (1h)" -- --config c.lua audit --since 1h
check "audit --since 1h: every row" test "$(grep -c '^20' "$T_OUT/out")" = "$(sql "select count(*) from audit")"
expect_exit "audit --since a day in the future: nothing" 0 "no writes match" -- --config c.lua audit --since 2999-01-01
check "audit: nothing printed on stdout then" test ! -s "$T_OUT/out"
expect_ok "audit --tenant Fabrikam" -- --config c.lua audit --tenant Fabrikam
check "audit --tenant: only Fabrikam's rows" sh -c "! grep -q '$CONTOSO' '$T_OUT/out' && grep -q '$FABRIKAM' '$T_OUT/out'"

expect_ok "audit --json" -- --config c.lua audit --json --contact "$CONTACT"
check "audit --json: the rows with their changes" \
  test "$(jpath "$T_OUT/out" '[(r["action"], r["contact_id"]) for r in d]')" = "[('create', $CONTACT), ('update', $CONTACT)]"
check "audit --json: the update's change list" \
  test "$(jpath "$T_OUT/out" '[(c["field"], c["after"]) for c in d[1]["changes"]]')" = "[('title', 'Head of Audits')]"
check "audit --json: before and after objects" \
  test "$(jpath "$T_OUT/out" '(d[1]["before"]["title"], d[1]["after"]["title"], d[1]["user"] is not None)')" = "('$OLD_TITLE', 'Head of Audits', True)"
expect_ok "audit --limit 1 --json" -- --config c.lua audit --limit 1 --json
check "audit --limit 1: the newest row" test "$(jpath "$T_OUT/out" '(len(d), d[0]["id"])')" = "(1, $(sql 'select max(id) from audit'))"
expect_ok "audit --limit 3" -- --config c.lua audit --limit 3
check "audit --limit 3: oldest first" \
  test "$(grep -c '^20' "$T_OUT/out")" = 3
expect_ok "audit --json with nothing matching" -- --config c.lua audit --json --contact 999999
check "audit --json with nothing: []" test "$(jpath "$T_OUT/out" 'd')" = "[]"

expect_exit "audit --since nonsense: exit 2" 2 "invalid date 'yesterday'" -- --config c.lua audit --since yesterday
expect_exit "audit --since 2026-02-31: exit 2" 2 "invalid date" -- --config c.lua audit --since 2026-02-31
expect_exit "audit --contact not a number: exit 2" 2 "--contact needs" -- --config c.lua audit --contact abc
expect_exit "audit --user without --tenant: exit 2" 2 "--user needs --tenant" -- --config c.lua audit --user "$MAIL"
expect_exit "audit with a stray argument: exit 2" 2 "unexpected argument" -- --config c.lua audit extra
