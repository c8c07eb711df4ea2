#!/bin/sh
# test_sync_pacing — a first sync of the three demo tenants against a fake
# Syncro with a sliding-window limit of 60 requests per 6 s (600 a minute),
# entrasync configured at requests_per_minute = 600: zero 429s, the pace
# really held (the run lasts as long as the limit demands), and no request
# beyond the minimum (customer look-ups, contact lists, writes).
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/pacing" --rate-limit 60 --window 6
cd "$W" || exit 1
mkconfig c.lua "$OLDPWD/policies/default.lua" 600
t0=$(date +%s.%N)
expect_ok "paced first sync exits 0" -- --config c.lua sync --json
secs=$(python3 -c "print($(date +%s.%N) - $t0)")
sctl GET requests > log.json
n429=$(jq_py "d['summary']['status_429']" < log.json)
total=$(jq_py "d['summary']['total']" < log.json)
writes=$(jq_py "sum(d['summary']['writes'].values())" < log.json)
lists=$(jq_py "len([r for r in d['requests'] if r['method'] == 'GET' and r['path'].endswith('/contacts')])" < log.json)
gets=$(jq_py "len([r for r in d['requests'] if r['method'] == 'GET' and '/customers' in r['path']])" < log.json)
echo "    $total requests ($writes writes, $lists contact pages, $gets customer look-ups) in $secs s, $n429 429s"
check "pacing: zero 429s" test "$n429" = 0
check "pacing: paced at the limit, not faster (>= (requests - 2) / 10 s)" python3 -c "import sys; sys.exit(0 if $secs >= ($total - 2) / 10.0 else 1)"
check "pacing: requests = the minimum (writes + contact pages + customer look-ups)" test "$total" = $((writes + lists + gets))
check "pacing: every planned user written" test "$(report 'sum(t["created"] for t in d["tenants"])')" = "$writes"
