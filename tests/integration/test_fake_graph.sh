#!/bin/sh
# tests/integration/test_fake_graph.sh — runs the fake Graph's own self-test
# (tests/fakes/test_fake_graph.py, python3 -m unittest) and prints one
# "ok - NAME" / "FAIL - NAME" / "skip - NAME" line per unittest case for
# tests/run.sh to count, with the traceback of failures indented below.
# Does not need the entrasync binary or tests/fakes/up.sh: the self-test
# starts its own servers on 127.0.0.1 port 0.
cd "$(dirname "$0")/../fakes" || exit 2
dir=${T_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/fgself.XXXXXX")}
log="$dir/fake_graph_selftest.log"

if ! command -v python3 >/dev/null 2>&1; then
  echo "FAIL - fake_graph: python3 not found"; exit 0
fi
python3 -m unittest -v test_fake_graph >"$log" 2>&1
rc=$?

# Verbose lines look like "test_x (test_fake_graph.Class.test_x) ... ok" (3.11+) or
# "test_x (test_fake_graph.Class) ... ok"; failures are listed again as
# "FAIL: test_x (...)" / "ERROR: test_x (...)" followed by their traceback.
awk -v rc="$rc" '
  function label(name, id,   n, parts, cls) {
    n = split(id, parts, ".")
    cls = (parts[n] == name) ? parts[n - 1] : parts[n]
    return "fake_graph: " cls "." name
  }
  /^Ran [0-9]+ tests? / { ran = $2; cur = ""; next }
  /^(FAIL|ERROR): test[A-Za-z0-9_]* \(/ {
    name = $2; id = $3; gsub(/[()]/, "", id)
    cur = label(name, id); bad[cur] = 1; tb[cur] = ""; lines[cur] = 0; next
  }
  /^=+$/ { cur = ""; next }
  /^-+$/ { if (cur != "" && lines[cur] > 0) cur = ""; next }
  cur != "" { if (lines[cur]++ < 15) tb[cur] = tb[cur] "    " $0 "\n"; next }
  /^test[A-Za-z0-9_]* \([A-Za-z0-9_.]+\)/ {
    name = $1; id = $2; gsub(/[()]/, "", id); l = label(name, id)
    if (!(l in seen)) { seen[l] = 1; order[++count] = l }
    if ($0 ~ /\.\.\. skipped/) skipped[l] = 1
    next
  }
  END {
    for (i = 1; i <= count; i++) {
      l = order[i]
      if (l in bad) { printf "FAIL - %s\n%s", l, tb[l]; failed++ }
      else if (l in skipped) print "skip - " l
      else print "ok - " l
    }
    for (l in bad) if (!(l in seen)) { printf "FAIL - %s\n%s", l, tb[l]; failed++ }
    if (ran == "" || ran + 0 != count) {
      print "FAIL - fake_graph: self-test ran " (ran == "" ? "?" : ran) " tests, parsed " count
      failed++
    }
    if (rc != 0 && failed == 0) print "FAIL - fake_graph: python3 -m unittest exited " rc
  }
' "$log"
if [ "$rc" != 0 ]; then
  echo "    (full self-test log: $log)"
  tail -n 5 "$log" | sed 's/^/    /'
fi
exit 0
