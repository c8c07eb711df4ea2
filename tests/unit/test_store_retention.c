/* test_store_retention — store_prune: which runs, per-tenant results,
 * intents and audit rows go once older than the retention, which stay
 * (each tenant's latest result of a kind, the newest run, finished run and
 * "ok" run of a kind, unfinished intents), the per-call bound, a second
 * call that finds nothing, and the metrics' counters left as they were.
 * Times are set under the API (raw UPDATEs) against a fixed "now". */
#include "t.h"
#include "store/store.h"
#include "store/store_retention.h"
#include "store/store_snapshots.h"
#include "store/store_status.h"
#include "t_sql.h"

#include <stdio.h>
#include <string.h>

#define TA "aaaaaaaa-0000-0000-0000-000000000001"
#define TB "bbbbbbbb-0000-0000-0000-000000000002"
#define NOW 1780272000.0   /* 2026-06-01T00:00:00Z */
#define DAY 86400.0

/* Runs SQL on the store's connection; a failure fails the test. */
static void exec_sql(struct store *st, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(store_sqlite(st), sql, NULL, NULL, &msg) != SQLITE_OK)
		t_fail(__FILE__, __LINE__, "%s: %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
}

static void set_time(struct store *st, const char *table, const char *column, long long id, double days_ago)
{
	char at[32], sql[256];
	time_iso8601(NOW - days_ago * DAY, at, sizeof at);
	snprintf(sql, sizeof sql, "UPDATE %s SET %s = '%s' WHERE id = %lld", table, column, at, id);
	exec_sql(st, sql);
}

/* A run of kind started days_ago, finished with status (NULL = left
 * running, as after a crash), with each tenant's outcome ("A:ok B:failed"). */
static long long run(struct store *st, const char *kind, double days_ago, const char *status, const char *a,
                     const char *b)
{
	struct err err;
	long long id = 0;
	if (store_run_begin(st, kind, &id, &err) != 0) {
		t_fail(__FILE__, __LINE__, "%s", err.msg);
		return 0;
	}
	if (a && store_run_tenant_put(st, id, TA, a, NULL, NULL, &err) != 0) t_fail(__FILE__, __LINE__, "%s", err.msg);
	if (b && store_run_tenant_put(st, id, TB, b, NULL, NULL, &err) != 0) t_fail(__FILE__, __LINE__, "%s", err.msg);
	if (status && store_run_finish(st, id, status, NULL, &err) != 0) t_fail(__FILE__, __LINE__, "%s", err.msg);
	set_time(st, "runs", "started_at", id, days_ago);
	return id;
}

static long long intent(struct store *st, const char *state, double days_ago)
{
	char sql[256];
	snprintf(sql, sizeof sql, "INSERT INTO intents (tenant_id, action, state, created_at) VALUES ('" TA "', "
	         "'update', '%s', '2000-01-01T00:00:00Z')", state);
	exec_sql(st, sql);
	long long id = sqlite3_last_insert_rowid(store_sqlite(st));
	set_time(st, "intents", "created_at", id, days_ago);
	return id;
}

static long long audit(struct store *st, double days_ago)
{
	exec_sql(st, "INSERT INTO audit (at, tenant_id, action, result) VALUES ('2000-01-01T00:00:00Z', '" TA "', "
	             "'update', 'ok')");
	long long id = sqlite3_last_insert_rowid(store_sqlite(st));
	set_time(st, "audit", "at", id, days_ago);
	return id;
}

/* How many rows of table have column = id (and the extra condition). */
static long long rows(struct store *st, const char *table, const char *column, long long id, const char *extra)
{
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s = %lld%s", table, column, id, extra ? extra : "");
	return raw_int(store_sqlite(st), sql);
}

static long long has(struct store *st, const char *table, long long id)
{
	return rows(st, table, "id", id, NULL);
}

static int latest_runs(const struct store_status_tenant *t, void *ud)
{
	long long *latest = ud;
	latest[0] = t->pull.run_id;
	latest[1] = t->sync.run_id;
	return 0;
}

