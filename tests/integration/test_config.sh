#!/bin/sh
# test_config — `entrasync check` against the config fixtures
# (tests/fixtures/config): the summary of a good config, every bad fixture
# (each names the messages it must produce in "-- expect:" lines), config
# discovery, per-policy reports, no database created, no secret printed.
. tests/lib.sh

F=tests/fixtures/config
ENTRASYNC_GRAPH_SECRET=graph-secret-for-tests
SYNCRO_API_KEY=syncro-key-for-tests
export ENTRASYNC_GRAPH_SECRET SYNCRO_API_KEY
unset ENTRASYNC_CONFIG ES_TEST_SURELY_UNSET
: > "$T_OUT/all-output"
keep() { cat "$T_OUT/out" "$T_OUT/err" >> "$T_OUT/all-output"; }

# The real script layer (src/script/script.c) validates policy contents; a build
# with the stand-in only checks that policy files exist.
real_script_layer() { ! "$ENTRASYNC" lua /dev/null 2>&1 | grep -q '(stub)'; }
skip() { echo "skip - $1 (needs the real script layer)"; }

# --- a good config
expect_exit "check good config: summary" 0 "^config OK: $F/good.lua, 3 tenants, 2 policies$" -- check --config "$F/good.lua"
keep
check "check good config: one line per tenant" test "$(wc -l < "$T_OUT/out")" -eq 4
check "check good config: tenant line" grep -qx "  Contoso (contoso.onmicrosoft.com): Syncro customer #101, policy $F/policies/contoso.lua" "$T_OUT/out"
check "check good config: tenant mapped by name" grep -qx "  fabrikam.onmicrosoft.com: Syncro customer 'Fabrikam Inc', policy $F/policies/default.lua" "$T_OUT/out"
check "check good config: nothing on stderr" test ! -s "$T_OUT/err"
expect_exit "--config before the command" 0 "^config OK: $F/good_cert.lua, 2 tenants, 1 policy$" -- --config "$F/good_cert.lua" check
expect_exit "--config=FILE after the command" 0 "^config OK: $F/good.lua" -- check --log-level debug --config="$F/good.lua"

