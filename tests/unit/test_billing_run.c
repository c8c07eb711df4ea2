/* test_billing_run — the billing runs against the fake Syncro
 * (tests/fakes/fake_syncro.py with its demo data, started once here and
 * reset before each test) over a store seeded through the store API:
 * one invoice per tenant and period, idempotence and drift, dry runs that
 * send nothing, a crash at every write point recovered without a second
 * invoice (and a crash loop), lost answers settled in the same run,
 * refused creates retried, schedules kept in step with audit rows, the
 * decrease guard, products no longer billed, and the reconciliation. */
#include "t.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "billing/billing_run.h"
#include "http/http.h"
#include "store/store.h"
#include "store/store_billing.h"
#include "store/store_snapshots.h"
#include "syncro/syncro.h"
#include "syncro/syncro_billing.h"

#define KEY "sk-billing-test-4f1e9a0c27d3"
#define SPB   "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
#define EXO   "4b9405b0-7788-4568-add1-99614e613b69"
#define VISIO "c5928f49-12ba-48f7-ada3-0d743a3601d5"
#define FLOW  "f30db892-07e9-47e9-837c-80727f46fd3d"
#define BASIC "3b555118-da6a-4418-894f-7df1e2096870"

/* ---- the fake Syncro ------------------------------------------------------------ */

static int g_port;        /* 0 = not started, -1 = cannot start */
static pid_t g_pid;

static void fake_kill(void)
{
	if (g_pid > 0) kill(g_pid, SIGTERM);
}

/* Starts the fake in the background through the shell (demo data, no
 * rate limit); false (tests skip) when it cannot run. */
static bool fake_started(void)
{
	if (g_port) return g_port > 0;
	g_port = -1;
	const char *script = t_env("FAKE_SYNCRO") ? t_env("FAKE_SYNCRO") : "tests/fakes/fake_syncro.py";
	char dir[600], cmd[4096];
	snprintf(dir, sizeof dir, "%s/billing-fake", t_tmpdir());
	snprintf(cmd, sizeof cmd, "command -v python3 >/dev/null && test -r '%s' && mkdir -p '%s' && "
	         "{ python3 '%s' --port 0 --port-file '%s/port' --api-key " KEY " --data demo --rate-limit 0 "
	         ">/dev/null 2>&1 & echo $! > '%s/pid'; }", script, dir, script, dir, dir);
	if (system(cmd) != 0) return false;
	for (int i = 0; i < 200 && g_port <= 0; i++) {
		char path[700];
		snprintf(path, sizeof path, "%s/port", dir);
		FILE *f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%d", &g_port) != 1) g_port = -1;
			fclose(f);
		}
		if (g_port <= 0) usleep(25000);
	}
	char path[700];
	snprintf(path, sizeof path, "%s/pid", dir);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%d", &g_pid) != 1) g_pid = 0;
		fclose(f);
	}
	atexit(fake_kill);
	return g_port > 0;
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	buf_add(ud, p, size * n);
	return size * n;
}

/* A call to the fake's control API; the answer parsed into *out (may be
 * NULL). Returns the HTTP status. */
static long ctl(const char *method, const char *path, const char *json, cJSON **out)
{
	char url[600];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/_fake/%s", g_port, path);
	struct buf body = {0};
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *c = curl_easy_init();
	long status = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	if (json) curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (out) *out = cJSON_Parse(body.data ? body.data : "");
	buf_free(&body);
	return status;
}

/* Writes applied by the fake since the last reset, all kinds. */
static long long fake_writes(void)
{
	cJSON *r = NULL;
	ctl("GET", "stats", NULL, &r);
	long long n = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "requests"),
	                                                      "writes")) n += (long long)it->valuedouble;
	cJSON_Delete(r);
	return n;
}

/* The fake's invoices of a customer with a note mentioning the period. */
static cJSON *invoices_of(long long customer, const char *period)
{
	cJSON *r = NULL, *out = cJSON_CreateArray();
	ctl("GET", "state?kind=invoices", NULL, &r);
	cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "invoices")) {
		const cJSON *note = cJSON_GetObjectItemCaseSensitive(it, "note");
		if ((long long)cJSON_GetObjectItemCaseSensitive(it, "customer_id")->valuedouble == customer &&
		    cJSON_IsString(note) && strstr(note->valuestring, period))
			cJSON_AddItemToArray(out, cJSON_Duplicate(it, 1));
	}
	cJSON_Delete(r);
	return out;
}

/* Quantity (x100) of the line with product (or item name) on an invoice
 * or schedule JSON, summed over duplicates; *count gets how many. */
