/* test_report_order — the report model does not depend on the order the
 * history was written in (report.c reads it in storage order): the same
 * history written day by day, tenants interleaved, and shuffled (newest
 * days first, a tenant's days scattered, a day re-pulled) gives the same
 * JSON; and the HTML chart's gridlines sit on round values. */
#include "t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report/report.h"
#include "store/store.h"
#include "store/store_snapshots.h"

#define ORDER_DAYS 60

static const char *const tenants[3] = { "t-a", "t-b", "t-c" };

static void day_of(int n, char out[11])
{
	struct tm tm = { .tm_year = 125, .tm_mon = 0, .tm_mday = 1 + n, .tm_hour = 12 };
	time_t t = timegm(&tm);
	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

/* Day d of tenant t: scores, and 3 SKUs whose free seats come and go
 * (t-b's EMS is missing on day 40: a run breaks there). */
static int put_day(struct store *st, int t, int d, struct err *err)
{
	char day[11];
	day_of(d, day);
	struct store_secure_score sc = { .tenant_id = tenants[t], .day = day, .current_score = 20 + (d * 7 + t * 13) % 40,
	                                 .max_score = 80 };
	if (store_secure_score_put(st, &sc, err) != 0) return -1;
	struct store_license rows[3] = {
		{ .sku_id = "05e9a617-0261-4cee-bb44-138d3ef5d965", .sku_part_number = "SPE_E3", .enabled = 20,
		  .consumed = d % 17 == t ? 20 : 18 },
		{ .sku_id = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e", .sku_part_number = "EMS", .enabled = 10,
		  .consumed = 9 },
		{ .sku_id = "f30db892-07e9-47e9-837c-80727f46fd3d", .sku_part_number = "FLOW_FREE", .enabled = 10000,
		  .consumed = 5 },
	};
	size_t n = t == 1 && d == 40 ? 1 : 3;
	if (n == 1) rows[0] = rows[2];
	return store_license_snapshot_put(st, tenants[t], day, rows, n, err);
}

/* The store at path with the history written in order (shuffled or not);
 * tenant names Alpha, Beta, Gamma. */
static struct store *history(const char *name, bool shuffled, struct err *err)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s.db", t_tmpdir(), name);
	struct store *st = NULL;
	if (store_open(path, &st, err) != 0) return NULL;
	static const char *const names[3] = { "Alpha", "Beta", "Gamma" };
	for (int t = 0; t < 3; t++) store_tenant_put(st, &(struct store_tenant){ .id = tenants[t], .name = names[t] }, err);
	int rc = 0;
	if (!shuffled) {
		for (int d = 0; d < ORDER_DAYS && rc == 0; d++)
			for (int t = 0; t < 3 && rc == 0; t++) rc = put_day(st, t, d, err);
	} else {
		/* newest days first, tenants in changing order, every 7th day twice */
		for (int d = ORDER_DAYS - 1; d >= 0 && rc == 0; d--)
			for (int k = 0; k < 3 && rc == 0; k++) {
				int t = (k + d) % 3;
				rc = put_day(st, t, d, err);
				if (rc == 0 && d % 7 == 0) rc = put_day(st, t, d, err);
			}
	}
	if (rc != 0) {
		store_close(st);
		return NULL;
	}
	return st;
}

/* The report as JSON without its generated_at line. */
static char *json_of(struct store *st, enum report_kind kind, const char *only, struct err *err)
{
	const char *ids[1] = { only };
	struct report_opts o = { .kind = kind, .format = REPORT_JSON, .tenants = only ? ids : NULL, .ntenants = only ? 1 : 0,
	                         .days = 5 };
	struct report *r = NULL;
	struct buf out = {0};
	if (report_build(st, &o, NULL, &r, err) != 0 || report_render(r, &o, &out, err) != 0) {
		report_free(r);
		buf_free(&out);
		return NULL;
	}
	report_free(r);
	char *g = strstr(out.data, "\"generated_at\"");
	char *eol = g ? strchr(g, '\n') : NULL;
	if (eol) memmove(g, eol, strlen(eol) + 1);
	return buf_steal(&out);
}

TEST(report_same_whatever_the_write_order)
{
	struct err err;
	struct store *a = history("order-a", false, &err), *b = history("order-b", true, &err);
	REQUIRE(a && b);
	static const enum report_kind kinds[] = { REPORT_LICENSES, REPORT_SECURESCORE, REPORT_FINDINGS };
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		const char *only[] = { NULL, "t-b" };
		for (size_t i = 0; i < 2; i++) {
			char *x = json_of(a, kinds[k], only[i], &err), *y = json_of(b, kinds[k], only[i], &err);
			REQUIRE(x && y);
			CHECK(strcmp(x, y) == 0);
			if (strcmp(x, y) != 0) fprintf(stderr, "  %s (%s) differs by write order\n", report_kind_name(kinds[k]),
			                               only[i] ? only[i] : "all");
			free(x);
			free(y);
		}
	}
	/* the numbers are what the history says: Beta's EMS was missing on day
	 * 40, so its run of free seats starts on day 41 (19 days to day 59);
	 * Alpha's E3 was full on day 51 (51 % 17 == 0): 8 days */
	struct report_opts o = { .kind = REPORT_LICENSES };
	struct report *r = NULL;
	REQUIRE_OK(report_build(b, &o, NULL, &r, &err), &err);
	REQUIRE(r->ntenants == 3);
	int ems_beta = -1, e3_alpha = -1, free_alpha = -1;
	for (size_t i = 0; i < r->ntenants; i++)
		for (size_t s = 0; s < r->tenants[i].nskus; s++) {
			const struct report_sku *x = &r->tenants[i].skus[s];
			if (strcmp(r->tenants[i].id, "t-b") == 0 && strcmp(x->part, "EMS") == 0) ems_beta = x->unused_days;
			if (strcmp(r->tenants[i].id, "t-a") == 0 && strcmp(x->part, "SPE_E3") == 0) e3_alpha = x->unused_days;
			if (strcmp(r->tenants[i].id, "t-a") == 0 && strcmp(x->part, "FLOW_FREE") == 0) free_alpha = x->unused_days;
		}
	CHECK_EQ_INT(ems_beta, 19);
	CHECK_EQ_INT(e3_alpha, 8);
	CHECK_EQ_INT(free_alpha, ORDER_DAYS);
	report_free(r);
	store_close(a);
	store_close(b);
}

