/* test_report — the report model over a store with hand-made history
 * (src/report/report.c, store_history.c), its renderings (report_render.c,
 * report_html.c), the hook result checks (lua_license.c), alert grouping
 * (alerts.c) and the ticket JSON (syncro_tickets.c). The numbers against
 * the fake Graph are in tests/integration/test_report.sh. */
#include "t.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report/alerts.h"
#include "report/report.h"
#include "store/store.h"
#include "store/store_history.h"
#include "store/store_snapshots.h"
#include "syncro/syncro_tickets.h"

static struct store *open_store(struct err *err)
{
	char path[600];
	snprintf(path, sizeof path, "%s/report.db", t_tmpdir());
	struct store *st = NULL;
	if (store_open(path, &st, err) != 0) return NULL;
	store_tenant_put(st, &(struct store_tenant){ .id = "t-a", .name = "Alpha" }, err);
	store_tenant_put(st, &(struct store_tenant){ .id = "t-b", .name = "Beta" }, err);
	return st;
}

static void close_store(struct store *st)
{
	store_close(st);
}

/* "2025-01-01" + n days. */
static void day_n(int n, char out[11])
{
	struct tm tm = { .tm_year = 125, .tm_mon = 0, .tm_mday = 1 + n, .tm_hour = 12 };
	time_t t = timegm(&tm);
	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

static void put_lic(struct store *st, const char *tenant, int day, const char *sku, const char *part,
                    long long enabled, long long consumed, struct err *err)
{
	char d[11];
	day_n(day, d);
	struct store_license row = { .sku_id = sku, .sku_part_number = part, .enabled = enabled, .consumed = consumed,
	                             .capability_status = "Enabled" };
	store_license_snapshot_put(st, tenant, d, &row, 1, err);
}

static const struct report_sku *find_sku(const struct report *r, const char *tenant, const char *part)
{
	for (size_t i = 0; i < r->ntenants; i++) {
		if (strcmp(r->tenants[i].id, tenant) != 0) continue;
		for (size_t k = 0; k < r->tenants[i].nskus; k++)
			if (r->tenants[i].skus[k].part && strcmp(r->tenants[i].skus[k].part, part) == 0)
				return &r->tenants[i].skus[k];
	}
	return NULL;
}

TEST(report_unused_runs)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	/* days 0..9 free seats, day 10 full, days 11..14 free (a 4-day gap of
	 * no snapshot at all does not break a run), day 20 newest */
	for (int d = 0; d <= 20; d++) {
		if (d >= 15 && d < 20) continue;                    /* no pulls */
		put_lic(st, "t-a", d, "05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3", 10, d == 10 ? 10 : 7, &err);
	}
	struct report_opts o = { .kind = REPORT_LICENSES, .days = 5 };
	struct report *r = NULL;
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	const struct report_sku *s = find_sku(r, "t-a", "SPE_E3");
	REQUIRE(s);
	CHECK_EQ_INT(s->purchased, 10);
	CHECK_EQ_INT(s->assigned, 7);
	CHECK_EQ_INT(s->available, 3);
	CHECK_EQ_INT(s->unused_days, 10);                      /* day 11 .. day 20 */
	CHECK_STR(s->name, "Microsoft 365 E3");
	CHECK(s->known);
	CHECK_EQ_INT(r->findings.n, 1);
	CHECK_EQ_INT(r->findings.v[0].days, 10);
	report_free(r);
	/* a stored day the SKU is missing from breaks the run too */
	char d21[11];
	day_n(21, d21);
	struct store_license other = { .sku_id = "x", .sku_part_number = "OTHER", .enabled = 1, .consumed = 1 };
	REQUIRE_OK(store_license_snapshot_put(st, "t-a", d21, &other, 1, &err), &err);
	put_lic(st, "t-a", 22, "05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3", 10, 7, &err);
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	s = find_sku(r, "t-a", "SPE_E3");
	REQUIRE(s);
	CHECK_EQ_INT(s->unused_days, 1);
	report_free(r);
	close_store(st);
}

/* 21 snapshots spread over 151 days (pulls failing in between, never more
 * than 7 days in a row), seats free in each: the finding says what the
 * evidence is, not "151 days in a row"; 8 days with no snapshot end the run. */
