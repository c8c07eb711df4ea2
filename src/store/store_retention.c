/* store_retention — deleting history older than the retention (see
 * store_retention.h). Each table's old rows are found by walking it in id
 * order from its oldest row and stopping at the first young one (ids grow
 * with time, so the old rows are a prefix): a run that finds nothing old
 * reads one row per table, however large the history. Shares the store's
 * connection and statement cache (store_stmt). */
#include "store/store_retention.h"
#include "store/store_sql.h"
#include "store/store_status.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* Each table's rows in id order with their time. */
static const char SQL_RUNS_BY_AGE[] = "SELECT id, started_at FROM runs ORDER BY id";
static const char SQL_INTENTS_BY_AGE[] = "SELECT id, created_at FROM intents ORDER BY id";
static const char SQL_AUDIT_BY_AGE[] = "SELECT id, at FROM audit ORDER BY id";

/* The old runs up to ?1 that nothing needs: a newer finished run of the
 * kind exists (so this is neither the newest nor the newest finished), and
 * an "ok" one is not the newest "ok" of its kind. */
static const char SQL_RUNS_PRUNABLE[] =
	"SELECT r.id, r.kind FROM runs r WHERE r.id <= ?1 AND r.started_at < ?2 "
	"AND EXISTS (SELECT 1 FROM runs n WHERE n.kind = r.kind AND n.id > r.id AND n.finished_at IS NOT NULL) "
	"AND (r.status <> 'ok' OR EXISTS (SELECT 1 FROM runs n WHERE n.kind = r.kind AND n.id > r.id "
	"AND n.status = 'ok')) ORDER BY r.id";
/* A run's per-tenant results that a newer result of the same kind for the
 * same tenant supersedes (run_tenants_by_tenant finds it). */
static const char SQL_RESULTS_DELETE[] =
	"DELETE FROM run_tenants WHERE run_id = ?1 AND EXISTS (SELECT 1 FROM run_tenants n "
	"JOIN runs r ON r.id = n.run_id WHERE n.tenant_id = run_tenants.tenant_id AND n.run_id > run_tenants.run_id "
	"AND r.kind = ?2)";
static const char SQL_RUN_DELETE[] =
	"DELETE FROM runs WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM run_tenants WHERE run_id = ?1)";
static const char SQL_INTENTS_DELETE[] =
	"DELETE FROM intents WHERE id <= ?1 AND created_at < ?2 AND state IN ('done', 'failed')";
static const char SQL_AUDIT_DELETE[] = "DELETE FROM audit WHERE id <= ?1 AND at < ?2";
/* The Secure Score days after (?1, ?4) (day, rowid) and before day ?2, in
 * that order (migration 13's index holds the rowid); and one day's control
 * scores removed when it still has any. */
static const char SQL_SCORE_DAYS[] =
	"SELECT rowid, day FROM secure_score_snapshots WHERE (day > ?1 OR (day = ?1 AND rowid > ?4)) AND day < ?2 "
	"ORDER BY day, rowid LIMIT ?3";
static const char SQL_SCORE_THIN[] =
	"UPDATE secure_score_snapshots SET controls = NULL, raw = CASE WHEN json_valid(raw) "
	"THEN json_remove(raw, '$.controlScores') ELSE raw END WHERE rowid = ?1 AND (controls IS NOT NULL "
	"OR CASE WHEN json_valid(raw) THEN json_type(raw, '$.controlScores') END IS NOT NULL)";
#define KV_SCORE_DETAIL_FROM "retention.score_detail.from"

/* The id of the last of the table's oldest rows whose time (column 1 of
 * sql) is before cutoff: the walk stops at the first row at or after it, or
 * after max rows (then *more). *last = 0 when the oldest row is young. */
static int old_prefix_end(struct store *st, const char *sql, const char *cutoff, long long max, long long *last,
                          bool *more, struct err *err)
{
	*last = 0;
	sqlite3_stmt *s = store_stmt(st, sql, err);
	if (!s) return -1;
	int rc, ret = 0;
	long long n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *at = col_borrow(s, 1);
		if (at && strcmp(at, cutoff) >= 0) break;
		if (n == max) {
			*more = true;
			break;
		}
		*last = sqlite3_column_int64(s, 0);
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) ret = store_sql_fail(s, err, "retention: reading old rows");
	store_sql_release(s);
	return ret;
}