TEST(store_prune_runs_keeps_what_status_and_metrics_read)
{
	struct err err;
	struct store *st = t_store_fresh("prune_runs");
	REQUIRE(st);
	sqlite3 *db = store_sqlite(st);
	long long r1 = run(st, "pull", 200, "ok", "ok", "ok");       /* B's last pull: stays for B */
	long long r2 = run(st, "sync", 199, "ok", "ok", "ok");       /* B's last sync: stays for B */
	long long r3 = run(st, "pull", 150, NULL, NULL, NULL);       /* crashed, no results: goes */
	long long r4 = run(st, "pull", 140, "failed", "failed", NULL); /* goes */
	long long r5 = run(st, "pull", 100, "ok", "ok", NULL);       /* the newest "ok" pull: stays */
	long long r6 = run(st, "sync", 95, "partial", "ok", NULL);   /* goes */
	long long r7 = run(st, "pull", 10, "failed", "failed", NULL);
	long long r8 = run(st, "sync", 5, "ok", "ok", NULL);
	long long i_done = intent(st, "done", 120), i_failed = intent(st, "failed", 100);
	long long i_pending = intent(st, "pending", 95), i_young = intent(st, "done", 3);
	long long a_old = audit(st, 400), a_young = audit(st, 2);
	long long counted_runs = raw_int(db, "SELECT sum(n) FROM run_counts");
	long long counted_results = raw_int(db, "SELECT sum(n) FROM tenant_run_counts");
	long long counted_writes = raw_int(db, "SELECT sum(n) FROM write_counts");

	struct store_pruned p;
	REQUIRE_OK(store_prune(st, &(struct store_retention){ .runs_days = 90 }, NOW, &p, &err), &err);
	CHECK_EQ_INT(p.runs, 3);
	CHECK_EQ_INT(p.run_tenants, 4);
	CHECK_EQ_INT(p.intents, 2);
	CHECK_EQ_INT(p.audit, 0);          /* audit_days 0: kept for ever */
	CHECK(!p.more);
	CHECK_EQ_INT(has(st, "runs", r1) + has(st, "runs", r2) + has(st, "runs", r5), 3);
	CHECK_EQ_INT(has(st, "runs", r3) + has(st, "runs", r4) + has(st, "runs", r6), 0);
	CHECK_EQ_INT(has(st, "runs", r7) + has(st, "runs", r8), 2);
	/* r1 and r2 keep only B's results (A has newer ones of each kind) */
	CHECK_EQ_INT(rows(st, "run_tenants", "run_id", r1, " AND tenant_id = '" TB "'"), 1);
	CHECK_EQ_INT(rows(st, "run_tenants", "run_id", r1, NULL), 1);
	CHECK_EQ_INT(rows(st, "run_tenants", "run_id", r2, " AND tenant_id = '" TB "'"), 1);
	CHECK_EQ_INT(rows(st, "run_tenants", "run_id", r2, NULL), 1);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM run_tenants"), 5);
	/* status still finds each tenant's latest pull and sync */
	long long latest[2] = {0};
	REQUIRE_OK(store_tenant_put(st, &(struct store_tenant){ .id = TB }, &err), &err);
	REQUIRE_OK(store_status_tenant_each(st, TB, latest_runs, latest, &err), &err);
	CHECK_EQ_INT(latest[0], r1);
	CHECK_EQ_INT(latest[1], r2);
	CHECK_EQ_INT(has(st, "intents", i_done) + has(st, "intents", i_failed), 0);
	CHECK_EQ_INT(has(st, "intents", i_pending) + has(st, "intents", i_young), 2);
	/* the counters are as they were */
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM run_counts"), counted_runs);
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM tenant_run_counts"), counted_results);

	/* again: nothing more goes */
	REQUIRE_OK(store_prune(st, &(struct store_retention){ .runs_days = 90 }, NOW, &p, &err), &err);
	CHECK_EQ_INT(p.runs + p.run_tenants + p.intents + p.audit, 0);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM runs"), 5);

	/* the audit trail, once it has a retention */
	REQUIRE_OK(store_prune(st, &(struct store_retention){ .audit_days = 365 }, NOW, &p, &err), &err);
	CHECK_EQ_INT(p.audit, 1);
	CHECK_EQ_INT(has(st, "audit", a_old), 0);
	CHECK_EQ_INT(has(st, "audit", a_young), 1);
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM write_counts"), counted_writes);

	/* nothing kept for ever is touched, and no retention is a no-op */
	REQUIRE_OK(store_prune(st, &(struct store_retention){ 0 }, NOW + 1000 * DAY, &p, &err), &err);
	CHECK_EQ_INT(p.runs + p.run_tenants + p.intents + p.audit, 0);
	store_close(st);
}