TEST(report_unused_run_over_gaps)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	for (int i = 0; i <= 20; i++)                              /* days 0, 8, 15, 23, ... 150 */
		put_lic(st, "t-a", (i * 15 + 1) / 2, "05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3", 10, 7, &err);
	struct report_opts o = { .kind = REPORT_FINDINGS, .days = 30 };
	struct report *r = NULL;
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	const struct report_sku *s = find_sku(r, "t-a", "SPE_E3");
	REQUIRE(s);
	CHECK_EQ_INT(s->unused_days, 151);
	CHECK_EQ_INT(s->unused_snapshots, 21);
	REQUIRE(r->findings.n == 1);
	CHECK_STR(r->findings.v[0].message, "Microsoft 365 E3: 3 of 10 seats unused in all 21 snapshots over 151 days");
	CHECK_EQ_INT(r->findings.v[0].days, 151);
	CHECK_EQ_INT(r->findings.v[0].snapshots, 21);
	report_free(r);
	/* day 159 after day 150: 8 days with no snapshot end the run */
	put_lic(st, "t-a", 159, "05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3", 10, 7, &err);
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	s = find_sku(r, "t-a", "SPE_E3");
	REQUIRE(s);
	CHECK_EQ_INT(s->unused_days, 1);
	CHECK_EQ_INT(s->unused_snapshots, 1);
	CHECK_EQ_INT(r->findings.n, 0);
	report_free(r);
	/* one a day: the days are the evidence, said as before */
	for (int d = 160; d <= 200; d++)
		put_lic(st, "t-a", d, "05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3", 10, 7, &err);
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	REQUIRE(r->findings.n == 1);
	CHECK_STR(r->findings.v[0].message, "Microsoft 365 E3: 3 of 10 seats unused for 42 days in a row");
	report_free(r);
	close_store(st);
}

/* 1 seat free on the first day, 4 from the next (3 bought): the finding
 * does not say 4 were unused for the whole run. */
TEST(report_unused_run_says_the_fewest)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	for (int d = 0; d <= 7; d++)
		put_lic(st, "t-a", d, "05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3", d == 0 ? 27 : 30, 26, &err);
	struct report_opts o = { .kind = REPORT_FINDINGS, .days = 5 };
	struct report *r = NULL;
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	const struct report_sku *s = find_sku(r, "t-a", "SPE_E3");
	REQUIRE(s);
	CHECK_EQ_INT(s->unused_days, 8);
	CHECK_EQ_INT(s->unused_least, 1);
	REQUIRE(r->findings.n == 1);
	CHECK_STR(r->findings.v[0].message, "Microsoft 365 E3: 4 of 30 seats unused, at least 1 of them for 8 days in a row");
	CHECK_EQ_INT(r->findings.v[0].count, 4);
	report_free(r);
	close_store(st);
}

/* The newest day's numbers of a SKU whose subscription is in its grace
 * period: its seats are usable (available counts them), so one of them
 * assigned is no over-assignment. */
TEST(report_grace_seats_available)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	struct store_license row = { .sku_id = "3b555118-da6a-4418-894f-7df1e2096870", .sku_part_number = "O365_BUSINESS_ESSENTIALS",
	                             .enabled = 0, .warning = 4, .consumed = 1, .capability_status = "Warning" };
	REQUIRE_OK(store_license_snapshot_put(st, "t-a", "2025-02-01", &row, 1, &err), &err);
	struct report_opts o = { .kind = REPORT_FINDINGS };
	struct report *r = NULL;
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	const struct report_sku *s = find_sku(r, "t-a", "O365_BUSINESS_ESSENTIALS");
	REQUIRE(s);
	CHECK_EQ_INT(s->purchased, 0);
	CHECK_EQ_INT(s->warning, 4);
	CHECK_EQ_INT(s->available, 3);
	REQUIRE(r->findings.n == 1);
	CHECK_EQ_INT(r->findings.v[0].kind, FINDING_WARNING);
	report_free(r);
	close_store(st);
}

/* Names from Microsoft (a tenant's organization, a user's displayName) are
 * the customer's text: the table prints no control character (an escape
 * sequence, a forged line), and a CSV cell that a spreadsheet would run as a
 * formula starts with a quote. */
