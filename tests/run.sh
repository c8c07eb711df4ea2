#!/bin/sh
# tests/run.sh [-j N] — the test runner behind `make test` and `make check`.
# Layers: C unit tests ($UNIT_TESTS), Lua policy tests run by the real binary
# (tests/lua/*.sh), integration tests of the binary against the fakes
# (tests/integration/*.sh). Starts the loopback fakes first (tests/fakes/up.sh)
# and stops them after. Runs up to N test files at once (-j N, else
# $TEST_JOBS, else twice the number of CPUs): each file is one job with its own log
# and its own T_OUT directory; the fakes a file needs it starts itself on
# port 0. Each file's result is printed as one block, in the fixed order
# below (not the order they finish in); a failing file's whole output is
# shown. Ends with "N passed, N failed"; non-zero on failure.
# TEST_ONLY=unit|lua|integration runs one layer; TEST_VERBOSE=1 prints every
# ok line too; TEST_TIMEOUT=S stops a file that runs longer than S seconds
# (default 1800; 0 = no limit).
set -u
cd "$(dirname "$0")/.." || exit 2
: "${ENTRASYNC:?}" "${UNIT_TESTS:?}"
export ENTRASYNC UNIT_TESTS
jobs=${TEST_JOBS:-}
while [ $# -gt 0 ]; do
  case $1 in
    -j) [ $# -ge 2 ] || { echo "tests/run.sh: -j wants a number" >&2; exit 2; }; jobs=$2; shift 2 ;;
    -j*) jobs=${1#-j}; shift ;;
    *) echo "usage: tests/run.sh [-j N]" >&2; exit 2 ;;
  esac
done
# Twice the CPUs by default: the files mostly wait (fakes' latencies,
# timers, Python starts), so 4 jobs on 2 CPUs took 104 s where 2 took 193 s.
[ -n "$jobs" ] || jobs=$(( $(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1) * 2 ))
case $jobs in ''|*[!0-9]*|0) echo "tests/run.sh: -j wants a positive number, not '$jobs'" >&2; exit 2 ;; esac
TESTS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/entrasync-tests.XXXXXX")
export TESTS_TMP
only=${TEST_ONLY:-}          # e.g. TEST_ONLY=unit|lua|integration
pids=                        # the jobs started (each its own process group)
# setsid: each job in a process group of its own, so that cleanup can stop
# it with all it started (a shell without a tty has no job control).
setsid=; command -v setsid >/dev/null 2>&1 && setsid=setsid

