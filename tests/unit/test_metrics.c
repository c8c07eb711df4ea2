/* test_metrics — the Prometheus file and the read queries behind it and
 * behind `status`: a store filled through the store API (runs with
 * per-tenant outcomes, audit rows, links, kv) rendered to text, checked
 * line by line; HTTP totals accumulated across runs; label escaping; the
 * atomic write (mode 0644, no temporary left, replaced whole); the
 * store_status queries (tenant overview with the latest pull and sync,
 * audit filters, user look-up, kv prefix). Also the schedule arithmetic of
 * the daemon and the stop flag. */
#include "t.h"
#include "face/cmd_daemon.h"
#include "http/http.h"
#include "report/metrics.h"
#include "util/progress.h"
#include "util/shutdown.h"
#include "store/store.h"
#include "store/store_status.h"
#include "t_sql.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define T1 "11111111-2222-3333-4444-555555555555"
#define T2 "contoso.example"

/* Two tenants, a pull run, two sync runs (T2 failed in the second), audit
 * rows, links, users. */
static int fill(struct store *st, struct err *err)
{
	long long run;
	struct store_tenant t1 = { .id = T1, .name = "Tenant \"One\"", .last_pull_at = "2026-01-01T10:00:00Z" };
	struct store_tenant t2 = { .id = T2, .name = "Contoso" };
	if (store_tenant_put(st, &t1, err) || store_tenant_put(st, &t2, err)) return -1;
	if (store_user_put(st, T1, "u1", "{\"displayName\":\"Ann Lee\",\"mail\":\"ann@one.example\","
	                   "\"userPrincipalName\":\"ann@one.example\"}", err) ||
	    store_user_put(st, T1, "u2", "{\"displayName\":\"Bob\",\"mail\":\"shared@one.example\","
	                   "\"userPrincipalName\":\"bob@one.example\"}", err) ||
	    store_user_put(st, T1, "u3", "{\"displayName\":\"Cy\",\"mail\":\"shared@one.example\","
	                   "\"userPrincipalName\":\"cy@one.example\"}", err) ||
	    store_user_put(st, T1, "u4", "{\"displayName\":\"Gone\"}", err) ||
	    store_user_mark_removed(st, T1, "u4", "deleted", err))
		return -1;
	struct store_link l = { .tenant_id = T1, .object_id = "u1", .contact_id = 11, .customer_id = 7 };
	if (store_link_put(st, &l, err)) return -1;
	if (store_run_begin(st, "pull", &run, err) || store_run_tenant_put(st, run, T1, "ok", "{\"users_present\":3}",
	                                                                  NULL, err) ||
	    store_run_finish(st, run, "ok", NULL, err))
		return -1;
	if (store_run_begin(st, "sync", &run, err) || store_run_tenant_put(st, run, T1, "ok", "{\"created\":1}", NULL, err) ||
	    store_run_tenant_put(st, run, T2, "ok", NULL, NULL, err) || store_run_finish(st, run, "ok", NULL, err))
		return -1;
	struct store_audit a = { .run_id = run, .tenant_id = T1, .object_id = "u1", .contact_id = 11, .action = "create",
	                         .after = "{\"name\":\"Ann Lee\"}", .actor = "entrasync", .result = "ok" };
	if (store_audit_append(st, &a, NULL, err)) return -1;
	a.action = "update";
	a.before = "{\"title\":\"A\"}";
	a.after = "{\"title\":\"B\"}";
	if (store_audit_append(st, &a, NULL, err)) return -1;
	a.result = "unprocessable: Email is not an email";
	if (store_audit_append(st, &a, NULL, err)) return -1;
	if (store_run_begin(st, "sync", &run, err) || store_run_tenant_put(st, run, T1, "held", NULL, "too many removals", err) ||
	    store_run_tenant_put(st, run, T2, "failed", NULL, "token: AADSTS700016", err) ||
	    store_run_finish(st, run, "partial", NULL, err))
		return -1;
	struct store_audit d = { .run_id = run, .tenant_id = T2, .object_id = "x", .contact_id = 12, .action = "create",
	                         .actor = "entrasync", .result = "dry-run" };
	return store_audit_append(st, &d, NULL, err);
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0')) return true;
	return false;
}