TEST(report_customer_text_is_neutralised)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	REQUIRE_OK(store_tenant_put(st, &(struct store_tenant){ .id = "t-a", .name = "Alpha\x1b[31m\nFAKE LINE" }, &err),
	           &err);
	put_lic(st, "t-a", 0, "05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3", 3, 1, &err);
	REQUIRE_OK(store_user_put(st, "t-a", "u1", "{\"userPrincipalName\":\"@evil@a.com\",\"accountEnabled\":false,"
	                          "\"displayName\":\"=HYPERLINK(\\\"http://x\\\",\\\"y\\\")\","
	                          "\"assignedLicenses\":[{\"skuId\":\"05e9a617-0261-4cee-bb44-138d3ef5d965\"}]}", &err), &err);
	struct report_opts o = { .kind = REPORT_LICENSES, .by_user = true, .days = 1 };
	struct report *r = NULL;
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	struct buf out = {0};
	report_render_table(r, &o, &out);
	CHECK(strchr(out.data, 0x1b) == NULL);
	CHECK(strstr(out.data, "\nFAKE LINE") == NULL);
	CHECK_CONTAINS(out.data, "Alpha?[31m?FAKE~");
	buf_reset(&out);
	o.kind = REPORT_FINDINGS;
	report_render_table(r, &o, &out);
	CHECK(strchr(out.data, 0x1b) == NULL);
	CHECK_CONTAINS(out.data, "disabled user @evil@a.com");
	buf_reset(&out);
	o.kind = REPORT_LICENSES;
	report_render_csv(r, &o, &out);
	CHECK_CONTAINS(out.data, ",u1,\"'@evil@a.com\",\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",");
	CHECK(strchr(out.data, 0x1b) == NULL);
	CHECK_CONTAINS(out.data, "t-a,Alpha?[31m?FAKE LINE,");
	buf_reset(&out);
	report_csv_field(&out, "-1+2");
	buf_addc(&out, ',');
	report_csv_field(&out, "+x");
	buf_addc(&out, ',');
	report_csv_field(&out, "\tx");
	buf_addc(&out, ',');
	report_csv_field(&out, "a=b");
	CHECK_STR(out.data, "\"'-1+2\",\"'+x\",\"'?x\",a=b");
	buf_free(&out);
	report_free(r);
	close_store(st);
}

static void put_score(struct store *st, const char *tenant, int day, double cur, double max, struct err *err);

/* A tenant whose pulls have failed for days keeps the counts of its last
 * good day: the table marks them with that day, the CSV gives every row its
 * day, and a tenant with no snapshot at all is a line of its own. */
TEST(report_licenses_say_their_day)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	REQUIRE_OK(store_tenant_put(st, &(struct store_tenant){ .id = "t-c", .name = "Gamma" }, &err), &err);
	for (int d = 0; d <= 5; d++) put_lic(st, "t-a", d, "05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3", 10, 7, &err);
	for (int d = 0; d <= 2; d++) put_lic(st, "t-b", d, "05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3", 5, 5, &err);
	struct report_opts o = { .kind = REPORT_LICENSES };
	struct report *r = NULL;
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	struct buf out = {0};
	report_render_table(r, &o, &out);
	CHECK_CONTAINS(out.data, "\nAlpha            Microsoft 365 E3");
	CHECK_CONTAINS(out.data, "\nBeta*            Microsoft 365 E3");
	CHECK_CONTAINS(out.data, "\nGamma            (no licence snapshot yet)\n");
	CHECK_CONTAINS(out.data, "Counts of 2025-01-06, the newest snapshot day.\n"
	                         "* counts of an older day (no snapshot since): Beta 2025-01-03.\n");
	buf_reset(&out);
	report_render_csv(r, &o, &out);
	CHECK(str_starts(out.data, "tenant_id,tenant_name,sku_id,sku_part_number,sku_name,purchased,assigned,available,"
	                           "license_day\n"));
	CHECK_CONTAINS(out.data, "\nt-a,Alpha,05e9a617-0261-4cee-bb44-138d3ef5d965,SPE_E3,Microsoft 365 E3,10,7,3,2025-01-06\n");
	CHECK_CONTAINS(out.data, "\nt-b,Beta,05e9a617-0261-4cee-bb44-138d3ef5d965,SPE_E3,Microsoft 365 E3,5,5,0,2025-01-03\n");
	CHECK_CONTAINS(out.data, "\nt-c,Gamma,,,,,,,\n");
	report_free(r);
	/* Secure Score: the table says where "all" starts */
	for (int d = 0; d <= 5; d++) put_score(st, "t-a", d, 40 + d, 100, &err);
	for (int d = 3; d <= 5; d++) put_score(st, "t-b", d, 50, 100, &err);
	o.kind = REPORT_SECURESCORE;
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	buf_reset(&out);
	report_render_table(r, &o, &out);
	CHECK_CONTAINS(out.data, "all = since the first stored day, 2025-01-01 (Beta: 2025-01-04).\n");
	buf_free(&out);
	report_free(r);
	close_store(st);
}

/* Free, trial and self-service SKUs (10,000 seats each) are not billable:
 * never "unused". The threshold reads "1 day", not "1 days". */
