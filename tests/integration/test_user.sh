#!/bin/sh
# test_user — `entrasync user show|disable|enable|revoke-sessions|
# set-password` against the fake Graph (and the fake Syncro, to prove a
# password never reaches it): target resolution (contact id, e-mail, UPN,
# object id, ambiguous, unknown), show (text and JSON), every action done,
# dry-run, confirmation (no terminal → --yes needed; on a terminal: no
# cancels, yes acts), the protect hook, removed users, the 403 messages
# (missing permission, administrator target), audit rows with the actor,
# and a generated password that appears on standard output and nowhere else.
. tests/lib.sh
. tests/integration/test_user_env.sh

fakes_start "$T_OUT/fakes"
setup_workdir "$T_OUT/user" 'return {
  groups = { "All Staff" },
  include = function(u) return true end,
  protect = function(u, t)
    if (u.userPrincipalName or ""):match("^admin@") then return true, "break-glass account" end
    return false
  end,
}'
ES="--config es.lua"

MIA=$(user_id contoso mia.nguyen)
SOPHIE=$(user_id contoso sophie.dubois)
LUCAS=$(user_id contoso lucas.zbinden)
ZAINAB=$(user_id contoso zainab.patel)
ADMIN=$(user_id contoso admin@)
FABUSER=$(user_id fabrikam "")
link "$CONTOSO" "$MIA" 1001 101 mia.n@old.example
link "$CONTOSO" "$SOPHIE" 1002 101
link fabrikam.com "$FABUSER" 1002 102
audit_rows() { sql "select count(*) from audit where action like 'user.%'"; }

# ---------------------------------------------------------------- resolution and show
expect_ok "show by contact id" -- $ES user show 1001
check "show: the user, enabled, licence by name, group, department, office" sh -c "
  grep -q '^mia.nguyen@contoso.com (Mia Nguyen)' '$T_OUT/out' && grep -q 'enabled: *yes' '$T_OUT/out' &&
  grep -q 'licenses: *Microsoft 365 E3' '$T_OUT/out' && grep -q 'groups: *All Staff' '$T_OUT/out' &&
  grep -q 'department: *Finance' '$T_OUT/out' && grep -q 'office: *Seattle' '$T_OUT/out'"
check "show: last pull, the link, no writes yet" sh -c "
  grep -q 'last pull: *20[0-9-]*T' '$T_OUT/out' && grep -q 'Syncro contact 1001 of customer 101' '$T_OUT/out' &&
  grep -q 'last writes: none' '$T_OUT/out'"
for t in MIA.NGUYEN@contoso.com "$MIA" mia.n@old.example; do
  expect_ok "show resolves $t" -- $ES user show "$t" --json
  check "show --json: $t is Mia" test "$(jq_py 'd["object_id"]' <"$T_OUT/out")" = "$MIA"