TEST(store_prune_bounded_per_call)
{
	struct err err;
	struct store *st = t_store_fresh("prune_bound");
	REQUIRE(st);
	for (int i = 0; i < 5; i++) audit(st, 100 - i);
	long long young = audit(st, 1);
	struct store_retention keep = { .audit_days = 30, .max_rows = 2 };
	struct store_pruned p;
	const long long want[] = { 2, 2, 1, 0 };
	const bool more[] = { true, true, false, false };
	for (size_t i = 0; i < 4; i++) {
		REQUIRE_OK(store_prune(st, &keep, NOW, &p, &err), &err);
		CHECK_EQ_INT(p.audit, want[i]);
		CHECK_EQ_INT(p.more, more[i]);
	}
	CHECK_EQ_INT(raw_int(store_sqlite(st), "SELECT count(*) FROM audit"), 1);
	CHECK_EQ_INT(has(st, "audit", young), 1);

	/* runs too: a call takes at most max_rows results */
	for (int i = 0; i < 4; i++) run(st, "pull", 200 - i, "ok", "ok", "ok");
	run(st, "pull", 1, "ok", "ok", "ok");
	keep = (struct store_retention){ .runs_days = 90, .max_rows = 2 };
	REQUIRE_OK(store_prune(st, &keep, NOW, &p, &err), &err);
	CHECK_EQ_INT(p.runs, 1);
	CHECK_EQ_INT(p.run_tenants, 2);
	CHECK(p.more);
	long long total = p.runs;
	for (int i = 0; i < 5 && p.more; i++) {
		REQUIRE_OK(store_prune(st, &keep, NOW, &p, &err), &err);
		total += p.runs;
	}
	CHECK_EQ_INT(total, 4);
	CHECK(!p.more);
	CHECK_EQ_INT(raw_int(store_sqlite(st), "SELECT count(*) FROM runs"), 1);
	store_close(st);
}

/* A Secure Score day of tenant: with raw (control scores inside it), or with
 * only the controls column (a day stored without raw). */
static void score_day(struct store *st, const char *tenant, const char *day, bool with_raw)
{
	struct err err;
	char raw[512];
	const char *controls = "[{\"controlName\":\"AdminMFAV2\",\"score\":4.5,\"on\":\"x\"}]";
	snprintf(raw, sizeof raw, "{\"id\":\"%s_%s\",\"currentScore\":40.5,\"maxScore\":90,"
	         "\"licensedUserCount\":25,\"controlScores\":%s,\"vendorInformation\":{\"vendor\":\"Microsoft\"}}",
	         tenant, day, controls);
	struct store_secure_score s = { .tenant_id = tenant, .day = day, .current_score = 40.5, .max_score = 90,
	                                .averages = "[{\"basis\":\"AllTenants\",\"averageScore\":37}]",
	                                .controls = controls, .raw = with_raw ? raw : NULL };
	if (store_secure_score_put(st, &s, &err) != 0) t_fail(__FILE__, __LINE__, "%s", err.msg);
}

/* How many days have control scores, in the column or in raw. */
static long long days_with_controls(struct store *st)
{
	return raw_int(store_sqlite(st), "SELECT count(*) FROM secure_score_snapshots WHERE controls IS NOT NULL OR "
	               "(json_valid(raw) AND json_type(raw, '$.controlScores') IS NOT NULL)");
}

TEST(store_prune_thins_old_secure_score_days)
{
	struct err err;
	struct store *st = t_store_fresh("prune_scores");
	REQUIRE(st);
	sqlite3 *db = store_sqlite(st);
	REQUIRE_OK(store_tenant_put(st, &(struct store_tenant){ .id = TA }, &err), &err);
	/* NOW is 2026-06-01: with 365 days, days before 2025-06-01 are thinned */
	score_day(st, TA, "2025-01-10", true);
	score_day(st, TA, "2025-02-10", false);     /* stored without raw: the column */
	score_day(st, TA, "2025-05-31", true);
	score_day(st, TA, "2025-06-01", true);      /* the cutoff day itself: kept */
	score_day(st, TA, "2026-05-30", true);
	exec_sql(st, "INSERT INTO secure_score_snapshots (tenant_id, day, current_score, raw) "
	             "VALUES ('" TA "', '2025-03-01', 1, 'not json')");  /* edited by hand: left as it is */
	CHECK_EQ_INT(days_with_controls(st), 5);
	struct store_retention keep = { .score_detail_days = 365 };
	struct store_pruned p;
	REQUIRE_OK(store_prune(st, &keep, NOW, &p, &err), &err);
	CHECK_EQ_INT(p.score_days, 3);
	CHECK(!p.more);
	CHECK_EQ_INT(days_with_controls(st), 2);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM secure_score_snapshots WHERE day >= '2025-06-01' AND "
	                         "json_type(raw, '$.controlScores') = 'array'"), 2);
	/* a thinned day keeps everything else: scores, averages, the rest of raw */
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM secure_score_snapshots WHERE day = '2025-01-10' AND "
	                         "current_score = 40.5 AND max_score = 90 AND averages IS NOT NULL AND "
	                         "json_extract(raw, '$.licensedUserCount') = 25 AND "
	                         "json_extract(raw, '$.vendorInformation.vendor') = 'Microsoft'"), 1);
	CHECK_EQ_INT(raw_int(db, "SELECT raw = 'not json' FROM secure_score_snapshots WHERE day = '2025-03-01'"), 1);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM secure_score_snapshots"), 6);
	/* the next call starts where this one stopped: nothing more */
	REQUIRE_OK(store_prune(st, &keep, NOW, &p, &err), &err);
	CHECK_EQ_INT(p.score_days, 0);
	/* a day later, the next day goes */
	REQUIRE_OK(store_prune(st, &keep, NOW + DAY, &p, &err), &err);
	CHECK_EQ_INT(p.score_days, 1);
	CHECK_EQ_INT(days_with_controls(st), 1);
	/* fewer days than Graph keeps are taken as 90 */
	score_day(st, TA, "2026-04-01", true);
	REQUIRE_OK(store_prune(st, &(struct store_retention){ .score_detail_days = 10 }, NOW, &p, &err), &err);
	CHECK_EQ_INT(p.score_days, 0);
	store_close(st);
}

