#!/bin/sh
# test_layers — the layering rules of docs/architecture.md, checked on the
# source: one folder per layer under src/, and what each layer may include.
# A rule written only in a document drifts; this one fails the build.
#   - only src/script/ includes lua.h (lauxlib.h, lualib.h), only src/store/
#     sqlite3.h, only src/http/ curl/curl.h;
#   - each layer includes only the layers below it (the table below); graph
#     and syncro never include each other; nothing but face includes face/;
#   - every C file of src/ lives in a layer's folder (src/tools/ holds the
#     build-time tools, which include nothing of the runtime).
# The checker is run on the tree, then on copies with one rule broken each,
# each of which it must report, naming the file and the rule.
. "$(dirname "$0")/../lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

# layer_allowed LAYER: the folders (and single headers, as folder/file.h) its
# files may include besides their own folder. The script layer binds the hook
# interfaces of three layers above it (their headers only: those layers call
# through them, the script layer implements them). The store returns the
# billing model's plain structs (billing/billing.h: pure C, no I/O).
layer_allowed() {
  case $1 in
    util)    echo "" ;;
    http)    echo "util" ;;
    store)   echo "util billing/billing.h" ;;
    graph)   echo "util http store" ;;
    syncro)  echo "util http" ;;
    script)  echo "util actions/actions.h billing/billing_hook.h report/report.h" ;;
    engine)  echo "util http store graph syncro script" ;;
    report)  echo "util http store graph syncro script" ;;
    billing) echo "util http store graph syncro script report" ;;
    actions) echo "util http store graph syncro script" ;;
    face)    echo "util http store graph syncro script engine report billing actions" ;;
    *)       echo "-" ;;
  esac
}

