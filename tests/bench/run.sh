#!/bin/sh
# tests/bench/run.sh — `make bench`: starts the loopback fakes, runs the C
# benchmarks pinned to one core, then stops the fakes.
set -u
cd "$(dirname "$0")/../.." || exit 2
: "${BENCH:?}"
TESTS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/entrasync-bench.XXXXXX"); export TESTS_TMP
trap 'sh tests/fakes/down.sh "$TESTS_TMP" >/dev/null 2>&1; rm -rf "$TESTS_TMP"' EXIT INT TERM
sh tests/fakes/up.sh "$TESTS_TMP" >"$TESTS_TMP/fakes.log" 2>&1 || { cat "$TESTS_TMP/fakes.log"; exit 1; }
[ -f "$TESTS_TMP/env" ] && . "$TESTS_TMP/env"
echo "entrasync benchmarks ($(date -u +%Y-%m-%d), $(nproc) cores, pinned to one with taskset)"
if command -v taskset >/dev/null 2>&1; then taskset -c 0 "$BENCH" "$@"; else "$BENCH" "$@"; fi
echo "bench_pull (100 tenants x 1,000 users against the fake Graph, 10 ms latency)"
ENTRASYNC=${ENTRASYNC:?} sh tests/bench/bench_pull.sh
echo "bench_sync (100 tenants x 1,000 users through both fakes, Syncro at 6,000 a minute)"
ENTRASYNC=${ENTRASYNC:?} sh tests/bench/bench_sync.sh
echo "bench_scale (500 and 2,000 tenants, each with its own policy: CPU per tenant as the tenants grow)"
ENTRASYNC=${ENTRASYNC:?} sh tests/bench/bench_scale.sh
