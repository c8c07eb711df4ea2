#!/bin/sh
# test_crash — crash safety of apply: a SIGKILL right after a create was
# sent (applied in Syncro, not recorded) and right before one was sent
# (intent recorded, nothing sent), the fake Syncro's "apply then drop"
# fault (the answer to an applied POST is lost), then a loop of SIGKILLs at
# random moments of first syncs (CRASH_TRIALS, default 8) — each followed
# by runs to completion. Always: no duplicate contact, every in-scope user
# linked to exactly one contact, no open intent left.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/crash" --rate-limit 0
cd "$W" || exit 1
ES=$ENTRASYNC
mkconfig c.lua "$OLDPWD/policies/default.lua"

# consistent: no duplicate, as many links as contacts created, no open intent
consistent() {
  dups=$(dup_emails)
  open=$(sqlite3 state/es.db "select count(*) from intents where state in ('pending','sent')")
  links=$(sqlite3 state/es.db "select count(*) from links")
  created=$(sctl GET 'state?kind=contacts' | jq_py "len([c for c in (d.get('contacts', d) if isinstance(d, dict) else d) if c['id'] >= 1025])")
  [ -z "$dups" ] && [ "$open" = 0 ] && [ "$links" = "$EXPECTED_LINKS" ] && [ "$created" = "$EXPECTED_CREATED" ] && return 0
  echo "    dups='$dups' open=$open links=$links (want $EXPECTED_LINKS) created=$created (want $EXPECTED_CREATED)"
  return 1
}

fresh() { reset_fakes; rm -rf state; }

# the reference: a clean first sync, timed twice (the faster time: a
# reference slowed by a moment of load would put the random kills below
# after the runs end)
t0=$(date +%s.%N)
"$ES" --config c.lua sync --json >ref.json 2>ref.err
REF_SECONDS=$(python3 -c "print($(date +%s.%N) - $t0)")
EXPECTED_LINKS=$(sqlite3 state/es.db "select count(*) from links")
EXPECTED_CREATED=$(python3 -c "import json; print(sum(t['created'] for t in json.load(open('ref.json'))['tenants']))")
check "reference sync links every planned user" test "$EXPECTED_LINKS" -gt 40
fresh
t0=$(date +%s.%N)
"$ES" --config c.lua sync >/dev/null 2>&1
REF_SECONDS=$(python3 -c "print(max(0.2, min($REF_SECONDS, $(date +%s.%N) - $t0)))")

# ---- killed right after the 5th send: applied, not recorded
fresh
ENTRASYNC_TEST_KILL_AFTER_SEND=5 "$ES" --config c.lua sync >run1.out 2>run1.err
check "killed after a send (SIGKILL)" test $? = 137
check "the create is applied in Syncro" test "$(sctl GET requests | jq_py "d['summary']['writes'].get('contacts.create', 0)")" = 5
check "its intent is open" test "$(sqlite3 state/es.db "select count(*) from intents where state = 'pending'")" = 1
"$ES" --config c.lua sync >run2.out 2>run2.err
check "rerun exits 0" test $? = 0
check "rerun reports the recovery" grep -q "recovered 1 interrupted write: 1 linked" run2.out
check "after a kill after send: consistent" consistent
check "recovery audited" test "$(sqlite3 state/es.db "select count(*) from audit where action = 'recover' and result like 'ok:%'")" = 1

# ---- killed right before the 3rd send: recorded, not sent
fresh
ENTRASYNC_TEST_KILL_BEFORE_SEND=3 "$ES" --config c.lua sync >run1.out 2>run1.err
check "killed before a send" test $? = 137
check "two creates applied" test "$(sctl GET requests | jq_py "d['summary']['writes'].get('contacts.create', 0)")" = 2
KILLED=$(sqlite3 state/es.db "select max(id) from runs")
"$ES" --config c.lua status >status.out 2>&1
check "status after the kill: exit 1" test $? = 1
check "status after the kill: the run that did not finish" \
  grep -Eq "^Run: sync #$KILLED started .* did not finish \(killed, or the machine stopped\): the next run resumes it" status.out
"$ES" --config c.lua status --json >status.json 2>/dev/null
check "status --json after the kill: the run interrupted" \
  test "$(jq_py "(d['run']['id'], d['run']['kind'], d['run']['state'], d['run']['pid'])" <status.json)" = "($KILLED, 'sync', 'interrupted', None)"
