#!/bin/sh
# test_pull_loop_failure — the pull's event loop itself fails (epoll_wait
# refused, through the LD_PRELOAD shim shim_epoll_fail.c) while requests
# are in flight, in one process and with two workers, against the fake
# Graph with added latency: the pull ends with a clear message and exit 1
# (no crash: under `make check` ASan watches the callbacks of the cancelled
# requests), every tenant is recorded as failed in the run, the store is
# left consistent, and the next pull converges (the same users as Graph,
# none twice).
. tests/integration/test_sync_lib.sh

SHIM=$T_OUT/shim_epoll_fail.so
if ! ${CC:-cc} -shared -fPIC -O1 -o "$SHIM" tests/integration/shim_epoll_fail.c -ldl 2>"$T_OUT/cc.err"; then
  echo "skip - no C compiler for the epoll shim: $(head -1 "$T_OUT/cc.err")"
  exit 0
fi

fake_start graph "$T_OUT/loopfail" tests/fakes/fake_graph.py --seed 1 --tenants demo --latency-ms 40
fake_url GURL graph
W=$T_OUT/loopfail
cd "$W" || exit 1
cat >pol.lua <<'PEOF'
return { include = function(u) return true end }
PEOF
fake_config c.lua "$GURL" "base_url = \"http://127.0.0.1:9/api/v1\", api_key = \"k\"" pol.lua \
  "$(demo_tenants Contoso Fabrikam Northwind)"
mirrored() { sql "select count(*) from users where removed is null"; }
graph_users() {
  for t in contoso fabrikam northwind; do
    gctl GET "tenants/$t/users" | jq_py 'len([u for u in d["users"] if u["_state"] == "active"])'
  done | awk '{s += $1} END {print s}'
}

# failing_pull NAME WORKERS [AT | AFTER-SEND some]: a pull whose loop fails
# at its AT-th epoll_wait (3: while the token requests are in flight), or
# at the first after the request holding AFTER-SEND went out (that request
# in flight; a tenant whose own went later may have finished: "some" fail).
failing_pull() {
  case ${3:-3} in
    [0-9]*) LD_PRELOAD=$SHIM SHIM_EPOLL_FAIL_AT=${3:-3} es --config c.lua pull --workers "$2"; rc=$? ;;
    *) LD_PRELOAD=$SHIM SHIM_EPOLL_FAIL_AFTER_SEND=$3 es --config c.lua pull --workers "$2"; rc=$? ;;
  esac
  check "$1: exit 1 (the tenants failed), not a crash" test "$rc" = 1
  nfailed=$(grep -c ": FAILED: " "$T_OUT/out")
  check "$1: each failed tenant's line names the loop's failure" \
    test "$(grep -c "FAILED: tenant .*: the pull was interrupted: http: epoll_wait: Cannot allocate memory" "$T_OUT/out")" = "$nfailed"
  if [ "${4:-}" = some ]; then check "$1: a tenant failed" test "$nfailed" -ge 1
  else check "$1: every tenant failed" test "$nfailed" = 3; fi
  check "$1: no cancelled request is blamed on the network" sh -c "! grep -Eq 'no answer from|cancelled' '$T_OUT/err'"
  check "$1: no sanitizer report" sh -c "! grep -q 'Sanitizer' '$T_OUT/err'"
  check "$1: each tenant's outcome recorded in the run" \
    test "$(sql "select count(*) from run_tenants t join runs r on r.id = t.run_id where r.id = (select max(id) from runs)
      and t.status = 'failed'")" = "$nfailed"
  check "$1: the run is recorded as failed or partial" \
    test "$(sql "select status from runs order by id desc limit 1")" = "$([ "$nfailed" = 3 ] && echo failed || echo partial)"
  check "$1: the store is consistent" test "$(sql "pragma integrity_check")" = ok
}

failing_pull "first pull, one process" 1
failing_pull "first pull, two workers" 2
expect_ok "the next pull succeeds" -- --config c.lua pull --workers 1
WANT=$(graph_users)
check "the next pull converges: the mirror has Graph's users" test "$(mirrored)" = "$WANT"
check "no user twice" test "$(sql "select count(*) from (select tenant_id, object_id from users group by 1, 2 having count(*) > 1)")" = 0
failing_pull "incremental pull, one process" 1
failing_pull "incremental pull, one process, a \$batch in flight" 1 'POST /v1.0/$batch' some
failing_pull "incremental pull, two workers, a \$batch in flight" 2 'POST /v1.0/$batch' some
expect_ok "and the pull after it" -- --config c.lua pull
check "still Graph's users" test "$(mirrored)" = "$WANT"
fake_alive graph
