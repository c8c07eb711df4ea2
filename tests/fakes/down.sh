#!/bin/sh
# tests/fakes/down.sh DIR — stops the fakes up.sh started (by the pids in
# DIR/*.pid) and removes the pid files. Safe to run twice.
set -u
dir=${1:?usage: down.sh DIR}
for pidfile in "$dir"/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done
