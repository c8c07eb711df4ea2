/* bench_store — store throughput: mirror upserts of realistic ~1 KB Graph
 * user JSON in transactions of one delta page (999 users), first as new
 * rows, then as replays (unchanged) and as changes; and a full-resync
 * staging + swap. Target: >= 50,000 users/s for the first figure. */
#include "bench.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Writes PAGES pages of PAGE users with rev; returns users per second or -1. */
static double upsert_pages(struct store *st, int rev)
{
	struct err err;
	struct buf json = {0};
	char oid[64];
	double t0 = time_mono();
	for (int p = 0; p < PAGES; p++) {
		if (store_begin(st, &err)) goto fail;
		for (int k = 0; k < PAGE; k++) {
			int i = p * PAGE + k;
			make_user(&json, i, rev);
			snprintf(oid, sizeof oid, "%08x-1d2e-4f50-8a6b-%012d", (unsigned)i, i);
			if (store_user_put(st, BENCH_TENANT, oid, json.data, &err)) goto fail;
		}
		if (store_commit(st, &err)) goto fail;
	}
	double dt = time_mono() - t0;
	buf_free(&json);
	return PAGES * PAGE / dt;
fail:
	fprintf(stderr, "bench_store: %s\n", err.msg);
	buf_free(&json);
	return -1;
}

/* Stages a full round (PAGE-sized transactions) and swaps it in. */
static double resync(struct store *st, double *swap_seconds)
{
	struct err err;
	struct buf json = {0};
	char oid[64];
	long long removed = 0;
	double t0 = time_mono();
	if (store_mirror_stage_clear(st, BENCH_TENANT, &err)) goto fail;
	for (int p = 0; p < PAGES; p++) {
		if (store_begin(st, &err)) goto fail;
		for (int k = 0; k < PAGE; k++) {
			int i = p * PAGE + k;
			make_user(&json, i, 2);
			snprintf(oid, sizeof oid, "%08x-1d2e-4f50-8a6b-%012d", (unsigned)i, i);
			if (store_mirror_stage_put(st, BENCH_TENANT, oid, json.data, &err)) goto fail;
		}
		if (store_commit(st, &err)) goto fail;
	}
	double t1 = time_mono();
	if (store_mirror_swap(st, BENCH_TENANT, &removed, &err)) goto fail;
	double t2 = time_mono();
	*swap_seconds = t2 - t1;
	buf_free(&json);
	return PAGES * PAGE / (t2 - t0);
fail:
	fprintf(stderr, "bench_store: %s\n", err.msg);
	buf_free(&json);
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

BENCH(store_mirror_upsert)
{
	struct err err;
	const char *base = bench_env("TESTS_TMP");
	char *dir = xasprintf("%s/bench-store-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		free(dir);
		return;
	}
	char *path = xasprintf("%s/entrasync.db", dir);
	struct store *st = NULL;
	if (store_open(path, &st, &err)) {
		fprintf(stderr, "bench_store: %s\n", err.msg);
		goto out;
	}
	struct store_tenant t = { .id = BENCH_TENANT, .name = "Contoso" };
	if (store_tenant_put(st, &t, &err)) {
		fprintf(stderr, "bench_store: %s\n", err.msg);
		goto out;
	}
	struct buf sample = {0};
	make_user(&sample, 12345, 0);
	char note[128];
	snprintf(note, sizeof note, "%d x %d-user pages, %zu-byte JSON, WAL, synchronous=NORMAL", PAGES, PAGE,
	         sample.len);
	buf_free(&sample);

	double v = upsert_pages(st, 0);
	if (v > 0) bench_report("mirror upsert, new users", v, "users/s", note);
	v = upsert_pages(st, 0);
	if (v > 0) bench_report("mirror upsert, replayed (unchanged)", v, "users/s", NULL);
	v = upsert_pages(st, 1);
	if (v > 0) bench_report("mirror upsert, changed users", v, "users/s", NULL);
	double swap_s = 0;
	v = resync(st, &swap_s);
	if (v > 0) {
		bench_report("full resync (stage + swap)", v, "users/s", NULL);
		bench_report("  of which the swap transaction", swap_s * 1000, "ms", "99,900 users");
	}
out:
	store_close(st);
	remove_db(dir, path);
	free(path);
	free(dir);
}
