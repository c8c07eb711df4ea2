#!/bin/sh
# tests/run.sh — the test runner behind `make test` and `make check`.
# Layers: C unit tests ($UNIT_TESTS), Lua policy tests run by the real binary
# (tests/lua/*.sh), integration tests of the binary against the fakes
# (tests/integration/*.sh). Starts the loopback fakes first (tests/fakes/up.sh)
# and stops them after. Ends with "N passed, N failed"; non-zero on failure.
set -u
cd "$(dirname "$0")/.." || exit 2
: "${ENTRASYNC:?}" "${UNIT_TESTS:?}"
export ENTRASYNC UNIT_TESTS
TESTS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/entrasync-tests.XXXXXX")
export TESTS_TMP
only=${TEST_ONLY:-}          # e.g. TEST_ONLY=unit|lua|integration

cleanup() {
  [ -f tests/fakes/down.sh ] && sh tests/fakes/down.sh "$TESTS_TMP" >/dev/null 2>&1
}
trap cleanup EXIT INT TERM

if [ -f tests/fakes/up.sh ]; then
  if ! sh tests/fakes/up.sh "$TESTS_TMP" >"$TESTS_TMP/fakes.log" 2>&1; then
    echo "could not start the test fakes:"; cat "$TESTS_TMP/fakes.log"
    echo "0 passed, 1 failed"; exit 1
  fi
  [ -f "$TESTS_TMP/env" ] && . "$TESTS_TMP/env"
fi

passed=0; failed=0; skipped=0
count() {  # count FILE: adds its ok/FAIL/skip lines to the totals
  p=$(grep -c '^ok - ' "$1"); f=$(grep -c '^FAIL - ' "$1"); s=$(grep -c '^skip - ' "$1")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

if [ -z "$only" ] || [ "$only" = unit ]; then
  echo "== C unit tests"
  if [ "${VALGRIND:-0}" = 1 ]; then
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$UNIT_TESTS" >"$TESTS_TMP/unit.log" 2>&1
  else
    "$UNIT_TESTS" >"$TESTS_TMP/unit.log" 2>&1
  fi
  rc=$?
  grep -E '^(FAIL - |    )' "$TESTS_TMP/unit.log" || true
  count "$TESTS_TMP/unit.log"
  if [ $rc != 0 ] && ! grep -q '^FAIL - ' "$TESTS_TMP/unit.log"; then
    echo "FAIL - unit-tests exited $rc (crash or sanitizer report above)"; failed=$((failed + 1))
  fi
  echo "   $(tail -n 1 "$TESTS_TMP/unit.log")"
fi

for layer in lua integration; do
  [ -n "$only" ] && [ "$only" != "$layer" ] && continue
  echo "== $layer tests"
  for t in tests/$layer/*.sh; do
    [ -f "$t" ] || continue
    case $t in *_lib.sh|*_env.sh) continue ;; esac   # sourced by the tests, not tests
    log="$TESTS_TMP/$(basename "$t").log"
    T_OUT=$(mktemp -d "$TESTS_TMP/out.XXXXXX") sh "$t" >"$log" 2>&1
    rc=$?
    grep -E '^(FAIL - |    )' "$log" || true
    count "$log"
    if [ $rc != 0 ] && ! grep -q '^FAIL - ' "$log"; then
      echo "FAIL - $t exited $rc"; tail -n 20 "$log" | sed 's/^/    /'; failed=$((failed + 1))
    fi
    echo "   $t: $(grep -c '^ok - ' "$log") ok, $(grep -c '^FAIL - ' "$log") failed"
  done
done

cleanup; trap - EXIT INT TERM
if [ "$failed" = 0 ]; then rm -rf "$TESTS_TMP"; else echo "(test files kept in $TESTS_TMP)"; fi
if [ "$skipped" != 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
[ "$failed" = 0 ]
