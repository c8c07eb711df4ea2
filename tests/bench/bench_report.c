/* bench_report — report generation over 1,000 tenants x 365 days of history
 * (365,000 Secure Score days, 1,095,000 licence rows: 3 SKUs a tenant a
 * day; 20 users holding licences per tenant): build + render of every
 * report kind (licenses, securescore, findings; licenses --by-user) in
 * every format, and the billing reconciliation (`bill --report`) of the
 * last month in every format. Each case prints wall seconds with the CPU
 * seconds of the process in the note (the machine may be shared).
 * Target: each under 2 s. The history is written straight into the store's
 * tables (one transaction, day by day as daily pulls write it) to keep the
 * set-up short; the reports read it through the normal path.
 *
 * BENCH_REPORT_DB=path keeps the database there and reuses it on the next
 * run (set-up skipped: useful under callgrind); BENCH_REPORT_CASE=text
 * runs only the cases whose name contains text; BENCH_REPORT_OUT=dir writes
 * each case's output to dir/NAME.out (to compare before and after a change). */
#include "bench.h"
#include "billing/billing_run.h"
#include "report/report.h"
#include "store/store.h"
#include "store/store_billing.h"
#include "store/store_snapshots.h"

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
	sqlite3_prepare_v2(db, "INSERT INTO secure_score_snapshots (tenant_id, day, current_score, max_score, averages, "
	                   "controls) VALUES (?1, ?2, ?3, ?4, "
	                   "'[{\"basis\":\"AllTenants\",\"averageScore\":42.5}]', '[]')", -1, &ss, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO license_snapshots (tenant_id, day, sku_id, sku_part_number, enabled, "
	                   "suspended, warning, locked_out, consumed, capability_status, applies_to) "
	                   "VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, 0, ?7, 'Enabled', 'User')",
	                   -1, &ls, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO users (tenant_id, object_id, json, updated_at) "
	                   "VALUES (?1, ?2, ?3, '2025-01-01T00:00:00Z')", -1, &us, NULL);
	/* day by day, every tenant's rows of the day: the order daily pulls write them in */
	for (int d = 0; d < NDAYS; d++) {
		struct tm tm = { .tm_year = 124, .tm_mon = 0, .tm_mday = 1 + d, .tm_hour = 12 };
		time_t tt = timegm(&tm);
		gmtime_r(&tt, &tm);
		char day[11];
		strftime(day, sizeof day, "%Y-%m-%d", &tm);
		for (int t = 0; t < NTENANTS; t++) {
			char id[64];
			snprintf(id, sizeof id, "%08d-0000-4000-8000-000000000000", t);
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
	}
	for (int t = 0; t < NTENANTS; t++) {
		char id[64];
		snprintf(id, sizeof id, "%08d-0000-4000-8000-000000000000", t);
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

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes a case's output under $BENCH_REPORT_OUT, when set. */
static void case_output(const char *name, const char *data, size_t len)
{
	const char *dir = bench_env("BENCH_REPORT_OUT");
	if (!dir) return;
	char *path = xasprintf("%s/%s.out", dir, name);
	FILE *f = fopen(path, "w");
	if (!f || fwrite(data, 1, len, f) != len) fprintf(stderr, "bench_report: cannot write %s\n", path);
	if (f) fclose(f);
	free(path);
}

static void case_report(const char *name, double wall, double cpu, size_t size)
{
	char note[128];
	snprintf(note, sizeof note, "wall; CPU %.2f s; 1,000 tenants x 365 days, %.1f MB out; target < 2 s", cpu,
	         (double)size / 1e6);
	bench_report(name, wall, "s", note);
}

/* Builds and renders one report, prints its line. */
static void one(struct store *st, const char *name, enum report_kind kind, enum report_format fmt, bool by_user)
{
	struct err err;
	struct report_opts o = { .kind = kind, .format = fmt, .by_user = by_user };
	struct report *r = NULL;
	struct buf out = {0};
	double w0 = time_mono(), c0 = cpu_now();
	if (report_build(st, &o, NULL, &r, &err) != 0 || report_render(r, &o, &out, &err) != 0) {
		fprintf(stderr, "bench_report: %s\n", err.msg);
	} else {
		double wall = time_mono() - w0, cpu = cpu_now() - c0;
		case_report(name, wall, cpu, out.len);
		case_output(name, out.data, out.len);
	}
	report_free(r);
	buf_free(&out);
}

static const char BILL_POLICY[] =
	"return {\n"
	"  include = function() return true end,\n"
	"  bill = function(sku, t)\n"
	"    if sku.part == 'FLOW_FREE' then return false end\n"
	"    if sku.part == 'SPE_E3' then return { name = sku.name, unit_price = 33.00, quantity = sku.peak_assigned } end\n"
	"    return nil\n"                              /* EMS: no price, a leak */
	"  end,\n"
	"}\n";

/* The billing reconciliation of 2024-12 (the history's last month), built
 * once per format (the build is most of it) and written to memory. */
static void billing_cases(struct store *st, const char *dir, const char *only)
{
	static const char *const formats[] = { "table", "csv", "json", "html" };
	struct err err;
	struct store_billing *sb = NULL;
	struct billing_tenant *tenants = xcalloc(NTENANTS, sizeof *tenants);
	char (*ids)[64] = xcalloc(NTENANTS, sizeof *ids), (*names)[64] = xcalloc(NTENANTS, sizeof *names);
	char *policy = xasprintf("%s/bill.lua", dir);
	FILE *f = fopen(policy, "w");
	if (!f || fputs(BILL_POLICY, f) < 0 || fclose(f) != 0 || store_billing_open(st, &sb, &err) != 0) {
		fprintf(stderr, "bench_report: billing set-up failed\n");
		goto out;
	}
	for (int t = 0; t < NTENANTS; t++) {
		snprintf(ids[t], sizeof ids[t], "%08d-0000-4000-8000-000000000000", t);
		snprintf(names[t], sizeof names[t], "Tenant %04d", t);
		tenants[t] = (struct billing_tenant){ .id = ids[t], .name = names[t], .customer_id = 1000 + t,
		                                      .policy = policy };
	}
	struct billing_period p;
	billing_period_parse("2024-12", &p, &err);
	for (size_t i = 0; i < ARRAY_LEN(formats); i++) {
		char name[64];
		snprintf(name, sizeof name, "report_billing_%s", formats[i]);
		if (only && !strstr(name, only)) continue;
		struct billing_ctx c = { .sb = sb, .dry_run = true };
		struct billing_report rep;
		char *text = NULL;
		size_t size = 0;
		double w0 = time_mono(), c0 = cpu_now();
		FILE *mem = open_memstream(&text, &size);
		int rc = mem ? billing_report_build(&c, tenants, NTENANTS, &p, &rep, &err) : -1;
		if (rc == 0) rc = billing_report_write(mem, &rep, formats[i], &err);
		if (mem) fclose(mem);
		double wall = time_mono() - w0, cpu = cpu_now() - c0;
		if (rc == 0) case_report(name, wall, cpu, size);
		if (rc == 0) case_output(name, text, size);
		else fprintf(stderr, "bench_report: %s: %s\n", name, mem ? err.msg : "open_memstream");
		if (rc == 0 || mem) billing_report_free(&rep);
		billing_ctx_release(&c);
		free(text);
	}
out:
	store_billing_close(sb);
	unlink(policy);
	free(policy);
	free(names);
	free(ids);
	free(tenants);
}

/* Has the database at path the bench's history already? */
static bool populated(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *s = NULL;
	bool yes = false;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM secure_score_snapshots", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		yes = sqlite3_column_int64(s, 0) == (long long)NTENANTS * NDAYS;
	sqlite3_finalize(s);
	sqlite3_close(db);
	return yes;
}

BENCH(report_1000_tenants_365_days)
{
	const char *keep = bench_env("BENCH_REPORT_DB"), *only = bench_env("BENCH_REPORT_CASE");
	char dir[] = "/tmp/entrasync-bench-report.XXXXXX";
	if (!mkdtemp(dir)) return;
	char path[512];
	snprintf(path, sizeof path, "%s", keep ? keep : "");
	if (!keep) snprintf(path, sizeof path, "%s/es.db", dir);
	bool reuse = keep && access(path, F_OK) == 0 && populated(path);
	struct err err;
	struct store *st = NULL;
	double s0 = time_mono();
	if (store_open(path, &st, &err) != 0 || (!reuse && populate(path, st) != 0)) {
		fprintf(stderr, "bench_report: set-up failed\n");
		store_close(st);
		return;
	}
	printf("  (setup: %s in %.1f s)\n", reuse ? "reused " : "populated", time_mono() - s0);
	static const struct { const char *name; enum report_kind kind; enum report_format fmt; bool by_user; } cases[] = {
		{ "report_securescore_table", REPORT_SECURESCORE, REPORT_TABLE, false },
		{ "report_securescore_csv_365k_rows", REPORT_SECURESCORE, REPORT_CSV, false },
		{ "report_securescore_json", REPORT_SECURESCORE, REPORT_JSON, false },
		{ "report_securescore_html", REPORT_SECURESCORE, REPORT_HTML, false },
		{ "report_licenses_table", REPORT_LICENSES, REPORT_TABLE, false },
		{ "report_licenses_csv", REPORT_LICENSES, REPORT_CSV, false },
		{ "report_licenses_json", REPORT_LICENSES, REPORT_JSON, false },
		{ "report_licenses_html", REPORT_LICENSES, REPORT_HTML, false },
		{ "report_licenses_table_by_user", REPORT_LICENSES, REPORT_TABLE, true },
		{ "report_licenses_csv_by_user", REPORT_LICENSES, REPORT_CSV, true },
		{ "report_licenses_json_by_user", REPORT_LICENSES, REPORT_JSON, true },
		{ "report_licenses_html_by_user", REPORT_LICENSES, REPORT_HTML, true },
		{ "report_findings_table", REPORT_FINDINGS, REPORT_TABLE, false },
		{ "report_findings_csv", REPORT_FINDINGS, REPORT_CSV, false },
		{ "report_findings_json", REPORT_FINDINGS, REPORT_JSON, false },
		{ "report_findings_html", REPORT_FINDINGS, REPORT_HTML, false },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (!only || strstr(cases[i].name, only)) one(st, cases[i].name, cases[i].kind, cases[i].fmt, cases[i].by_user);
	billing_cases(st, dir, only);
	store_close(st);
	if (keep) fprintf(stderr, "bench_report: kept %s\n", path);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0) fprintf(stderr, "bench_report: could not remove %s\n", dir);
}
