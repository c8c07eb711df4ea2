/* bench_store — store throughput: mirror upserts of realistic ~1 KB Graph
 * user JSON in transactions of one delta page (999 users), first as new
 * rows, then as replays (unchanged) and as changes; and a full-resync
 * staging + swap. Target: >= 50,000 users/s for the first figure. */
#include "bench.h"
#include "store/store.h"
#include "store/store_retention.h"
#include "store/store_snapshots.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_TENANT "11111111-2222-3333-4444-555555555555"
#define PAGE 999
#define PAGES 100

/* One Graph user as /users/delta returns it with a typical $select: about
 * 1 KB. rev changes the fields that a change would touch. */
static void make_user(struct buf *b, int i, int rev)
{
	buf_reset(b);
	buf_printf(b,
		"{\"id\":\"%08x-1d2e-4f50-8a6b-%012d\",\"displayName\":\"User %d Example-Surname\","
		"\"givenName\":\"User%d\",\"surname\":\"Example-Surname\",\"userPrincipalName\":\"user%d@contoso.onmicrosoft.com\","
		"\"mail\":\"user%d@contoso.com\",\"jobTitle\":\"%s\",\"department\":\"%s\",\"companyName\":\"Contoso Ltd\","
		"\"officeLocation\":\"Building %d, floor %d\",\"mobilePhone\":\"+1 425 555 %04d\","
		"\"businessPhones\":[\"+1 425 555 %04d\"],\"streetAddress\":\"%d Main Street\",\"city\":\"Redmond\","
		"\"state\":\"WA\",\"postalCode\":\"98052\",\"country\":\"United States\",\"usageLocation\":\"US\","
		"\"preferredLanguage\":\"en-US\",\"accountEnabled\":true,\"employeeId\":\"E%06d\","
		"\"createdDateTime\":\"2021-03-04T10:11:12Z\",\"onPremisesSyncEnabled\":null,"
		"\"assignedLicenses\":[{\"disabledPlans\":[\"a82fbf69-b4d7-49f4-83a6-915b2cf354f4\"],"
		"\"skuId\":\"c7df2760-2c81-4ef7-b578-5b5392b571df\"},{\"disabledPlans\":[],"
		"\"skuId\":\"f30db892-07e9-47e9-837c-80727f46fd3d\"}],"
		"\"proxyAddresses\":[\"SMTP:user%d@contoso.com\",\"smtp:user%d@contoso.onmicrosoft.com\"],"
		"\"manager\":{\"id\":\"%08x-aaaa-4bbb-8ccc-000000000001\"}}",
		(unsigned)i, i, i, i, i, i, rev ? "Senior Engineer" : "Engineer", rev ? "Platform" : "Research",
		i % 40, i % 7, i % 10000, (i + rev) % 10000, 100 + i % 900, i, i, i, (unsigned)(i / 50));
}

/* CPU seconds of this process (user + system): a steadier figure than
 * wall time when the machine is shared. */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One page of users, generated before the clock starts: the figures are
 * the store's, not snprintf's. */
struct page {
	struct buf json[PAGE];
	char oid[PAGE][48];
};

static void make_page(struct page *pg, int p, int rev)
{
	for (int k = 0; k < PAGE; k++) {
		int i = p * PAGE + k;
		make_user(&pg->json[k], i, rev);
		snprintf(pg->oid[k], sizeof pg->oid[k], "%08x-1d2e-4f50-8a6b-%012d", (unsigned)i, i);
	}
}

static void free_page(struct page *pg)
{
	for (int k = 0; k < PAGE; k++) buf_free(&pg->json[k]);
	free(pg);
}

/* Writes PAGES pages of PAGE users with rev, each page one transaction,
 * through put (store_user_put or store_mirror_stage_put). Returns the
 * wall seconds spent in the store, or -1; *cpu (optional) gets the CPU
 * seconds. */