#define CHECK_LINE(text, line) do { if (!has_line(text, line)) \
	t_fail(__FILE__, __LINE__, "metrics lack the line: %s", line); } while (0)

TEST(metrics_render_from_store)
{
	struct err err;
	struct store *st = t_store_fresh("render");
	REQUIRE(st);
	REQUIRE_OK(fill(st, &err), &err);
	struct buf out = { 0 };
	struct metrics_extra extra = { .have_daemon = 1, .next_run_at = 1800000000, .runs_skipped = 2 };
	REQUIRE_OK(metrics_render(st, &extra, 1799999000.4, &out, &err), &err);
	const char *m = out.data;
	CHECK_LINE(m, "# TYPE entrasync_runs_total counter");
	CHECK_LINE(m, "entrasync_runs_total{kind=\"pull\",status=\"ok\"} 1");
	CHECK_LINE(m, "entrasync_runs_total{kind=\"sync\",status=\"ok\"} 1");
	CHECK_LINE(m, "entrasync_runs_total{kind=\"sync\",status=\"partial\"} 1");
	CHECK_LINE(m, "entrasync_last_run_success{kind=\"sync\"} 0");
	CHECK_LINE(m, "entrasync_last_run_success{kind=\"pull\"} 1");
	CHECK_CONTAINS(m, "entrasync_last_success_timestamp_seconds{kind=\"sync\"} 1");
	CHECK_CONTAINS(m, "entrasync_last_run_duration_seconds{kind=\"sync\"} ");
	CHECK_LINE(m, "entrasync_writes_total{action=\"create\",outcome=\"ok\"} 1");
	CHECK_LINE(m, "entrasync_writes_total{action=\"update\",outcome=\"ok\"} 1");
	CHECK_LINE(m, "entrasync_writes_total{action=\"update\",outcome=\"failed\"} 1");
	CHECK_LINE(m, "entrasync_writes_total{action=\"create\",outcome=\"dry_run\"} 1");
	CHECK_LINE(m, "entrasync_tenant_runs_total{kind=\"sync\",tenant=\"" T1 "\",status=\"held\"} 1");
	CHECK_LINE(m, "entrasync_tenant_failures_total{kind=\"sync\",tenant=\"" T2 "\"} 1");
	CHECK_LINE(m, "entrasync_tenant_failures_total{kind=\"sync\",tenant=\"" T1 "\"} 0");
	CHECK_LINE(m, "entrasync_tenant_failures_total{kind=\"pull\",tenant=\"" T1 "\"} 0");
	CHECK_LINE(m, "entrasync_tenant_info{tenant=\"" T1 "\",name=\"Tenant \\\"One\\\"\"} 1");
	CHECK_LINE(m, "entrasync_tenant_users_mirrored{tenant=\"" T1 "\"} 3");
	CHECK_LINE(m, "entrasync_tenant_contacts_linked{tenant=\"" T1 "\"} 1");
	CHECK_LINE(m, "entrasync_tenant_status{tenant=\"" T1 "\",status=\"held\"} 1");
	CHECK_LINE(m, "entrasync_tenant_status{tenant=\"" T1 "\",status=\"ok\"} 0");
	CHECK_LINE(m, "entrasync_tenant_status{tenant=\"" T2 "\",status=\"failed\"} 1");
	CHECK_LINE(m, "entrasync_daemon_next_run_timestamp_seconds 1800000000");
	CHECK_LINE(m, "entrasync_daemon_runs_skipped_total 2");
	CHECK_LINE(m, "entrasync_metrics_generated_timestamp_seconds 1799999000");
	/* the database's size, as SQLite counts it */
	sqlite3 *db = store_sqlite(st);
	char line[128];
	snprintf(line, sizeof line, "entrasync_database_bytes %lld",
	         raw_int(db, "SELECT c.page_count * s.page_size FROM pragma_page_count() c, pragma_page_size() s"));
	CHECK_LINE(m, line);
	CHECK(raw_int(db, "PRAGMA page_count") > 1);
	snprintf(line, sizeof line, "entrasync_database_free_bytes %lld",
	         raw_int(db, "SELECT f.freelist_count * s.page_size FROM pragma_freelist_count() f, pragma_page_size() s"));
	CHECK_LINE(m, line);
	/* every family's samples come right after its HELP and TYPE */
	CHECK(strstr(m, "# HELP entrasync_runs_total ") < strstr(m, "entrasync_runs_total{"));
	CHECK(!strstr(m, "http_requests"));   /* no HTTP totals recorded yet */
	CHECK(!strstr(m, "certificate"));     /* a client secret: no certificate line */
	/* a certificate's notAfter: one gauge, for an alert before it expires */
	buf_reset(&out);
	extra.cert_not_after = 1830000000;
	REQUIRE_OK(metrics_render(st, &extra, 1799999000.4, &out, &err), &err);
	CHECK_LINE(out.data, "# TYPE entrasync_graph_certificate_expiry_timestamp_seconds gauge");
	CHECK_LINE(out.data, "entrasync_graph_certificate_expiry_timestamp_seconds 1830000000");
	/* the newest pull or sync that reached a tenant (ok or held): T2's is the first sync */
	snprintf(line, sizeof line, "entrasync_tenant_last_success_timestamp_seconds{tenant=\"" T2 "\"} %lld",
	         raw_int(db, "SELECT strftime('%s', finished_at) FROM runs WHERE kind = 'sync' ORDER BY id LIMIT 1"));
	CHECK_LINE(out.data, line);
	snprintf(line, sizeof line, "entrasync_tenant_last_success_timestamp_seconds{tenant=\"" T1 "\"} %lld",
	         raw_int(db, "SELECT strftime('%s', finished_at) FROM runs WHERE kind = 'sync' ORDER BY id DESC LIMIT 1"));
	CHECK_LINE(out.data, line);
	/* a pull after the sync fails T1: its status is the pull's, the newest (a sync's used to win) */
	long long run;
	REQUIRE_OK(store_run_begin(st, "pull", &run, &err), &err);
	REQUIRE_OK(store_run_tenant_put(st, run, T1, "failed", NULL, "token: AADSTS7000222", &err), &err);
	REQUIRE_OK(store_run_finish(st, run, "failed", NULL, &err), &err);
	buf_reset(&out);
	REQUIRE_OK(metrics_render(st, &extra, 1799999000.4, &out, &err), &err);
	CHECK_LINE(out.data, "entrasync_tenant_status{tenant=\"" T1 "\",status=\"failed\"} 1");
	CHECK_LINE(out.data, "entrasync_tenant_status{tenant=\"" T1 "\",status=\"held\"} 0");
	CHECK_LINE(out.data, line);   /* the failed pull is no success */
	buf_free(&out);
	store_close(st);
}