"$ES" --config c.lua sync >run2.out 2>run2.err
check "rerun after a kill before send exits 0" test $? = 0
check "rerun plans it again" grep -q "recovered 1 interrupted write: 0 linked.*1 planned again" run2.out
check "the killed run is marked interrupted by the next" test "$(sqlite3 state/es.db "select status from runs where id = $KILLED")" = interrupted
"$ES" --config c.lua status >status.out 2>&1
check "status after the rerun: exit 0, no run line" sh -c "test $? = 0 && ! grep -q '^Run:' status.out"
"$ES" --config c.lua metrics >metrics.out 2>/dev/null
check "metrics count the interrupted run" grep -q '^entrasync_runs_total{kind="sync",status="interrupted"} 1$' metrics.out
check "after a kill before send: consistent" consistent

# ---- killed right before a create with no e-mail: a contact of that name made by hand before the run is not
# taken for the one the create may have made (recovery matches such a create by name)
fresh
cat >desk.lua <<'PEOF'
return {
  include = function(u) return u.displayName == "Front Desk" end,
  contact = function(u) return { name = u.displayName, title = u.jobTitle } end,
}
PEOF
mkconfig desk-c.lua "$W/desk.lua"
HAND=$(sctl POST seed '{"contacts":[{"customer_id":101,"name":"Front Desk"}]}' | jq_py "d['created']['contacts'][0]")
gctl POST tenants/contoso/users '{"displayName": "Front Desk", "userPrincipalName": "frontdesk@contoso.com",
  "accountEnabled": true, "userType": "Member", "jobTitle": "Reception kiosk"}' >/dev/null
ENTRASYNC_TEST_KILL_BEFORE_SEND=1 "$ES" --config desk-c.lua sync --tenant Contoso >run1.out 2>run1.err
check "no e-mail: killed before the create" test $? = 137
"$ES" --config desk-c.lua sync --tenant Contoso >run2.out 2>run2.err
check "no e-mail: the rerun plans the create again" grep -q "recovered 1 interrupted write: 0 linked.*1 planned again" run2.out
DESK=$(sqlite3 state/es.db "select contact_id from links")
check "no e-mail: linked to a new contact, not the one made by hand" sh -c "test -n '$DESK' && test '$DESK' -gt '$HAND'"
check "no e-mail: the new contact has the title" test "$(sctl GET 'state?kind=contacts' | jq_py "[c.get('properties', {}).get('title') for c in (d.get('contacts', d) if isinstance(d, dict) else d) if c['id'] == $DESK]")" = "['Reception kiosk']"

# ---- apply then drop: the POST is applied, its answer lost
fresh
sctl POST faults '[{"match":"/contacts$","method":"POST","after_apply":true,"times":3,"skip":4},
                   {"match":"/contacts$","method":"POST","after_apply":true,"drop":true,"times":2,"skip":20}]' >/dev/null
"$ES" --config c.lua sync >run1.out 2>run1.err
rc=$?
check "lost answers: the run ends ok" test $rc = 0
check "lost answers: 5 faults fired" test "$(sctl GET requests | jq_py "d['summary']['faults_fired']")" = 5
check "lost answers settled in the same run" grep -q "recovered 5 interrupted writes: 5 linked" run1.out
check "after apply-then-drop: consistent" consistent

# ---- random SIGKILLs during first syncs
trials=${CRASH_TRIALS:-8}
ok_trials=0
kills=0
first_kills=0   # kills of a trial's first run, a full sync as long as the reference one
t=1
while [ $t -le "$trials" ]; do
  fakes_alive || break
  fresh
  [ $((t % 3)) = 0 ] && sctl POST faults '{"match":"/contacts$","method":"POST","after_apply":true,"times":2,"skip":7}' >/dev/null
  # three runs, each SIGKILLed at a random moment (unless it ended first)
  for attempt in 1 2 3; do
    "$ES" --config c.lua sync >loop.out 2>loop.err &
    pid=$!
    sleep "$(python3 -c "import random; print(round(random.uniform(0.02, 0.7 * $REF_SECONDS), 3))")"
    if kill -9 $pid 2>/dev/null; then
      kills=$((kills + 1))
      [ $attempt = 1 ] && first_kills=$((first_kills + 1))
    fi
    wait $pid 2>/dev/null
  done
  timeout 60 "$ES" --config c.lua sync >final.out 2>final.err
  timeout 60 "$ES" --config c.lua sync >final2.out 2>final2.err
  if consistent && grep -q "^  = ok: 0 created, 0 adopted, 0 updated" final2.out; then
    ok_trials=$((ok_trials + 1))
  else
    echo "    trial $t: see $W/final.out"
  fi
  t=$((t + 1))
done
check "random SIGKILLs: $ok_trials of $trials trials consistent, no duplicate" test "$ok_trials" = "$trials"
# Later runs of a trial resume with less left to do and often finish first;
# the first run of each trial is the one that must have been cut short.
check "random SIGKILLs: runs were killed mid-way ($kills of $((trials * 3)); $first_kills of $trials first runs)" \
  test $((first_kills * 2)) -ge "$trials"
