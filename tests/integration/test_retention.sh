#!/bin/sh
# test_retention — the history that only grows is deleted once older than
# the config's retention, by the binary at the end of a sync or a pull,
# against both fakes: runs and their per-tenant results after 90 days by
# default (each tenant's latest of a kind kept, so `status` still shows
# it), finished intents likewise, the audit trail only with
# retention.audit_days; a dry run deletes nothing; the line says what went
# and --json has steps.retention; the metrics' counters do not go down;
# Secure Score days past retention.score_detail_days lose their control
# scores and keep their scores; `entrasync prune` applies it all at once
# (--dry-run, --vacuum, the run lock, no database yet); a retention the
# database refuses fails clearly and deletes nothing of that unit.
# The history is aged by editing its times in the database.
. tests/integration/test_sync_lib.sh

start_fakes "$T_OUT/retention"
cd "$W" || exit 1
ES=$ENTRASYNC
mail_policy pol.lua
mkconfig c.lua pol.lua

es --config c.lua sync
check "first sync: runs, results, intents and audit rows recorded" \
  test "$(sql "select count(*) > 0 and (select count(*) from run_tenants) = 3 and (select count(*) from audit) > 0
    and (select count(*) from intents where state = 'done') > 0 from runs")" = 1
check "nothing old: no retention line" sh -c "! grep -q '^retention' '$T_OUT/out'"
AUDIT=$(sql "select count(*) from audit")
INTENTS=$(sql "select count(*) from intents")
# age everything so far by 100 days
sql "update runs set started_at = '2001-01-01T00:00:00Z', finished_at = '2001-01-01T00:05:00Z';
     update intents set created_at = '2001-01-01T00:00:00Z'; update audit set at = '2001-01-01T00:00:00Z'"
es --config c.lua metrics
RUNS_TOTAL=$(grep '^entrasync_runs_total{kind="sync",status="ok"}' "$T_OUT/out")
check "metrics: the first sync counted" test -n "$RUNS_TOTAL"

es --config c.lua sync --dry-run   # its run is of its own kind, sync-dry-run
check "a dry run deletes nothing" test "$(sql "select count(*) from runs where started_at < '2002'")" = 1
check "a dry run: no retention line" sh -c "! grep -q '^retention' '$T_OUT/out'"

es --config c.lua sync
check "sync: the line says what went" \
  grep -Eq "^retention: deleted 1 run older than 90 days \(3 tenant results\), $INTENTS finished intents older than 90 days$" "$T_OUT/out"
check "the old runs and their results are gone" test "$(sql "select count(*) from runs where started_at < '2002'")" = 0
check "the old finished intents are gone" test "$(sql "select count(*) from intents where created_at < '2002'")" = 0
check "the audit trail is kept for ever by default" test "$(sql "select count(*) from audit where at < '2002'")" = "$AUDIT"
expect_ok "status runs" -- --config c.lua status
check "status: the database's size" grep -Eq "^Database: .*state/es.db, [0-9.]+ MB \([0-9.]+ MB free\)$" "$T_OUT/out"
check "status: what the retention keeps" \
  grep -q "^History kept: runs 90 days, audit for ever, Secure Score control scores 365 days$" "$T_OUT/out"
check "status still shows each tenant's last pull and sync" \
  test "$(grep -c 'never' "$T_OUT/out")" = 0
es --config c.lua metrics
check "metrics: the deleted run is still counted (counters do not go down)" \
  sh -c "grep '^entrasync_runs_total{kind=\"sync\",status=\"ok\"}' '$T_OUT/out' | awk '{exit !(\$2 > $(echo "$RUNS_TOTAL" | awk '{print $2}'))}'"

