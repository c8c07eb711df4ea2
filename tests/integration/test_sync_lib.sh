#!/bin/sh
# test_sync_lib — shared setup for the sync tests (test_sync*.sh,
# test_crash.sh, test_demo.sh): starts the fake Graph and the fake Syncro on
# 127.0.0.1 in $W, control-API helpers, a config writer and Syncro state
# queries. Sourced, never run: run directly (by tests/run.sh) it does nothing.
case "${0##*/}" in test_sync_lib.sh) exit 0 ;; esac

. tests/lib.sh
. tests/integration/fakes_lib.sh

# (CID, SECRET and the demo tenants' ids come from fakes_lib.sh)
SKEY=sync-test-key

# start_fakes DIR [FAKE_SYNCRO_ARGS...]: both fakes, demo data. Sets W,
# GURL, SURL (GRAPH_PID, SYNCRO_PID); they are stopped on exit.
start_fakes() {
  W=$1; shift
  fake_start graph "$W" tests/fakes/fake_graph.py --seed 1 --tenants demo
  fake_start syncro "$W" tests/fakes/fake_syncro.py --api-key "$SKEY" --data demo "$@"
  fake_url GURL graph
  fake_url SURL syncro
  GRAPH_PID=$fake_pid_graph SYNCRO_PID=$fake_pid_syncro
}

# sql QUERY: the answer of the test's database (state/es.db, from $W).
sql() { sqlite3 -cmd ".timeout 30000" state/es.db "$1"; }

# fakes_alive: both fakes still run (else a FAIL line).
fakes_alive() { fake_alive graph syncro; }

# ctl URL METHOD PATH [JSON]: a fake's control API (/_fake/PATH); prints the answer.
ctl() { fake_ctl "$@"; }
gctl() { ctl "$GURL" "$@"; }
sctl() { ctl "$SURL" "$@"; }

# reset_fakes: both fakes back to their demo data.
reset_fakes() {
  gctl POST reset '{}' >/dev/null
  sctl POST reset '{"data":"demo"}' >/dev/null
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds; fails
# after SECONDS*10 polls (each poll's own time comes on top, so a loaded
# machine gets more than SECONDS, never less).
wait_for() {
  _wait_limit=$(($1 * 10)); shift
  _wait_n=0
  while ! "$@" >/dev/null 2>&1; do
    _wait_n=$((_wait_n + 1))
    [ $_wait_n -gt $_wait_limit ] && return 1
    sleep 0.1
  done
  return 0
}

# hold_lock FILE SECONDS: holds an flock on FILE (like another entrasync
# run: its pid in the file) for SECONDS in the background; HOLD_PID is the
# holder (kill it to release the lock sooner). Returns once the lock is
# held, however long the holder waited for it (a run may hold it); a
# holder that died or waited 120 s: a FAIL line, and the test file exits 1.
hold_lock() {
  rm -f "$1.held"
  python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0); os.write(fd, b"%d\n" % os.getpid())
open(sys.argv[1] + ".held", "w").close()
time.sleep(float(sys.argv[2]))' "$1" "$2" &
  HOLD_PID=$!
  EXTRA_PIDS="${EXTRA_PIDS:-} $HOLD_PID"
  wait_for 120 _lock_held_or_gone "$1" "$HOLD_PID"
  if [ ! -e "$1.held" ] || ! kill -0 "$HOLD_PID" 2>/dev/null; then
    echo "FAIL - could not hold the lock $1 (holder pid $HOLD_PID)"; exit 1
  fi
  rm -f "$1.held"
}
_lock_held_or_gone() { test -e "$1.held" || ! kill -0 "$2" 2>/dev/null; }

# demo_tenants NAME...: the config's lines for these demo tenants, each
# with its customer in the fake Syncro's demo data (Contoso by id 101,
# Fabrikam by name; Northwind and Woodgrove both customer 103).
demo_tenants() {
  for _t in "$@"; do
    case $_t in
      Contoso) echo "  { id = \"$CONTOSO\", name = \"Contoso\", syncro_customer_id = 101 }," ;;
      Fabrikam) echo "  { id = \"$FABRIKAM\", name = \"Fabrikam\", syncro_customer = \"Fabrikam Inc\" }," ;;
      Northwind) echo "  { id = \"$NORTHWIND\", name = \"Northwind\", syncro_customer_id = 103 }," ;;
      Woodgrove) echo "  { id = \"$WOODGROVE\", name = \"Woodgrove\", syncro_customer_id = 103 }," ;;
      *) echo "demo_tenants: no demo tenant $_t" >&2; return 1 ;;
    esac
  done
}