TEST(metrics_http_totals_accumulate)
{
	struct err err;
	struct store *st = t_store_fresh("http");
	REQUIRE(st);
	struct metrics_http a = { .requests = 10, .attempts = 12, .throttled = 2, .failures = 1 };
	struct metrics_http b = { .requests = 5, .attempts = 5, .throttled = 1, .transport_errors = 3 };
	REQUIRE_OK(metrics_record_http(st, "graph", &a, &err), &err);
	REQUIRE_OK(metrics_record_http(st, "graph", &b, &err), &err);
	REQUIRE_OK(metrics_record_http(st, "syncro", &b, &err), &err);
	CHECK(metrics_record_http(st, "Bad Name", &b, &err) < 0);
	CHECK_CONTAINS(err.msg, "invalid service name");
	/* inside a caller's transaction it joins it (and rolls back with it) */
	REQUIRE_OK(store_begin(st, &err), &err);
	REQUIRE_OK(metrics_record_http(st, "syncro", &a, &err), &err);
	REQUIRE_OK(store_rollback(st, &err), &err);
	struct buf out = { 0 };
	REQUIRE_OK(metrics_render(st, NULL, 0, &out, &err), &err);
	CHECK_LINE(out.data, "entrasync_http_requests_total{service=\"graph\"} 15");
	CHECK_LINE(out.data, "entrasync_http_attempts_total{service=\"graph\"} 17");
	CHECK_LINE(out.data, "entrasync_http_throttled_total{service=\"graph\"} 3");
	CHECK_LINE(out.data, "entrasync_http_failures_total{service=\"graph\"} 1");
	CHECK_LINE(out.data, "entrasync_http_transport_errors_total{service=\"graph\"} 3");
	CHECK_LINE(out.data, "entrasync_http_requests_total{service=\"syncro\"} 5");
	CHECK(!strstr(out.data, "daemon"));   /* no daemon lines without extra */
	buf_free(&out);
	store_close(st);
}