# ---- a tenant left out of the newer runs keeps its last result however old
sql "update runs set started_at = '2001-02-01T00:00:00Z', finished_at = '2001-02-01T00:05:00Z'"
es --config c.lua sync --tenant Contoso
check "one tenant synced: its older sync results went, the others' stay" \
  test "$(sql "select group_concat(t.tenant_id) from run_tenants t join runs r on r.id = t.run_id
    where r.kind = 'sync' and r.started_at < '2002' order by 1")" = "$(sql "select group_concat(id) from
    (select '$FABRIKAM' id union all select '$NORTHWIND') order by 1")"
expect_ok "status after a partial prune" -- --config c.lua status --tenant Fabrikam
check "status: Fabrikam's last sync is the old one" grep -q '2001-02-01' "$T_OUT/out"

# ---- the audit trail with a retention; --json
cat >>c.lua <<'CEOF'
retention = { audit_days = 30 }
CEOF
expect_ok "status --json" -- --config c.lua status --json
check "status --json: the retention and the database's size" \
  test "$(jq_py "(d['retention'], d['database_bytes'] > 0)" <"$T_OUT/out")" = \
    "({'runs_days': 90, 'audit_days': 30, 'score_detail_days': 365}, True)"
es --config c.lua sync --json
check "--json: steps.retention counts the audit rows" \
  test "$(jq_py "[d['steps']['retention'][k] for k in ('ok', 'audit', 'runs', 'score_days', 'more')]" <"$T_OUT/out")" = "[True, $AUDIT, 1, 0, False]"
check "the old audit rows are gone" test "$(sql "select count(*) from audit where at < '2002'")" = 0

# ---- pull deletes too (the runs so far: the dry run, two syncs, a pull)
es --config c.lua pull
sql "update runs set started_at = '2001-03-01T00:00:00Z', finished_at = '2001-03-01T00:05:00Z'"
es --config c.lua pull
check "pull: the line says what went" \
  grep -Eq "^retention: deleted 2 runs older than 90 days \(4 tenant results\)$" "$T_OUT/out"
check "pull: the newest sync and dry run stay, however old" \
  test "$(sql "select group_concat(kind) from (select kind from runs where started_at < '2002' order by id)")" = "sync-dry-run,sync"
check "pull: no old pull result left that a newer one supersedes" \
  test "$(sql "select count(*) from runs where kind = 'pull' and started_at < '2002'")" = 0

# ---- Secure Score days past score_detail_days (365 by default) lose their
# control scores, keep their scores
# (days moved back 400 days; the retention's place in them forgotten, as in
# a database from before the retention: it walks them from the oldest)
sql "update secure_score_snapshots set day = date(day, '-400 days');
     delete from kv where key = 'retention.score_detail.from'"
OLD_DAYS=$(sql "select count(*) from secure_score_snapshots")
es --config c.lua pull
check "pull: the line counts the thinned Secure Score days" \
  grep -Eq "^retention: deleted the control scores of $OLD_DAYS Secure Score days older than 365 days$" "$T_OUT/out"
check "the old days have no control scores left" \
  test "$(sql "select count(*) from secure_score_snapshots where day < date('now', '-365 days')
    and (controls is not null or json_type(raw, '\$.controlScores') is not null)")" = 0
check "the old days keep their scores and the rest of their raw JSON" \
  test "$(sql "select count(*) from secure_score_snapshots where day < date('now', '-365 days')
    and current_score is not null and json_extract(raw, '\$.maxScore') is not null")" = "$OLD_DAYS"
check "the days the pull just stored keep theirs" \
  test "$(sql "select count(*) from secure_score_snapshots where day >= date('now', '-365 days')
    and json_type(raw, '\$.controlScores') = 'array'")" -gt 0
expect_ok "the Secure Score report still runs" -- --config c.lua report securescore --controls
check "the report shows the newest day's controls" grep -q "multifactor authentication" "$T_OUT/out"

# ---- entrasync prune: the retention now, all of it; --dry-run; --vacuum
sql "update runs set started_at = '2001-05-01T00:00:00Z', finished_at = '2001-05-01T00:05:00Z';
     update intents set created_at = '2001-05-01T00:00:00Z'"