TEST(report_free_skus_are_not_unused)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	put_lic(st, "t-a", 0, "dcb1a3ae-b33f-4487-846a-a640262fadf4", "POWERAPPS_VIRAL", 10000, 3, &err);
	put_lic(st, "t-b", 0, "05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3", 10, 7, &err);
	struct report_opts o = { .kind = REPORT_FINDINGS, .days = 1 };
	struct report *r = NULL;
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	const struct report_sku *s = find_sku(r, "t-a", "POWERAPPS_VIRAL");
	REQUIRE(s);
	CHECK(!s->billable);
	REQUIRE(r->findings.n == 1);
	CHECK_STR(r->findings.v[0].tenant_id, "t-b");
	struct buf out = {0};
	report_render_table(r, &o, &out);
	CHECK_CONTAINS(out.data, "unused = seats free for 1 day in a row or more.\n");
	buf_reset(&out);
	o.format = REPORT_HTML;
	report_render_html(r, &o, &out);
	CHECK_CONTAINS(out.data, "Unused: billable seats free for 1 day in a row or more.");
	CHECK_CONTAINS(out.data, "<span>Unused billable seats</span><b>3</b>");
	buf_free(&out);
	report_free(r);
	close_store(st);
}

static void put_score(struct store *st, const char *tenant, int day, double cur, double max, struct err *err)
{
	char d[11];
	day_n(day, d);
	store_secure_score_put(st, &(struct store_secure_score){ .tenant_id = tenant, .day = d, .current_score = cur,
	                       .max_score = max,
	                       .averages = "[{\"basis\":\"AllTenants\",\"averageScore\":41.5},"
	                                   "{\"basis\":\"TotalSeats\",\"averageScore\":44}]",
	                       .controls = "[{\"controlName\":\"AdminMFA\",\"controlCategory\":\"Identity\","
	                                   "\"score\":\"7.5\",\"on\":\"true\"}]" }, err);
}

TEST(report_trends_and_ranking)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	/* Alpha: 100 days, percent = day / 2 (max 200), day 50 missing */
	for (int d = 0; d < 100; d++)
		if (d != 50) put_score(st, "t-a", d, d, 200, &err);
	/* Beta: 10 days, 60 % then 80 % */
	for (int d = 90; d < 100; d++) put_score(st, "t-b", d, d < 95 ? 60 : 80, 100, &err);
	REQUIRE_OK(store_history_profiles_put(st, "t-a", "[{\"id\":\"AdminMFA\",\"title\":\"Require MFA for admins\","
	                                      "\"maxScore\":10}]", &err), &err);
	struct report_opts o = { .kind = REPORT_SECURESCORE, .controls = true };
	struct report *r = NULL;
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	REQUIRE(r->ntenants == 2);
	const struct report_tenant *b = &r->tenants[0], *a = &r->tenants[1];
	CHECK_STR(b->name, "Beta");                            /* 80 % ranks above 49.5 % */
	CHECK_EQ_INT(b->rank, 1);
	CHECK_EQ_INT(a->rank, 2);
	CHECK_EQ_INT(a->ndays, 99);
	/* Alpha's newest is day 99 (49.5 %); 7 days back = day 92 (46 %) */
	CHECK(a->trend_set[0] && fabs(a->trend[0] - 3.5) < 1e-9);
	CHECK(a->trend_set[1] && fabs(a->trend[1] - 15.0) < 1e-9);
	/* 90 days back = day 9 */
	CHECK(a->trend_set[2] && fabs(a->trend[2] - 45.0) < 1e-9);
	CHECK(a->trend_set[3] && fabs(a->trend[3] - 49.5) < 1e-9);
	/* Beta: 9 days of history: 7 days back = day 92 (60 %); no 30/90 */
	CHECK(b->trend_set[0] && fabs(b->trend[0] - 20.0) < 1e-9);
	CHECK(!b->trend_set[1]);
	CHECK(!b->trend_set[2]);
	CHECK(b->trend_set[3] && fabs(b->trend[3] - 20.0) < 1e-9);
	CHECK(fabs(a->avg_all_tenants - 41.5) < 1e-9 && fabs(a->avg_similar_seats - 44) < 1e-9);
	REQUIRE(a->ncontrols == 1);
	CHECK_STR(a->controls[0].title, "Require MFA for admins");
	CHECK(fabs(a->controls[0].score - 7.5) < 1e-9 && fabs(a->controls[0].max - 10) < 1e-9);

	struct buf out = {0};
	o.format = REPORT_CSV;
	o.days = 3;
	report_render_csv(r, &o, &out);
	CHECK(str_starts(out.data, "tenant_id,tenant_name,date,current_score,max_score,percent\n"));
	CHECK_CONTAINS(out.data, "t-a,Alpha,2025-04-10,99.00,200.00,49.50\n");
	CHECK_CONTAINS(out.data, "t-b,Beta,2025-04-10,80.00,100.00,80.00\n");
	size_t lines = 0;
	for (const char *p = out.data; *p; p++) lines += *p == '\n';
	CHECK_EQ_INT(lines, 1 + 3 + 3);                      /* header + the last 3 days of each */
	buf_reset(&out);
	o.format = REPORT_TABLE;
	o.days = 0;
	report_render_table(r, &o, &out);
	CHECK_CONTAINS(out.data, "  1 Beta             2025-04-10   80.00   80.00  +20.00       -       -  +20.00\n");
	CHECK_CONTAINS(out.data, "  2 Alpha            2025-04-10   99.00   49.50   +3.50  +15.00  +45.00  +49.50\n");
	buf_free(&out);
	report_free(r);
	close_store(st);
}

