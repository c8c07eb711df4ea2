#!/bin/sh
# test_daemon_reload — the daemon's runs use the config and policies it last
# accepted (its snapshot), never the files as they are on disk: a policy or
# config broken on disk without SIGHUP does not reach a run; a SIGHUP with a
# broken policy is refused (logged with file:line, status shows it) and the
# old policy stays; a SIGHUP with a good change is taken by the next run
# (seen in the contacts' title on the fake Syncro). The config sits in a
# subfolder and names its policy relatively; its Syncro key comes from
# env(), and the snapshot the runs read holds no secret value.
# Timing: every wait is on a condition with a deadline far above what an
# idle machine needs (a loaded one, load average 10 on 2 CPUs, passes too).
. tests/integration/test_status_lib.sh

ops_start "$T_OUT/daemon_reload"
ES=$ENTRASYNC
mkdir -p conf
DB=$W/state/es.db

# policy REV: conf/pol.lua setting every contact's title to "rev-REV"
# (on_leave a function: the run also builds its on_leave wrapper and the
# policy's hash from the text, which must be the accepted one too).
policy() {
  cat >conf/pol.lua <<EOF
local p = require "entrasync.policy"
return {
  include = function(u, t)
    if p.is_disabled(u) or p.is_guest(u) or not p.has_mail(u) then return false, "not a member with mail" end
    return true
  end,
  contact = function(u, t)
    local c = p.contact(u)
    c.title = "rev-$1"
    return c
  end,
  on_leave = function(c, why, t) return "keep" end,
}
EOF
}
policy 1
cat >conf/r.lua <<EOF
database = "$DB"
graph = { client_id = "$CID", client_secret = "$SECRET", authority = "$GURL", endpoint = "$GURL" }
syncro = { base_url = "$SURL/api/v1", api_key = env("ES_RELOAD_TEST_KEY"), requests_per_minute = 6000 }
policy = "pol.lua"
tenants = {
  { id = "$CONTOSO", name = "Contoso", syncro_customer_id = 101 },
}
EOF
cp conf/r.lua good.lua

# titled REV: how many of the fake Syncro's contacts have the title "rev-REV".
titled() {
  contacts_json | python3 -c '
import json, sys
d = json.load(sys.stdin); items = d.get("contacts", d) if isinstance(d, dict) else d
print(sum(1 for x in items if (x.get("properties") or {}).get("title") == sys.argv[1]))' "rev-$1"
}
# sql QUERY: as the library's (waiting for a busy database: the runs write
# every second; a failed query would read as "no runs"), on $DB.
sql() { sqlite3 -cmd ".timeout 30000" "$DB" "$1"; }
ended() { sql "select count(*) from runs where kind='sync' and finished_at is not null"; }
# runs_since_ok: two more runs ended since mark, all of them ok.
runs_since_ok() {
  test "$(ended)" -ge $((MARK + 2)) &&
    test "$(sql "select count(*) from runs where kind='sync' and id > $MARK_ID and status <> 'ok' and finished_at is not null")" = 0
}
# check_runs_ok NAME: runs_since_ok within 90 s, else FAIL with the runs since mark.
check_runs_ok() {
  if wait_for 90 runs_since_ok; then pass "$1"; return; fi
  fail "$1" "runs since the mark: $(sql "select r.id, r.status, t.status, t.reason from runs r left join run_tenants t
    on t.run_id = r.id where r.id > $MARK_ID" | tr '\n' ' '); log: $(tail -n 5 d.log | tr '\n' ' ')"
}
# mark: MARK, the runs ended, and MARK_ID, the last run's id, read in one
# query (two would let a run end and the next begin between them, and the
# two runs counted could then both be older than MARK_ID: none checked). A
# run going on at the mark may be one of the two; the other began after.
mark() {
  set -- $(sql "select count(finished_at), coalesce(max(id), 0) from runs where kind='sync'" | tr '|' ' ')
  MARK=$1 MARK_ID=$2
}
alive() { kill -0 "$1" 2>/dev/null; }

export ES_RELOAD_TEST_KEY="$SKEY"
"$ES" --config conf/r.lua daemon --every 1s >d.log 2>&1 &
DPID=$!
EXTRA_PIDS="$EXTRA_PIDS $DPID"

