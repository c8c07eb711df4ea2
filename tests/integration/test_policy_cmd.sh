#!/bin/sh
# test_policy_cmd — `entrasync policy test POLICY --users FILE [--json]`
# offline on the fixtures in tests/fixtures/users/: each decision with its
# reason, the contact fields, on_leave for leavers (keep / delete / mark),
# groups from memberOf, licences in notes, customer_id per domain, both file
# shapes, JSON output, errors; and every policy in policies/ and
# policies/examples/ loads and evaluates every fixture user without error.
. tests/lib.sh

ROOT=$(pwd)
U=$ROOT/tests/fixtures/users/mixed.json
A=$ROOT/tests/fixtures/users/array.json
EX=$ROOT/policies/examples
cd "$T_OUT" || exit 1   # no config anywhere near: the command must not need one
# json EXPR FILE: a Python expression over the JSON output in FILE (as d; u(name) = that user's entry)
json() {
  python3 -c "
import json, sys
d = json.load(open('$T_OUT/out'))
def u(s): return [x for x in d['users'] if s in x['user']][0]
v = ($1)
print(repr(v) if isinstance(v, tuple) else v)"
}

expect_ok "default policy on the mixed fixture" -- policy test "$ROOT/policies/default.lua" --users "$U"
check "member included with its contact fields" grep -A3 "^+ Adele Vance" "$T_OUT/out" | grep -q "title       Retail Manager"
check "non-ASCII names kept" grep -q "^+ 李 明 <ming.li@fabrikam.com>: included" "$T_OUT/out"
check "guest excluded with reason" grep -q "^- Pat Partner (Litware) .*: not included: guest account" "$T_OUT/out"
check "disabled: reason and on_leave(disabled) keep" sh -c "grep -A1 '^- Zoë Ångström' '$T_OUT/out' | grep -q 'on_leave(\"disabled\") → keep'"
check "no mail excluded" grep -q "^- Lidia Holloway .*: no mail address" "$T_OUT/out"
check "room mailbox excluded as a service account" grep -q "^- Conf Room Adams .*room" "$T_OUT/out"
check "removed user: on_leave(deleted)" grep -q 'on_leave("deleted")' "$T_OUT/out"
check "totals line" grep -q "^11 users: 4 included, 7 not included, 0 errors" "$T_OUT/out"

expect_ok "--json on a bare array" -- policy test "$ROOT/policies/default.lua" --users "$A" --json
check "JSON counts and decisions" test "$(json 'd["included"], d["excluded"], u("Patti")["contact"]["title"], u("Isaiah")["on_leave"]["why"], u("Reception")["included"]')" = "(1, 2, 'President', 'disabled', False)"

# examples: each one's point shows on the fixture
expect_ok "by_group" -- policy test "$EX/by_group.lua" --users "$U" --json
check "by_group: groups from memberOf" test "$(json 'u("Adele")["included"], u("Adele")["reason"], u("Nestor")["reason"], u("José")["included"]')" = "(True, 'in Sync - PSA Contacts', 'in Contractors', False)"
expect_ok "by_department" -- policy test "$EX/by_department.lua" --users "$U" --json
check "by_department: Engineering left out" test "$(json 'u("李")["included"], u("José")["included"]')" = "(False, True)"
expect_ok "by_domain" -- policy test "$EX/by_domain.lua" --users "$U" --json
check "by_domain: fabrikam.com feeds customer 102" test "$(json 'u("李")["contact"].get("customer_id"), u("Adele")["contact"].get("customer_id")')" = "(102, None)"
expect_ok "field_mapping" -- policy test "$EX/field_mapping.lua" --users "$U" --json
check "field_mapping: licences in notes" test "$(json 'u("Adele")["contact"]["notes"].splitlines()[-1]')" = "Licences: Microsoft 365 E3"
expect_ok "on_leave_delete" -- policy test "$EX/on_leave_delete.lua" --users "$U" --json
check "on_leave_delete: disabled → delete" test "$(json 'u("Zoë")["on_leave"]["action"]')" = delete
expect_ok "on_leave_mark" -- policy test "$EX/on_leave_mark.lua" --users "$U" --json
check "on_leave_mark: disabled → notes marked" test "$(json 'u("Zoë")["on_leave"]["action"], u("Zoë")["on_leave"]["changes"]["notes"].startswith("[LEFT] ")')" = "('mark', True)"
check "on_leave_mark: deleted → delete" test "$(json '[x for x in d["users"] if x["user"].endswith("0011")][0]["on_leave"]["action"]')" = delete
expect_ok "no_guests" -- policy test "$EX/no_guests.lua" --users "$U" --json
check "no_guests: guest out, member in" test "$(json 'u("Pat")["included"], u("Adele")["included"]')" = "(False, True)"