done
check "show --json: fields" sh -c "python3 -c '
import json, sys; d = json.load(open(\"$T_OUT/out\"))
ok = d[\"enabled\"] is True and d[\"licenses\"][0][\"name\"] and d[\"link\"][\"contact_id\"] == 1001 \
  and d[\"groups\"][0][\"name\"] == \"All Staff\" and d[\"protected\"] is False and d[\"audit\"] == []
sys.exit(0 if ok else 1)'"
expect_exit "ambiguous contact id: refused with the candidates" 2 "ambiguous: it matches 2 users" -- $ES user disable 1002 --yes
check "ambiguous: both candidates named" sh -c "grep -q 'Contoso $SOPHIE' '$T_OUT/err' && grep -q 'Fabrikam $FABUSER' '$T_OUT/err'"
expect_ok "--tenant settles it" -- $ES user show 1002 --tenant Contoso --json
check "--tenant: Sophie" test "$(jq_py 'd["object_id"]' <"$T_OUT/out")" = "$SOPHIE"
expect_ok "--tenant by the GUID of a tenant the config names by its domain" -- $ES user show 1002 --tenant "$FABRIKAM" --json
check "--tenant GUID: Fabrikam's user" test "$(jq_py 'd["object_id"]' <"$T_OUT/out")" = "$FABUSER"
expect_ok "audit --tenant by that GUID" -- $ES audit --tenant "$FABRIKAM"
UPPER=$(printf '%s' "$MIA" | tr a-f A-F)
expect_ok "an object id in upper case is found" -- $ES user show "$UPPER" --json
check "upper-case object id: Mia" test "$(jq_py 'd["object_id"]' <"$T_OUT/out")" = "$MIA"
gctl POST "tenants/fabrikam/users/$FABUSER/soft-delete" >/dev/null
"$ENTRASYNC" $ES pull --tenant Fabrikam >/dev/null 2>&1
expect_exit "a match removed in another tenant still makes the target ambiguous" 2 "ambiguous: it matches 2 users" \
  -- $ES user disable 1002 --yes --dry-run
check "ambiguous across tenants: the removed one is named as such" grep -q "Fabrikam $FABUSER .*(removed)" "$T_OUT/err"
gctl POST "tenants/fabrikam/users/$FABUSER/restore" >/dev/null
"$ENTRASYNC" $ES pull --tenant Fabrikam >/dev/null 2>&1
expect_exit "unknown target" 2 "no user matches 'nobody@contoso.com'" -- $ES user show nobody@contoso.com
expect_exit "malformed target" 2 "not a Syncro contact id, an e-mail, a UPN or an Entra object id" -- $ES user show "Mia Nguyen"
expect_exit "unknown subcommand" 2 "did you mean 'disable'" -- $ES user disabel 1001
expect_exit "missing target" 2 "needs a TARGET" -- $ES user disable

# ---------------------------------------------------------------- dry run, confirmation
gctl DELETE requests >/dev/null
before=$(audit_rows)
expect_ok "disable --dry-run" -- $ES user disable 1001 --dry-run
check "dry run: shows the request and the permission" \
  grep -q "would send PATCH /users/$MIA {\"accountEnabled\":false} (needs User.EnableDisableAccount.All + User.Read.All)" "$T_OUT/out"
check "dry run: nothing sent, nothing recorded" test "$(graph_calls PATCH users)/$(audit_rows)" = "0/$before"
expect_ok "set-password --dry-run shows a placeholder" -- $ES user set-password 1001 --dry-run --json
check "set-password dry run: placeholder, permission" sh -c "grep -q '<new password>' '$T_OUT/out' && grep -q 'User-PasswordProfile.ReadWrite.All' '$T_OUT/out'"

expect_ok "dry run: revoking a B2B guest says Microsoft's caveat" -- $ES user revoke-sessions alex.wright@consulting-group.net --dry-run
check "guest revoke: the caveat" grep -q "Note: Microsoft documents that revoking sessions does not work for external (B2B) users" "$T_OUT/out"
expect_ok "dry run: disabling an account synced from AD says it may come back" -- $ES user disable sally.dennis@fabrikam.com --tenant Fabrikam --dry-run
check "hybrid disable: the caveat" grep -q "Note: the account is synced from on-premises Active Directory" "$T_OUT/out"
expect_exit "no terminal and no --yes: refused" 2 "pass --yes to confirm" -- $ES user disable 1001 </dev/null
check "not confirmed: nothing sent, refusal audited" \
  test "$(graph_calls PATCH users)/$(sql "select count(*) from audit where action='user.disable' and result like 'refused: %not confirmed%'")" = "0/1"

# with_tty ANSWER ARGS...: runs entrasync on a pseudo-terminal, answers the prompt.
with_tty() {
  answer=$1; shift
  python3 "$TESTS_ROOT/tests/integration/tty_answer.py" "$answer" "$ENTRASYNC" "$@" >"$T_OUT/out" 2>&1
}
with_tty no $ES user disable 1001; rc=$?
check "terminal, answer no: cancelled (exit 1)" sh -c "test $rc = 1 && grep -q 'disable the Microsoft account mia.nguyen@contoso.com (Contoso)? Type' '$T_OUT/out' && grep -q 'cancelled at the prompt' '$T_OUT/out'"
check "cancelled: nothing sent, audited" \
  test "$(graph_calls PATCH users)/$(sql "select count(*) from audit where result like 'cancelled: %'")" = "0/1"
with_tty yes $ES user disable 1001; rc=$?
check "terminal, answer yes: disabled" sh -c "test $rc = 0 && grep -q 'disabled the account of mia.nguyen@contoso.com' '$T_OUT/out'"
check "the fake Graph has Mia disabled" test "$(fake_user contoso "$MIA" accountEnabled)" = False
with_tty no $ES user set-password "$ZAINAB"; rc=$?
check "set-password on a terminal asks too: no cancels" sh -c "test $rc = 1 && grep -q 'Type .yes. to confirm' '$T_OUT/out' && grep -q 'cancelled at the prompt' '$T_OUT/out'"
check "set-password cancelled: no password set" test "$(fake_user contoso "$ZAINAB" _password)" = None

# ---------------------------------------------------------------- the actions
SUDO_USER=alice expect_ok "enable needs no confirmation" -- $ES user enable mia.nguyen@contoso.com </dev/null
check "enabled again" test "$(fake_user contoso "$MIA" accountEnabled)" = True
check "audit: the person behind sudo, before/after, ok" \
  test "$(sql "select actor||'|'||before||'|'||after||'|'||result||'|'||contact_id from audit where action='user.enable'")" = \
       'operator:alice|{"accountEnabled":false}|{"accountEnabled":true}|ok|1001'
expect_ok "disable --yes" -- $ES user disable "$LUCAS" --yes
check "Lucas disabled" test "$(fake_user contoso "$LUCAS" accountEnabled)" = False
check "audit: actor is \$USER" \
  test "$(sql "select actor from audit where action='user.disable' and result='ok' and object_id='$LUCAS'")" = "operator:${USER:-$(id -un)}"
gctl DELETE requests >/dev/null
expect_ok "revoke-sessions --yes" -- $ES user revoke-sessions 1001 --tenant Contoso --yes --json
check "revoke: one POST" test "$(graph_calls POST revokeSignInSessions)" = 1
check "revoke: sessions revoked" test "$(fake_user contoso "$MIA" signInSessionsValidFromDateTime)" != None
check "revoke --json: result ok" test "$(jq_py 'd["result"] + "|" + d["permission"]' <"$T_OUT/out")" = "ok|User.RevokeSessions.All"
gctl DELETE requests >/dev/null
gctl POST faults '{"match": "revokeSignInSessions", "status": 429, "retry_after": "0.2", "times": 1}' >/dev/null
expect_ok "revoke-sessions throttled once (429): sent again after Retry-After, done" -- $ES user revoke-sessions 1001 --tenant Contoso --yes
check "throttled revoke: two POSTs, the 429 and the one processed" test "$(graph_calls POST revokeSignInSessions)" = 2
gctl POST faults '{"match": "revokeSignInSessions", "status": 429, "retry_after": "0.1", "times": 0}' >/dev/null
expect_exit "revoke-sessions throttled every time: not applied, said so (not 'may or may not')" 1 \
  "not applied: Graph is still throttling this tenant [(]429[)]" -- $ES user revoke-sessions 1001 --tenant Contoso --yes
gctl DELETE faults >/dev/null
expect_ok "show lists the last writes" -- $ES user show 1001
check "show: the actions are in the last writes" sh -c "grep -q 'user.revoke-sessions .*ok' '$T_OUT/out' && grep -q 'user.enable .*operator:alice' '$T_OUT/out'"

# ---------------------------------------------------------------- passwords
expect_ok "set-password: generated" -- --log-level trace $ES user set-password "$ZAINAB" --yes </dev/null
PW=$(sed -n '/shown only this once/{n;p;}' "$T_OUT/out")
check "a strong password was printed" sh -c "printf '%s' '$PW' | grep -Eq '^.{20}$'"
check "the fake Graph got exactly that password, to change at next sign-in" \
  test "$(fake_user contoso "$ZAINAB" _password)/$(fake_user contoso "$ZAINAB" _forceChangePasswordNextSignIn)" = "$PW/True"
check "the password is not in the logs (stderr at trace level)" sh -c "! grep -qF -- '$PW' '$T_OUT/err'"
check "the password appears once on stdout" test "$(grep -cF -- "$PW" "$T_OUT/out")" = 1
check "the password is not in the database (nor its WAL)" sh -c "! cat state/es.db* | grep -qaF -- '$PW' && ! sqlite3 state/es.db .dump | grep -qF -- '$PW'"
check "the password was never sent to Syncro" sh -c "! python3 -c 'import urllib.request; print(urllib.request.urlopen(\"$SYNCRO_URL/_fake/requests\").read().decode())' | grep -qF -- '$PW'"
check "audit: set-password without the password" \
  test "$(sql "select after||'|'||result from audit where action='user.set-password' and object_id='$ZAINAB' and result='ok'")" = \
       '{"passwordProfile":{"forceChangePasswordNextSignIn":true}}|ok'
GIVEN='Given-Pw#2026x'
printf '%s\n' "$GIVEN" | es $ES user set-password "$ZAINAB" --yes; rc=$?
check "set-password from standard input: done" test "$rc/$(fake_user contoso "$ZAINAB" _password)" = "0/$GIVEN"
check "a given password is not printed back, nor stored" sh -c "! grep -qF -- '$GIVEN' '$T_OUT/out' '$T_OUT/err' && ! cat state/es.db* | grep -qaF -- '$GIVEN'"
printf 'short\n' | es $ES user set-password "$ZAINAB" --yes; rc=$?
check "a weak password: Graph's complexity message, exit 1" sh -c "test $rc = 1 && grep -q 'complexity' '$T_OUT/err' && ! grep -q short '$T_OUT/err'"
expect_ok "set-password --json carries the generated password" -- $ES user set-password "$ZAINAB" --yes --json </dev/null
check "--json password is the one Graph got" test "$(jq_py 'd["password"]' <"$T_OUT/out")" = "$(fake_user contoso "$ZAINAB" _password)"

# ---------------------------------------------------------------- guards and 403s
gctl DELETE requests >/dev/null
expect_exit "protect hook refuses a protected user" 1 "protected by the tenant's policy: break-glass account" -- $ES user disable "$ADMIN" --yes
check "protected: nothing sent, refusal audited" \
  test "$(graph_calls PATCH users)/$(sql "select count(*) from audit where object_id='$ADMIN' and result like 'refused: %break-glass%'")" = "0/1"
gctl POST "tenants/contoso/users/$LUCAS/soft-delete" >/dev/null
"$ENTRASYNC" $ES pull --tenant Contoso >/dev/null 2>&1
expect_exit "a removed user is refused" 1 "removed from Entra" -- $ES user enable "$LUCAS"

gctl POST "tenants/contoso/grants/$CID" '{"remove_roles": ["User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All"]}' >/dev/null
expect_exit "403, permission missing: named, with the consent URL" 1 \
  "lacks the application permission User.RevokeSessions.All .*adminconsent\?client_id=$CID" -- $ES user revoke-sessions "$SOPHIE" --yes
check "403: audited as failed" test "$(sql "select count(*) from audit where object_id='$SOPHIE' and result like 'failed: %User.RevokeSessions.All%'")" = 1
gctl POST "tenants/contoso/grants/$CID" '{"remove_roles": ["User-PasswordProfile.ReadWrite.All"]}' >/dev/null
expect_exit "403 on set-password names its permission" 1 "lacks the application permission User-PasswordProfile.ReadWrite.All" \
  -- $ES user set-password "$SOPHIE" --yes </dev/null
check "a password that could not be set is not printed" sh -c "! grep -q 'shown only this once' '$T_OUT/out'"
gctl POST "tenants/contoso/users/$SOPHIE/admin" '{"admin": true}' >/dev/null
expect_exit "403, administrator target: said so" 1 \
  "sophie.dubois@contoso.com is an administrator \(directory role: Global Administrator\) that the app may not change" \
  -- $ES user disable "$SOPHIE" --yes
check "administrator: the permission is not blamed" sh -c "! grep -q 'lacks' '$T_OUT/err'"
check "the administrator is still enabled" test "$(fake_user contoso "$SOPHIE" accountEnabled)" = True
