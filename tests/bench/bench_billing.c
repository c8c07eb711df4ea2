/* bench_billing — planning the billing of 1,000 tenants for one period
 * from a year of daily licence snapshots (6 SKUs a tenant: 2.19 million
 * rows): per tenant, the period's usage per SKU (peaks over the days) read
 * from the store and bill() called per SKU in the policy sandbox, lines
 * and bundles built. Target (issue 7): under 2 s for the 1,000 tenants.
 * Also the same as dry-run invoices (with the per-period invoice look-up).
 * No Syncro: catalog prices are left to the policy. */
#include "bench.h"
#include "billing/billing_run.h"
#include "store/store.h"
#include "store/store_billing.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TENANTS 1000
#define DAYS 365

static const struct { const char *id, *part; int base; } SKUS[] = {
	{ "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "SPB", 40 },
	{ "05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3", 25 },
	{ "efccb6f7-5641-4e0e-bd10-b4976e1bf68e", "EMS", 25 },
	{ "4b9405b0-7788-4568-add1-99614e613b69", "EXCHANGESTANDARD", 8 },
	{ "c5928f49-12ba-48f7-ada3-0d743a3601d5", "VISIOCLIENT", 3 },
	{ "f30db892-07e9-47e9-837c-80727f46fd3d", "FLOW_FREE", 60 },
};

static const char POLICY[] =
	"local price = { SPB = 22.00, EXCHANGESTANDARD = 4.00, VISIOCLIENT = 15.00 }\n"
	"return {\n"
	"  include = function() return true end,\n"
	"  bill = function(sku, t)\n"
	"    if sku.part == 'FLOW_FREE' then return false end\n"
	"    if sku.part == 'SPE_E3' or sku.part == 'EMS' then\n"      /* a bundle on one product */
	"      return { product_id = 777, name = 'Microsoft 365 E3 + EMS', unit_price = 36.00,\n"
	"               quantity = sku.peak_assigned }\n"
	"    end\n"
	"    local p = price[sku.part]\n"
	"    if not p then return nil end\n"
	"    return { name = sku.name, unit_price = p, quantity = math.max(sku.assigned, 5) }\n"
	"  end,\n"
	"}\n";

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes the year of snapshots straight into the database (one
 * transaction; setup, not measured). */
static int seed(const char *db, struct err *err)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	int rc = -1;
	if (sqlite3_open(db, &h) != SQLITE_OK ||
	    sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "INSERT INTO license_snapshots (tenant_id, day, sku_id, sku_part_number, enabled, "
	                          "consumed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &s, NULL) != SQLITE_OK) {
		err_set(err, "seed: %s", sqlite3_errmsg(h));
		goto out;
	}
	for (int t = 0; t < TENANTS; t++) {
		char tenant[64];
		snprintf(tenant, sizeof tenant, "tenant-%04d.example", t);
		for (int d = 0; d < DAYS; d++) {
			char day[32];
			time_t at = (time_t)1759276800 + (time_t)d * 86400;   /* from 2025-10-01 */
			struct tm tm;
			gmtime_r(&at, &tm);
			strftime(day, sizeof day, "%Y-%m-%d", &tm);
			for (size_t k = 0; k < ARRAY_LEN(SKUS); k++) {
				int enabled = SKUS[k].base + t % 7, consumed = enabled - 2 - (d + t) % 5;
				sqlite3_bind_text(s, 1, tenant, -1, SQLITE_TRANSIENT);
				sqlite3_bind_text(s, 2, day, -1, SQLITE_TRANSIENT);
				sqlite3_bind_text(s, 3, SKUS[k].id, -1, SQLITE_STATIC);
				sqlite3_bind_text(s, 4, SKUS[k].part, -1, SQLITE_STATIC);
				sqlite3_bind_int(s, 5, enabled);
				sqlite3_bind_int(s, 6, consumed < 0 ? 0 : consumed);
				if (sqlite3_step(s) != SQLITE_DONE) {
					err_set(err, "seed: %s", sqlite3_errmsg(h));
					goto out;
				}
				sqlite3_reset(s);
			}
		}
	}
	if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		err_set(err, "seed: %s", sqlite3_errmsg(h));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	sqlite3_close(h);
	return rc;
}

