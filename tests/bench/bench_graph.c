/* bench_graph — the Graph client's CPU side of a pull: parsing /users/delta
 * pages (999 users of ~1 KB, as Graph sends them with the PSA $select) and
 * applying them to the mirror with their delta state, one transaction per
 * page (graph_delta_apply_page): a first round into an empty mirror, an
 * incremental round with 1% of users changed (changed properties only),
 * and a full resync (staged, then swapped). Target: >= 50,000 users/s
 * written to the mirror. The network side is bench_pull.sh. */
#include "bench.h"
#include "graph/graph.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TENANT "11111111-2222-3333-4444-555555555555"
#define PAGE 999
#define PAGES 50

static void add_user(struct buf *b, int i)
{
	buf_printf(b,
		"{\"id\":\"%08x-1d2e-4f50-8a6b-%012d\",\"displayName\":\"User %d Example-Surname\","
		"\"givenName\":\"User%d\",\"surname\":\"Example-Surname\",\"mail\":\"user%d@contoso.com\","
		"\"userPrincipalName\":\"user%d@contoso.onmicrosoft.com\",\"userType\":\"Member\",\"accountEnabled\":true,"
		"\"department\":\"Research\",\"officeLocation\":\"Building %d\",\"jobTitle\":\"Engineer\","
		"\"businessPhones\":[\"+1 425 555 %04d\"],\"mobilePhone\":\"+1 425 555 %04d\",\"streetAddress\":\"%d Main "
		"Street\",\"city\":\"Redmond\",\"state\":\"WA\",\"postalCode\":\"98052\",\"country\":\"United States\","
		"\"companyName\":\"Contoso Ltd\",\"employeeId\":\"E%06d\",\"onPremisesSyncEnabled\":null,"
		"\"createdDateTime\":\"2021-03-04T10:11:12Z\",\"assignedLicenses\":[{\"disabledPlans\":[],"
		"\"skuId\":\"c7df2760-2c81-4ef7-b578-5b5392b571df\"}]}",
		(unsigned)i, i, i, i, i, i, i % 40, i % 10000, (i + 7) % 10000, 100 + i % 900, i);
}

/* Page p of a full round (users p*PAGE ...), ending with a deltaLink when last. */
static char *full_page(int p, bool last)
{
	struct buf b = { 0 };
	buf_adds(&b, "{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#users\",");
	if (last) buf_printf(&b, "\"@odata.deltaLink\":\"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=D%d\",", p);
	else buf_printf(&b, "\"@odata.nextLink\":\"https://graph.microsoft.com/v1.0/users/delta?$skiptoken=S%d\",", p);
	buf_adds(&b, "\"value\":[");
	for (int i = 0; i < PAGE; i++) {
		if (i) buf_addc(&b, ',');
		add_user(&b, p * PAGE + i);
	}
	buf_adds(&b, "]}");
	return buf_steal(&b);
}

/* One incremental page: every 100th user changed (minimal: changed properties). */
static char *changes_page(int n_users)
{
	struct buf b = { 0 };
	buf_adds(&b, "{\"@odata.deltaLink\":\"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=INC\",\"value\":[");
	for (int i = 0, k = 0; i < n_users; i += 100, k++) {
		if (k) buf_addc(&b, ',');
		buf_printf(&b, "{\"id\":\"%08x-1d2e-4f50-8a6b-%012d\",\"jobTitle\":\"Senior Engineer\",\"department\":null}",
		           (unsigned)i, i);
	}
	buf_adds(&b, "]}");
	return buf_steal(&b);
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double g_cpu;  /* CPU seconds of the last apply calls, summed */

/* Applies text under the current state; returns wall seconds spent (parse +
 * apply) and adds the CPU seconds to g_cpu (robust on a busy machine). */
static double apply_tenant(struct store *st, const char *tenant, const char *text, long long *written)
{
	double t0 = time_mono(), c0 = cpu_now();
	struct err err;
	cJSON *page = cJSON_Parse(text);
	struct store_delta cur = { 0 };
	struct graph_delta_counts c = { 0 };
	bool complete;
	if (!page || store_delta_get(st, tenant, "users", &cur, &err) < 0 ||
	    graph_delta_apply_page_text(st, tenant, page, text, strlen(text), &cur, &c, &complete, &err) != 0) {
		fprintf(stderr, "bench_graph: %s\n", page ? err.msg : "page not JSON");
		exit(1);
	}
	store_delta_free(&cur);
	cJSON_Delete(page);
	*written += c.upserted;
	g_cpu += cpu_now() - c0;
	return time_mono() - t0;
}

static double apply(struct store *st, const char *text, long long *written)
{
	return apply_tenant(st, TENANT, text, written);
}

/* A fresh store in a new folder under /tmp (dir: its path, 40 bytes) with
 * tenant (unless NULL) in it, or NULL after a message. */
static struct store *bench_store_open(char dir[40], const char *tenant)
{
	snprintf(dir, 40, "/tmp/entrasync-bench-graph.XXXXXX");
	if (!mkdtemp(dir)) return NULL;
	char path[256];
	snprintf(path, sizeof path, "%s/bench.db", dir);
	struct store *st = NULL;
	struct err err;
	if (store_open(path, &st, &err) != 0 ||
	    (tenant && store_tenant_put(st, &(struct store_tenant){ .id = tenant }, &err) != 0)) {
		fprintf(stderr, "bench_graph: %s\n", err.msg);
		store_close(st);
		return NULL;
	}
	return st;
}

/* Closes st and removes its folder. */
static void bench_store_drop(struct store *st, const char *dir)
{
	store_close(st);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0) fprintf(stderr, "bench_graph: could not remove %s\n", dir);
}

