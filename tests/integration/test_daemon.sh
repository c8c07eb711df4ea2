#!/bin/sh
# test_daemon — `entrasync daemon` against the fakes with a tiny interval:
# usage errors; a bad config refuses to start; runs happen on the schedule
# and status shows the running daemon and its next run; a second daemon on
# the same database is refused; SIGHUP with a broken config keeps the daemon
# (and says why in the log and in status), a fixed one is taken; the run
# lock makes the daemon wait for another run (two processes take turns) and
# a manual sync works while the daemon runs; a run slower than the interval
# is never started twice (slots skipped, runs never overlap); SIGTERM during
# a run stops the daemon once the run has ended, and SIGTERM when idle stops
# it at once; the metrics file is rewritten after the runs; --verify-every
# gives the first run --verify and the next only when due, across a restart.
# Timing: every wait is on a condition (the log, the database, status) with
# a deadline far above what an idle machine needs, so that a loaded one
# (load average 10 on 2 CPUs) passes too; the only fixed sleep is the one
# that shows that nothing starts while the run lock is held.
. tests/integration/test_status_lib.sh

ops_start "$T_OUT/daemon"
ES=$ENTRASYNC
DPID=

# start_daemon LOG ARGS...: the daemon in the background; DPID is its pid.
start_daemon() {
  log=$1; shift
  "$ES" --config c.lua daemon "$@" >"$log" 2>&1 &
  DPID=$!
  EXTRA_PIDS="$EXTRA_PIDS $DPID"
}
runs() { sql "select count(*) from runs where kind='sync' and finished_at is not null"; }
runs_at_least() { test "$(runs)" -ge "$1"; }
alive() { kill -0 "$1" 2>/dev/null; }
dead() { ! kill -0 "$1" 2>/dev/null; }
# stop_daemon: SIGTERM and wait; DAEMON_RC is its exit code.
stop_daemon() {
  kill -TERM "$DPID" 2>/dev/null
  wait "$DPID"; DAEMON_RC=$?
}

# ---- usage
expect_exit "daemon without --every: exit 2" 2 "--every is required" -- --config c.lua daemon
expect_exit "daemon --every nonsense: exit 2" 2 "invalid duration 'often'" -- --config c.lua daemon --every often
expect_exit "daemon --every 0: exit 2" 2 "more than zero" -- --config c.lua daemon --every 0s
expect_exit "daemon --every under a second: exit 2" 2 "--every 0.001s: give 1s to 366d" -- --config c.lua daemon --every 0.001s
expect_exit "daemon --every of centuries: exit 2" 2 "--every 99999999999d: give 1s to 366d" -- --config c.lua daemon --every 99999999999d
expect_exit "daemon --verify-every out of bounds: exit 2" 2 "--verify-every 400d: give 1s to 366d" -- --config c.lua daemon --every 1h --verify-every 400d
expect_exit "daemon --jitter >= --every: exit 2" 2 "--jitter must be shorter" -- --config c.lua daemon --every 1m --jitter 2m
expect_exit "daemon --command other: exit 2" 2 "unknown command for --command 'status'" -- --config c.lua daemon --every 1h --command status
ops_config bad.lua "bogus_key = 1"
expect_exit "daemon with a bad config does not start: exit 2" 2 "not valid, not starting.*bogus_key" -- --config bad.lua daemon --every 1h
check "the bad config created no database" test ! -e state/es.db
timeout 60 "$ES" --config c.lua daemon --every 1h -- --bogus >bogus.log 2>&1; RC=$?
check "daemon -- --bogus: its first run's usage error stops it (exit 2), not every run for ever" test "$RC" = 2
check "daemon -- --bogus: says why" grep -q "the first run exited 2 (usage error): the options it was given after '--' are wrong" bogus.log
check "daemon -- --bogus: the run's own message names the option" grep -q "unknown option '--bogus'" bogus.log
check "daemon -- --bogus: the run line shows its options" grep -q "run started: entrasync sync --bogus" bogus.log

# ---- runs on the schedule, status sees the daemon
start_daemon d1.log --every 2s --metrics "$W/es.prom"
check "the first run happens at once" wait_for 60 runs_at_least 1
check "runs go on every 2 s" wait_for 60 runs_at_least 3
expect_exit "status while the daemon runs" 1 "" -- --config c.lua status
check "status: daemon running with its pid" grep -q "^Daemon: running (pid $DPID), sync every 2s" "$T_OUT/out"
check "status: the next scheduled run" grep -q "next scheduled run: 20" "$T_OUT/out"
# The next run is recorded when a slot comes (run or skipped): a daemon
# late to wake on a loaded machine shows a slot just gone for a moment, so
# ask again until it has recorded the next one (a daemon that never
# records a future run still fails).
next_run_ahead() {
  es --config c.lua status --json
  test "$(jpath "$T_OUT/out" '(d["daemon"]["running"], d["daemon"]["pid"], d["daemon"]["next_run_at"] >= d["generated_at"])')" = "(True, $DPID, True)"
}
check "status --json: running, pid, next run in the future" wait_for 30 next_run_ahead
check "status --json: each tenant has the next run" \
  test "$(jpath "$T_OUT/out" 'all(t["next_run_at"] for t in d["tenants"])')" = True