# --- every bad config: exit 2, each expected FILE:LINE message, no leaked value
check_fixture() {
  f=$1; name="check bad/$(basename "$f")"
  es check --config "$f"; rc=$?
  keep
  if [ $rc != 2 ]; then fail "$name" "exit $rc (expected 2)"; return 0; fi
  problems=""
  while IFS= read -r line; do
    case $line in
      "-- expect: :"*) want="$f${line#-- expect: }" ;;
      "-- expect: "*) want=${line#-- expect: } ;;
      "-- not: "*)
        grep -qF -- "${line#-- not: }" "$T_OUT/out" "$T_OUT/err" && problems="$problems leaks '${line#-- not: }';"
        continue ;;
      *) continue ;;
    esac
    grep -qF -- "$want" "$T_OUT/err" || problems="$problems missing '$want';"
  done < "$f"
  [ -s "$T_OUT/out" ] && problems="$problems output on stdout;"
  if [ -n "$problems" ]; then fail "$name" "$problems"; else pass "$name"; fi
}
for f in "$F"/bad/*.lua; do check_fixture "$f"; done

expect_exit "missing --config file" 2 "^cannot read config: $F/nope.lua: No such file or directory$" -- check --config "$F/nope.lua"

# --- discovery: --config, else $ENTRASYNC_CONFIG, else ./entrasync.lua
ENTRASYNC_CONFIG="$F/good.lua" es check; rc=$?
if [ $rc = 0 ] && grep -qx "config OK: $F/good.lua, 3 tenants, 2 policies" "$T_OUT/out"; then
  pass "\$ENTRASYNC_CONFIG is used"; else fail "\$ENTRASYNC_CONFIG is used" "exit $rc"; fi
ENTRASYNC_CONFIG="$F/bad/syntax_error.lua" es check --config "$F/good_cert.lua"; rc=$?
if [ $rc = 0 ] && grep -q "good_cert.lua" "$T_OUT/out"; then
  pass "--config wins over \$ENTRASYNC_CONFIG"; else fail "--config wins over \$ENTRASYNC_CONFIG" "exit $rc"; fi
ENTRASYNC_CONFIG="$F/bad/syntax_error.lua" es check; rc=$?
if [ $rc = 2 ] && grep -q "syntax_error.lua:5:" "$T_OUT/err"; then
  pass "\$ENTRASYNC_CONFIG errors name that file"; else fail "\$ENTRASYNC_CONFIG errors name that file" "exit $rc"; fi

dir="$T_OUT/cwd"
mkdir -p "$dir" && cp -R "$F/policies" "$F/certs" "$dir/" && cp "$F/good.lua" "$dir/entrasync.lua"
(cd "$dir" && es check); rc=$?
if [ $rc = 0 ] && grep -qx "config OK: entrasync.lua, 3 tenants, 2 policies" "$T_OUT/out" &&
   grep -q ", policy policies/contoso.lua$" "$T_OUT/out"; then
  pass "./entrasync.lua is found; paths relative to it"; else fail "./entrasync.lua is found; paths relative to it" "exit $rc"; fi
check "check does not create the database" test ! -e "$dir/state"
mkdir -p "$T_OUT/empty"
(cd "$T_OUT/empty" && es check); rc=$?
if [ $rc = 2 ] && grep -q "no config file at 'entrasync.lua' (give --config FILE or set ENTRASYNC_CONFIG)" "$T_OUT/err"; then
  pass "no config anywhere: says where it looked"; else fail "no config anywhere: says where it looked" "exit $rc"; fi

# --- logging options reach the loader: the requests_per_minute warning
cat > "$dir/fast.lua" <<'LUA'
graph = { client_id = "4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59", client_secret = env("ENTRASYNC_GRAPH_SECRET") }
syncro = { subdomain = "acme", api_key = env("SYNCRO_API_KEY"), requests_per_minute = 600 }
policy = "policies/default.lua"
tenants = { { id = "a.example.com", syncro_customer_id = 1 } }
LUA
expect_exit "rpm above 180: allowed with a warning" 0 "fast.lua:2: syncro.requests_per_minute 600 is above Syncro's limit" \
  -- check --config "$dir/fast.lua"
expect_exit "--log-format json: the warning is a JSON line" 0 '^\{"ts":"[^"]+","level":"warn","event":"config","msg":"' \
  -- --log-format json check --config "$dir/fast.lua"
es check --config "$dir/fast.lua" --log-level error
check "--log-level error hides the warning" test ! -s "$T_OUT/err"

# --- policies: every problem reported, one per policy
es check --config "$F/policy_problems.lua"; rc=$?
keep
if [ $rc = 2 ] && grep -qx "$F/policy_problems.lua:7: policy file '$F/policies/missing.lua' cannot be read (No such file or directory)" "$T_OUT/err"; then
  pass "policy problems: a missing policy file, at the config line naming it"
else fail "policy problems: a missing policy file, at the config line naming it" "exit $rc"; fi
if real_script_layer; then
  if grep -q "^$F/policies/bad_syntax.lua:4: " "$T_OUT/err"; then pass "policy problems: syntax error with file:line"
  else fail "policy problems: syntax error with file:line"; fi
  if grep -Eq "^$F/policies/bad_key.lua:4: unknown key 'on_leve'.*\(did you mean 'on_leave'\?\)" "$T_OUT/err"; then
    pass "policy problems: unknown key with file:line and suggestion"
  else fail "policy problems: unknown key with file:line and suggestion"; fi
  if [ "$(grep -c "on_leve" "$T_OUT/err")" = 1 ]; then pass "policy problems: a policy used twice is reported once"
  else fail "policy problems: a policy used twice is reported once"; fi
  if grep -qx "entrasync check: 3 of 4 policies are not valid" "$T_OUT/err"; then pass "policy problems: all reported, then a count"
  else fail "policy problems: all reported, then a count"; fi
else
  skip "policy problems: syntax error with file:line"
  skip "policy problems: unknown key with file:line and suggestion"
  skip "policy problems: a policy used twice is reported once"
  skip "policy problems: all reported, then a count"
fi

# --- the config file's own limits, the defaults (100 million instructions,
# 256 MiB of Lua memory; the unit tests run the fixtures under smaller ones).
# Before them an endless loop in the config hung every command that read it,
# and a runaway table took the machine's memory until the OOM killer came.
printf 'graph = { client_id = "4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59" }\nlocal n = 0\nwhile true do n = n + 1 end\n' >"$T_OUT/loop.lua"
printf 'graph = { client_id = "4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59" }\nlocal t, i = {}, 0\nwhile true do i = i + 1; t[i] = { i } end\n' >"$T_OUT/runaway.lua"
if [ "${VALGRIND:-0}" = 1 ]; then
  skip "config limits: an endless loop ends, naming its line (100 million instructions: too slow under valgrind)"
  skip "config limits: a runaway table ends at 256 MiB, naming its line (too slow under valgrind)"
else
  expect_exit "config limits: an endless loop ends, naming its line" 2 \
    "^$T_OUT/loop.lua:3: the config ran more than 100 million Lua instructions \(an endless loop\?\)$" \
    -- check --config "$T_OUT/loop.lua"
  expect_exit "config limits: a runaway table ends at 256 MiB, naming its line" 2 \
    "^$T_OUT/runaway.lua:3: the config needs more than 256 MiB of Lua memory" -- check --config "$T_OUT/runaway.lua"
fi

# --- a config saved as UTF-16 (Notepad's "Unicode"): said so, not "unexpected symbol near '<\255>'"
python3 -c "
d = open('$F/good.lua', encoding='utf-8').read()
open('$T_OUT/utf16.lua', 'wb').write(b'\\xff\\xfe' + d.encode('utf-16-le'))"
expect_exit "a UTF-16 config: said so" 2 "^$T_OUT/utf16.lua is UTF-16 text \\(Windows Notepad's \"Unicode\"\\): save it as UTF-8$" \
  -- check --config "$T_OUT/utf16.lua"

# --- the Graph certificate, read by check as a pull would: a .pfx is named as
# such with the commands that make PEM of it; one that expires within 30 days
# passes with a warning and its date
certcfg() { # FILE CERT KEY: good_cert.lua with graph.certificate/private_key replaced
  sed -e "s|certificate = \"certs/cert.pem\"|certificate = \"$2\"|" -e "s|private_key = \"certs/key.pem\"|private_key = \"$3\"|" \
    "$F/good_cert.lua" >"$1"
  cp -R "$F/policies" "$F/certs" "$(dirname "$1")/" 2>/dev/null
}
mkdir -p "$T_OUT/cert"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T_OUT/cert/soon.key" -out "$T_OUT/cert/soon.pem" -days 10 \
  -subj /CN=soon >/dev/null 2>&1
openssl pkcs12 -export -in "$T_OUT/cert/soon.pem" -inkey "$T_OUT/cert/soon.key" -out "$T_OUT/cert/app.pfx" \
  -passout pass: >/dev/null 2>&1
certcfg "$T_OUT/cert/pfx.lua" app.pfx app.pfx
expect_exit "check: a .pfx certificate is named, with the openssl commands" 2 \
  "graph.certificate .*app.pfx is a binary file \(a PKCS#12 .pfx, or a DER .cer\), not PEM: .openssl pkcs12 -in FILE" \
  -- check --config "$T_OUT/cert/pfx.lua"
certcfg "$T_OUT/cert/soon.lua" soon.pem soon.key
expect_exit "check: a certificate expiring in 10 days passes, with a warning" 0 \
  "^warning: graph.certificate .*soon.pem expires on [0-9]{4}-[0-9]{2}-[0-9]{2} \(in (9|10) days\)" \
  -- check --config "$T_OUT/cert/soon.lua"
chmod 644 "$T_OUT/cert/soon.key"
expect_exit "check: a private key others can read: a warning with the fix" 0 \
  "graph.private_key .*soon.key can be read by other users \(mode 0644\): chmod 600 it" -- check --config "$T_OUT/cert/soon.lua"
chmod 600 "$T_OUT/cert/soon.key"
expect_ok "check: a private key of mode 0600" -- check --config "$T_OUT/cert/soon.lua"
check "mode 0600: no warning about the key" sh -c "! grep -q 'can be read by other users' '$T_OUT/err'"
mkdir -p "$T_OUT/cert/state"
expect_ok "metrics with a certificate" -- metrics --config "$T_OUT/cert/soon.lua"
check "metrics: the certificate's expiry as a gauge" \
  grep -Eq "^entrasync_graph_certificate_expiry_timestamp_seconds [0-9]{10}$" "$T_OUT/out"
expect_ok "status with a certificate" -- status --config "$T_OUT/cert/soon.lua"
check "status: the certificate's expiry, with what to do" \
  grep -Eq "^Graph sign-in: certificate .*/soon.pem, expires [0-9-]{10} \(in (9|10) days\): upload its successor" "$T_OUT/out"