TEST(metrics_label_escape)
{
	struct buf b = { 0 };
	metrics_label_escape("a\\b\"c\nd", &b);
	CHECK_STR(b.data, "a\\\\b\\\"c\\nd");
	buf_free(&b);
}

TEST(metrics_file_atomic)
{
	struct err err;
	struct store *st = t_store_fresh("file");
	REQUIRE(st);
	char path[600], tmp[700];
	snprintf(path, sizeof path, "%s/entrasync.prom", t_tmpdir());
	FILE *f = fopen(path, "w");
	REQUIRE(f);
	fputs("old content that must go entirely\n", f);
	fclose(f);
	mode_t old = umask(077);
	REQUIRE_OK(metrics_write_file(st, path, NULL, &err), &err);
	umask(old);
	struct stat sb;
	REQUIRE(stat(path, &sb) == 0);
	CHECK_EQ_INT(sb.st_mode & 0777, 0644);
	char *text = NULL;
	size_t len;
	REQUIRE_OK(file_read(path, &text, &len, &err), &err);
	CHECK(!strstr(text, "old content"));
	CHECK(str_starts(text, "# HELP entrasync_"));
	CHECK(text[len - 1] == '\n');
	free(text);
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	CHECK(access(tmp, F_OK) != 0);
	/* a folder that does not exist: an error naming the file, nothing left */
	snprintf(path, sizeof path, "%s/missing/entrasync.prom", t_tmpdir());
	CHECK(metrics_write_file(st, path, NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "missing/entrasync.prom");
	store_close(st);
}

struct collect {
	int n;
	char ids[8][64];
	char extra[8][128];
};

static int collect_tenant(const struct store_status_tenant *t, void *ud)
{
	struct collect *c = ud;
	snprintf(c->ids[c->n], sizeof c->ids[0], "%s", t->id);
	snprintf(c->extra[c->n], sizeof c->extra[0], "%lld/%lld/%lld pull=%s:%s sync=%s:%s", t->users_present,
	         t->users_removed, t->links, t->pull.status ? t->pull.status : "-",
	         t->pull.counts ? t->pull.counts : "-", t->sync.status ? t->sync.status : "-",
	         t->sync.reason ? t->sync.reason : "-");
	c->n++;
	return 0;
}

static int collect_audit(const struct store_audit *a, const char *user, void *ud)
{
	struct collect *c = ud;
	snprintf(c->ids[c->n], sizeof c->ids[0], "%lld:%s", a->contact_id, a->action);
	snprintf(c->extra[c->n], sizeof c->extra[0], "%s", user ? user : "-");
	c->n++;
	return 0;
}

TEST(store_status_queries)
{
	struct err err;
	struct store *st = t_store_fresh("status");
	REQUIRE(st);
	REQUIRE_OK(fill(st, &err), &err);

	struct collect c = { 0 };
	REQUIRE_OK(store_status_tenant_each(st, NULL, collect_tenant, &c, &err), &err);
	CHECK_EQ_INT(c.n, 2);
	CHECK_STR(c.ids[0], T1);     /* id order */
	CHECK_STR(c.extra[0], "3/1/1 pull=ok:{\"users_present\":3} sync=held:too many removals");
	CHECK_STR(c.extra[1], "0/0/0 pull=-:- sync=failed:token: AADSTS700016");
	memset(&c, 0, sizeof c);
	CHECK_EQ_INT(store_status_tenant_each(st, "nope", collect_tenant, &c, &err), STORE_NOTFOUND);

	struct store_status_audit_filter f = { .contact_id = 11 };
	REQUIRE_OK(store_status_audit_each(st, &f, collect_audit, &c, &err), &err);
	CHECK_EQ_INT(c.n, 3);
	CHECK_STR(c.ids[0], "11:create");
	CHECK_STR(c.extra[0], "Ann Lee");
	memset(&c, 0, sizeof c);
	f = (struct store_status_audit_filter){ .tenant_id = T2 };
	REQUIRE_OK(store_status_audit_each(st, &f, collect_audit, &c, &err), &err);
	CHECK_EQ_INT(c.n, 1);
	CHECK_STR(c.extra[0], "-");   /* user not in the mirror */
	memset(&c, 0, sizeof c);
	f = (struct store_status_audit_filter){ .limit = 2, .newest_first = true };
	REQUIRE_OK(store_status_audit_each(st, &f, collect_audit, &c, &err), &err);
	CHECK_EQ_INT(c.n, 2);
	CHECK_STR(c.ids[0], "12:create");
	memset(&c, 0, sizeof c);
	f = (struct store_status_audit_filter){ .since = "2999-01-01T00:00:00Z" };
	REQUIRE_OK(store_status_audit_each(st, &f, collect_audit, &c, &err), &err);
	CHECK_EQ_INT(c.n, 0);

	char *id = NULL;
	REQUIRE_OK(store_status_user_find(st, T1, "u1", &id, &err), &err);
	CHECK_STR(id, "u1");
	free(id);
	REQUIRE_OK(store_status_user_find(st, T1, "ANN@one.example", &id, &err), &err);
	CHECK_STR(id, "u1");
	free(id);
	REQUIRE_OK(store_status_user_find(st, T1, "bob@one.example", &id, &err), &err);
	CHECK_STR(id, "u2");
	free(id);
	CHECK(store_status_user_find(st, T1, "shared@one.example", &id, &err) < 0);
	CHECK_CONTAINS(err.msg, "matches several users");
	CHECK_CONTAINS(err.msg, "u2 (bob@one.example), u3 (cy@one.example)");
	CHECK_EQ_INT(store_status_user_find(st, T2, "u1", &id, &err), STORE_NOTFOUND);
	CHECK(id == NULL);

	store_close(st);
}

/* Each count the triggers keep (migration 11) checked against counting
 * the rows, and the rows' total against the counts' total. */
struct counted {
	sqlite3 *db;
	long long total;
	int rows;
};

static int check_tenant_run_count(const char *kind, const char *tenant_id, const char *status, long long n, void *ud)
{
	struct counted *c = ud;
	char sql[512];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM run_tenants t JOIN runs r ON r.id = t.run_id WHERE r.kind = '%s' "
	         "AND t.tenant_id = '%s' AND t.status = '%s'", kind, tenant_id, status);
	CHECK_EQ_INT(n, raw_int(c->db, sql));
	c->total += n;
	c->rows++;
	return 0;
}