TEST(report_percent_and_cells)
{
	CHECK(report_percent(5, 0) == 0);
	CHECK(fabs(report_percent(1, 3) - 33.333333333) < 1e-6);
	struct buf b = {0};
	report_cell(&b, "Microsoft 365 Business Standard", 10, false);
	CHECK_STR(b.data, "Microsoft~");
	buf_reset(&b);
	report_cell(&b, "Zoë – Größe", 8, false);               /* 8 columns, not 8 bytes */
	CHECK_STR(b.data, "Zoë – G~");
	buf_reset(&b);
	report_cell(&b, "42", 5, true);
	CHECK_STR(b.data, "   42");
	buf_reset(&b);
	report_csv_field(&b, "Contoso, \"Ltd\"");
	CHECK_STR(b.data, "\"Contoso, \"\"Ltd\"\"\"");
	buf_reset(&b);
	report_html_escape(&b, "<a href='x'>&\"");
	CHECK_STR(b.data, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;");
	buf_free(&b);
	enum report_kind k;
	enum report_format f;
	CHECK(report_kind_parse("securescore", &k) == 0 && k == REPORT_SECURESCORE);
	CHECK(report_kind_parse("licences", &k) < 0);
	CHECK(report_format_parse("html", &f) == 0 && f == REPORT_HTML);
}

/* A hook that renames, hides, groups and prices; fails for one SKU. */
static int test_license_hook(void *ctx, const char *tenant_id, const struct report_sku_in *in,
                             struct report_sku_shape *out, struct err *err)
{
	(*(int *)ctx)++;
	memset(out, 0, sizeof *out);
	if (strcmp(in->part, "FREE_THING") == 0) out->hide = true;
	if (strcmp(in->part, "P1") == 0 || strcmp(in->part, "P2") == 0) out->group = xstrdup("Bundle");
	if (strcmp(in->part, "P1") == 0) {
		out->unit_price_set = true;
		out->unit_price = 12.5;
	}
	if (strcmp(in->part, "BROKEN") == 0) return err_set(err, "policy error in license(): boom");
	if (strcmp(in->part, "P3") == 0) out->name = xstrdup("Renamed");
	return 0;
}

static int test_score_hook(void *ctx, const char *tenant_id, const struct report_score_point *s,
                           const struct report_score_point *prev, char **alert, struct err *err)
{
	*alert = prev && s->percent > prev->percent ? xasprintf("%s up to %.2f", tenant_id, s->percent) : NULL;
	return 0;
}

TEST(report_hooks_shape_skus)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	struct store_license rows[] = {
		{ .sku_id = "g1", .sku_part_number = "P1", .enabled = 10, .consumed = 4 },
		{ .sku_id = "g2", .sku_part_number = "P2", .enabled = 5, .consumed = 5 },
		{ .sku_id = "g3", .sku_part_number = "P3", .enabled = 2, .consumed = 1 },
		{ .sku_id = "g4", .sku_part_number = "FREE_THING", .enabled = 10000, .consumed = 1 },
		{ .sku_id = "g5", .sku_part_number = "BROKEN", .enabled = 1, .consumed = 1 },
	};
	REQUIRE_OK(store_license_snapshot_put(st, "t-a", "2025-02-01", rows, 5, &err), &err);
	put_score(st, "t-a", 0, 10, 100, &err);
	put_score(st, "t-a", 1, 20, 100, &err);
	int calls = 0;
	struct report_hooks hooks = { .license = test_license_hook, .secure_score = test_score_hook, .ctx = &calls };
	struct report_opts o = { .kind = REPORT_FINDINGS, .tenants = (const char *[]){ "Alpha" }, .ntenants = 1 };
	struct report *r = NULL;
	REQUIRE_OK(report_build(st, &o, &hooks, &r, &err), &err);
	CHECK_EQ_INT(calls, 5);
	REQUIRE(r->ntenants == 1);
	const struct report_tenant *t = &r->tenants[0];
	CHECK_EQ_INT(t->nskus, 3);                             /* bundle, P3, BROKEN; FREE_THING hidden */
	const struct report_sku *bundle = find_sku(r, "t-a", "P1+P2");
	REQUIRE(bundle);
	CHECK_STR(bundle->name, "Bundle");
	CHECK_STR(bundle->sku_id, "g1+g2");
	CHECK_EQ_INT(bundle->purchased, 15);
	CHECK_EQ_INT(bundle->assigned, 9);
	CHECK(bundle->unit_price_set && bundle->unit_price == 12.5);
	CHECK_STR(find_sku(r, "t-a", "P3")->name, "Renamed");
	CHECK_STR(find_sku(r, "t-a", "BROKEN")->name, "BROKEN");   /* unknown SKU: its part number */
	CHECK(!find_sku(r, "t-a", "BROKEN")->known);
	CHECK_STR(t->hook_error, "policy error in license(): boom");
	CHECK_STR(t->alert, "t-a up to 20.00");
	size_t alerts = 0;
	for (size_t i = 0; i < r->findings.n; i++) alerts += r->findings.v[i].kind == FINDING_SCORE_ALERT;
	CHECK_EQ_INT(alerts, 1);
	report_free(r);
	o.tenants = (const char *[]){ "nosuch" };
	CHECK(report_build(st, &o, &hooks, &r, &err) < 0);
	CHECK_CONTAINS(err.msg, "tenant 'nosuch' is not in the database");
	CHECK(r == NULL);
	close_store(st);
}

