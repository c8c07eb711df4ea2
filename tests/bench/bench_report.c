/* bench_report — report generation over 1,000 tenants x 365 days of history
 * (365,000 Secure Score days, 1,095,000 licence rows: 3 SKUs a tenant a
 * day; 20 users holding licences per tenant): build + render of each
 * report, wall time. Target: each under 2 s. The history is written
 * straight into the store's tables (one transaction) to keep the set-up
 * short; the reports read it through the normal path. */
#include "bench.h"
#include "report.h"
#include "store.h"
#include "store_snapshots.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NTENANTS 1000
#define NDAYS 365
#define NUSERS 20

static const char *const sku_ids[3] = { "05e9a617-0261-4cee-bb44-138d3ef5d965", "efccb6f7-5641-4e0e-bd10-b4976e1bf68e",
                                        "f30db892-07e9-47e9-837c-80727f46fd3d" };
static const char *const sku_parts[3] = { "SPE_E3", "EMS", "FLOW_FREE" };

/* Fills the store at path with the history; 0 on success. */
static int populate(const char *path, struct store *st)
{
	struct err err;
	for (int t = 0; t < NTENANTS; t++) {
		char id[64], name[64];
		snprintf(id, sizeof id, "%08d-0000-4000-8000-000000000000", t);
		snprintf(name, sizeof name, "Tenant %04d", t);
		if (store_tenant_put(st, &(struct store_tenant){ .id = id, .name = name }, &err) != 0) return -1;
	}
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK) return -1;
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	sqlite3_stmt *ss, *ls, *us;
	sqlite3_prepare_v2(db, "INSERT INTO secure_score_snapshots VALUES (?1, ?2, ?3, ?4, "
	                   "'[{\"basis\":\"AllTenants\",\"averageScore\":42.5}]', '[]')", -1, &ss, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO license_snapshots VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, 0, ?7, 'Enabled', 'User')",
	                   -1, &ls, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO users VALUES (?1, ?2, ?3, NULL, NULL, '2025-01-01T00:00:00Z')", -1, &us, NULL);
	for (int t = 0; t < NTENANTS; t++) {
		char id[64];
		snprintf(id, sizeof id, "%08d-0000-4000-8000-000000000000", t);
		for (int d = 0; d < NDAYS; d++) {
			struct tm tm = { .tm_year = 124, .tm_mon = 0, .tm_mday = 1 + d, .tm_hour = 12 };
			time_t tt = timegm(&tm);
			gmtime_r(&tt, &tm);
			char day[11];
			strftime(day, sizeof day, "%Y-%m-%d", &tm);
			sqlite3_bind_text(ss, 1, id, -1, SQLITE_STATIC);
			sqlite3_bind_text(ss, 2, day, -1, SQLITE_STATIC);
			sqlite3_bind_double(ss, 3, 30 + (t % 40) + (d % 30) * 0.5);
			sqlite3_bind_double(ss, 4, 97);
			sqlite3_step(ss);
			sqlite3_reset(ss);
			for (int k = 0; k < 3; k++) {
				sqlite3_bind_text(ls, 1, id, -1, SQLITE_STATIC);
				sqlite3_bind_text(ls, 2, day, -1, SQLITE_STATIC);
				sqlite3_bind_text(ls, 3, sku_ids[k], -1, SQLITE_STATIC);
				sqlite3_bind_text(ls, 4, sku_parts[k], -1, SQLITE_STATIC);
				sqlite3_bind_int64(ls, 5, k == 2 ? 10000 : 25 + t % 10);
				sqlite3_bind_int64(ls, 6, (t % 17 == 0 && k == 1) ? 3 : 0);
				sqlite3_bind_int64(ls, 7, k == 2 ? 5 : 20 + (d + t) % 8 + (t % 23 == 0 ? 20 : 0));
				sqlite3_step(ls);
				sqlite3_reset(ls);
			}
		}
		for (int u = 0; u < NUSERS; u++) {
			char oid[64], json[400];
			snprintf(oid, sizeof oid, "%08d-1111-4000-8000-%012d", t, u);
			snprintf(json, sizeof json, "{\"userPrincipalName\":\"user%d@t%d.example\",\"displayName\":\"User %d\","
			         "\"accountEnabled\":%s,\"assignedLicenses\":[{\"skuId\":\"%s\"},{\"skuId\":\"%s\"}]}",
			         u, t, u, u == 3 ? "false" : "true", sku_ids[0], sku_ids[1]);
			sqlite3_bind_text(us, 1, id, -1, SQLITE_STATIC);
			sqlite3_bind_text(us, 2, oid, -1, SQLITE_STATIC);
			sqlite3_bind_text(us, 3, json, -1, SQLITE_STATIC);
			sqlite3_step(us);
			sqlite3_reset(us);
		}
	}
	sqlite3_finalize(ss);
	sqlite3_finalize(ls);
	sqlite3_finalize(us);
	int rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	sqlite3_close(db);
	return rc;
}