# check_layers SRC: prints one line per broken rule ("FILE: WHY"), nothing
# when every rule holds. One awk over every file (a shell loop per include
# line took half a minute).
check_layers() {
  src=$1
  rules=$(for l in util http store graph syncro script engine report billing actions face; do
    printf '%s=%s;' "$l" "$(layer_allowed "$l")"; done)
  find "$src" -type f \( -name '*.c' -o -name '*.h' \) | sort | sed "s|^$src/||" | (cd "$src" && xargs awk -v rules="$rules" '
    BEGIN {
      n = split(rules, r, ";")
      for (i = 1; i <= n; i++) if (r[i] != "") { split(r[i], kv, "="); allowed[kv[1]] = kv[2]; known[kv[1]] = 1 }
    }
    FNR == 1 {
      rel = FILENAME; layer = rel; sub(/\/.*/, "", layer); skip = 0
      if (layer == rel) { print "src/" rel ": not in a layer\047s folder"; skip = 1 }
      else if (layer != "tools" && !(layer in known)) { print "src/" rel ": " layer "/ is not a layer of docs/architecture.md"; skip = 1 }
    }
    skip { next }
    /^[ \t]*#[ \t]*include[ \t]*[<"]/ {
      line = $0; sub(/^[ \t]*#[ \t]*include[ \t]*/, "", line)
      kind = substr(line, 1, 1); name = substr(line, 2); sub(/[">].*/, "", name)
      if (kind == "<") {
        if (name ~ /^(lua|lauxlib|lualib)\.h$/ && layer != "script") print "src/" rel ": includes <" name ">: only src/script/ may"
        if (name == "sqlite3.h" && layer != "store") print "src/" rel ": includes <" name ">: only src/store/ may"
        if (name ~ /^curl\// && layer != "http") print "src/" rel ": includes <" name ">: only src/http/ may"
        next
      }
      if (layer == "tools") {
        if (name != "../util/skus_trim.h") print "src/" rel ": a build tool includes \"" name "\""
        next
      }
      if (name !~ /\//) { print "src/" rel ": includes \"" name "\": name it by its layer (\"layer/" name "\")"; next }
      dir = name; sub(/\/.*/, "", dir)
      if (dir == layer) next
      ok = 0; m = split(allowed[layer], a, " ")
      for (i = 1; i <= m; i++) if (a[i] == dir || a[i] == name) ok = 1
      if (!ok) print "src/" rel ": includes \"" name "\": " layer " may include " (allowed[layer] == "" ? "nothing but itself" : allowed[layer])
    }'
  )
}

out=$(check_layers "$ROOT/src")
if [ -z "$out" ]; then
  pass "layers: every rule holds in src/"
else
  fail "layers: every rule holds in src/" "$(printf '%s' "$out" | head -20)"
fi

# The checker must see each kind of break: a copy of src/ with one rule broken.
# broken_by NAME PATTERN COMMAND...: COMMAND breaks the copy ($T_OUT/src);
# the checker's report must match PATTERN.
broken_by() {
  name=$1; pat=$2; shift 2
  rm -rf "$T_OUT/src" && cp -R "$ROOT/src" "$T_OUT/src" || { fail "$name" "cannot copy src/"; return 0; }
  "$@" || { fail "$name" "cannot break the copy: $*"; return 0; }
  got=$(check_layers "$T_OUT/src")
  if printf '%s\n' "$got" | grep -Eq -- "$pat"; then pass "$name"; else fail "$name" "not reported: /$pat/ in: $got"; fi
}
prepend() { # FILE LINE: LINE put first in the copy's FILE (relative to src/)
  { printf '%s\n' "$2"; cat "$T_OUT/src/$1"; } >"$T_OUT/x" && mv "$T_OUT/x" "$T_OUT/src/$1"
}
add_file() { # FILE: a new C file in the copy
  mkdir -p "$(dirname "$T_OUT/src/$1")" && printf '/* x */\n' >"$T_OUT/src/$1"
}
broken() { # NAME FILE LINE PATTERN
  broken_by "$1" "$4" prepend "$2" "$3"
}
broken "layers: lua.h outside the script layer is reported" store/store.c '#include <lua.h>' \
  '^src/store/store.c: includes <lua.h>: only src/script/ may$'
broken "layers: sqlite3.h outside the store is reported" engine/engine_plan.c '#include <sqlite3.h>' \
  '^src/engine/engine_plan.c: includes <sqlite3.h>: only src/store/ may$'
broken "layers: curl outside the http layer is reported" face/cmd_demo.c '#include <curl/curl.h>' \
  '^src/face/cmd_demo.c: includes <curl/curl.h>: only src/http/ may$'
broken "layers: graph including syncro is reported" graph/graph.c '#include "syncro/syncro.h"' \
  '^src/graph/graph.c: includes "syncro/syncro.h": graph may include util http store$'
broken "layers: syncro including graph is reported" syncro/syncro.c '#include "graph/graph.h"' \
  '^src/syncro/syncro.c: includes "graph/graph.h": syncro may include util http$'
broken "layers: the store including the engine is reported" store/store_outbox.c '#include "engine/engine.h"' \
  '^src/store/store_outbox.c: includes "engine/engine.h"'
broken "layers: util including anything above is reported" util/util.h '#include "http/http.h"' \
  '^src/util/util.h: includes "http/http.h": util may include nothing but itself$'
broken "layers: the engine including face is reported" engine/engine_sync.c '#include "face/commands.h"' \
  '^src/engine/engine_sync.c: includes "face/commands.h"'
broken "layers: the script layer including more than the hooks it binds is reported" script/script.c \
  '#include "report/findings.h"' '^src/script/script.c: includes "report/findings.h"'
broken "layers: an include not named by its layer is reported" graph/graph_auth.c '#include "util.h"' \
  '^src/graph/graph_auth.c: includes "util.h": name it by its layer'
broken_by "layers: a C file outside the layer folders is reported" '^src/loose.c: not in a layer.s folder$' \
  add_file loose.c
broken_by "layers: a folder that is no layer is reported" '^src/misc/x.c: misc/ is not a layer' add_file misc/x.c
rm -rf "$T_OUT/src"