expect_ok "status --json with a certificate" -- status --json --config "$T_OUT/cert/soon.lua"
check "status --json: graph_credential" python3 -c "
import json; c = json.load(open('$T_OUT/out'))['graph_credential']
assert c['kind'] == 'certificate' and c['certificate'].endswith('/soon.pem') and c['expires_at'].endswith('Z') and c['error'] is None, c"
expect_ok "status with a .pfx certificate" -- status --config "$T_OUT/cert/pfx.lua"
check "status: a certificate that cannot be used is said so" \
  grep -q "^Graph sign-in: certificate, NOT USABLE: graph.certificate .*/app.pfx is a binary file" "$T_OUT/out"
expect_ok "check: the fixture's certificate (valid to 2126) passes without a warning" -- check --config "$F/good_cert.lua"
check "check: no warning for a certificate far from expiry" sh -c "! grep -q warning '$T_OUT/err'"

# --- two tenants of one name: allowed, with a warning (names tell tenants apart in --tenant, reports and alerts)
sed -e 's/name = "Northwind"/name = "contoso"/' "$F/good.lua" >"$T_OUT/dupname.lua"
cp -R "$F/policies" "$F/certs" "$T_OUT/" 2>/dev/null
expect_exit "two tenants of one name: a warning naming both lines" 0 \
  "dupname.lua:2[0-9]: tenants\[3\]\.name 'contoso' is also tenants\[1\]'s \(line 19\)" -- check --config "$T_OUT/dupname.lua"

# --- no secret value in anything printed above
if grep -qe "$ENTRASYNC_GRAPH_SECRET" -e "$SYNCRO_API_KEY" "$T_OUT/all-output"; then
  fail "no secret in any output" "$(grep -e "$ENTRASYNC_GRAPH_SECRET" -e "$SYNCRO_API_KEY" "$T_OUT/all-output" | head -3)"
else pass "no secret in any output"; fi