first_ok() { test "$(sql "select count(*) from runs where status='ok'")" -ge 1; }
check "the daemon starts and its first run succeeds" wait_for 60 first_ok
check "the daemon logs its snapshot of the config and the policy" grep -q "as read now (2 files) until a SIGHUP" d.log
check "the policy (named relative to the config's folder) is applied" test "$(titled 1)" -gt 0

# the snapshot the runs inherit: a sealed memfd holding the texts, env() unevaluated
SNAP=
for f in /proc/$DPID/fd/*; do
  case "$(readlink "$f" 2>/dev/null)" in *entrasync-snapshot*) SNAP=$f ;; esac
done
check "the daemon holds its snapshot in a memfd" test -n "$SNAP"
if [ -n "$SNAP" ]; then
  cat "$SNAP" >snap.txt 2>/dev/null
  check "the snapshot holds the config's and the policy's text" \
    sh -c "grep -q 'env(\"ES_RELOAD_TEST_KEY\")' snap.txt && grep -q 'rev-1' snap.txt && grep -q '^conf/pol.lua' snap.txt"
  check "the snapshot holds no secret taken from the environment" sh -c "! grep -q '$SKEY' snap.txt"
  # the check the daemon runs on a snapshot judges the held texts, not the disk:
  # a policy gone from the disk since the daemon read it is no reason to refuse
  mv conf/pol.lua conf/pol.lua.away
  ENTRASYNC_SNAPSHOT_FD=9 "$ES" --config conf/r.lua check 9<"$SNAP" >"$T_OUT/out" 2>"$T_OUT/err"; rc=$?
  mv conf/pol.lua.away conf/pol.lua
  check "check on the snapshot: a policy missing on disk is checked as held (exit 0)" test "$rc" = 0
fi

# ---- a broken policy on disk, no SIGHUP: the runs go on with the accepted one
echo "this is not lua (" >>conf/pol.lua
expect_exit "the policy on disk is really broken" 2 "conf/pol.lua:[0-9]+:" -- --config conf/r.lua check
mark
check_runs_ok "policy broken on disk without SIGHUP: the next runs succeed"
check "... with the accepted policy (titles unchanged)" test "$(titled 1)" -gt 0

# ---- SIGHUP with the broken policy: refused, logged with file:line, the old one kept
kill -HUP "$DPID"
check "SIGHUP with a broken policy: the log says why, with file:line" \
  wait_for 60 grep -q "reload failed, keeping the previous settings: .*conf/pol.lua:[0-9]*:" d.log
check "... its lines joined by '; ' (no ';' glued to the next line)" \
  sh -c "grep 'reload failed' d.log | grep -q '[^ ]; entrasync check: ' && ! grep 'reload failed' d.log | grep -q ';entrasync'"
check "the daemon is still alive" alive "$DPID"
# (no wait: the daemon records the failure before it logs it)
check "status shows the failed reload" sh -c "'$ES' --config good.lua status 2>/dev/null | grep -q 'the last reload failed'"
mark
check_runs_ok "after the refused reload the runs still succeed"
check "... with the old policy" test "$(titled 1)" -gt 0

# ---- a broken config on disk, no SIGHUP: no effect on the runs either
policy 2
echo "this is not lua" >>conf/r.lua
mark
check_runs_ok "config broken on disk without SIGHUP: the next runs succeed"
check "... and the good policy written meanwhile is not taken without SIGHUP" test "$(titled 2)" = 0

# ---- SIGHUP with a good change: the next run takes it
cp good.lua conf/r.lua
kill -HUP "$DPID"
check "SIGHUP with a good policy: reload ok" wait_for 60 grep -q "reload ok" d.log
check "status no longer shows a reload error" sh -c "! '$ES' --config conf/r.lua status 2>/dev/null | grep -q 'reload failed'"
new_titles() { test "$(titled 2)" -gt 0 && test "$(titled 1)" = 0; }
check "the next run applies the new policy to every contact" wait_for 90 new_titles

kill -TERM "$DPID"
wait "$DPID"; DAEMON_RC=$?
check "the daemon stops cleanly" test "$DAEMON_RC" = 0