static long long line_qty(const cJSON *rec, const char *list, long long product, const char *item, int *count)
{
	long long q = 0;
	*count = 0;
	const cJSON *li;
	cJSON_ArrayForEach(li, cJSON_GetObjectItemCaseSensitive(rec, list)) {
		const cJSON *pid = cJSON_GetObjectItemCaseSensitive(li, "product_id");
		const cJSON *nm = cJSON_GetObjectItemCaseSensitive(li, item ? (strcmp(list, "lines") ? "item" : "name") : "x");
		bool hit = product ? cJSON_IsNumber(pid) && (long long)pid->valuedouble == product
		                   : cJSON_IsString(nm) && strcmp(nm->valuestring, item) == 0;
		if (!hit) continue;
		const cJSON *qv = cJSON_GetObjectItemCaseSensitive(li, "quantity");
		q += (long long)(100 * (cJSON_IsString(qv) ? atof(qv->valuestring) : qv->valuedouble) + 0.5);
		(*count)++;
	}
	return q;
}

static cJSON *schedule_301(void)
{
	cJSON *r = NULL;
	ctl("GET", "state?kind=schedules", NULL, &r);
	cJSON *it, *out = NULL;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "schedules"))
		if ((long long)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble == 301) out = cJSON_Duplicate(it, 1);
	cJSON_Delete(r);
	return out;
}

/* ---- the store ------------------------------------------------------------------- */

struct sku_seed {
	const char *id, *part;
	long long enabled, consumed;
	int peak_day;               /* 0 = none */
	long long peak;
};

/* Writes a snapshot for every day of September 2026 for the tenant. */
static int seed_month(const char *db, const char *tenant, const struct sku_seed *s, size_t n, struct err *err)
{
	struct store *st = NULL;
	if (store_open(db, &st, err) != 0) return -1;
	struct store_tenant t = { .id = tenant, .name = tenant };
	int rc = store_tenant_put(st, &t, err);
	struct store_license rows[8];
	for (int d = 1; rc == 0 && d <= 30; d++) {
		char day[32];
		snprintf(day, sizeof day, "2026-09-%02d", d);
		for (size_t i = 0; i < n; i++)
			rows[i] = (struct store_license){ .sku_id = s[i].id, .sku_part_number = s[i].part,
			                                  .enabled = s[i].enabled,
			                                  .consumed = d == s[i].peak_day ? s[i].peak : s[i].consumed };
		rc = store_license_snapshot_put(st, tenant, day, rows, n, err);
	}
	store_close(st);
	return rc;
}

static const struct sku_seed CONTOSO[] = {
	{ SPB, "SPB", 25, 20, 11, 22 },
	{ EXO, "EXCHANGESTANDARD", 5, 3, 0, 0 },
	{ VISIO, "VISIOCLIENT", 2, 2, 0, 0 },
	{ FLOW, "FLOW_FREE", 10000, 14, 0, 0 },
};
static const struct sku_seed FABRIKAM[] = { { BASIC, "O365_BUSINESS_ESSENTIALS", 12, 10, 0, 0 } };

static const char POLICY[] =
	"return {\n"
	"  include = function() return true end,\n"
	"  bill = function(sku, t)\n"
	"    if sku.part == 'SPB' then return { product_id = 503, quantity = sku.peak_assigned } end\n"
	"    if sku.part == 'O365_BUSINESS_ESSENTIALS' then return { product_id = 501 } end\n"
	"    if sku.part == 'EXCHANGESTANDARD' then\n"
	"      return { name = 'Exchange Online (Plan 1)', unit_price = 4.00, quantity = math.max(sku.assigned, 5) }\n"
	"    end\n"
	"    if sku.part == 'FLOW_FREE' then return false end\n"
	"  end,\n"
	"}\n";

/* A test's world: the database, the policy and the two tenants. */
struct world {
	char db[600], policy[600];
	struct billing_tenant t[2];        /* invoiced per period */
	struct billing_tenant ts;          /* t[0] billed by its schedule (bill --schedules) */
	struct billing_period sep;
};