# sync_config FILE POLICY RPM TENANT-LINES [EXTRA-TOP-LEVEL-LINES]: a config
# for both fakes (GURL, SURL, SKEY) at RPM Syncro requests a minute.
sync_config() {
  fake_config "$1" "$GURL" "base_url = \"$SURL/api/v1\", api_key = \"$SKEY\", requests_per_minute = $3" "$2" "$4" "${5:-}"
}

# mkconfig FILE POLICY [RPM] [EXTRA-TENANT-LINES]: the three demo tenants.
mkconfig() {
  sync_config "$1" "$2" "${3:-6000}" "$(demo_tenants Contoso Fabrikam Northwind)
  ${4:-}"
}

# mail_policy FILE: the plain policy most sync tests use: users with a mail,
# guests left out, contacts as the policy library maps them.
mail_policy() {
  cat >"$1" <<'PEOF'
local p = require "entrasync.policy"
return {
  include = function(u) return p.has_mail(u) and not p.is_guest(u) end,
  contact = p.contact,
}
PEOF
}

# Syncro's applied writes of a kind since the log was cleared (0 when none).
writes() { sctl GET requests | jq_py "d['summary']['writes'].get('$1', 0)"; }
all_writes() { sctl GET requests | jq_py "sum(d['summary']['writes'].values())"; }
clear_log() { sctl DELETE requests >/dev/null; }
# contacts_json: every contact as the fake holds it.
contacts_json() { sctl GET 'state?kind=contacts'; }
# dup_emails [IGNORE...]: e-mails held by more than one contact of a
# customer, beyond the demo data's own duplicate (lee.gu@contoso.com) and
# the e-mails given; "" when none.
dup_emails() {
  contacts_json | python3 -c '
import json, sys, collections
d = json.load(sys.stdin)
items = d.get("contacts", d) if isinstance(d, dict) else d
c = collections.Counter((x.get("customer_id"), (x.get("email") or "").lower()) for x in items if x.get("email"))
skip = {"lee.gu@contoso.com"} | {a.lower() for a in sys.argv[1:]}
print(" ".join("%s:%s" % k for k, n in sorted(c.items(), key=str) if n > 1 and k[1] not in skip))' "$@"
}
# contacts_with EMAIL: how many contacts hold this e-mail (any case).
contacts_with() {
  contacts_json | python3 -c '
import json, sys
d = json.load(sys.stdin); items = d.get("contacts", d) if isinstance(d, dict) else d
print(sum(1 for x in items if (x.get("email") or "").lower() == sys.argv[1].lower()))' "$1"
}
# contact_field EMAIL FIELD: the field of the (first) contact with this e-mail
# (title from properties).
contact_field() {
  contacts_json | python3 -c '
import json, sys
d = json.load(sys.stdin); items = d.get("contacts", d) if isinstance(d, dict) else d
for x in items:
    if (x.get("email") or "").lower() == sys.argv[1].lower():
        v = (x.get("properties") or {}).get("title") if sys.argv[2] == "title" else x.get(sys.argv[2])
        print(v if v is not None else ""); break' "$1" "$2"
}
# planned KIND TENANT_ID: "object_id email" of each action of KIND for the
# tenant in the JSON report in $T_OUT/out (from `sync --json`).
planned() {
  python3 - "$1" "$2" "$T_OUT/out" <<'EOF'
import json, sys
kind, tid, path = sys.argv[1], sys.argv[2], sys.argv[3]
d = json.load(open(path))
for t in d["tenants"]:
    if t["id"] != tid: continue
    for a in t["plan"]:
        if a["action"] == kind:
            user = a.get("user", "")
            mail = user[user.find("<") + 1:-1] if "<" in user else ""
            print(a["object_id"], mail)
EOF
}
# report EXPR: a Python expression over the JSON report in $T_OUT/out (as d;
# t(name) = that tenant's object).
report() {
  python3 -c "
import json, sys
d = json.load(open('$T_OUT/out'))
def t(name): return [x for x in d['tenants'] if x['name'] == name][0]
print(', '.join(map(str, ($1,))))"
}