/* A soft-deleted user's 30 days are counted to the newest licence day of all
 * the tenants: a tenant whose own snapshots stopped long ago does not keep
 * a user "restorable" past Microsoft's window. */
TEST(report_deleted_user_window_counts_to_the_newest_day)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	struct store_license row = { .sku_id = "05e9a617-0261-4cee-bb44-138d3ef5d965", .sku_part_number = "SPE_E3",
	                             .enabled = 3, .consumed = 1 };
	REQUIRE_OK(store_license_snapshot_put(st, "t-a", "2025-02-01", &row, 1, &err), &err);   /* stale */
	REQUIRE_OK(store_user_put(st, "t-a", "u3", "{\"userPrincipalName\":\"cy@a.com\","
	                          "\"assignedLicenses\":[{\"skuId\":\"05e9a617-0261-4cee-bb44-138d3ef5d965\"}]}", &err), &err);
	REQUIRE_OK(store_user_mark_removed(st, "t-a", "u3", "changed", &err), &err);   /* soft-deleted now */
	struct report_opts o = { .kind = REPORT_LICENSES };
	struct report *r = NULL;
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	CHECK_EQ_INT(r->findings.n, 1);   /* one tenant: its own day is the newest */
	report_free(r);
	REQUIRE_OK(store_license_snapshot_put(st, "t-b", "2099-01-01", &row, 1, &err), &err);   /* decades later */
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	for (size_t i = 0; i < r->findings.n; i++) CHECK(r->findings.v[i].kind != FINDING_DELETED_USER);
	report_free(r);
	store_close(st);
}