static int check_write_count(const char *action, const char *outcome, long long n, void *ud)
{
	struct counted *c = ud;
	char sql[512];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM audit WHERE action = '%s' AND CASE WHEN result = 'ok' THEN 'ok' "
	         "WHEN result = 'dry-run' THEN 'dry_run' ELSE 'failed' END = '%s'", action, outcome);
	CHECK_EQ_INT(n, raw_int(c->db, sql));
	c->total += n;
	c->rows++;
	return 0;
}

static void check_counts(struct store *st, int tenant_rows, int write_rows)
{
	struct err err;
	struct counted c = { .db = store_sqlite(st) };
	REQUIRE_OK(store_status_tenant_run_counts(st, check_tenant_run_count, &c, &err), &err);
	CHECK_EQ_INT(c.total, raw_int(c.db, "SELECT count(*) FROM run_tenants t JOIN runs r ON r.id = t.run_id"));
	CHECK_EQ_INT(c.rows, tenant_rows);
	c = (struct counted){ .db = store_sqlite(st) };
	REQUIRE_OK(store_status_write_counts(st, check_write_count, &c, &err), &err);
	CHECK_EQ_INT(c.total, raw_int(c.db, "SELECT count(*) FROM audit"));
	CHECK_EQ_INT(c.rows, write_rows);
}