TEST(store_prune_thins_secure_score_days_bounded)
{
	struct err err;
	struct store *st = t_store_fresh("prune_scores_bound");
	REQUIRE(st);
	REQUIRE_OK(store_tenant_put(st, &(struct store_tenant){ .id = TA }, &err), &err);
	REQUIRE_OK(store_tenant_put(st, &(struct store_tenant){ .id = TB }, &err), &err);
	/* five rows, two tenants sharing a day: a day's rows may span calls */
	const char *days[] = { "2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05" };
	for (size_t i = 0; i < ARRAY_LEN(days); i++) score_day(st, TA, days[i], true);
	score_day(st, TB, "2024-01-02", true);
	struct store_retention keep = { .score_detail_days = 365, .max_rows = 2 };
	struct store_pruned p;
	long long total = 0;
	int calls = 0;
	do {
		REQUIRE_OK(store_prune(st, &keep, NOW, &p, &err), &err);
		total += p.score_days;
		calls++;
	} while (p.more && calls < 10);
	CHECK_EQ_INT(total, 5);
	CHECK_EQ_INT(calls, 3);     /* 2 + 2 + 1 */
	CHECK_EQ_INT(days_with_controls(st), 0);
	store_close(st);
}

TEST(store_prune_dry_run_counts_and_keeps)
{
	struct err err;
	struct store *st = t_store_fresh("prune_dry");
	REQUIRE(st);
	sqlite3 *db = store_sqlite(st);
	for (int i = 0; i < 3; i++) run(st, "sync", 200 - i, "ok", "ok", "ok");
	run(st, "sync", 1, "ok", "ok", "ok");
	for (int i = 0; i < 4; i++) audit(st, 100);
	struct store_retention keep = { .runs_days = 90, .audit_days = 30, .dry_run = true };
	struct store_pruned dry, real;
	REQUIRE_OK(store_prune(st, &keep, NOW, &dry, &err), &err);
	CHECK_EQ_INT(dry.runs, 3);
	CHECK_EQ_INT(dry.run_tenants, 6);
	CHECK_EQ_INT(dry.audit, 4);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM runs"), 4);      /* nothing deleted */
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM audit"), 4);
	CHECK(!store_in_transaction(st));
	keep.dry_run = false;
	REQUIRE_OK(store_prune(st, &keep, NOW, &real, &err), &err);
	CHECK_EQ_INT(real.runs, dry.runs);
	CHECK_EQ_INT(real.run_tenants, dry.run_tenants);
	CHECK_EQ_INT(real.audit, dry.audit);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM runs"), 1);
	store_close(st);
}

TEST(store_vacuum_gives_space_back)
{
	struct err err;
	struct store *st = t_store_fresh("vacuum");
	REQUIRE(st);
	REQUIRE_OK(store_begin(st, &err), &err);
	char big[2048];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	for (int i = 0; i < 500; i++) {
		char sql[2200];
		snprintf(sql, sizeof sql, "INSERT INTO audit (at, action, after) VALUES ('2001-01-01T00:00:00Z', "
		         "'update', '%s')", big);
		exec_sql(st, sql);
	}
	REQUIRE_OK(store_commit(st, &err), &err);
	struct store_pruned p;
	REQUIRE_OK(store_prune(st, &(struct store_retention){ .audit_days = 30 }, NOW, &p, &err), &err);
	CHECK_EQ_INT(p.audit, 500);
	long long before = 0, after = 0;
	REQUIRE_OK(store_vacuum(st, &before, &after, &err), &err);
	CHECK(before > 1000000);            /* 500 rows of 2 KB, their pages free but in the file */
	CHECK(after < before / 4);
	CHECK_EQ_INT(raw_int(store_sqlite(st), "PRAGMA freelist_count"), 0);
	store_close(st);
}