static bool world_new(struct world *w, const char *name)
{
	struct err err;
	memset(w, 0, sizeof *w);
	if (!fake_started()) {
		t_skip("no python3 or fake Syncro");
		return false;
	}
	if (ctl("POST", "reset", "{\"data\":\"demo\"}", NULL) != 200) {
		t_fail(__FILE__, __LINE__, "fake reset failed");
		return false;
	}
	snprintf(w->db, sizeof w->db, "%s/%s.db", t_tmpdir(), name);
	snprintf(w->policy, sizeof w->policy, "%s/%s.lua", t_tmpdir(), name);
	unlink(w->db);
	FILE *f = fopen(w->policy, "w");
	if (!f) return false;
	fputs(POLICY, f);
	fclose(f);
	if (seed_month(w->db, "contoso.com", CONTOSO, ARRAY_LEN(CONTOSO), &err) != 0 ||
	    seed_month(w->db, "fabrikam.com", FABRIKAM, ARRAY_LEN(FABRIKAM), &err) != 0) {
		t_fail(__FILE__, __LINE__, "seeding: %s", err.msg);
		return false;
	}
	w->t[0] = (struct billing_tenant){ .id = "contoso.com", .name = "Contoso", .customer_id = 101,
	                                   .policy = w->policy };
	w->ts = w->t[0];
	w->ts.schedule = "Contoso monthly Microsoft 365";
	w->t[1] = (struct billing_tenant){ .id = "fabrikam.com", .name = "Fabrikam", .customer_id = 102,
	                                   .policy = w->policy };
	billing_period_parse("2026-09", &w->sep, &err);
	return true;
}

/* Everything a run opens. */
struct runner {
	struct store *st;
	struct http_engine *e;
	struct syncro_client *sc;
	struct billing_ctx c;
};

static int runner_open(struct runner *r, const char *db, bool dry, struct err *err)
{
	memset(r, 0, sizeof *r);
	char url[96];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1", g_port);
	struct syncro_opts so = { .base_url = url, .api_key = KEY, .requests_per_minute = 60000, .max_attempts = 2 };
	if (store_open(db, &r->st, err) != 0 || store_billing_open(r->st, &r->c.sb, err) != 0) return -1;
	if (!(r->e = http_engine_new(NULL, err)) || !(r->sc = syncro_client_new(r->e, &so, err)) ||
	    !(r->c.sy = syncro_resource_new(r->sc, SYNCRO_BILLING_PERMISSIONS, err)))
		return -1;
	r->c.dry_run = dry;
	r->c.sched = (struct billing_sched_opts){ .max_decrease_count = -1, .max_decrease_percent = -1 };
	return 0;
}

static void runner_close(struct runner *r)
{
	billing_ctx_release(&r->c);
	syncro_resource_free(r->c.sy);
	store_billing_close(r->c.sb);
	http_engine_free(r->e);
	syncro_client_free(r->sc);
	store_close(r->st);
	memset(r, 0, sizeof *r);
}

/* Invoices both tenants; the statuses into st[2]. */
static int invoice_both(struct world *w, bool dry, enum billing_invoice_status st[2], struct billing_drifts *drift0,
                        struct err *err)
{
	struct runner r;
	if (runner_open(&r, w->db, dry, err) != 0) {
		runner_close(&r);
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		struct billing_invoice_result res;
		billing_invoice_tenant(&r.c, &w->t[i], &w->sep, &res);
		st[i] = res.status;
		if (res.error[0]) snprintf(err->msg, sizeof err->msg, "%s", res.error);
		if (i == 0 && drift0) {
			*drift0 = res.drift;
			memset(&res.drift, 0, sizeof res.drift);
		}
		billing_invoice_result_free(&res);
	}
	runner_close(&r);
	return 0;
}

/* Checks the fake holds exactly one invoice per tenant for September,
 * each with its lines exactly once. */
static void check_invoiced_once(const char *when)
{
	cJSON *c = invoices_of(101, "2026-09"), *f = invoices_of(102, "2026-09");
	int n;
	if (cJSON_GetArraySize(c) != 1 || cJSON_GetArraySize(f) != 1) {
		t_fail(__FILE__, __LINE__, "%s: %d Contoso and %d Fabrikam invoices (want 1 each)", when,
		       cJSON_GetArraySize(c), cJSON_GetArraySize(f));
		goto out;
	}
	const cJSON *ci = cJSON_GetArrayItem(c, 0), *fi = cJSON_GetArrayItem(f, 0);
	long long q = line_qty(ci, "line_items", 503, NULL, &n);
	if (n != 1 || q != 2200) t_fail(__FILE__, __LINE__, "%s: %d lines of product 503, quantity %lld", when, n, q);
	q = line_qty(ci, "line_items", 0, "Exchange Online (Plan 1)", &n);
	if (n != 1 || q != 500) t_fail(__FILE__, __LINE__, "%s: %d Exchange lines, quantity %lld", when, n, q);
	if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ci, "line_items")) != 2)
		t_fail(__FILE__, __LINE__, "%s: Contoso's invoice has %d lines", when,
		       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ci, "line_items")));
	q = line_qty(fi, "line_items", 501, NULL, &n);
	if (n != 1 || q != 1000) t_fail(__FILE__, __LINE__, "%s: %d lines of product 501, quantity %lld", when, n, q);