BENCH(graph_delta_apply)
{
	char dir[40];
	struct store *st = bench_store_open(dir, TENANT);
	if (!st) return;
	struct err err;
	char **pages = calloc(PAGES, sizeof *pages);
	size_t bytes = 0;
	for (int p = 0; p < PAGES; p++) {
		pages[p] = full_page(p, p == PAGES - 1);
		bytes += strlen(pages[p]);
	}
	long long written = 0;
	double secs = 0;
	g_cpu = 0;
	for (int p = 0; p < PAGES; p++) secs += apply(st, pages[p], &written);
	char note[160];
	snprintf(note, sizeof note, "%lld users in %d pages of %d, %.0f B/user, %.2f s", written, PAGES, PAGE,
	         (double)bytes / (double)written, secs);
	bench_report("first round: users written/s (parse+merge+store)", (double)written / secs, "users/s", note);
	bench_report("first round: users written per CPU second", (double)written / g_cpu, "users/s", NULL);

	char *inc = changes_page(PAGES * PAGE);
	written = 0;
	secs = apply(st, inc, &written);
	snprintf(note, sizeof note, "%lld of %d users changed, %.1f ms", written, PAGES * PAGE, secs * 1000);
	bench_report("incremental 1%: users written/s", (double)written / secs, "users/s", note);
	free(inc);

	if (graph_delta_start_resync(st, TENANT, "https://graph.microsoft.com/v1.0/users/delta", &err) != 0) {
		fprintf(stderr, "bench_graph: %s\n", err.msg);
		return;
	}
	written = 0;
	secs = 0;
	g_cpu = 0;
	for (int p = 0; p < PAGES; p++) secs += apply(st, pages[p], &written);
	snprintf(note, sizeof note, "%lld users staged and swapped, %.2f s", written, secs);
	bench_report("full resync: users written/s (staged + swap)", (double)written / secs, "users/s", note);
	bench_report("full resync: users written per CPU second", (double)written / g_cpu, "users/s", NULL);

	for (int p = 0; p < PAGES; p++) free(pages[p]);
	free(pages);
	bench_store_drop(st, dir);
}

/* The shape of bench_pull.sh's first pull, without the network: 100
 * tenants of 999 users each (one page per tenant, ~1 KB a user) applied in
 * turn to one database, so the mirror grows to ~100,000 users and the
 * index pages no longer all sit in the cache. CPU per user is the figure
 * (the machine is shared). */
#define PULL_TENANTS 100
BENCH(graph_delta_pull_shape)
{
	char dir[40];
	struct store *st = bench_store_open(dir, NULL);
	if (!st) return;
	struct err err;
	char tenants[PULL_TENANTS][40];
	for (int t = 0; t < PULL_TENANTS; t++) {
		snprintf(tenants[t], sizeof tenants[t], "%08x-2222-4333-8444-%012d", (unsigned)(t * 2654435761u), t);
		if (store_tenant_put(st, &(struct store_tenant){ .id = tenants[t] }, &err) != 0) {
			fprintf(stderr, "bench_graph: %s\n", err.msg);
			bench_store_drop(st, dir);
			return;
		}
	}
	/* each tenant's page holds its own users (ids differ per tenant) */
	long long written = 0;
	double secs = 0;
	g_cpu = 0;
	for (int t = 0; t < PULL_TENANTS; t++) {
		char *page = full_page(t, true);
		secs += apply_tenant(st, tenants[t], page, &written);
		free(page);
	}
	char note[200];
	snprintf(note, sizeof note, "%lld users of %d tenants into one mirror, %.2f s wall, %.2f s CPU", written,
	         PULL_TENANTS, secs, g_cpu);
	bench_report("pull shape: users written per CPU second (parse+merge+store)", (double)written / g_cpu, "users/s",
	             note);
	bench_store_drop(st, dir);
}
