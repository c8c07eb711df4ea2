#!/bin/sh
# test_user_env — shared set-up of test_user.sh and test_ticket.sh (sourced
# by them; run on its own it only defines functions and prints nothing):
# the fake Graph and the fake Syncro on 127.0.0.1 (stopped by a trap), an
# optional stand-in for Graph's directory roles, a config, a first pull, and
# small helpers (control APIs, SQL, links).
#
# The directory-roles stand-in: the fake Graph does not answer
# GET /users/{id}/transitiveMemberOf/microsoft.graph.directoryRole (the read
# that tells an administrator target from a missing permission after a
# 403), so with ROLES_PROXY=1 Graph requests go through a small proxy that
# answers that path from the fake's admin flag (POST
# /_fake/tenants/T/users/ID/admin) and forwards everything else unchanged.

CID=4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59
SECRET='Xq7Q~entrasync.fake-demo-secret_0001'
SYNCRO_KEY='fake-syncro-key-0123456789'
CONTOSO=6babcaad-604b-40ac-a9d7-9fd97c0b779f
FABRIKAM=2a6b1c4d-7e8f-4a9b-8c0d-1e2f3a4b5c6d

# wait_file FILE: until FILE is non-empty (10 s at most).
wait_file() {
  i=0
  while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  [ -s "$1" ]
}