out:
	cJSON_Delete(c);
	cJSON_Delete(f);
}

/* ---- invoices -------------------------------------------------------------------- */

TEST(billing_run_invoice_once_then_drift)
{
	struct world w;
	if (!world_new(&w, "once")) return;
	struct err err = {{0}};
	enum billing_invoice_status st[2];
	REQUIRE_OK(invoice_both(&w, false, st, NULL, &err), &err);
	CHECK_EQ_INT(st[0], BILLING_INV_CREATED);
	CHECK_EQ_INT(st[1], BILLING_INV_CREATED);
	check_invoiced_once("first run");
	long long writes = fake_writes();
	CHECK_EQ_INT(writes, 2 + 3);                 /* 2 invoices, 3 lines */

	/* a second run reports the invoices and changes nothing */
	struct billing_drifts d;
	REQUIRE_OK(invoice_both(&w, false, st, &d, &err), &err);
	CHECK_EQ_INT(st[0], BILLING_INV_EXISTS);
	CHECK_EQ_INT(st[1], BILLING_INV_EXISTS);
	CHECK_EQ_INT(d.n, 0);
	billing_drifts_free(&d);
	CHECK_EQ_INT(fake_writes(), writes);

	/* counts change after invoicing: reported as drift, still nothing sent */
	struct sku_seed more[ARRAY_LEN(CONTOSO)];
	memcpy(more, CONTOSO, sizeof more);
	more[0].peak = 24;
	REQUIRE_OK(seed_month(w.db, "contoso.com", more, ARRAY_LEN(more), &err), &err);
	REQUIRE_OK(invoice_both(&w, false, st, &d, &err), &err);
	CHECK_EQ_INT(st[0], BILLING_INV_EXISTS);
	REQUIRE(d.n == 1);
	CHECK_STR(d.v[0].key, "p:503");
	CHECK_EQ_INT(d.v[0].old_qty, 22);
	CHECK_EQ_INT(d.v[0].new_qty, 24);
	billing_drifts_free(&d);
	CHECK_EQ_INT(fake_writes(), writes);
	check_invoiced_once("after drift");

	/* the audit has one row per invoice, the intents are all closed */
	struct store *s = NULL;
	struct store_billing *sb = NULL;
	REQUIRE_OK(store_open(w.db, &s, &err), &err);
	REQUIRE_OK(store_billing_open(s, &sb, &err), &err);
	long long open = -1, done = -1;
	CHECK_OK(store_billing_intent_count(sb, NULL, "pending", &open, &err), &err);
	CHECK_OK(store_billing_intent_count(sb, NULL, "done", &done, &err), &err);
	CHECK_EQ_INT(open, 0);
	CHECK_EQ_INT(done, 3);
	struct store_billing_invoice row;
	REQUIRE(store_billing_invoice_get(sb, "contoso.com", "2026-09", &row, &err) == 0);
	CHECK_STR(row.state, "done");
	CHECK(row.invoice_id > 7001);
	CHECK_CONTAINS(row.plan, "\"p:503\"");
	store_billing_invoice_free(&row);
	store_billing_close(sb);
	store_close(s);
}

TEST(billing_run_dry_run_sends_and_stores_nothing)
{
	struct world w;
	if (!world_new(&w, "dry")) return;
	struct err err = {{0}};
	enum billing_invoice_status st[2];
	REQUIRE_OK(invoice_both(&w, true, st, NULL, &err), &err);
	CHECK_EQ_INT(st[0], BILLING_INV_DRAFT);
	CHECK_EQ_INT(st[1], BILLING_INV_DRAFT);
	CHECK_EQ_INT(fake_writes(), 0);
	cJSON *c = invoices_of(101, "2026-09");
	CHECK_EQ_INT(cJSON_GetArraySize(c), 0);
	cJSON_Delete(c);
	struct store *s = NULL;
	struct store_billing *sb = NULL;
	REQUIRE_OK(store_open(w.db, &s, &err), &err);
	REQUIRE_OK(store_billing_open(s, &sb, &err), &err);
	long long n = -1;
	CHECK_OK(store_billing_intent_count(sb, NULL, NULL, &n, &err), &err);
	CHECK_EQ_INT(n, 0);
	struct store_billing_invoice row;
	CHECK_EQ_INT(store_billing_invoice_get(sb, "contoso.com", "2026-09", &row, &err), STORE_NOTFOUND);
	store_billing_close(sb);
	store_close(s);

	/* a dry run of the schedules sends nothing either */
	struct runner r;
	REQUIRE_OK(runner_open(&r, w.db, true, &err), &err);
	struct billing_schedule_result res;
	billing_schedule_tenant(&r.c, &w.ts, &w.sep, &res);
	CHECK_EQ_INT(res.status, BILLING_SCHED_CHANGED);
	CHECK_EQ_INT(res.changes.n, 2);
	CHECK_EQ_INT(res.applied, 0);
	billing_schedule_result_free(&res);
	runner_close(&r);
	CHECK_EQ_INT(fake_writes(), 0);
}