TEST(report_users_by_user_and_findings)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	struct store_license row = { .sku_id = "05e9a617-0261-4cee-bb44-138d3ef5d965", .sku_part_number = "SPE_E3",
	                             .enabled = 3, .consumed = 3 };
	REQUIRE_OK(store_license_snapshot_put(st, "t-a", "2025-02-01", &row, 1, &err), &err);
	REQUIRE_OK(store_user_put(st, "t-a", "u1", "{\"userPrincipalName\":\"ann@a.com\",\"accountEnabled\":false,"
	                          "\"assignedLicenses\":[{\"skuId\":\"05e9a617-0261-4cee-bb44-138d3ef5d965\"}]}", &err), &err);
	REQUIRE_OK(store_user_put(st, "t-a", "u2", "{\"userPrincipalName\":\"bob@a.com\",\"accountEnabled\":true,"
	                          "\"assignedLicenses\":[{\"skuId\":\"05e9a617-0261-4cee-bb44-138d3ef5d965\"},"
	                          "{\"skuId\":\"00000000-0000-0000-0000-00000000dead\"}]}", &err), &err);
	REQUIRE_OK(store_user_put(st, "t-a", "u3", "{\"userPrincipalName\":\"cy@a.com\","
	                          "\"assignedLicenses\":[{\"skuId\":\"05e9a617-0261-4cee-bb44-138d3ef5d965\"}]}", &err), &err);
	REQUIRE_OK(store_user_mark_removed(st, "t-a", "u3", "changed", &err), &err);   /* soft-deleted */
	REQUIRE_OK(store_user_put(st, "t-a", "u4", "{\"userPrincipalName\":\"dee@a.com\",\"assignedLicenses\":[]}", &err),
	           &err);
	/* deleted for good (Graph's @removed reason "deleted"): no longer a licence holder, no finding */
	REQUIRE_OK(store_user_put(st, "t-a", "u5", "{\"userPrincipalName\":\"eve@a.com\","
	                          "\"assignedLicenses\":[{\"skuId\":\"05e9a617-0261-4cee-bb44-138d3ef5d965\"}]}", &err), &err);
	REQUIRE_OK(store_user_mark_removed(st, "t-a", "u5", "deleted", &err), &err);
	struct report_opts o = { .kind = REPORT_LICENSES, .by_user = true };
	struct report *r = NULL;
	REQUIRE_OK(report_build(st, &o, NULL, &r, &err), &err);
	const struct report_tenant *t = &r->tenants[0];
	CHECK_STR(t->id, "t-a");
	REQUIRE(t->nusers == 3);                               /* u4 holds nothing */
	CHECK_STR(t->users[1].upn, "bob@a.com");
	REQUIRE(t->users[1].nskus == 2);
	CHECK_STR(t->users[1].skus[0], "Microsoft 365 E3");
	CHECK_STR(t->users[1].skus[1], "00000000-0000-0000-0000-00000000dead");
	CHECK_EQ_INT(r->findings.n, 2);
	CHECK_STR(r->findings.v[0].upn, "ann@a.com");
	CHECK_EQ_INT(r->findings.v[0].kind, FINDING_DISABLED_USER);
	CHECK_EQ_INT(r->findings.v[1].kind, FINDING_DELETED_USER);

	struct buf out = {0};
	o.format = REPORT_CSV;
	report_render_csv(r, &o, &out);
	/* by user: the users' table alone (one table a CSV file) */
	CHECK(str_starts(out.data, "tenant_id,tenant_name,user_id,user_principal_name,display_name,skus\n"));
	CHECK_CONTAINS(out.data, "t-a,Alpha,u2,bob@a.com,,Microsoft 365 E3; 00000000-0000-0000-0000-00000000dead\n");
	CHECK(strstr(out.data, "sku_part_number") == NULL);
	buf_reset(&out);
	o.by_user = false;
	report_render_csv(r, &o, &out);
	CHECK(str_starts(out.data, "tenant_id,tenant_name,sku_id,sku_part_number,sku_name,purchased,assigned,available,"
	                 "license_day\nt-a,Alpha,05e9a617-0261-4cee-bb44-138d3ef5d965,SPE_E3,Microsoft 365 E3,3,3,0,"
	                 "2025-02-01\n"));
	CHECK(strstr(out.data, "user_principal_name") == NULL);
	o.by_user = true;
	buf_reset(&out);
	o.format = REPORT_TABLE;
	report_render_table(r, &o, &out);
	for (const char *line = out.data; *line;) {
		const char *nl = strchr(line, '\n');
		size_t cols = 0;
		for (const char *p = line; p < nl; p++) cols += ((unsigned char)*p & 0xC0) != 0x80;
		CHECK(cols <= 80);
		line = nl + 1;
	}
	CHECK_CONTAINS(out.data, "ann@a.com");
	CHECK_CONTAINS(out.data, "[disabled]");
	CHECK_CONTAINS(out.data, "[deleted]");
	buf_reset(&out);
	o.format = REPORT_JSON;
	REQUIRE_OK(report_render_json(r, &o, &out, &err), &err);
	cJSON *j = cJSON_Parse(out.data);
	REQUIRE(j);
	const cJSON *lic = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tenants"), 0),
	                                                          "licenses"), 0);
	CHECK_EQ_INT(cJSON_GetObjectItem(lic, "available")->valuedouble, 0);
	CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "findings")), 2);
	cJSON_Delete(j);
	buf_reset(&out);
	o.format = REPORT_HTML;
	report_render_html(r, &o, &out);
	CHECK(str_starts(out.data, "<!DOCTYPE html>"));
	CHECK(!strstr(out.data, "<script") && !strstr(out.data, "http://") && !strstr(out.data, "https://"));
	CHECK_CONTAINS(out.data, "disabled user ann@a.com holds Microsoft 365 E3");
	buf_free(&out);

	/* alerts: one per tenant and kind, digest follows the content */
	struct alerts al;
	alerts_collect(r, NULL, &al);
	REQUIRE(al.n == 2);
	CHECK_STR(al.v[0].subject, "[entrasync] Alpha: disabled users still hold licences");
	CHECK_EQ_INT(al.v[0].count, 1);
	CHECK_CONTAINS(al.v[0].body, "- disabled user ann@a.com holds Microsoft 365 E3\n");
	CHECK_EQ_INT(strlen(al.v[0].digest), 16);
	CHECK(strcmp(al.v[0].digest, al.v[1].digest) != 0);
	alerts_free(&al);
	report_free(r);
	close_store(st);
}