struct old_run {
	long long id;
	char *kind;
};

/* The prunable runs up to last (SQL_RUNS_PRUNABLE) into a new array. */
static int runs_prunable(struct store *st, long long last, const char *cutoff, struct old_run **out, size_t *n,
                         struct err *err)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *s = store_stmt(st, SQL_RUNS_PRUNABLE, err);
	if (!s) return -1;
	sqlite3_bind_int64(s, 1, last);
	bind_text(s, 2, cutoff);
	size_t cap = 0;
	int rc, ret = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*out = xrealloc(*out, cap * sizeof **out);
		}
		(*out)[(*n)++] = (struct old_run){ .id = sqlite3_column_int64(s, 0), .kind = col_dup(s, 1) };
	}
	if (rc != SQLITE_DONE) ret = store_sql_fail(s, err, "retention: choosing runs");
	store_sql_release(s);
	return ret;
}

/* Deletes the prunable old runs' superseded results, then each run left
 * with none; stops once max results are gone. */
static int prune_runs(struct store *st, const char *cutoff, long long max, struct store_pruned *out,
                      struct err *err)
{
	int rc = -1;
	struct old_run *runs = NULL;
	size_t n = 0;
	long long last;
	if (old_prefix_end(st, SQL_RUNS_BY_AGE, cutoff, max, &last, &out->more, err) != 0) goto out;
	if (!last) {
		rc = 0;
		goto out;
	}
	if (runs_prunable(st, last, cutoff, &runs, &n, err) != 0) goto out;
	for (size_t i = 0; i < n; i++) {
		if (out->run_tenants >= max) {
			out->more = true;
			break;
		}
		sqlite3_stmt *s = store_stmt(st, SQL_RESULTS_DELETE, err);
		if (!s) goto out;
		sqlite3_bind_int64(s, 1, runs[i].id);
		bind_text(s, 2, runs[i].kind);
		if (store_sql_run(s, err, "retention: deleting run results") != 0) goto out;
		out->run_tenants += sqlite3_changes64(store_sqlite(st));
		if (!(s = store_stmt(st, SQL_RUN_DELETE, err))) goto out;
		sqlite3_bind_int64(s, 1, runs[i].id);
		if (store_sql_run(s, err, "retention: deleting runs") != 0) goto out;
		out->runs += sqlite3_changes64(store_sqlite(st));
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++) free(runs[i].kind);
	free(runs);
	return rc;
}

/* Deletes the old prefix of a table (by_age) with del (?1 = its last id,
 * ?2 = the cutoff); *deleted gets the count. */
static int prune_prefix(struct store *st, const char *by_age, const char *del, const char *cutoff, long long max,
                        long long *deleted, bool *more, struct err *err)
{
	long long last;
	if (old_prefix_end(st, by_age, cutoff, max, &last, more, err) != 0) return -1;
	if (!last) return 0;
	sqlite3_stmt *s = store_stmt(st, del, err);
	if (!s) return -1;
	sqlite3_bind_int64(s, 1, last);
	bind_text(s, 2, cutoff);
	if (store_sql_run(s, err, "retention: deleting old rows") != 0) return -1;
	*deleted = sqlite3_changes64(store_sqlite(st));
	return 0;
}

/* Removes the control scores of the Secure Score days before cutoff_day,
 * after the (day, rowid) the last call stopped at (kv: "DAY ROWID"), at most
 * max rows; the next call resumes after the last row seen. */