/* The crash hook: ends the process at the k-th point it sees. */
struct crash_at {
	int k, seen;
};

static void crash_hook(void *ud, enum billing_point at, const char *action)
{
	struct crash_at *c = ud;
	(void)at;
	(void)action;
	if (++c->seen == c->k) _exit(77);
}

/* Runs both tenants' invoices in a child that dies at point k (0 = never).
 * Returns the child's exit status: 77 crashed, 0 all invoiced, 1 not. */
static int child_run(struct world *w, int k)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct err err;
		struct runner r;
		struct crash_at c = { k, 0 };
		if (runner_open(&r, w->db, false, &err) != 0) _exit(2);
		r.c.hook = k ? crash_hook : NULL;
		r.c.hook_ud = &c;
		bool all = true;
		for (int i = 0; i < 2; i++) {
			struct billing_invoice_result res;
			billing_invoice_tenant(&r.c, &w->t[i], &w->sep, &res);
			all = all && (res.status == BILLING_INV_CREATED || res.status == BILLING_INV_RECOVERED ||
			              res.status == BILLING_INV_EXISTS);
			billing_invoice_result_free(&res);
		}
		runner_close(&r);
		_exit(all ? 0 : 1);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(billing_run_crash_at_every_point_is_recovered)
{
	/* A full run passes 2 points per write: 2 creates + 3 lines = 10. */
	int points = 0;
	for (int k = 1;; k++) {
		struct world w;
		if (!world_new(&w, "crashpoint")) return;
		int rc = child_run(&w, k);
		if (rc == 0) {
			points = k - 1;
			break;
		}
		if (rc != 77) {
			t_fail(__FILE__, __LINE__, "crash point %d: the child exited %d", k, rc);
			return;
		}
		/* never more than one invoice per tenant, even mid-way */
		cJSON *c = invoices_of(101, "2026-09");
		CHECK(cJSON_GetArraySize(c) <= 1);
		cJSON_Delete(c);
		int again = child_run(&w, 0);
		if (again != 0) t_fail(__FILE__, __LINE__, "after a crash at point %d, the next run exited %d", k, again);
		char when[48];
		snprintf(when, sizeof when, "crash at point %d", k);
		check_invoiced_once(when);
		if (k > 40) {
			t_fail(__FILE__, __LINE__, "the run never completed");
			return;
		}
	}
	CHECK_EQ_INT(points, 10);
}