/* A run of kind with T2's outcome and reason, started at `at`. */
static void t2_run(struct store *st, const char *kind, const char *status, const char *reason, const char *at)
{
	struct err err;
	long long run;
	if (store_run_begin(st, kind, &run, &err) || store_run_tenant_put(st, run, T2, status, NULL, reason, &err) ||
	    store_run_finish(st, run, "ok", NULL, &err))
		t_fail(__FILE__, __LINE__, "%s", err.msg);
	char sql[200];
	snprintf(sql, sizeof sql, "UPDATE runs SET started_at = '%s', finished_at = '%s' WHERE id = %lld", at, at, run);
	if (sqlite3_exec(store_sqlite(st), sql, NULL, NULL, NULL) != SQLITE_OK) t_fail(__FILE__, __LINE__, "%s", sql);
}

TEST(store_status_failing_streak)
{
	struct err err;
	struct store *st = t_store_fresh("failing");
	REQUIRE(st);
	REQUIRE_OK(fill(st, &err), &err);   /* T1: its latest sync was held; T2: its latest sync failed */
	struct store_status_failing f;
	REQUIRE_OK(store_status_failing_get(st, T1, &f, &err), &err);
	CHECK_EQ_INT(f.runs, 0);            /* held: the tenant was reached */
	CHECK(f.since == NULL && f.reason == NULL);
	store_status_failing_free(&f);
	REQUIRE_OK(store_status_failing_get(st, "nope", &f, &err), &err);
	CHECK_EQ_INT(f.runs, 0);
	store_status_failing_free(&f);

	t2_run(st, "pull", "failed", "first reason", "2026-05-01T01:00:00Z");
	t2_run(st, "sync-dry-run", "ok", NULL, "2026-05-01T02:00:00Z");   /* dry runs do not count */
	t2_run(st, "sync", "failed", "latest reason", "2026-05-01T03:00:00Z");
	REQUIRE_OK(store_status_failing_get(st, T2, &f, &err), &err);
	CHECK_EQ_INT(f.runs, 3);            /* fill's failed sync, then these two */
	CHECK_STR(f.reason, "latest reason");
	REQUIRE(f.since);
	CHECK(strcmp(f.since, "2026-05-01T01:00:00Z") > 0);   /* fill's run, started now */
	store_status_failing_free(&f);

	t2_run(st, "pull", "ok", NULL, "2026-05-01T04:00:00Z");
	REQUIRE_OK(store_status_failing_get(st, T2, &f, &err), &err);
	CHECK_EQ_INT(f.runs, 0);            /* an ok pull ends it */
	store_status_failing_free(&f);
	t2_run(st, "sync", "failed", "again", "2026-05-01T05:00:00Z");
	t2_run(st, "pull", "failed", "and again", "2026-05-01T06:00:00Z");
	REQUIRE_OK(store_status_failing_get(st, T2, &f, &err), &err);
	CHECK_EQ_INT(f.runs, 2);
	CHECK_STR(f.since, "2026-05-01T05:00:00Z");
	CHECK_STR(f.reason, "and again");
	CHECK_STR(f.last_reached, "2026-05-01T04:00:00Z");   /* the ok pull before them: the last success */
	store_status_failing_free(&f);
	store_close(st);
}

