# tests/lib.sh — helpers for the shell-driven test layers (Lua policy tests
# and integration tests). Each check prints "ok - NAME" or "FAIL - NAME";
# tests/run.sh counts those lines. Source it; $ENTRASYNC is the binary.

: "${ENTRASYNC:?ENTRASYNC must name the binary under test}"
T_OUT=${T_OUT:-$(mktemp -d "${TESTS_TMP:-/tmp}/t.XXXXXX")}
# the repository's root: the tests are started from it (they source tests/lib.sh by that path) and may cd away
TESTS_ROOT=${TESTS_ROOT:-$PWD}

# python3: the fakes and the tests' JSON helpers use the standard library
# only, so Python starts without the site module (-S): no site-packages to
# scan, which on some installs (pyenv) costs 5 times the rest of a start,
# and the tests start Python hundreds of times. A wrapper first on PATH (so
# `sh -c` strings and background jobs get it too; it execs, so $! is
# Python's pid). TESTS_PYTHON is the real one.
if [ -z "${TESTS_PYTHON:-}" ] && TESTS_PYTHON=$(command -v python3); then
  mkdir -p "$T_OUT/.bin"
  printf '#!/bin/sh\nexec "%s" -S "$@"\n' "$TESTS_PYTHON" >"$T_OUT/.bin/python3"
  chmod +x "$T_OUT/.bin/python3"
  PATH=$T_OUT/.bin:$PATH
  export TESTS_PYTHON PATH
fi

# Runs ENTRASYNC (or valgrind on it when VALGRIND=1) with the given args,
# output into $T_OUT/out and $T_OUT/err, and returns its exit code.
es() {
  if [ "${VALGRIND:-0}" = 1 ]; then
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$ENTRASYNC" "$@" >"$T_OUT/out" 2>"$T_OUT/err"
  else
    "$ENTRASYNC" "$@" >"$T_OUT/out" 2>"$T_OUT/err"
  fi
}

pass() { echo "ok - $1"; }
fail() {
  echo "FAIL - $1"
  [ -n "${2:-}" ] && echo "    $2"
  for f in out err; do
    [ -s "$T_OUT/$f" ] && { echo "    --- $f of the last entrasync run (es):"; sed -n '1,15p' "$T_OUT/$f" | sed 's/^/    /'; }
  done
  return 0
}

# expect_ok NAME -- ARGS...: the command exits 0.
expect_ok() {
  name=$1; shift; [ "$1" = "--" ] && shift
  if es "$@"; then pass "$name"; else fail "$name" "exit $? (expected 0): entrasync $*"; fi
}

# expect_exit NAME CODE PATTERN -- ARGS...: exits CODE and stdout+stderr
# match the extended regex PATTERN (empty = any).
expect_exit() {
  name=$1; code=$2; pat=$3; shift 3; [ "$1" = "--" ] && shift
  es "$@"; rc=$?
  if [ "$rc" != "$code" ]; then fail "$name" "exit $rc (expected $code): entrasync $*"; return 0; fi
  if [ -n "$pat" ] && ! cat "$T_OUT/out" "$T_OUT/err" | grep -Eq -- "$pat"; then
    fail "$name" "output does not match /$pat/"; return 0
  fi
  pass "$name"
}

# expect_fail NAME PATTERN -- ARGS...: exits non-zero, output matches PATTERN.
expect_fail() {
  name=$1; pat=$2; shift 2; [ "$1" = "--" ] && shift
  es "$@"; rc=$?
  if [ "$rc" = 0 ]; then fail "$name" "exit 0 (expected failure): entrasync $*"; return 0; fi
  if [ -n "$pat" ] && ! cat "$T_OUT/out" "$T_OUT/err" | grep -Eq -- "$pat"; then
    fail "$name" "output does not match /$pat/"; return 0
  fi
  pass "$name"
}

# check NAME CMD...: any shell command, ok when it exits 0.
check() {
  name=$1; shift
  if "$@"; then pass "$name"; else fail "$name" "command failed: $*"; fi
}