TEST(billing_run_crash_loop)
{
	/* Every run dies at its k-th point, k growing, on the same state. */
	struct world w;
	if (!world_new(&w, "crashloop")) return;
	int rc = 77, runs = 0;
	for (int k = 1; rc == 77 && k < 40; k++, runs++) {
		rc = child_run(&w, k);
		cJSON *c = invoices_of(101, "2026-09"), *f = invoices_of(102, "2026-09");
		CHECK(cJSON_GetArraySize(c) <= 1 && cJSON_GetArraySize(f) <= 1);
		cJSON_Delete(c);
		cJSON_Delete(f);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(runs > 2);
	check_invoiced_once("crash loop");
	CHECK_EQ_INT(child_run(&w, 0), 0);
	check_invoiced_once("crash loop, once more");
}

TEST(billing_run_lost_answers_and_refusals)
{
	struct world w;
	if (!world_new(&w, "lost")) return;
	struct err err = {{0}};
	enum billing_invoice_status st[2];
	/* the create is applied but its answer cut off; the first line's is a 500
	 * after applying it. (Not "drop": "no_response": libcurl resends a
	 * request whose reused connection closes without a byte, POSTs too;
	 * see the report.) */
	REQUIRE(ctl("POST", "faults", "[{\"match\":\"/invoices$\",\"method\":\"POST\",\"after_apply\":true,"
	            "\"drop\":\"mid_body\",\"times\":1},{\"match\":\"/line_items$\",\"method\":\"POST\","
	            "\"after_apply\":true,\"status\":500,\"times\":1}]", NULL) == 200);
	REQUIRE_OK(invoice_both(&w, false, st, NULL, &err), &err);
	CHECK_EQ_INT(st[0], BILLING_INV_CREATED);
	CHECK_EQ_INT(st[1], BILLING_INV_CREATED);
	check_invoiced_once("lost answers");

	/* a refused create (422) is recorded, then tried again by the next run */
	REQUIRE(world_new(&w, "refused"));
	REQUIRE(ctl("POST", "faults", "{\"match\":\"/invoices$\",\"method\":\"POST\",\"status\":422,\"times\":1}",
	            NULL) == 200);
	REQUIRE_OK(invoice_both(&w, false, st, NULL, &err), &err);
	CHECK_EQ_INT(st[0], BILLING_INV_FAILED);
	CHECK_EQ_INT(st[1], BILLING_INV_CREATED);
	REQUIRE_OK(invoice_both(&w, false, st, NULL, &err), &err);
	CHECK_EQ_INT(st[0], BILLING_INV_CREATED);
	CHECK_EQ_INT(st[1], BILLING_INV_EXISTS);
	check_invoiced_once("refused then retried");
}

TEST(billing_run_unmapped_no_data_unbilled)
{
	struct world w;
	if (!world_new(&w, "edges")) return;
	struct runner r;
	struct err err;
	REQUIRE_OK(runner_open(&r, w.db, false, &err), &err);
	struct billing_tenant nomap = w.t[0];
	nomap.customer_id = 0;
	struct billing_invoice_result res;
	billing_invoice_tenant(&r.c, &nomap, &w.sep, &res);
	CHECK_EQ_INT(res.status, BILLING_INV_UNMAPPED);
	billing_invoice_result_free(&res);
	struct billing_period oct;
	billing_period_parse("2026-10", &oct, &err);
	billing_invoice_tenant(&r.c, &w.t[0], &oct, &res);
	CHECK_EQ_INT(res.status, BILLING_INV_NO_DATA);
	billing_invoice_result_free(&res);
	/* unbilled SKUs are in the result, never dropped */
	billing_invoice_tenant(&r.c, &w.t[0], &w.sep, &res);
	CHECK_EQ_INT(res.status, BILLING_INV_CREATED);
	CHECK_EQ_INT(billing_plan_unbilled(&res.plan), 1);
	bool visio = false;
	for (size_t i = 0; i < res.plan.nskus; i++)
		visio = visio || (res.plan.skus[i].status == BILLING_SKU_UNBILLED && !strcmp(res.plan.skus[i].part, "VISIOCLIENT"));
	CHECK(visio);
	billing_invoice_result_free(&res);
	/* an unknown product fails the tenant before anything is sent */
	FILE *f = fopen(w.policy, "w");
	REQUIRE(f);
	fputs("return { include = function() return true end, bill = function() return { product_id = 999 } end }\n", f);
	fclose(f);
	runner_close(&r);
	REQUIRE_OK(runner_open(&r, w.db, false, &err), &err);
	long long before = fake_writes();
	billing_invoice_tenant(&r.c, &w.t[1], &w.sep, &res);
	CHECK_EQ_INT(res.status, BILLING_INV_FAILED);
	CHECK_CONTAINS(res.error, "product 999");
	billing_invoice_result_free(&res);
	CHECK_EQ_INT(fake_writes(), before);
	runner_close(&r);
}

/* ---- schedules ------------------------------------------------------------------- */

static void schedule_run(struct world *w, const struct billing_sched_opts *o, struct billing_schedule_result *res)
{
	struct runner r;
	struct err err;
	if (runner_open(&r, w->db, false, &err) != 0) {
		t_fail(__FILE__, __LINE__, "%s", err.msg);
		memset(res, 0, sizeof *res);
		runner_close(&r);
		return;
	}
	if (o) r.c.sched = *o;
	billing_schedule_tenant(&r.c, &w->ts, &w->sep, res);
	runner_close(&r);
}

static long long sched_qty(long long product, const char *name, int *n)
{
	cJSON *s = schedule_301();
	long long q = line_qty(s, "lines", product, name, n);
	cJSON_Delete(s);
	return q;
}

struct audit_count {
	int n;
	bool update_seen;
};

/* Counts bill.schedule.* rows; notes an update 4 -> 22 of product 503. */
static int audit_cb(const struct store_audit *row, void *ud)
{
	struct audit_count *a = ud;
	if (!str_starts(row->action, "bill.schedule.")) return 0;
	a->n++;
	if (!strcmp(row->action, "bill.schedule.update") && row->before && strstr(row->before, "\"quantity\":4") &&
	    row->after && strstr(row->after, "\"quantity\":22") && strstr(row->object_id, "p:503"))
		a->update_seen = true;
	return 0;
}

TEST(billing_run_schedule_kept_in_step)
{
	struct world w;
	if (!world_new(&w, "sched")) return;
	struct billing_schedule_result res;
	int n;
	schedule_run(&w, NULL, &res);
	CHECK_EQ_INT(res.status, BILLING_SCHED_CHANGED);
	CHECK_EQ_INT(res.schedule_id, 301);
	CHECK_EQ_INT(res.applied, 2);
	billing_schedule_result_free(&res);
	CHECK_EQ_INT(sched_qty(503, NULL, &n), 2200);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(sched_qty(0, "Exchange Online (Plan 1)", &n), 500);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(sched_qty(505, NULL, &n), 400);     /* not billed by entrasync: untouched */

	/* the same again: nothing differs, nothing is written */
	long long writes = fake_writes();
	schedule_run(&w, NULL, &res);
	CHECK_EQ_INT(res.status, BILLING_SCHED_UNCHANGED);
	CHECK_EQ_INT(res.changes.unchanged, 2);
	billing_schedule_result_free(&res);
	CHECK_EQ_INT(fake_writes(), writes);

	/* a large drop is held (22 -> 10), then allowed */
	struct sku_seed less[ARRAY_LEN(CONTOSO)];
	memcpy(less, CONTOSO, sizeof less);
	less[0].consumed = 10;
	less[0].peak = 10;
	struct err err;
	REQUIRE_OK(seed_month(w.db, "contoso.com", less, ARRAY_LEN(less), &err), &err);
	schedule_run(&w, NULL, &res);
	CHECK_EQ_INT(res.status, BILLING_SCHED_HELD);
	CHECK(res.changes.held);
	CHECK_CONTAINS(res.changes.reason, "--allow-decrease");
	billing_schedule_result_free(&res);
	CHECK_EQ_INT(sched_qty(503, NULL, &n), 2200);
	CHECK_EQ_INT(fake_writes(), writes);
	struct billing_sched_opts allow = { .max_decrease_count = -1, .max_decrease_percent = -1, .allow_decrease = true };
	schedule_run(&w, &allow, &res);
	CHECK_EQ_INT(res.status, BILLING_SCHED_CHANGED);
	billing_schedule_result_free(&res);
	CHECK_EQ_INT(sched_qty(503, NULL, &n), 1000);

	/* Exchange no longer in the tenant: zeroed, then (remove) removed */
	struct sku_seed gone[] = { less[0], less[2], less[3] };
	REQUIRE_OK(seed_month(w.db, "contoso.com", gone, ARRAY_LEN(gone), &err), &err);
	schedule_run(&w, NULL, &res);
	CHECK_EQ_INT(res.status, BILLING_SCHED_CHANGED);     /* 5 units: under the guard */
	REQUIRE(res.changes.n == 1);
	CHECK_EQ_INT(res.changes.v[0].kind, BILLING_ZERO);
	billing_schedule_result_free(&res);
	CHECK_EQ_INT(sched_qty(0, "Exchange Online (Plan 1)", &n), 0);
	CHECK_EQ_INT(n, 1);
	struct billing_sched_opts rm = { .remove = true, .max_decrease_count = -1, .max_decrease_percent = -1 };
	schedule_run(&w, &rm, &res);
	REQUIRE(res.changes.n == 1);
	CHECK_EQ_INT(res.changes.v[0].kind, BILLING_REMOVE);
	billing_schedule_result_free(&res);
	sched_qty(0, "Exchange Online (Plan 1)", &n);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(sched_qty(505, NULL, &n), 400);

	/* one audit row per change, old -> new */
	struct store *s = NULL;
	REQUIRE_OK(store_open(w.db, &s, &err), &err);
	struct audit_count a = { 0, false };
	struct store_audit_filter fl = { .tenant_id = "contoso.com" };
	CHECK_OK(store_audit_each(s, &fl, audit_cb, &a, &err), &err);
	CHECK_EQ_INT(a.n, 5);          /* add, update, update (allowed), zero, remove */
	CHECK(a.update_seen);
	store_close(s);
}

TEST(billing_run_schedule_crash_adopts_the_added_line)
{
	struct world w;
	if (!world_new(&w, "schedcrash")) return;
	/* die right after the add of the Exchange line was answered */
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct err err;
		struct runner r;
		struct crash_at c = { 2, 0 };   /* the add of Exchange (first by SKU) answered, not recorded */
		if (runner_open(&r, w.db, false, &err) != 0) _exit(2);
		r.c.hook = crash_hook;
		r.c.hook_ud = &c;
		struct billing_schedule_result res;
		billing_schedule_tenant(&r.c, &w.ts, &w.sep, &res);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 77);
	int n;
	sched_qty(0, "Exchange Online (Plan 1)", &n);
	CHECK_EQ_INT(n, 1);                        /* applied before the crash */
	struct billing_schedule_result res;
	schedule_run(&w, NULL, &res);
	CHECK_EQ_INT(res.recovered, 1);
	CHECK_EQ_INT(res.status, BILLING_SCHED_CHANGED);
	REQUIRE(res.changes.n == 1);                 /* only the update the crash prevented */
	CHECK_EQ_INT(res.changes.v[0].kind, BILLING_UPDATE);
	billing_schedule_result_free(&res);
	sched_qty(0, "Exchange Online (Plan 1)", &n);
	CHECK_EQ_INT(n, 1);                        /* not added twice */
}