TEST(store_status_counts_kept_by_triggers)
{
	struct err err;
	struct store *st = t_store_fresh("counts");
	REQUIRE(st);
	REQUIRE_OK(fill(st, &err), &err);
	/* pull/T1/ok, sync/T1/ok, sync/T2/ok, sync/T1/held, sync/T2/failed;
	 * create/ok, update/ok, update/failed, create/dry_run */
	check_counts(st, 5, 4);
	sqlite3 *db = store_sqlite(st);
	long long last = raw_int(db, "SELECT max(id) FROM runs");
	/* a run's tenant row upserted with another outcome: moved, not added */
	REQUIRE_OK(store_run_tenant_put(st, last, T1, "ok", NULL, NULL, &err), &err);
	check_counts(st, 4, 4);
	CHECK_EQ_INT(raw_int(db, "SELECT n FROM tenant_run_counts WHERE kind = 'sync' AND tenant_id = '" T1 "' AND "
	                         "status = 'ok'"), 2);
	/* finished runs by kind and outcome (migration 12), moved by a finish */
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM run_counts WHERE n > 0"),
	             raw_int(db, "SELECT count(DISTINCT kind || '/' || status) FROM runs WHERE status <> 'running'"));
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM run_counts"),
	             raw_int(db, "SELECT count(*) FROM runs WHERE status <> 'running'"));
	long long run_id = 0;
	REQUIRE_OK(store_run_begin(st, "pull", &run_id, &err), &err);
	long long finished = raw_int(db, "SELECT sum(n) FROM run_counts");
	REQUIRE_OK(store_run_finish(st, run_id, "partial", NULL, &err), &err);
	CHECK_EQ_INT(raw_int(db, "SELECT n FROM run_counts WHERE kind = 'pull' AND status = 'partial'"), 1);
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM run_counts"), finished + 1);
	REQUIRE_OK(store_run_finish(st, run_id, "ok", NULL, &err), &err);   /* moved, not added */
	CHECK_EQ_INT(raw_int(db, "SELECT n FROM run_counts WHERE kind = 'pull' AND status = 'partial'"), 0);
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM run_counts"), finished + 1);
	/* history deleted (runs with their tenant rows, an audit row): the
	 * counters never go down (migration 12; the retention deletes history) */
	long long tenant_runs = raw_int(db, "SELECT sum(n) FROM tenant_run_counts");
	long long writes = raw_int(db, "SELECT sum(n) FROM write_counts");
	long long runs = raw_int(db, "SELECT sum(n) FROM run_counts");
	CHECK_EQ_INT(sqlite3_exec(db, "DELETE FROM runs WHERE kind = 'pull'", NULL, NULL, NULL), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db, "DELETE FROM audit WHERE result = 'dry-run'", NULL, NULL, NULL), SQLITE_OK);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM run_tenants t JOIN runs r ON r.id = t.run_id"), 4);
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM tenant_run_counts"), tenant_runs);
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM write_counts"), writes);
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM run_counts"), runs);
	store_close(st);
}

static int count_kv(const char *key, const char *value, void *ud)
{
	(*(int *)ud)++;
	return strcmp(key, "daemon.pid") == 0 && strcmp(value, "42") == 0 ? 0 : -5;
}

TEST(store_status_kv_prefix)
{
	struct err err;
	struct store *st = t_store_fresh("kv");
	REQUIRE(st);
	REQUIRE_OK(store_kv_put(st, "daemon.pid", "42", &err), &err);
	REQUIRE_OK(store_kv_put(st, "daemonx", "no", &err), &err);
	REQUIRE_OK(store_kv_put(st, "other", "no", &err), &err);
	int n = 0;
	CHECK_EQ_INT(store_status_kv_each(st, "daemon.", count_kv, &n, &err), 0);
	CHECK_EQ_INT(n, 1);
	store_close(st);
}