static int thin_scores(struct store *st, const char *cutoff_day, long long max, struct store_pruned *out,
                       struct err *err)
{
	int rc = -1;
	char *from = NULL, *last_day = NULL;
	long long *rowids = NULL;
	size_t n = 0;
	long long after = 0, last_rowid = 0;
	int got = store_kv_get(st, KV_SCORE_DETAIL_FROM, &from, err);
	if (got < 0) goto out;
	char *sp = from ? strchr(from, ' ') : NULL;
	if (sp) {
		*sp = '\0';
		after = strtoll(sp + 1, NULL, 10);
	}
	sqlite3_stmt *s = store_stmt(st, SQL_SCORE_DAYS, err);
	if (!s) goto out;
	bind_text(s, 1, from ? from : "");
	bind_text(s, 2, cutoff_day);
	sqlite3_bind_int64(s, 3, max);
	sqlite3_bind_int64(s, 4, after);
	size_t cap = 0;
	int step;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			rowids = xrealloc(rowids, cap * sizeof *rowids);
		}
		rowids[n++] = last_rowid = sqlite3_column_int64(s, 0);
		free(last_day);
		last_day = col_dup(s, 1);
	}
	if (step != SQLITE_DONE) {
		store_sql_fail(s, err, "retention: reading Secure Score days");
		store_sql_release(s);
		goto out;
	}
	store_sql_release(s);
	for (size_t i = 0; i < n; i++) {
		if (!(s = store_stmt(st, SQL_SCORE_THIN, err))) goto out;
		sqlite3_bind_int64(s, 1, rowids[i]);
		if (store_sql_run(s, err, "retention: thinning Secure Score days") != 0) goto out;
		out->score_days += sqlite3_changes64(store_sqlite(st));
	}
	/* all done before the cutoff day, or resume after the last row seen */
	bool bounded = (long long)n == max;
	if (bounded) out->more = true;
	char *next = bounded ? xasprintf("%s %lld", last_day, last_rowid) : xstrdup(cutoff_day);
	int put = store_kv_put(st, KV_SCORE_DETAIL_FROM, next, err);
	free(next);
	if (put != 0) goto out;
	rc = 0;
out:
	free(from);
	free(last_day);
	free(rowids);
	return rc;
}

/* The ISO-8601 time days before now. */
static void cutoff_of(double now, int days, char buf[32])
{
	time_iso8601(now - (double)days * 86400.0, buf, 32);
}

int store_prune(struct store *st, const struct store_retention *keep, double now, struct store_pruned *out,
                struct err *err)
{
	memset(out, 0, sizeof *out);
	if (keep->runs_days <= 0 && keep->audit_days <= 0 && keep->score_detail_days <= 0) return 0;
	long long max = keep->max_rows > 0 ? keep->max_rows : STORE_PRUNE_MAX_ROWS;
	if (store_begin(st, err) != 0) return -1;
	char cutoff[32];
	if (keep->runs_days > 0) {
		cutoff_of(now, keep->runs_days, cutoff);
		if (prune_runs(st, cutoff, max, out, err) != 0) goto fail;
		if (prune_prefix(st, SQL_INTENTS_BY_AGE, SQL_INTENTS_DELETE, cutoff, max, &out->intents, &out->more, err) != 0)
			goto fail;
	}
	if (keep->audit_days > 0) {
		cutoff_of(now, keep->audit_days, cutoff);
		if (prune_prefix(st, SQL_AUDIT_BY_AGE, SQL_AUDIT_DELETE, cutoff, max, &out->audit, &out->more, err) != 0)
			goto fail;
	}
	if (keep->score_detail_days > 0) {
		int days = keep->score_detail_days < STORE_SCORE_DETAIL_MIN_DAYS ? STORE_SCORE_DETAIL_MIN_DAYS
		                                                                   : keep->score_detail_days;
		cutoff_of(now, days, cutoff);
		cutoff[10] = '\0';   /* the day: "YYYY-MM-DD" */
		if (thin_scores(st, cutoff, max, out, err) != 0) goto fail;
	}
	if (keep->dry_run) {
		if (store_rollback(st, err) != 0) goto fail;
		return 0;
	}
	if (store_commit(st, err) != 0) goto fail;
	return 0;
fail:;
	struct err ignored;
	store_rollback(st, &ignored);
	memset(out, 0, sizeof *out);
	return -1;
}

int store_vacuum(struct store *st, long long *before, long long *after, struct err *err)
{
	long long free_bytes;
	*before = *after = 0;
	if (store_status_db_size(st, before, &free_bytes, err) != 0) return -1;
	if (sqlite3_exec(store_sqlite(st), "VACUUM", NULL, NULL, NULL) != SQLITE_OK)
		return err_set(err, "store: vacuum: %s", sqlite3_errmsg(store_sqlite(st)));
	/* the WAL holds the rewritten pages until they are copied back */
	if (sqlite3_wal_checkpoint_v2(store_sqlite(st), NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) != SQLITE_OK)
		return err_set(err, "store: checkpoint after vacuum: %s", sqlite3_errmsg(store_sqlite(st)));
	return store_status_db_size(st, after, &free_bytes, err);
}