/* ---- reconciliation ----------------------------------------------------------------- */

static const struct billing_report_row *row_of(const struct billing_report *r, const char *tenant, const char *part)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->rows[i].tenant_id, tenant) && r->rows[i].part && !strcmp(r->rows[i].part, part))
			return &r->rows[i];
	return NULL;
}

TEST(billing_run_reconciliation_numbers)
{
	struct world w;
	if (!world_new(&w, "report")) return;
	struct err err = {{0}};
	enum billing_invoice_status st[2];
	REQUIRE_OK(invoice_both(&w, false, st, NULL, &err), &err);
	struct runner r;
	REQUIRE_OK(runner_open(&r, w.db, true, &err), &err);
	struct billing_report rep;
	REQUIRE_OK(billing_report_build(&r.c, w.t, 2, &w.sep, &rep, &err), &err);
	const struct billing_report_row *spb = row_of(&rep, "contoso.com", "SPB");
	REQUIRE(spb);
	CHECK_EQ_INT(spb->purchased, 25);
	CHECK_EQ_INT(spb->assigned, 20);
	CHECK_EQ_INT(spb->peak_assigned, 22);
	CHECK_EQ_INT(spb->billed_qty, 22);
	CHECK_EQ_INT(spb->billed_cents, 22 * 2200);
	CHECK(spb->invoiced);
	CHECK_EQ_INT(spb->unbilled_seats, 3);
	CHECK_EQ_INT(spb->unassigned_billed, 2);
	CHECK_EQ_INT(spb->leak_cents, 3 * 2200);
	const struct billing_report_row *visio = row_of(&rep, "contoso.com", "VISIOCLIENT");
	REQUIRE(visio);
	CHECK(visio->no_price);
	CHECK_EQ_INT(visio->billed_qty, 0);
	const struct billing_report_row *flow = row_of(&rep, "contoso.com", "FLOW_FREE");
	REQUIRE(flow);
	CHECK(!billing_report_row_leaks(flow));
	const struct billing_report_row *basic = row_of(&rep, "fabrikam.com", "O365_BUSINESS_ESSENTIALS");
	REQUIRE(basic);
	CHECK_EQ_INT(basic->unbilled_seats, 2);
	CHECK_EQ_INT(basic->leak_cents, 1200);
	CHECK_EQ_INT(rep.billed_cents, 22 * 2200 + 5 * 400 + 10 * 600);
	CHECK_EQ_INT(rep.leak_cents, 3 * 2200 + 1200);

	char path[600];
	snprintf(path, sizeof path, "%s/report.html", t_tmpdir());
	FILE *f = fopen(path, "w+");
	REQUIRE(f);
	CHECK_OK(billing_report_write(f, &rep, "html", &err), &err);
	rewind(f);
	struct buf html = {0};
	char chunk[4096];
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(&html, chunk, got);
	fclose(f);
	const char *leaks = strstr(html.data, "id=\"leaks\""), *all = strstr(html.data, "id=\"all\"");
	CHECK(leaks && all && leaks < all);
	CHECK(strstr(html.data, "VISIOCLIENT") && strstr(html.data, "VISIOCLIENT") < all);
	buf_free(&html);
	CHECK(billing_report_write(stdout, &rep, "pdf", &err) < 0);
	billing_report_free(&rep);
	runner_close(&r);
}