static double write_pages(struct store *st, int rev,
                          int (*put)(struct store *, const char *, const char *, const char *, struct err *),
                          double *cpu)
{
	struct err err;
	struct page *pg = xcalloc(1, sizeof *pg);
	double spent = 0, cpu_spent = 0;
	for (int p = 0; p < PAGES; p++) {
		make_page(pg, p, rev);
		double t0 = time_mono(), c0 = cpu_now();
		if (store_begin(st, &err)) goto fail;
		for (int k = 0; k < PAGE; k++)
			if (put(st, BENCH_TENANT, pg->oid[k], pg->json[k].data, &err)) goto fail;
		if (store_commit(st, &err)) goto fail;
		spent += time_mono() - t0;
		cpu_spent += cpu_now() - c0;
	}
	free_page(pg);
	if (cpu) *cpu = cpu_spent;
	return spent;
fail:
	fprintf(stderr, "bench_store: %s\n", err.msg);
	free_page(pg);
	return -1;
}

/* Users per (wall) second of a mirror upsert pass, or -1; *per_cpu
 * (optional) gets users per CPU second. */
static double upsert_pages(struct store *st, int rev, double *per_cpu)
{
	double cpu = 0;
	double s = write_pages(st, rev, store_user_put, &cpu);
	if (per_cpu) *per_cpu = cpu > 0 ? PAGES * PAGE / cpu : -1;
	return s > 0 ? PAGES * PAGE / s : -1;
}

/* A full resync: stages a round and swaps it in. Users per second of the
 * whole, or -1; *swap_seconds gets the swap's share. */
static double resync(struct store *st, double *swap_seconds)
{
	struct err err;
	long long removed = 0;
	if (store_mirror_stage_clear(st, BENCH_TENANT, &err)) goto fail;
	double staging = write_pages(st, 2, store_mirror_stage_put, NULL);
	if (staging < 0) return -1;
	double t0 = time_mono();
	if (store_mirror_swap(st, BENCH_TENANT, &removed, &err)) goto fail;
	*swap_seconds = time_mono() - t0;
	return PAGES * PAGE / (staging + *swap_seconds);
fail:
	fprintf(stderr, "bench_store: %s\n", err.msg);
	return -1;
}

static void remove_db(const char *dir, const char *path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	for (size_t i = 0; i < ARRAY_LEN(suffixes); i++) {
		char *p = xasprintf("%s%s", path, suffixes[i]);
		unlink(p);
		free(p);
	}
	rmdir(dir);
}

/* Opens a fresh database with the bench tenant in a new folder under
 * $TESTS_TMP (or /tmp); *dir and *path are new strings for remove_db. */
