#!/bin/sh
# test_sync_nofields — a policy without contact() (or one giving a user
# neither a name nor an e-mail) would make contacts no one can tell apart:
# they are not sent, and the dry run already says why, instead of a POST
# per user refused by Syncro every hour.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/sync_nofields" --rate-limit 0
cd "$W" || exit 1
printf 'local p = require "entrasync.policy"\nreturn { include = function(u) return p.has_mail(u) end }\n' >nocontact.lua
mkconfig c.lua "$W/nocontact.lua"
clear_log
expect_exit "dry run: exit 1" 1 "" -- --config c.lua sync --dry-run --tenant Contoso
check "dry run: says why, per user" grep -q "FAILED (invalid): not sent: the policy's contact() gives neither a name nor an e-mail for this user (no contact function? contact = p.contact maps the usual fields)" "$T_OUT/out"
expect_exit "the sync: exit 1" 1 "" -- --config c.lua sync --tenant Contoso
check "no contact sent" test "$(sctl GET 'requests?method=POST&path=/api/v1/contacts' | jq_py 'len(d["requests"]) if isinstance(d, dict) and "requests" in d else len(d)')" = 0
check "nothing counted as sent" grep -q "0 Syncro writes sent" "$T_OUT/out"