TEST(daemon_next_slot)
{
	CHECK(daemon_next_slot(100, 10, 95) == 100);     /* before the first slot: the first */
	CHECK(daemon_next_slot(100, 10, 100) == 110);    /* on a slot: the next one */
	CHECK(daemon_next_slot(100, 10, 101) == 110);
	CHECK(daemon_next_slot(100, 10, 137.5) == 140);  /* late: skips, never shifts */
	CHECK(daemon_next_slot(0, 3600, 7200) == 10800);
}

TEST(daemon_lock_and_holder)
{
	struct err err;
	char db[600], lockfile[700];
	struct store_lock a = { 0 }, b = { 0 };
	snprintf(db, sizeof db, "%s/d.db", t_tmpdir());
	snprintf(lockfile, sizeof lockfile, "%s.daemon.lock", db);
	CHECK_EQ_INT(daemon_lock_holder(lockfile), 0);          /* no file */
	REQUIRE_OK(daemon_lock_acquire(db, &a, &err), &err);
	CHECK(access(lockfile, F_OK) == 0);
	CHECK(daemon_lock_acquire(db, &b, &err) < 0);
	CHECK_CONTAINS(err.msg, "another entrasync daemon");
	store_lock_release(&a);
	CHECK_EQ_INT(daemon_lock_holder(lockfile), 0);          /* file, not locked */
	REQUIRE_OK(daemon_lock_acquire(db, &b, &err), &err);
	store_lock_release(&b);
}

TEST(shutdown_flag)
{
	/* raise() runs the handler synchronously: the first SIGTERM only sets the flag */
	shutdown_install();
	CHECK(!shutdown_requested());
	raise(SIGTERM);
	CHECK(shutdown_requested());
	CHECK_EQ_INT(shutdown_signal(), SIGTERM);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	shutdown_reset();
	CHECK(!shutdown_requested());
}

TEST(progress_line)
{
	char b[256];
	progress_format(b, sizeof b, "sync", 0, 12, 0, 0, 1.2);
	CHECK_STR(b, "sync: 0/12 tenants, 0 requests, 0 writes, 1s");
	progress_format(b, sizeof b, "sync", 3, 12, 1234, 56, 42);
	CHECK_STR(b, "sync: 3/12 tenants, 1234 requests, 56 writes, 42s, about 2:06 left");
	progress_format(b, sizeof b, "sync", 1, 1, 1, 1, 3725);
	CHECK_STR(b, "sync: 1/1 tenant, 1 request, 1 write, 1:02:05");
	/* off when asked, whatever the terminal */
	setenv("ENTRASYNC_PROGRESS", "0", 1);
	CHECK(progress_new("sync", 3) == NULL);
	unsetenv("ENTRASYNC_PROGRESS");
	progress_update(NULL, 1, 2, 3);   /* NULL-safe */
	progress_finish(NULL);
}

TEST(metrics_record_service)
{
	struct err err;
	struct store *st = t_store_fresh("service");
	REQUIRE(st);
	struct http_engine *e = http_engine_new(NULL, &err);
	REQUIRE(e);
	struct http_service *svc = http_service_add(e, &(struct http_service_opts){ .name = "syncro" }, &err);
	REQUIRE(svc);
	REQUIRE_OK(metrics_record_service(st, svc, NULL, &err), &err);
	char *v = NULL;
	REQUIRE_OK(store_kv_get(st, "metrics.http.syncro.requests", &v, &err), &err);
	CHECK_STR(v, "0");
	free(v);
	/* the same service's requests in other processes (the pull's workers) are added */
	struct http_counters more = { .submitted = 7, .attempts = 9, .throttled = 2, .failures = 1, .transport_errors = 1 };
	REQUIRE_OK(metrics_record_service(st, svc, &more, &err), &err);
	REQUIRE_OK(store_kv_get(st, "metrics.http.syncro.requests", &v, &err), &err);
	CHECK_STR(v, "7");
	free(v);
	REQUIRE_OK(store_kv_get(st, "metrics.http.syncro.throttled", &v, &err), &err);
	CHECK_STR(v, "2");
	free(v);
	http_engine_free(e);
	store_close(st);
}