/* Builds and renders one report; returns wall seconds (or -1), bytes in
 * *size, CPU seconds of the process in *cpu (the machine may be shared). */
static double one(struct store *st, enum report_kind kind, enum report_format fmt, bool by_user, size_t *size,
                  double *cpu)
{
	struct err err;
	struct report_opts o = { .kind = kind, .format = fmt, .by_user = by_user };
	struct report *r = NULL;
	struct buf out = {0};
	struct timespec a, b, ca, cb;
	clock_gettime(CLOCK_MONOTONIC, &a);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
	if (report_build(st, &o, NULL, &r, &err) != 0 || report_render(r, &o, &out, &err) != 0) {
		fprintf(stderr, "bench_report: %s\n", err.msg);
		report_free(r);
		buf_free(&out);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
	*cpu = (double)(cb.tv_sec - ca.tv_sec) + (double)(cb.tv_nsec - ca.tv_nsec) / 1e9;
	*size = out.len;
	report_free(r);
	buf_free(&out);
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

BENCH(report_1000_tenants_365_days)
{
	char dir[] = "/tmp/entrasync-bench-report.XXXXXX";
	if (!mkdtemp(dir)) return;
	char path[256];
	snprintf(path, sizeof path, "%s/es.db", dir);
	struct err err;
	struct store *st = NULL;
	if (store_open(path, &st, &err) != 0 || populate(path, st) != 0) {
		fprintf(stderr, "bench_report: set-up failed\n");
		store_close(st);
		return;
	}
	static const struct { const char *name; enum report_kind kind; enum report_format fmt; bool by_user; } cases[] = {
		{ "report_securescore_table", REPORT_SECURESCORE, REPORT_TABLE, false },
		{ "report_securescore_csv_365k_rows", REPORT_SECURESCORE, REPORT_CSV, false },
		{ "report_securescore_json", REPORT_SECURESCORE, REPORT_JSON, false },
		{ "report_licenses_table", REPORT_LICENSES, REPORT_TABLE, false },
		{ "report_licenses_csv_by_user", REPORT_LICENSES, REPORT_CSV, true },
		{ "report_findings_table", REPORT_FINDINGS, REPORT_TABLE, false },
		{ "report_html_everything", REPORT_SECURESCORE, REPORT_HTML, false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t size = 0;
		double cpu = 0;
		double s = one(st, cases[i].kind, cases[i].fmt, cases[i].by_user, &size, &cpu);
		char note[128];
		snprintf(note, sizeof note, "wall; CPU %.2f s; 1,000 tenants x 365 days, %.1f MB out; target < 2 s", cpu,
		         (double)size / 1e6);
		if (s >= 0) bench_report(cases[i].name, s, "s", note);
	}
	store_close(st);
	if (getenv("BENCH_REPORT_KEEP")) {      /* to look at the database afterwards */
		fprintf(stderr, "bench_report: kept %s\n", path);
		return;
	}
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0) fprintf(stderr, "bench_report: could not remove %s\n", dir);
}