TEST(report_alert_state_roundtrip)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	struct store_alert_ticket t;
	CHECK_EQ_INT(store_history_alert_get(st, "t-a", "unused", &t, &err), STORE_NOTFOUND);
	struct store_alert_ticket w = { .ticket_id = 5001, .occurrences = 2, .opened_at = "2025-01-01T00:00:00Z",
	                                .last_at = "2025-01-02T00:00:00Z", .digest = "0123456789abcdef" };
	REQUIRE_OK(store_history_alert_put(st, "t-a", "unused", &w, &err), &err);
	REQUIRE_OK(store_history_alert_get(st, "t-a", "unused", &t, &err), &err);
	CHECK_EQ_INT(t.ticket_id, 5001);
	CHECK_EQ_INT(t.occurrences, 2);
	CHECK_STR(t.opened_at, "2025-01-01T00:00:00Z");
	CHECK_STR(t.digest, "0123456789abcdef");
	CHECK_EQ_INT(store_history_alert_get(st, "t-a", "warning", &t, &err), STORE_NOTFOUND);
	REQUIRE_OK(store_history_alert_put(st, "t-a", "unused", NULL, &err), &err);
	CHECK_EQ_INT(store_history_alert_get(st, "t-a", "unused", &t, &err), STORE_NOTFOUND);
	close_store(st);
}

TEST(report_hook_results_checked)
{
	struct err err;
	struct report_sku_shape sh;
	cJSON *v = cJSON_Parse("{\"name\":\"X\",\"hide\":false,\"billable\":false,\"unit_price\":3.5,\"group\":\"G\"}");
	REQUIRE_OK(report_shape_from_json(v, &sh, &err), &err);
	CHECK_STR(sh.name, "X");
	CHECK_STR(sh.group, "G");
	CHECK(!sh.hide && sh.billable_set && !sh.billable && sh.unit_price_set && sh.unit_price == 3.5);
	report_sku_shape_free(&sh);
	cJSON_Delete(v);
	v = cJSON_Parse("{\"nmae\":\"X\"}");
	CHECK(report_shape_from_json(v, &sh, &err) < 0);
	CHECK_CONTAINS(err.msg, "unknown key 'nmae' (did you mean 'name'?)");
	cJSON_Delete(v);
	v = cJSON_Parse("{\"hide\":\"yes\"}");
	CHECK(report_shape_from_json(v, &sh, &err) < 0);
	CHECK_CONTAINS(err.msg, "'hide' must be a boolean");
	cJSON_Delete(v);
	v = cJSON_Parse("{\"unit_price\":-1}");
	CHECK(report_shape_from_json(v, &sh, &err) < 0);
	cJSON_Delete(v);
	CHECK(report_shape_from_json(NULL, &sh, &err) == 0 && !sh.name && !sh.hide);
	char *alert = NULL;
	v = cJSON_Parse("{\"alert\":\"fell\"}");
	REQUIRE_OK(report_alert_from_json(v, &alert, &err), &err);
	CHECK_STR(alert, "fell");
	free(alert);
	cJSON_Delete(v);
	v = cJSON_Parse("{\"alert\":false}");
	REQUIRE_OK(report_alert_from_json(v, &alert, &err), &err);
	CHECK(alert == NULL);
	cJSON_Delete(v);
	v = cJSON_Parse("{\"alrt\":\"x\"}");
	CHECK(report_alert_from_json(v, &alert, &err) < 0);
	cJSON_Delete(v);
}

TEST(report_ticket_json)
{
	struct err err;
	struct syncro_ticket t;
	cJSON *v = cJSON_Parse("{\"ticket\":{\"id\":5003,\"customer_id\":101,\"number\":1003,\"subject\":\"S\","
	                       "\"status\":\"Resolved\",\"problem_type\":\"Other\"}}");
	REQUIRE_OK(syncro_ticket_from_json(v, &t, &err), &err);
	CHECK_EQ_INT(t.id, 5003);
	CHECK_EQ_INT(t.customer_id, 101);
	CHECK_STR(t.number, "1003");
	CHECK_STR(t.status, "Resolved");
	CHECK(syncro_ticket_closed(t.status));
	CHECK(!syncro_ticket_closed("In Progress"));
	syncro_ticket_free(&t);
	cJSON_Delete(v);
	v = cJSON_Parse("{\"subject\":\"no id\"}");
	CHECK(syncro_ticket_from_json(v, &t, &err) < 0);
	syncro_ticket_free(&t);
	cJSON_Delete(v);
}