if [ "${VALGRIND:-0}" = 1 ]; then   # the daemon runs itself (/proc/self/exe): valgrind's tool, under valgrind
  echo "skip - a second daemon on the same database (not under valgrind)"
else
  expect_exit "a second daemon on the same database: exit 3" 3 "another entrasync daemon \\(pid $DPID\\)" -- --config c.lua daemon --every 1h
fi
check "the daemon logs each run with its exit code" grep -q "run finished in .*exit 1 (some tenant failed or was held)" d1.log
check "the metrics file is written" test -s "$W/es.prom"
check "metrics: the daemon's next run" grep -q "^entrasync_daemon_next_run_timestamp_seconds [0-9]" "$W/es.prom"

# ---- a manual sync works while the daemon runs (they take turns on the run lock)
manual_ok() { "$ES" --config c.lua sync --tenant Contoso >/dev/null 2>&1; }
check "a manual sync --tenant succeeds while the daemon runs" wait_for 60 manual_ok

# ---- SIGHUP: a broken config is refused and the daemon goes on
cp c.lua good.lua
echo "this is not lua" >> c.lua
kill -HUP "$DPID"
check "SIGHUP with a broken config: the log says why" wait_for 60 grep -q "reload failed, keeping the previous settings: .*c.lua" d1.log
check "SIGHUP with a broken config: the reason is the error, not check's warnings (the config's pace)" \
  sh -c "! grep 'reload failed' d1.log | grep -q 'requests_per_minute'"
check "the daemon is still alive" alive "$DPID"
# (no wait: the daemon records the failure before it logs it)
check "status shows the failed reload" sh -c "'$ES' --config good.lua status 2>/dev/null | grep -q 'the last reload failed'"
cp good.lua c.lua
kill -HUP "$DPID"
check "SIGHUP with the fixed config: reload ok" wait_for 60 grep -q "reload ok" d1.log
check "status no longer shows a reload error" sh -c "! '$ES' --config c.lua status 2>/dev/null | grep -q 'reload failed'"
# a config naming another database: refused (the runs would leave the database this daemon locks and reports in)
sed 's#state/es.db#state2/es.db#' good.lua >c.lua
kill -HUP "$DPID"
check "SIGHUP naming another database: refused, saying a restart is needed" \
  wait_for 60 grep -q "reload refused, keeping the previous settings: the config now names the database state2/es.db, and this daemon runs on .*state/es.db: a new database needs a restart" d1.log
RUNS_BEFORE=$(sql "select count(*) from runs where kind = 'sync' and finished_at is not null")
runs_went_on() { test "$(sql "select count(*) from runs where kind = 'sync' and finished_at is not null")" -gt "$RUNS_BEFORE"; }
check "the next run is on the daemon's database" wait_for 60 runs_went_on
check "no run on the other database" test ! -e state2/es.db
cp good.lua c.lua
kill -HUP "$DPID"
reloads_ok() { test "$(grep -c 'reload ok' d1.log)" -ge 2; }
check "SIGHUP with the config as it was: reload ok" wait_for 60 reloads_ok

# ---- the run lock: the daemon waits for another run's lock
# held (once the daemon's run in progress, if any, has let it go) until
# killed below; every run that ended has been counted by then. The log may
# already say the daemon waited (for the manual sync above): this wait is
# the next such line.
WAITS=$(grep -c "holds the run lock; this run starts" d1.log)
hold_lock state/es.db.lock 300
BEFORE=$(runs)
new_wait() { test "$(grep -c "holds the run lock; this run starts" d1.log)" -gt "$WAITS"; }
check "the daemon says it waits for the lock" wait_for 60 new_wait
sleep 1.5   # the daemon checks the lock again every second: it must go on waiting
check "no run starts while another process holds the run lock" test "$(runs)" = "$BEFORE"
# the log from that line on
awk -v n="$WAITS" '/holds the run lock; this run starts/ { k++ } k > n' d1.log >d1.waiting
check "no run is even started once the daemon waits for the lock" \
  sh -c "grep -q 'pid $HOLD_PID' d1.waiting && ! grep -q 'run started' d1.waiting"
kill "$HOLD_PID" 2>/dev/null; wait "$HOLD_PID" 2>/dev/null
check "the daemon runs once the lock is free" wait_for 60 runs_at_least $((BEFORE + 1))
stop_daemon
check "SIGTERM when idle: exit 0" test "$DAEMON_RC" = 0
check "the daemon recorded that it stopped" test "$(sql "select value from kv where key='daemon.state'")" = stopped
expect_exit "status: daemon not running" 1 "^Daemon: not running" -- --config c.lua status

