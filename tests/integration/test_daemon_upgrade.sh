#!/bin/sh
# test_daemon_upgrade — the daemon's runs (execs of /proc/self/exe) are
# named entrasync, not "exe", in ps, top and pgrep; and when the program
# file is replaced on disk (an upgrade moved into place), the daemon says
# once that its runs keep the version it started with until a restart;
# with --log-format json every line of its output is a JSON event.
. tests/integration/test_status_lib.sh

ops_start "$T_OUT/daemon_upgrade"
mkdir -p bin
cp "$ENTRASYNC" bin/entrasync
gctl POST config '{"latency_ms": 700}' >/dev/null   # each run lasts a few seconds: it can be looked at
"$W/bin/entrasync" --config c.lua daemon --every 2s >d.log 2>&1 &
DPID=$!
EXTRA_PIDS="$EXTRA_PIDS $DPID"
# run_pid: the pid of the run going on now (the daemon's child), else nothing
run_pid() { pgrep -P "$DPID" | head -n 1; }
check "a run has started" wait_for 60 sh -c "test -n \"\$(pgrep -P $DPID)\""
RPID=$(run_pid)
COMM=$(cat "/proc/$RPID/comm" 2>/dev/null)
check "the run is named entrasync, not exe ($COMM)" test "$COMM" = entrasync
check "pgrep finds the run by its name" sh -c "pgrep -x entrasync | grep -qx '$RPID'"
check "nothing said about the program file before it is replaced" sh -c "! grep -q 'replaced on disk' d.log"

# an upgrade: a new file moved over the old one (as install(1) and packages do)
cp "$ENTRASYNC" bin/entrasync.new && mv bin/entrasync.new bin/entrasync
said() { grep -q "$W/bin/entrasync was replaced on disk since the daemon started (an upgrade?): its runs keep using the version it started with" d.log; }
check "the daemon says the program file was replaced, and what to do" wait_for 60 said
check "it says to restart the daemon" grep -q "until the daemon is restarted (systemctl restart entrasync-daemon)" d.log
runs() { grep -c "run started" d.log; }
N=$(runs)
check "later runs go on" wait_for 60 sh -c "test \$(grep -c 'run started' d.log) -ge $((N + 2))"
check "said once, not at every run" test "$(grep -c 'replaced on disk' d.log)" = 1
kill -TERM "$DPID"
wait "$DPID"
check "the daemon stops on SIGTERM" test $? = 0
gctl POST config '{"latency_ms": 0}' >/dev/null

# ---- --log-format json: every line of the daemon's output is a JSON event (the runs' text report is not
# written there: the tenants' outcomes are logged, the writes are in the audit trail)
gctl POST config '{"latency_ms": 0}' >/dev/null
"$W/bin/entrasync" --config c.lua --log-format json daemon --every 2s >j.log 2>&1 &
DPID=$!
EXTRA_PIDS="$EXTRA_PIDS $DPID"
check "json: two runs finished" wait_for 60 sh -c "test \$(grep -c 'run finished' j.log) -ge 2"
kill -TERM "$DPID"
wait "$DPID"
check "json: every line of the daemon's output is a JSON object" python3 -c '
import json, sys
for n, line in enumerate(open("j.log"), 1):
    if not isinstance(json.loads(line), dict): sys.exit("line %d" % n)'
check "json: the tenants' outcomes are in it" grep -q '"event":"sync","msg":"tenant [^"]*: ok' j.log