BENCH(billing_plan_1000_tenants)
{
	struct err err;
	char dir[] = "/tmp/entrasync-bench-billing-XXXXXX";
	if (!mkdtemp(dir)) return;
	char *db = xasprintf("%s/es.db", dir), *policy = xasprintf("%s/policy.lua", dir);
	struct store *st = NULL;
	struct store_billing *sb = NULL;
	struct billing_tenant *tenants = xcalloc(TENANTS, sizeof *tenants);
	char (*ids)[64] = xcalloc(TENANTS, sizeof *ids);
	FILE *f = fopen(policy, "w");
	if (!f) goto out;
	fputs(POLICY, f);
	fclose(f);
	if (store_open(db, &st, &err) != 0) goto fail;
	for (int t = 0; t < TENANTS; t++) {
		snprintf(ids[t], sizeof ids[t], "tenant-%04d.example", t);
		struct store_tenant row = { .id = ids[t], .name = ids[t] };
		if (store_tenant_put(st, &row, &err) != 0) goto fail;
		tenants[t] = (struct billing_tenant){ .id = ids[t], .name = ids[t], .customer_id = 1000 + t,
		                                      .policy = policy };
	}
	double s0 = time_mono();
	if (seed(db, &err) != 0) goto fail;
	printf("  (setup: %d tenants x %d days x %zu SKUs = %zu snapshot rows in %.1f s)\n", TENANTS, DAYS,
	       ARRAY_LEN(SKUS), (size_t)TENANTS * DAYS * ARRAY_LEN(SKUS), time_mono() - s0);
	if (store_billing_open(st, &sb, &err) != 0) goto fail;
	struct billing_period p;
	billing_period_parse("2026-03", &p, &err);

	/* 1. plans */
	struct billing_ctx c = { .sb = sb, .dry_run = true };
	long long lines = 0, cents = 0, unbilled = 0;
	double t0 = time_mono(), c0 = cpu_now();
	for (int t = 0; t < TENANTS; t++) {
		struct billing_plan plan;
		bool has;
		if (billing_plan_tenant(&c, &tenants[t], &p, &plan, &has, &err) != 0 || !has) {
			billing_plan_free(&plan);
			goto fail;
		}
		lines += (long long)plan.nlines;
		unbilled += (long long)billing_plan_unbilled(&plan);
		cents += billing_plan_total(&plan, NULL);
		billing_plan_free(&plan);
	}
	double wall = time_mono() - t0, cpu = cpu_now() - c0;
	char note[160], m[32];
	snprintf(note, sizeof note, "%lld lines, %s billed; %.3f s CPU; target < 2 s", lines, billing_money(cents, m), cpu);
	bench_report("plan 1,000 tenants, 1 month of a 1-year history", wall * 1e3, "ms", note);
	bench_report("  per tenant", wall / TENANTS * 1e6, "us", NULL);
	(void)unbilled;

	/* 2. the same as dry-run invoices (plus the invoice row look-up) */
	t0 = time_mono();
	long long drafts = 0;
	for (int t = 0; t < TENANTS; t++) {
		struct billing_invoice_result res;
		billing_invoice_tenant(&c, &tenants[t], &p, &res);
		drafts += res.status == BILLING_INV_DRAFT;
		billing_invoice_result_free(&res);
	}
	wall = time_mono() - t0;
	snprintf(note, sizeof note, "%lld drafts", drafts);
	bench_report("dry-run invoices, 1,000 tenants", wall * 1e3, "ms", note);
	billing_ctx_release(&c);
	goto out;
fail:
	fprintf(stderr, "bench_billing: %s\n", err.msg);
out:
	store_billing_close(sb);
	store_close(st);
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	for (size_t i = 0; i < ARRAY_LEN(suffixes); i++) {
		char *path = xasprintf("%s%s", db, suffixes[i]);
		unlink(path);
		free(path);
	}
	unlink(policy);
	rmdir(dir);
	free(db);
	free(policy);
	free(ids);
	free(tenants);
}
