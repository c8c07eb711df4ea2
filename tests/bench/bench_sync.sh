#!/bin/sh
# bench_sync.sh — the sync benchmark of issue 4, against the fakes: TENANTS
# generated Graph tenants of USERS users each (default 100 x 1000), one
# Syncro customer each, the fake Syncro's window and entrasync's
# requests_per_minute both at RPM (default 6000). First sync, then a second
# one after CHANGE_PCT % of the users changed (default 1), then sync --verify
# after one linked contact per tenant was deleted in Syncro. Reports, for each
# run: wall time, Syncro requests / the minimum needed (creates + updates +
# contact pages; customer look-ups are listed apart: one per tenant the
# first time, none after), 429s. Measured figures only.
#   sh tests/bench/bench_sync.sh           (ENTRASYNC=./entrasync by default)
# At 6,000 a minute, 100,000 creates take about 17 minutes (the pace).
set -u
cd "$(dirname "$0")/../.." || exit 2
ES=${ENTRASYNC:-$PWD/entrasync}
TENANTS=${TENANTS:-100}
USERS=${USERS:-1000}
RPM=${RPM:-6000}
CHANGE_PCT=${CHANGE_PCT:-1}
W=$(mktemp -d "${TMPDIR:-/tmp}/entrasync-bench-sync.XXXXXX")
# the fakes (started side by side, waited for, their control API) as in
# the integration tests
. tests/integration/fakes_lib.sh
trap 'fakes_stop; rm -rf "$W"' EXIT
fake_start graph "$W" tests/fakes/fake_graph.py --seed 1 --tenants "${TENANTS}x${USERS}" --eager
fake_start syncro "$W" tests/fakes/fake_syncro.py --api-key bench-key --data none \
  --generate "$TENANTS,0" --rate-limit "$RPM" --window 60
fake_url GURL graph 120
fake_url SURL syncro 120

ctl() { fake_ctl "$@"; }  # ctl URL METHOD PATH [JSON]

# the config: generated tenant k -> generated customer k (in id order)
ctl "$GURL" GET tenants > "$W/tenants.json"
ctl "$SURL" GET 'state?kind=customers' > "$W/customers.json"
python3 - "$W" "$GURL" "$SURL" "$RPM" "$PWD/policies/default.lua" <<'EOF'
import json, sys
w, gurl, surl, rpm, policy = sys.argv[1:6]
t = json.load(open(w + "/tenants.json"))
tenants = t.get("tenants", t) if isinstance(t, dict) else t
tenants = sorted([x for x in tenants if str(x.get("key", "")).startswith("t")], key=lambda x: x["key"])
c = json.load(open(w + "/customers.json"))
custs = sorted(x["id"] for x in (c.get("customers", c) if isinstance(c, dict) else c))
lines = ['  { id = "%s", name = "%s", syncro_customer_id = %d },' % (x["id"], x["key"], cid)
         for x, cid in zip(tenants, custs)]
open(w + "/c.lua", "w").write(
    'database = "%s/es.db"\n'
    'graph = { client_id = "4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59", client_secret = "Xq7Q~entrasync.fake-demo-secret_0001",\n'
    '          authority = "%s", endpoint = "%s" }\n'
    'syncro = { base_url = "%s/api/v1", api_key = "bench-key", requests_per_minute = %s }\n'
    'policy = "%s"\ntenants = {\n%s\n}\n' % (w, gurl, gurl, surl, rpm, policy, "\n".join(lines)))
print(len(lines), "tenants configured")
EOF