# every shipped policy loads and evaluates every fixture user without error
for pol in "$ROOT"/policies/*.lua "$EX"/*.lua; do
  for f in "$ROOT"/tests/fixtures/users/*.json; do
    expect_ok "$(basename "$pol") on $(basename "$f")" -- policy test "$pol" --users "$f"
    check "$(basename "$pol") on $(basename "$f"): 0 errors" grep -q ", 0 errors$" "$T_OUT/out"
  done
done
check "an example for each need" test "$(ls "$EX"/*.lua | wc -l)" -ge 7

# errors
cat >bad.lua <<'LUA'
return { include = function(u, t) return u.mail:lower() == "x" end }
LUA
expect_exit "a policy failing on some users: exit 1, error per user" 1 "^! Lidia Holloway" -- policy test bad.lua --users "$U"
cat >typo.lua <<'LUA'
return { on_leve = "keep" }
LUA
expect_exit "a policy that does not load: exit 2 with file:line" 2 "typo.lua:1: unknown key 'on_leve'" -- policy test typo.lua --users "$U"
echo '{"users": []}' >notusers.json
expect_exit "not a user list: exit 2" 2 "not a Graph user list" -- policy test "$ROOT/policies/default.lua" --users notusers.json
expect_exit "missing file: exit 2" 2 "nope.json" -- policy test "$ROOT/policies/default.lua" --users nope.json
expect_exit "--users is required" 2 "--users FILE" -- policy test "$ROOT/policies/default.lua"
expect_exit "only 'test' exists" 2 "usage: entrasync policy test" -- policy run x --users "$U"

# a policy saved by a Windows editor: a UTF-8 byte order mark and CRLF line
# ends load (before, "unexpected symbol near '<\239>'"), and its problems
# keep the file's line numbers; a '#!' first line is a comment (as lua.c)
printf '\357\273\277return {\r\n  include = function(u) return u.mail ~= nil end,\r\n}\r\n' >bom.lua
expect_ok "a policy with a UTF-8 byte order mark and CRLF loads" -- policy test bom.lua --users "$U"
check "the BOM policy decides" grep -q "^+ Adele Vance" "$T_OUT/out"
printf '\357\273\277return {\r\n  includ = function(u) return true end,\r\n}\r\n' >bom_typo.lua
expect_exit "a BOM policy's problem keeps its line" 2 "bom_typo.lua:2: unknown key 'includ'" -- policy test bom_typo.lua --users "$U"
printf '#!/usr/bin/env entrasync\nreturn {\n  on_leve = "keep",\n}\n' >shebang.lua
expect_exit "a '#!' first line is a comment; lines kept" 2 "shebang.lua:3: unknown key 'on_leve'" -- policy test shebang.lua --users "$U"

# a users file Windows PowerShell 5.1 wrote (UTF-16 with its byte order mark)
# is named as such, with the way to write UTF-8; bad JSON gets line and column
python3 -c "
d = open('$A', encoding='utf-8').read()
open('u16.json', 'wb').write(b'\xff\xfe' + d.encode('utf-16-le'))"
expect_exit "a UTF-16 users file: said so, with the fix" 2 \
  "u16.json is UTF-16 text .*-OutputFilePath u16.json, or write UTF-8" -- policy test "$ROOT/policies/default.lua" --users u16.json
printf '{"value": [\n {"id": "x",\n  "mail": }\n]}\n' >badjson.json
expect_exit "a users file that is not JSON: line and column" 2 "badjson.json: not valid JSON \(line 3, column 11\)" \
  -- policy test "$ROOT/policies/default.lua" --users badjson.json
{ printf '\357\273\277'; cat "$A"; } >bom_users.json
expect_ok "a UTF-8 users file with a byte order mark is read" -- policy test "$ROOT/policies/default.lua" --users bom_users.json
# a policy saved as UTF-16 (Notepad's "Unicode"): said so, not "unexpected symbol"
python3 -c "open('pol16.lua', 'wb').write(b'\xff\xfe' + 'return { include = function(u) return true end }'.encode('utf-16-le'))"
expect_exit "a UTF-16 policy: said so" 2 "pol16.lua is UTF-16 text \(Windows Notepad's \"Unicode\"\): save it as UTF-8" \
  -- policy test pol16.lua --users "$U"

# what a policy hands to Syncro is checked: a field too long, a NUL byte, bad UTF-8, NaN (each named with file:line)
cat >field.lua <<'PEOF'
local p = require "entrasync.policy"
local bad = { notes = ("x"):rep(1e6), title = "CEO\0hidden", name = "Bad\255\254Name", phone = 0/0 }
return {
  include = function(u) return true end,
  contact = function(u) local c = p.contact(u); c[FIELD] = bad[FIELD]; return c end,
}
PEOF
for f in notes:"contact field 'notes' is 1000000 bytes, more than the 16384" title:"contact field 'title' contains a NUL byte" \
         name:"contact field 'name' is not valid UTF-8" phone:"contact field 'phone' is NaN"; do
  field=${f%%:*}; want=${f#*:}
  sed "s/FIELD/\"$field\"/g" field.lua >"field_$field.lua"
  expect_exit "policy test: $field refused" 1 "field_$field.lua:5: $want" -- policy test "field_$field.lua" --users "$A"
done
# on_leave's answer too
cat >leave_big.lua <<'PEOF'
return {
  include = function(u) return false end,
  on_leave = function(c, why) return { notes = ("x"):rep(20000) } end,
}
PEOF
printf '[{"id": "00000000-0000-4000-8000-000000000001", "displayName": "Gone Girl", "mail": "gone@x.com",
  "accountEnabled": false}]\n' >leaver.json
expect_exit "policy test: on_leave's field too long, said where" 1 \
  "policy error in on_leave\(\): .*leave_big.lua:3: contact field 'notes' is 20000 bytes" -- policy test leave_big.lua --users leaver.json
# a policy that runs out of its limits is not called again and again in one run
printf 'return { include = function(u) while true do end end }\n' >loop.lua
python3 -c "
import json
json.dump([{'id': '%08d-0000-4000-8000-000000000000' % i, 'displayName': 'U%d' % i, 'mail': 'u%d@x.com' % i}
           for i in range(40)], open('u40.json', 'w'))"
expect_exit "a looping policy: three users spend the budget, the rest are not evaluated" 1 \
  "not evaluated: the policy ran out of its limits for 3 users already in this run" -- policy test loop.lua --users u40.json
check "only three budgets spent" test "$(grep -c 'error: instruction budget exceeded' "$T_OUT/out")" = 3
# print is bounded in the log
printf 'local s = ("x"):rep(1e5)\nreturn { include = function(u) for i = 1, 30 do print(s) end return true end }\n' >pr.lua
es --log-level info policy test pr.lua --users "$A"
check "print: 20 lines a call, each cut at 2000 bytes" \
  sh -c "test \$(grep -c 'pr.lua:2: xxx' '$T_OUT/err') = \$((20 * \$(grep -c '^[+!-] ' '$T_OUT/out'))) && test \$(wc -c <'$T_OUT/err') -lt 1000000 && grep -q 'its further output is dropped' '$T_OUT/err'"
# an on_leave answer the sandbox cannot read (a NUL byte) is said at on_leave's line too
printf 'return {\n  include = function(u) return false end,\n  on_leave = function(c, why) return { title = "CEO\\0hidden" } end,\n}\n' >leave_nul.lua
expect_exit "policy test: on_leave's answer with a NUL byte, said where" 1 \
  "policy error in on_leave\(\): .*leave_nul.lua:3: its answer: string contains a NUL byte at \\\$.title" -- policy test leave_nul.lua --users leaver.json
# on_leave out of its limits: three runs of it, then the others not called, each saying three
printf 'return {\n  include = function(u) return false end,\n  on_leave = function(c, why) while true do end end,\n}\n' >leave_loop.lua
python3 -c "
import json
json.dump([{'id': '%08d-0000-4000-8000-000000000000' % i, 'displayName': 'L%d' % i, 'mail': 'l%d@x.com' % i,
            'accountEnabled': False} for i in range(6)], open('leavers6.json', 'w'))"
es policy test leave_loop.lua --users leavers6.json
check "on_leave looping: three budgets spent, the other leavers say three" \
  sh -c "test \$(grep -c 'error: policy error in on_leave\|error: instruction budget exceeded' '$T_OUT/out') -ge 1 && test \$(grep -c 'ran out of its limits for 3 users already' '$T_OUT/out') = 3 && ! grep -q 'for [4-9] users already' '$T_OUT/out'"