RUNS=$(sql "select count(*) from runs")
expect_ok "prune --dry-run" -- --config c.lua prune --dry-run
check "prune --dry-run: says what would go" grep -Eq "^would delete [0-9]+ runs? older than 90 days" "$T_OUT/out"
check "prune --dry-run: deletes nothing" test "$(sql "select count(*) from runs")" = "$RUNS"
WOULD=$(sed 's/^would delete //' "$T_OUT/out")
expect_ok "prune" -- --config c.lua prune --vacuum
check "prune: deletes what the dry run said" test "$(sed -n 's/^deleted //p' "$T_OUT/out")" = "$WOULD"
check "prune: the old runs are gone but the ones kept for status and the metrics" \
  test "$(sql "select count(*) from runs")" -lt "$RUNS"
check "prune --vacuum: says the size" grep -Eq "^vacuum: the database went from [0-9.]+ MB to [0-9.]+ MB$" "$T_OUT/out"
check "prune --vacuum: the database is intact" test "$(sql "pragma integrity_check")" = ok
expect_ok "prune again: nothing left" -- --config c.lua prune
check "prune again: says so" grep -q "^nothing older than the retention to delete$" "$T_OUT/out"
expect_exit "prune --dry-run --vacuum: a usage error" 2 "does nothing with --dry-run" -- --config c.lua prune --dry-run --vacuum
hold_lock state/es.db.lock 30
expect_exit "prune takes the run lock" 3 "another entrasync run" -- --config c.lua prune
kill "$HOLD_PID" 2>/dev/null
sed 's|state/es.db|state/none.db|' c.lua >none.lua
expect_ok "prune with no database yet" -- --config none.lua prune
check "prune with no database: says so, creates none" \
  sh -c "grep -q '^no database yet' '$T_OUT/out' && ! test -e state/none.db"

# ---- a retention that fails (the database refuses a delete): a clear
# message, exit 1 for a sync (3 for prune), nothing of it deleted
sql "update runs set started_at = '2001-06-01T00:00:00Z', finished_at = '2001-06-01T00:05:00Z';
     insert into audit (at, action, result) values ('2001-06-01T00:00:00Z', 'update', 'ok');
     create trigger audit_kept before delete on audit begin select raise(abort, 'audit kept by hand'); end"
RUNS=$(sql "select count(*) from runs")
AUDIT=$(sql "select count(*) from audit")
es --config c.lua sync; rc=$?
check "a failing retention: the sync exits 1" test "$rc" = 1
check "a failing retention: the step line names the cause" \
  grep -q "^retention: FAILED: store: retention: deleting old rows: audit kept by hand$" "$T_OUT/out"
check "a failing retention: nothing of it deleted (its runs neither)" \
  test "$(sql "select count(*) from runs where started_at < '2002'")" = "$RUNS"
check "a failing retention: the audit rows stay" test "$(sql "select count(*) from audit")" = "$AUDIT"
expect_exit "a failing prune: exit 3, the cause named" 3 "entrasync prune: store: retention: deleting old rows: audit kept by hand" \
  -- --config c.lua prune
check "a failing prune: the store is consistent" test "$(sql "pragma integrity_check")" = ok
sql "drop trigger audit_kept"
expect_ok "prune once the database lets it" -- --config c.lua prune
check "then the old audit rows go" test "$(sql "select count(*) from audit where at < '2002'")" = 0

# ---- runs_days = 0 keeps everything
cat >>c.lua <<'CEOF'
retention = { runs_days = 0 }
CEOF
sql "update runs set started_at = '2001-04-01T00:00:00Z', finished_at = '2001-04-01T00:05:00Z'"
N=$(sql "select count(*) from runs")
es --config c.lua sync
check "runs_days = 0: nothing deleted" test "$(sql "select count(*) from runs where started_at < '2002'")" = "$N"
check "runs_days = 0: no retention line" sh -c "! grep -q '^retention' '$T_OUT/out'"
fakes_alive