# ---- a run slower than the interval is never started twice
gctl POST config '{"latency_ms": 1500}' >/dev/null
FIRST=$(sql "select coalesce(max(id), 0) from runs")
start_daemon d2.log --every 1s
check "slow runs: slots are skipped while a run goes on" wait_for 60 grep -q "is still going: the run due at .* is skipped" d2.log
slow_runs_ended() { test "$(sql "select count(*) from runs where id > $FIRST and finished_at is not null")" -ge 2; }
check "slow runs: at least two runs ended" wait_for 90 slow_runs_ended
OVERLAPS=$(sql "select count(*) from runs a join runs b on b.id = a.id + 1 where a.id > $FIRST and b.started_at < a.finished_at")
check "slow runs: no two runs overlap" test "$OVERLAPS" = 0
[ "$OVERLAPS" = 0 ] || sql "select id, kind, started_at, finished_at, status from runs where id > $FIRST" | sed 's/^/    runs: /'
check "slow runs: skipped slots are counted" test "$(sql "select value from kv where key='daemon.runs_skipped'")" -ge 1

# ---- SIGTERM during a run: forwarded, the daemon exits once the run is over
# a run that has just begun: its row is in the database (so the sync has
# taken its SIGTERM handler: shutdown_install comes before the row), and
# Graph answers in 1.5 s, so its pulls go on for seconds yet
LAST_ID=$(sql "select coalesce(max(id), 0) from runs")
in_new_run() { test "$(sql "select count(*) from runs where id > $LAST_ID and finished_at is null")" = 1; }
check "SIGTERM during a run: a new run has begun" wait_for 60 in_new_run
kill -TERM "$DPID"
check "SIGTERM during a run: the daemon waits for the run" wait_for 30 grep -q "stopping; the run in progress finishes" d2.log
wait "$DPID"; DAEMON_RC=$?
check "SIGTERM during a run: exit 0" test "$DAEMON_RC" = 0
# what the daemon logged from the signal on: the run's end, then its own stop
sed -n '/SIGTERM: stopping/,$p' d2.log >d2.tail
check "SIGTERM during a run: the run ended before the daemon" \
  sh -c "grep -Eq 'run (finished in|ended by signal)' d2.tail && tail -n 1 d2.tail | grep -q 'daemon *stopped'"
check "SIGTERM during a run: the sync stopped gracefully (not killed by the signal)" grep -q "run finished in" d2.tail
check "SIGTERM during a run: the run was recorded as finished" \
  test "$(sql "select count(*) from runs where finished_at is null")" = 0
check "SIGTERM during a run: no write left unconfirmed" \
  test "$(sql "select count(*) from intents where state in ('pending', 'sent')")" = 0
LAST_CHILD=$(sed -n 's/.*run started: entrasync sync (pid \([0-9]*\)).*/\1/p' d2.log | tail -n 1)
check "SIGTERM during a run: the run's process is gone" dead "$LAST_CHILD"
gctl POST config '{"latency_ms": 0}' >/dev/null

# ---- SIGINT (Ctrl-C) stops it too
start_daemon d3.log --every 1h
check "daemon with --every 1h makes its first run" wait_for 60 grep -q "run finished" d3.log
kill -INT "$DPID"
wait "$DPID"; DAEMON_RC=$?
check "SIGINT when idle: exit 0" test "$DAEMON_RC" = 0
check "the daemon's log says it stopped" grep -q "stopped" d3.log

# ---- --verify-every: the first run verifies, the next not until it is due
# again; the time is kept in the database, so a restarted daemon keeps it
expect_exit "--verify-every with --command pull: exit 2" 2 "--verify-every goes with --command sync" -- --config c.lua daemon --every 1h --command pull --verify-every 1d
start_daemon d4.log --every 1s --verify-every 1h
check "--verify-every: two runs" wait_for 60 sh -c "test \$(grep -c 'run finished' d4.log) -ge 2"
stop_daemon
check "--verify-every: the first run verifies, the second does not" \
  test "$(sed -n 's/.*run started: entrasync \(sync[ a-z-]*\) (pid.*/\1/p' d4.log | head -n 2 | tr '\n' ',')" = "sync --verify,sync,"
check "--verify-every: when it verified is recorded" test -n "$(sql "select value from kv where key='daemon.last_verify_at'")"
start_daemon d5.log --every 1h --verify-every 1h
check "--verify-every, restarted: its first run" wait_for 60 grep -q "run finished" d5.log
es --config c.lua status
check "status: the daemon's --verify rhythm and its last verifying run" sh -c "grep -q '^Daemon: running (pid $DPID), sync every 1h, with --verify every 1h\$' '$T_OUT/out' && grep -Eq '^  last run with --verify: 20[0-9][0-9]-[0-9-]*T[0-9:]*Z \((just now|[0-9]+ [a-z]+ ago)\)\$' '$T_OUT/out'"
stop_daemon
check "--verify-every, restarted: not due yet, no --verify" grep -q "run started: entrasync sync (pid" d5.log
