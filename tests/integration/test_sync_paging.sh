#!/bin/sh
# test_sync_paging — a Syncro contact listing whose pages do not fit
# together (an empty or short page before the last, or total_pages changing
# while the pages are read: a contact added or deleted meanwhile, or Syncro
# answering short) is never trusted: it is read again from page 1 once, and
# if it still does not fit the tenant fails before any write. A contact
# missed by the listing would otherwise be made again: a duplicate.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/paging"
cd "$W" || exit 1
mail_policy pol.lua
mkconfig c.lua pol.lua
es --config c.lua sync
check "first sync: every tenant ok" test "$(sql "select count(*) from run_tenants where status = 'ok'")" = 3
rm -f state/es.db state/es.db-wal state/es.db-shm   # a new database: the next sync finds every contact by e-mail
sctl POST config '{"page_size": {"contacts": 5}}' >/dev/null
PAGES=$(python3 -c "
import json, sys, urllib.request
d = json.load(urllib.request.urlopen('$SURL/_fake/state?kind=contacts'))
items = d.get('contacts', d) if isinstance(d, dict) else d
n = sum(1 for x in items if x.get('customer_id') == 101)
print((n + 4) // 5)")
empty_page3() {  # TIMES
  sctl POST faults "{\"match\": \"/contacts\$\", \"method\": \"GET\", \"query\": \"customer_id=101.*page=3\",
    \"status\": 200, \"content_type\": \"application/json\",
    \"body\": {\"contacts\": [], \"meta\": {\"total_pages\": $PAGES, \"page\": 3}}, \"times\": $1}" >/dev/null
}
clear_log
empty_page3 1
es --config c.lua sync --tenant Contoso
check "an empty page mid-listing: the listing is read again" grep -q "the listing changed while it was read (page 3 of $PAGES has 0 items where page 1 had 5): reading it again" "$T_OUT/err"
check "then every contact is found: none made, no duplicate" test "$(writes contacts.create)/$(dup_emails)" = "0/"
check "the tenant is ok" test "$(sql "select status from run_tenants where tenant_id = '$CONTOSO' order by run_id desc limit 1")" = ok

rm -f state/es.db state/es.db-wal state/es.db-shm
clear_log
empty_page3 2
es --config c.lua sync --tenant Contoso
check "short twice: the tenant fails, saying why" \
  test "$(sql "select status from run_tenants where tenant_id = '$CONTOSO' order by run_id desc limit 1")" = failed
check "short twice: the reason names the listing" grep -q "the listing changed while it was read, twice" "$T_OUT/out" "$T_OUT/err"
check "short twice: nothing written to Syncro" test "$(all_writes)/$(dup_emails)" = "0/"

# total_pages that changes between pages
rm -f state/es.db state/es.db-wal state/es.db-shm
clear_log
sctl POST faults "{\"match\": \"/contacts\$\", \"method\": \"GET\", \"query\": \"customer_id=101.*page=2\",
  \"status\": 200, \"content_type\": \"application/json\",
  \"body\": {\"contacts\": [], \"meta\": {\"total_pages\": 2, \"page\": 2}}, \"times\": 1}" >/dev/null
es --config c.lua sync --tenant Contoso
check "total_pages shrinking mid-listing: read again, nothing made twice" test "$(writes contacts.create)/$(dup_emails)" = "0/"
fakes_alive

# a customer whose contacts cannot be listed: asked once in the run (with its retries), not once per new user
rm -f state/es.db state/es.db-wal state/es.db-shm
sctl POST faults '{"match": "/contacts$", "method": "GET", "query": "customer_id=101", "status": 500, "times": -1}' >/dev/null
clear_log
es --config c.lua sync --tenant Contoso
LISTINGS=$(sctl GET 'requests?path=/api/v1/contacts$&method=GET' | jq_py "len([r for r in d['requests'] if 'customer_id=101' in (r.get('query') or '')])")
check "listing refused: asked in one listing's attempts, not once per new user" test "$LISTINGS" -le 5
check "listing refused: the full error once, the others point to it" \
  sh -c "test \$(grep -c 'listing the contacts of Syncro customer 101' '$T_OUT/out' '$T_OUT/err' | awk -F: '{s+=\$2} END {print s}') -le 2 && grep -q 'could not be listed (the error is above)' '$T_OUT/out' '$T_OUT/err'"
check "listing refused: nothing written" test "$(all_writes)" = 0
sctl DELETE faults >/dev/null
fakes_alive