# fakes_start DIR: starts the fakes (and the roles proxy when ROLES_PROXY=1);
# sets GRAPH_URL (authority and control), ENDPOINT_URL (Graph API), SYNCRO_URL.
fakes_start() {
  FAKES_DIR=$1
  mkdir -p "$FAKES_DIR"
  python3 tests/fakes/fake_graph.py --port 0 --port-file "$FAKES_DIR/graph.port" --seed 1 >"$FAKES_DIR/graph.log" 2>&1 &
  FAKE_PIDS=$!
  python3 tests/fakes/fake_syncro.py --port 0 --port-file "$FAKES_DIR/syncro.port" --api-key "$SYNCRO_KEY" \
    --data demo --rate-limit 0 >"$FAKES_DIR/syncro.log" 2>&1 &
  FAKE_PIDS="$FAKE_PIDS $!"
  trap 'kill $FAKE_PIDS 2>/dev/null' EXIT INT TERM
  wait_file "$FAKES_DIR/graph.port" && wait_file "$FAKES_DIR/syncro.port" || {
    echo "FAIL - the fakes did not start"; cat "$FAKES_DIR"/*.log; exit 1; }
  GRAPH_URL=http://127.0.0.1:$(cat "$FAKES_DIR/graph.port")
  SYNCRO_URL=http://127.0.0.1:$(cat "$FAKES_DIR/syncro.port")
  ENDPOINT_URL=$GRAPH_URL
  if [ "${ROLES_PROXY:-0}" = 1 ]; then
    roles_proxy >"$FAKES_DIR/proxy.py"
    python3 "$FAKES_DIR/proxy.py" "$GRAPH_URL" "$FAKES_DIR/proxy.port" >"$FAKES_DIR/proxy.log" 2>&1 &
    FAKE_PIDS="$FAKE_PIDS $!"
    wait_file "$FAKES_DIR/proxy.port" || { echo "FAIL - the roles proxy did not start"; exit 1; }
    ENDPOINT_URL=http://127.0.0.1:$(cat "$FAKES_DIR/proxy.port")
  fi
}

roles_proxy() {
  cat <<'EOF'
import json, os, re, sys, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
UP, PORT_FILE = sys.argv[1], sys.argv[2]
ROLES = re.compile(r"^/v1\.0/users/([^/?]+)/transitiveMemberOf/microsoft\.graph\.directoryRole")

def fake(path):
    return json.load(urllib.request.urlopen(UP + "/_fake/" + path))

class H(BaseHTTPRequestHandler):
    def reply(self, status, ctype, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def roles(self, uid):
        for t in fake("tenants")["tenants"]:
            try:
                u = fake("tenants/%s/users/%s" % (t["key"], uid))
            except urllib.error.HTTPError:
                continue
            value = [{"@odata.type": "#microsoft.graph.directoryRole", "displayName": "Global Administrator"}] \
                if u.get("_admin") else []
            return self.reply(200, "application/json", json.dumps({"value": value}).encode())
        self.reply(404, "application/json", b'{"error":{"code":"Request_ResourceNotFound","message":"no user"}}')

    def forward(self):
        m = ROLES.match(self.path)
        if m and self.command == "GET":
            return self.roles(m.group(1))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type", "accept")}
        req = urllib.request.Request(UP + self.path, data=body, method=self.command, headers=hdrs)
        try:
            r = urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            r = e
        data = r.read()
        keep = [(k, v) for k, v in r.headers.items() if k.lower() in ("retry-after", "request-id")]
        self.reply(r.status if hasattr(r, "status") else r.code, r.headers.get("Content-Type", "application/json"),
                   data, keep)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = forward

    def log_message(self, *a):
        pass

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
srv.serve_forever()
EOF
}

# call URL METHOD PATH [JSON]: a control API call; prints the JSON answer.
call() {
  python3 - "$1$3" "$2" "${4:-}" <<'EOF'
import sys, urllib.request
url, method, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                             headers={"Content-Type": "application/json"})
try:
    print(urllib.request.urlopen(req).read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode()); sys.exit(1)
EOF
}
gctl() { call "$GRAPH_URL/_fake/" "$1" "$2" "${3:-}"; }
sctl() { call "$SYNCRO_URL/_fake/" "$1" "$2" "${3:-}"; }
# jq_py EXPR: a Python expression over the JSON on stdin (as d).
jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
sql() { sqlite3 "$W/state/es.db" "$1"; }
# fake_user TENANT ID FIELD: a field of the fake Graph's user (Python repr).
fake_user() { gctl GET "tenants/$1/users/$2" | jq_py "d.get('$3')"; }
# graph_calls METHOD REGEX: Graph API requests since the last clear.
graph_calls() {
  gctl GET "requests?kind=graph&path=$2" | jq_py "len([r for r in d['requests'] if r['method'] == '$1'])"
}
# user_id TENANT UPN-PREFIX: the object id of the fake Graph user.
user_id() {
  gctl GET "tenants/$1/users" | jq_py "[u['id'] for u in d['users'] if u['userPrincipalName'].startswith('$2') and u['_state'] == 'active'][0]"
}
# link TENANT OBJECT-ID CONTACT CUSTOMER [EMAIL]: a link as a sync would write it.
link() {
  sql "INSERT OR REPLACE INTO links (tenant_id, object_id, contact_id, customer_id, fields, created_at, updated_at)
       VALUES ('$1', '$2', $3, $4, '{\"email\":\"${5:-}\"}', '2026-11-01T10:00:00Z', '2026-11-20T10:00:00Z')"
}

# setup_workdir DIR POLICY-TEXT: config + policy in DIR (cd there), first pull.
setup_workdir() {
  W=$1
  mkdir -p "$W"
  printf '%s\n' "$2" >"$W/policy.lua"
  cat >"$W/es.lua" <<EOF
database = "state/es.db"
graph = { client_id = "$CID", client_secret = "$SECRET", authority = "$GRAPH_URL", endpoint = "$ENDPOINT_URL" }
syncro = { base_url = "$SYNCRO_URL/api/v1", api_key = "$SYNCRO_KEY" }
policy = "policy.lua"
tenants = {
  { id = "$CONTOSO", name = "Contoso", syncro_customer_id = 101 },
  { id = "fabrikam.com", name = "Fabrikam", syncro_customer_id = 102 },
}
EOF
  cd "$W" || exit 1
  if ! "$ENTRASYNC" --config es.lua pull >pull.out 2>&1; then
    echo "FAIL - the first pull failed"; cat pull.out; exit 1
  fi
}
