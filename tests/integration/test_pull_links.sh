#!/bin/sh
# test_pull_links — the tenant's bearer token goes only to graph.endpoint:
# a delta link stored under another endpoint (graph.endpoint changed in the
# config, or a link from elsewhere) is not followed there; the pull starts a
# full resync at the endpoint instead, saying why, and the mirror stays
# whole. A capture server on the other origin proves no request reached it.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/pull_links" --rate-limit 0
cd "$W" || exit 1
mail_policy policy.lua
mkconfig c.lua "$W/policy.lua"
expect_ok "a first pull" -- --config c.lua pull
USERS=$(sql "select count(*) from users where removed is null")

# a server on another port that records what reaches it
python3 - >capture.port 2>/dev/null <<'PYEOF' &
import http.server, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open("capture.log", "a") as f:
            f.write("%s %s\n" % (self.path, self.headers.get("Authorization", "")))
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(b'{"value": []}')
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PYEOF
EXTRA_PIDS="${EXTRA_PIDS:-} $!"
wait_for 30 test -s capture.port
CPORT=$(cat capture.port)
GPORT=${GURL##*:}
sql "update delta_state set delta_link = replace(delta_link, '127.0.0.1:$GPORT', '127.0.0.1:$CPORT')"
check "the stored delta links now name the other server" test "$(sql "select count(*) from delta_state where delta_link like '%:$CPORT/%'")" -ge 3

expect_ok "the pull after: ok" -- --config c.lua pull
check "no request reached the other server" test ! -s capture.log
check "a full resync instead, saying why" grep -q "its stored delta link is not below graph.endpoint (was the endpoint changed?): starting a full resync" "$T_OUT/err"
check "the mirror is whole" test "$(sql "select count(*) from users where removed is null")" = "$USERS"
check "the new delta links are the endpoint's" test "$(sql "select count(*) from delta_state where delta_link like '%:$CPORT/%'")" = 0