# run NAME [SYNC-OPTIONS...]: one sync, then its figures from the fake's request log
run() {
  name=$1; shift
  ctl "$SURL" DELETE requests >/dev/null
  t0=$(date +%s.%N)
  "$ES" --config "$W/c.lua" --log-level error sync --json "$@" >"$W/$name.json" 2>"$W/$name.err"
  rc=$?
  t1=$(date +%s.%N)
  ctl "$SURL" GET 'requests?limit=1' > "$W/$name.log.json"
  lookups=$(ctl "$SURL" GET 'requests?path=/customers&limit=1000000' | python3 -c "import json,sys; print(len(json.load(sys.stdin)['requests']))")
  pages=$(ctl "$SURL" GET 'requests?path=/contacts$&method=GET&limit=1000000' | python3 -c "import json,sys; print(len(json.load(sys.stdin)['requests']))")
  byid=$(ctl "$SURL" GET 'requests?path=/contacts/[0-9]%2B$&method=GET&limit=1000000' | python3 -c "import json,sys; print(len(json.load(sys.stdin)['requests']))")
  python3 - "$name" "$W/$name.json" "$W/$name.log.json" "$t0" "$t1" "$rc" "$lookups" "$pages" "$byid" <<'EOF'
import json, sys
name, rep, log = sys.argv[1], sys.argv[2], sys.argv[3]
t0, t1, rc, lookups, pages = float(sys.argv[4]), float(sys.argv[5]), sys.argv[6], int(sys.argv[7]), int(sys.argv[8])
byid = int(sys.argv[9])
r = json.load(open(rep)); s = json.load(open(log))["summary"]
ts = r["tenants"]
created = sum(t["created"] for t in ts); updated = sum(t["updated"] + t["adopted"] for t in ts)
ok = sum(1 for t in ts if t["status"] == "ok")
writes = sum(s["writes"].values())
gone = sum(t.get("verified", {}).get("gone", 0) for t in ts)
checked = sum(t.get("verified", {}).get("present", 0) for t in ts) + gone
minimum = created + updated + pages + byid     # writes + listing pages (+ verify: a look-up per unlisted contact)
print("%s: exit %s, %d/%d tenants ok, %.1f s wall; %d created, %d updated%s; Syncro requests %d = writes %d + "
      "contact pages %d%s + customer look-ups %d; requests / minimum (creates + updates + pages%s = %d) = %.4f; "
      "429s %d" % (name, rc, ok, len(ts), t1 - t0, created, updated,
                   ", %d links verified, %d gone" % (checked, gone) if checked else "", s["total"], writes, pages,
                   " + contacts asked for by id %d" % byid if byid else "", lookups, " + by id" if byid else "",
                   minimum, s["total"] / max(minimum, 1), s["status_429"]))
EOF
}

echo "bench_sync: $TENANTS tenants x $USERS users, requests_per_minute = window = $RPM"
run first
# CHANGE_PCT % of each tenant's linked users get a new job title
python3 - "$GURL" "$W/es.db" "$USERS" "$CHANGE_PCT" <<'EOF'
import json, sqlite3, sys, urllib.request
gurl, db, users, pct = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
con = sqlite3.connect(db)
per = max(1, int(users * pct / 100))
n = 0
for (tid,) in con.execute("select distinct tenant_id from links").fetchall():
    for (oid,) in con.execute("select object_id from links where tenant_id = ? order by object_id limit ?", (tid, per)).fetchall():
        req = urllib.request.Request(gurl + "/_fake/tenants/%s/users/%s" % (tid, oid), method="PATCH",
                                     data=json.dumps({"jobTitle": "Changed Title"}).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read(); n += 1
print("changed", n, "users")
EOF
run second
# sync --verify after one linked contact per tenant was deleted in Syncro:
# every customer listed, the deleted ones asked for by id and made again
python3 - "$SURL" "$W/es.db" <<'EOF'
import sqlite3, sys, urllib.request
surl, db = sys.argv[1], sys.argv[2]
con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
n = 0
for (cid,) in con.execute("select min(contact_id) from links group by tenant_id").fetchall():
    req = urllib.request.Request(surl + "/api/v1/contacts/%d" % cid, method="DELETE",
                                 headers={"Authorization": "Bearer bench-key"})
    urllib.request.urlopen(req).read(); n += 1
print("deleted", n, "linked contacts in Syncro")
EOF
run verify --verify
