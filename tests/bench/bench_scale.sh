#!/bin/sh
# bench_scale.sh — does the CPU per tenant stay flat as the tenants grow?
# An MSP's config can list thousands of tenants, each with a policy of its
# own. For each size in SCALE_TENANTS (default "500 2000"), against the
# fake Graph (each tenant 2 users and the group "All Staff", no added
# latency), with one policy file per tenant: a first pull, an incremental
# pull, then `status`, `tenants` and `check`; each line gives entrasync's
# CPU time (user+sys, GNU time) and that per tenant. A step that is linear
# in the tenants has the same CPU per tenant at every size; one that is
# quadratic has it grow with them (the last line gives the ratio).
# Usage: ENTRASYNC=./entrasync sh tests/bench/bench_scale.sh
set -u
cd "$(dirname "$0")/../.." || exit 2
ENTRASYNC=${ENTRASYNC:-$(pwd)/entrasync}
case $ENTRASYNC in /*) ;; *) ENTRASYNC=$(pwd)/$ENTRASYNC ;; esac
[ -x /usr/bin/time ] || { echo "bench_scale: skipped (no /usr/bin/time)"; exit 0; }
D=$(mktemp -d "${TMPDIR:-/tmp}/entrasync-bench-scale.XXXXXX")
. tests/integration/fakes_lib.sh
trap 'fakes_stop; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$D"' EXIT

# cpu LABEL N ARGS...: runs entrasync in $D/$N, prints its CPU and that per tenant
cpu() {
  label=$1 n=$2
  shift 2
  (cd "$D/$n" && /usr/bin/time -o "$D/$n/time" -f "%U %S %e" "$ENTRASYNC" --config es.lua --log-level error "$@" \
    >"$D/$n/out" 2>"$D/$n/err")
  rc=$?
  # shellcheck disable=SC2046
  set -- $(tail -n 1 "$D/$n/time")
  python3 -c 'import sys
label, n, u, s, e, rc = sys.argv[1:7]
c = float(u) + float(s)
print("  %-18s exit %s, %.2f s CPU (user+sys), %.3f ms per tenant, %.2f s wall" % (label, rc, c, c * 1000 / int(n), float(e)))' \
    "$label" "$n" "$1" "$2" "$3" "$rc" | tee -a "$D/lines"
}

: >"$D/lines"
for n in ${SCALE_TENANTS:-500 2000}; do
  mkdir -p "$D/$n/pol"
  fake_start graph "$D/$n" "${FAKE_GRAPH:-tests/fakes/fake_graph.py}" --seed 5 --tenants "${n}x2" --eager
  fake_url URL graph 120
  # each tenant its own policy file (the same text: what matters is that
  # there are n of them to load and tell apart)
  fake_graph_config "$URL" state/scale.db | python3 -c '
import re, sys
i = 0
for line in sys.stdin:
    if "syncro_customer_id" in line:
        line = line.replace(" },", ", policy = \"pol/p%d.lua\" }," % i); i += 1
    sys.stdout.write(line)' >"$D/$n/es.lua"
  python3 -c 'import sys
for i in range(int(sys.argv[2])):
    open("%s/p%d.lua" % (sys.argv[1], i), "w").write("return { groups = { \"All Staff\" }, include = function(u) return true end }\n")' \
    "$D/$n/pol" "$n"
  printf 'return { groups = { "All Staff" }, include = function(u) return true end }\n' >"$D/$n/policy.lua"
  echo "bench_scale: $n tenants, each with its own policy, 2 users each ($(nproc) cores)"
  cpu "first pull" "$n" pull
  cpu "incremental pull" "$n" pull
  cpu "status" "$n" status
  cpu "tenants" "$n" tenants
  cpu "check" "$n" check
  fakes_stop
done
python3 - "$D/lines" <<'EOF'
import re, sys
rows = [l for l in open(sys.argv[1]) if l.strip()]
per = {}
for l in rows:
    m = re.match(r"\s+(.+?)\s+exit \d+, [\d.]+ s CPU \(user\+sys\), ([\d.]+) ms per tenant", l)
    if m: per.setdefault(m.group(1), []).append(float(m.group(2)))
print("CPU per tenant, the largest size against the smallest: " + ", ".join(
    "%s %.2fx" % (k, v[-1] / v[0]) if v[0] > 0 else "%s -" % k for k, v in per.items() if len(v) > 1))
EOF
exit 0