TEST(report_html_gridlines_round)
{
	struct err err;
	struct store *st = history("order-html", true, &err);
	REQUIRE(st);
	/* percents 25 .. 73.75: shown 20 .. 80 (5 points of air, rounded to the 20-point step) */
	struct report_opts o = { .kind = REPORT_SECURESCORE, .format = REPORT_HTML };
	struct report *r = NULL;
	struct buf out = {0};
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	report_render_html(r, &o, &out);
	const char *chart = strstr(out.data, "aria-label=\"Secure Score trend of ");
	REQUIRE(chart);
	const char *end = strstr(chart, "</svg>");
	REQUIRE(end);
	char *svg = xstrndup(chart, (size_t)(end - chart));
	CHECK_CONTAINS(svg, ">20%</text>");
	CHECK_CONTAINS(svg, ">40%</text>");
	CHECK_CONTAINS(svg, ">80%</text>");
	CHECK(!strstr(svg, ">25%</text>") && !strstr(svg, ">85%</text>") && !strstr(svg, ">100%</text>"));
	CHECK_CONTAINS(svg, "text-anchor=\"start\">");       /* the newest value, right of the line's end */
	free(svg);
	CHECK_CONTAINS(out.data, "@media (max-width:820px)");
	buf_free(&out);
	report_free(r);
	store_close(st);
}

/* Longest line of s in columns (code points). */
static int widest(const char *s, int *line_no)
{
	int best = 0, col = 0, line = 1;
	*line_no = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\n') {
			col = 0;
			line++;
			continue;
		}
		if ((*p & 0xC0) != 0x80 && ++col > best) {
			best = col;
			*line_no = line;
		}
	}
	return best;
}

static int put_user(struct store *st, const char *tenant, const char *oid, const char *json, struct err *err)
{
	return store_user_put(st, tenant, oid, json, err);
}

/* A hook that fails with a long message (a policy's error text is free). */
static int long_error_hook(void *ctx, const char *tenant_id, const struct report_sku_in *sku,
                           struct report_sku_shape *out, struct err *err)
{
	return err_set(err, "policy.lua:12: attempt to index a nil value (field 'unit_price_table_for_the_customer') "
	               "while shaping %s for the tenant's invoice", sku->part);
}

TEST(report_tables_fit_80_columns)
{
	struct err err;
	struct store *st = history("order-80", true, &err);
	REQUIRE(st);
	/* a long, non-ASCII tenant name, long UPNs and many licences per user */
	store_tenant_put(st, &(struct store_tenant){ .id = "t-c", .name = "Gämma Großhandel und Söhne GmbH & Co. KG" },
	                 &err);
	REQUIRE_OK(put_user(st, "t-c", "u1", "{\"userPrincipalName\":\"a.very.long.user.principal.name@"
	                    "gammagrosshandel-und-soehne.onmicrosoft.com\",\"accountEnabled\":false,\"assignedLicenses\":"
	                    "[{\"skuId\":\"05e9a617-0261-4cee-bb44-138d3ef5d965\"},{\"skuId\":\"efccb6f7-5641-4e0e-bd10-"
	                    "b4976e1bf68e\"},{\"skuId\":\"f30db892-07e9-47e9-837c-80727f46fd3d\"}]}", &err), &err);
	struct report_hooks hooks = { .license = long_error_hook };
	const char *one[] = { "t-c" };
	struct {
		enum report_kind kind;
		bool by_user, with_tenant, controls, hooks;
		int days;
	} cases[] = {
		{ REPORT_LICENSES, false, false, false, false, 0 }, { REPORT_LICENSES, true, false, false, false, 0 },
		{ REPORT_LICENSES, true, true, false, true, 0 },    { REPORT_SECURESCORE, false, false, false, false, 0 },
		{ REPORT_SECURESCORE, false, true, true, false, 0 }, { REPORT_SECURESCORE, false, false, false, false, 5 },
		{ REPORT_FINDINGS, false, false, false, false, 0 },  { REPORT_FINDINGS, false, false, false, true, 3 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct report_opts o = { .kind = cases[i].kind, .format = REPORT_TABLE, .by_user = cases[i].by_user,
		                         .tenants = cases[i].with_tenant ? one : NULL, .ntenants = cases[i].with_tenant,
		                         .controls = cases[i].controls, .days = cases[i].days };
		struct report *r = NULL;
		struct buf out = {0};
		REQUIRE_OK(report_build(st, &o, cases[i].hooks ? &hooks : NULL, &r, &err), &err);
		report_render_table(r, &o, &out);
		int line = 0, w = widest(out.data, &line);
		CHECK(w <= 80);
		if (w > 80) fprintf(stderr, "  case %zu (%s): line %d is %d columns\n%s", i, report_kind_name(o.kind), line, w,
		                    out.data);
		CHECK(out.len > 100);                         /* something was rendered */
		buf_free(&out);
		report_free(r);
	}
	store_close(st);
}
