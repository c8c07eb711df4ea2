#!/bin/sh
# test_daemon_progress — the progress line of a long run (what an operator
# watches on a terminal, e.g. a "sync now" next to the daemon): forced on
# with ENTRASYNC_PROGRESS=1, a sync of three tenants draws the tenant count
# as each tenant ends (1/3, 2/3, 3/3, in order), whatever its outcome
# (Woodgrove fails); without a terminal and without the variable, nothing.
. tests/integration/test_status_lib.sh

ops_start "$T_OUT/daemon_progress"

ENTRASYNC_PROGRESS=1 es --config c.lua sync
check "sync with the progress line forced on: exit 1 (Woodgrove fails)" test $? = 1
tr '\r' '\n' <"$T_OUT/err" | grep -o "sync: [0-9]/3 tenants" | uniq >counts.txt
check "the tenant count moves as each tenant ends: 1/3, 2/3, 3/3" \
  test "$(grep -v '^sync: 0/3' counts.txt | tr '\n' ' ')" = "sync: 1/3 tenants sync: 2/3 tenants sync: 3/3 tenants "
check "the progress line counts requests and writes" grep -q "sync: 3/3 tenants, [1-9][0-9]* requests, [0-9]* writes" "$T_OUT/err"
check "the line is cleared before the report" grep -q "$(printf '\033')\[K" "$T_OUT/err"

es --config c.lua sync
check "not a terminal: no progress line" sh -c "! grep -q 'tenants, ' '$T_OUT/err'"