cleanup() {
  for p in $pids; do
    if [ -n "$setsid" ]; then kill -s TERM -- "-$p"; else kill "$p"; fi 2>/dev/null
  done
  [ -f tests/fakes/down.sh ] && sh tests/fakes/down.sh "$TESTS_TMP" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT TERM

if [ -f tests/fakes/up.sh ]; then
  if ! sh tests/fakes/up.sh "$TESTS_TMP" >"$TESTS_TMP/fakes.log" 2>&1; then
    echo "could not start the test fakes:"; cat "$TESTS_TMP/fakes.log"
    echo "0 passed, 1 failed"; exit 1
  fi
  [ -f "$TESTS_TMP/env" ] && . "$TESTS_TMP/env"
fi

# ---------------------------------------------------------------- the jobs
# Job I has job_name_I (the file, or "unit-tests"), job_head_I (the layer
# heading printed before it when it is the layer's first), its log
# $TESTS_TMP/job.I.log and, once ended, its exit code in $TESTS_TMP/job.I.rc.
n=0
add_job() {  # add_job NAME HEADING
  n=$((n + 1)); eval "job_name_$n=\$1; job_head_$n=\$2"
}
if [ -z "$only" ] || [ "$only" = unit ]; then add_job unit-tests "== C unit tests"; fi
for layer in lua integration; do
  [ -n "$only" ] && [ "$only" != "$layer" ] && continue
  head="== $layer tests"
  for t in tests/$layer/*.sh; do
    [ -f "$t" ] || continue
    case $t in *_lib.sh|*_env.sh) continue ;; esac   # sourced by the tests, not tests
    add_job "$t" "$head"; head=
  done
done

# Start order: the unit tests, then the largest files first (the longest
# usually), so that no long file starts last and runs alone at the end.
start_order=$(
  i=1
  while [ $i -le $n ]; do
    eval "name=\$job_name_$i"
    if [ "$name" = unit-tests ]; then size=999999999; else size=$(wc -c <"$name"); fi
    echo "$size $i"; i=$((i + 1))
  done | sort -k1,1nr -k2,2n | cut -d' ' -f2 | tr '\n' ' ')

start_job() {  # start_job I: runs job I in the background
  eval "name=\$job_name_$1"
  $setsid sh -c '
    i=$1 name=$2 limit=
    [ "${TEST_TIMEOUT:-1800}" != 0 ] && command -v timeout >/dev/null 2>&1 && limit="timeout --foreground ${TEST_TIMEOUT:-1800}"
    if [ "$name" = unit-tests ]; then
      if [ "${VALGRIND:-0}" = 1 ]; then
        $limit valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$UNIT_TESTS"
      else
        $limit "$UNIT_TESTS"
      fi
    else
      T_OUT=$(mktemp -d "$TESTS_TMP/out.XXXXXX") $limit sh "$name"
    fi >"$TESTS_TMP/job.$i.log" 2>&1 </dev/null
    rc=$?
    [ "$rc" = 124 ] && [ -n "$limit" ] && echo "FAIL - $name: stopped after ${TEST_TIMEOUT:-1800} s (TEST_TIMEOUT)" >>"$TESTS_TMP/job.$i.log"
    echo $rc >"$TESTS_TMP/job.$i.rc.tmp" && mv "$TESTS_TMP/job.$i.rc.tmp" "$TESTS_TMP/job.$i.rc"' sh "$1" "$name" &
  eval "job_pid_$1=$!"
  pids="$pids $!"
}

passed=0; failed=0; skipped=0
# report_job I: job I's block: its FAIL lines with their details, a line
# for a crash, its counts; and the whole output of a file that failed.
report_job() {
  eval "name=\$job_name_$1; head=\$job_head_$1"
  log=$TESTS_TMP/job.$1.log
  rc=$(cat "$TESTS_TMP/job.$1.rc")
  [ -n "$head" ] && echo "$head"
  p=$(grep -c '^ok - ' "$log"); f=$(grep -c '^FAIL - ' "$log"); s=$(grep -c '^skip - ' "$log")
  if [ "${TEST_VERBOSE:-0}" = 1 ]; then grep -E '^(ok|FAIL|skip) - |^    ' "$log"
  else grep -E '^(FAIL - |    )' "$log"; fi
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    echo "FAIL - $name exited $rc (crash or sanitizer report below)"; f=1
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [ "$name" = unit-tests ]; then echo "   $(tail -n 1 "$log")"
  else echo "   $name: $p ok, $f failed"; fi
  if [ "$f" != 0 ]; then
    echo "   --- output of $name (log: $log):"
    sed 's/^/   | /' "$log" | head -n 400
  fi
}

# The pool: keep up to $jobs running; print each finished job in order.
running=0; next=1
set -- $start_order
while [ $next -le $n ]; do
  while [ $running -lt "$jobs" ] && [ $# -gt 0 ]; do
    start_job "$1"; shift; running=$((running + 1))
  done
  # the jobs that ended: reaped (a slot freed), and whatever they left
  # running in their process group (a fake, a daemon) stopped
  i=1
  while [ $i -le $n ]; do
    eval "pid=\${job_pid_$i:-} reaped=\${job_reaped_$i:-}"
    if [ -n "$pid" ] && [ -z "$reaped" ] && [ -f "$TESTS_TMP/job.$i.rc" ]; then
      wait "$pid" 2>/dev/null
      [ -n "$setsid" ] && kill -s TERM -- "-$pid" 2>/dev/null
      eval "job_reaped_$i=1"; running=$((running - 1))
    fi
    i=$((i + 1))
  done
  while [ $next -le $n ] && eval "[ -n \"\${job_reaped_$next:-}\" ]"; do
    report_job $next; next=$((next + 1))
  done
  if [ $running -ge "$jobs" ] || [ $# = 0 ]; then sleep 0.1; fi
done
pids=

cleanup; trap - EXIT INT TERM
if [ "$failed" = 0 ]; then rm -rf "$TESTS_TMP"; else echo "(test files kept in $TESTS_TMP)"; fi
if [ "$skipped" != 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
[ "$failed" = 0 ]