static struct store *fresh_store(char **dir, char **path)
{
	struct err err;
	const char *base = bench_env("TESTS_TMP");
	struct store *st = NULL;
	*dir = xasprintf("%s/bench-store-XXXXXX", base ? base : "/tmp");
	*path = NULL;
	if (!mkdtemp(*dir)) {
		perror("bench_store: mkdtemp");
		return NULL;
	}
	*path = xasprintf("%s/entrasync.db", *dir);
	struct store_tenant t = { .id = BENCH_TENANT, .name = "Contoso" };
	if (store_open(*path, &st, &err) || store_tenant_put(st, &t, &err)) {
		fprintf(stderr, "bench_store: %s\n", err.msg);
		store_close(st);
		return NULL;
	}
	return st;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

#define REPEATS 3

/* The machine may be shared: the headline figure is the median of REPEATS
 * runs, each on a fresh database; the other figures come from the first. */
BENCH(store_mirror_upsert)
{
	double fresh[REPEATS], fresh_cpu[REPEATS];
	int nfresh = 0;
	for (int rep = 0; rep < REPEATS; rep++) {
		char *dir = NULL, *path = NULL;
		struct store *st = fresh_store(&dir, &path);
		if (st) {
			double per_cpu = -1;
			double v = upsert_pages(st, 0, &per_cpu);
			if (v > 0) {
				fresh_cpu[nfresh] = per_cpu;
				fresh[nfresh++] = v;
			}
			if (rep == 0 && v > 0) {
				v = upsert_pages(st, 0, NULL);
				if (v > 0) bench_report("mirror upsert, replayed (unchanged)", v, "users/s", NULL);
				v = upsert_pages(st, 1, NULL);
				if (v > 0) bench_report("mirror upsert, changed users", v, "users/s", NULL);
				double swap_s = 0;
				v = resync(st, &swap_s);
				if (v > 0) {
					bench_report("full resync, all changed (stage + swap)", v, "users/s", NULL);
					bench_report("  of which the swap transaction", swap_s * 1000, "ms", "99,900 users");
				}
			}
		}
		store_close(st);
		if (path) remove_db(dir, path);
		free(path);
		free(dir);
	}
	if (!nfresh) return;
	qsort(fresh, (size_t)nfresh, sizeof fresh[0], cmp_double);
	qsort(fresh_cpu, (size_t)nfresh, sizeof fresh_cpu[0], cmp_double);
	struct buf sample = {0};
	make_user(&sample, 12345, 0);
	char note[200];
	snprintf(note, sizeof note, "median of %d, min %.0f; %d x %d-user pages, %zu-byte JSON; target 50000", nfresh,
	         fresh[0], PAGES, PAGE, sample.len);
	buf_free(&sample);
	bench_report("mirror upsert, new users", fresh[nfresh / 2], "users/s", note);
	bench_report("mirror upsert, new users, per CPU second", fresh_cpu[nfresh / 2], "users/s",
	             "median; store CPU time only, steadier on a shared machine");
}

#define PRUNE_TENANTS 1000
#define SCORE_CONTROLS 80

/* One Secure Score day as Graph sends it, with SCORE_CONTROLS control
 * scores of the size real ones have (~330 bytes each: a description and
 * the undocumented extra keys): ~27 KB. */
static void make_score_day(struct buf *b, const char *tenant, const char *day)
{
	buf_reset(b);
	buf_printf(b, "{\"id\":\"%s_%s\",\"azureTenantId\":\"%s\",\"activeUserCount\":0,\"createdDateTime\":"
	           "\"%sT00:05:00Z\",\"currentScore\":301.5,\"enabledServices\":[\"HasExchange\",\"HasSharePoint\"],"
	           "\"licensedUserCount\":150,\"maxScore\":697.0,\"averageComparativeScores\":[{\"basis\":"
	           "\"AllTenants\",\"averageScore\":37.0}],\"controlScores\":[", tenant, day, tenant, day);
	for (int c = 0; c < SCORE_CONTROLS; c++)
		buf_printf(b, "%s{\"controlCategory\":\"Identity\",\"controlName\":\"Control%03d\",\"description\":"
		           "\"Requiring multi-factor authentication (MFA) for all accounts with privileged roles makes it "
		           "harder for attackers to access accounts.\",\"score\":%d.5,\"scoreInPercentage\":44.44,"
		           "\"count\":\"4\",\"total\":\"9\",\"implementationStatus\":\"You have 4 of 9 users protected\","
		           "\"IsApplicable\":\"true\",\"lastSynced\":\"%sT00:05:00Z\"}", c ? "," : "", c, c % 10, day);
	buf_printf(b, "],\"vendorInformation\":{\"provider\":\"SecureScore\",\"vendor\":\"Microsoft\"}}");
}

/* The daily cost of thinning Secure Score days: one day of every tenant
 * past the 365-day retention (what the first run of each day finds). */
static int score_days_thin(struct store *st, char tenants[][40], struct err *err)
{
	struct buf raw = {0};
	int rc = -1;
	char day[32];
	time_iso8601(time_now() - 400 * 86400.0, day, sizeof day);
	day[10] = '\0';
	if (store_begin(st, err)) goto out;
	for (int t = 0; t < PRUNE_TENANTS; t++) {
		struct store_tenant tn = { .id = tenants[t] };
		make_score_day(&raw, tenants[t], day);
		struct store_secure_score sc = { .tenant_id = tenants[t], .day = day, .current_score = 301.5,
		                                 .max_score = 697, .raw = raw.data };
		if (store_tenant_put(st, &tn, err) || store_secure_score_put(st, &sc, err)) goto out;
	}
	if (store_commit(st, err)) goto out;
	struct store_retention keep = { .score_detail_days = 365 };
	struct store_pruned p;
	double t0 = cpu_now(), w0 = time_now();
	if (store_prune(st, &keep, time_now(), &p, err)) goto out;
	double wall = time_now() - w0;
	sqlite3_stmt *q = NULL;
	double after = -1;
	if (sqlite3_prepare_v2(store_sqlite(st), "SELECT avg(length(raw)) FROM secure_score_snapshots", -1, &q, NULL) ==
	        SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
		after = sqlite3_column_double(q, 0);
	sqlite3_finalize(q);
	char note[200];
	snprintf(note, sizeof note, "%.3f s wall; %lld days of %zu bytes (%d control scores) to %.0f bytes", wall,
	         p.score_days, raw.len, SCORE_CONTROLS, after);
	bench_report("retention, one day's Secure Score of 1,000 tenants thinned", (cpu_now() - t0) * 1000, "ms CPU",
	             note);
	rc = 0;
out:
	buf_free(&raw);
	return rc;
}
#define PRUNE_RUNS 200
#define PRUNE_OLD_RUNS 150

/* Retention (store_prune) on a year's worth of hourly runs' shape: 200
 * sync runs of 1,000 tenants (200,000 per-tenant results with the counts
 * JSON a sync writes), the first 150 aged past the 90-day retention. The
 * figures: the first call (bounded at STORE_PRUNE_MAX_ROWS results), the
 * calls until done, and a call that finds nothing old (every later run). */
BENCH(store_prune)
{
	struct err err;
	char *dir = NULL, *path = NULL;
	struct store *st = fresh_store(&dir, &path);
	if (!st) goto out;
	char tenants[PRUNE_TENANTS][40];
	for (int t = 0; t < PRUNE_TENANTS; t++) snprintf(tenants[t], sizeof tenants[t], "%08x-0000-4000-8000-%012d", t, t);
	const char *counts = "{\"customer_id\":1234567,\"created\":0,\"adopted\":0,\"updated\":2,\"removed\":0,"
	                     "\"marked\":0,\"unchanged\":148,\"kept\":0,\"conflicts\":0,\"held\":0,\"errors\":0,"
	                     "\"writes\":2,\"users_present\":150,\"seconds\":0.412345}";
	for (int r = 0; r < PRUNE_RUNS; r++) {
		long long run_id = 0;
		if (store_run_begin(st, "sync", &run_id, &err) || store_begin(st, &err)) goto fail;
		for (int t = 0; t < PRUNE_TENANTS; t++)
			if (store_run_tenant_put(st, run_id, tenants[t], "ok", counts, NULL, &err)) goto fail;
		if (store_run_finish(st, run_id, "ok", NULL, &err) || store_commit(st, &err)) goto fail;
	}
	char sql[160];
	snprintf(sql, sizeof sql, "UPDATE runs SET started_at = '2001-01-01T00:00:00Z' WHERE id <= %d", PRUNE_OLD_RUNS);
	if (sqlite3_exec(store_sqlite(st), sql, NULL, NULL, NULL) != SQLITE_OK) {
		err_set(&err, "aging runs: %s", sqlite3_errmsg(store_sqlite(st)));
		goto fail;
	}
	struct store_retention keep = { .runs_days = 90 };
	struct store_pruned p;
	double t0 = cpu_now(), w0 = time_now();
	if (store_prune(st, &keep, time_now(), &p, &err)) goto fail;
	double first_cpu = cpu_now() - t0, first_wall = time_now() - w0;
	long long results = p.run_tenants;
	int calls = 1;
	while (p.more && calls < 10) {
		if (store_prune(st, &keep, time_now(), &p, &err)) goto fail;
		results += p.run_tenants;
		calls++;
	}
	char note[160];
	snprintf(note, sizeof note, "%.3f s wall; %lld results in %d calls of 200,000 (%d runs x %d tenants)",
	         first_wall, results, calls, PRUNE_RUNS, PRUNE_TENANTS);
	bench_report("retention, first call (100,000 old run results deleted)", first_cpu * 1000, "ms CPU", note);
	/* before the calls below: they set where thinning resumes to the cutoff */
	if (score_days_thin(st, tenants, &err) != 0) goto fail;
	enum { IDLE = 200 };
	keep = (struct store_retention){ .runs_days = 90, .score_detail_days = 365 };   /* the defaults */
	t0 = cpu_now();
	for (int i = 0; i < IDLE; i++)
		if (store_prune(st, &keep, time_now(), &p, &err)) goto fail;
	bench_report("retention, a run with nothing old", (cpu_now() - t0) / IDLE * 1e6, "us CPU",
	             "mean of 200 calls with the default retention: what every hourly run pays");
	goto out;
fail:
	fprintf(stderr, "bench_store: %s\n", err.msg);
out:
	store_close(st);
	if (path) remove_db(dir, path);
	free(path);
	free(dir);
}
