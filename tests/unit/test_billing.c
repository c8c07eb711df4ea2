/* test_billing — the billing rules without a server: periods, bill()'s
 * table, plans (assigned, purchased, peak, minimum, bundles, free and
 * unbilled SKUs) through real policies in the sandbox, plan JSON round
 * trip, drift, and the schedule diff with its decrease guard. */
#include "t.h"

#include <stdio.h>
#include <stdlib.h>

#include "billing/billing.h"
#include "billing/billing_hook.h"

static const struct billing_usage E3 = {
	.sku_id = "6fd2c87f-b296-42f0-b197-1e91e994b900", .part = "ENTERPRISEPACK", .name = "Office 365 E3",
	.purchased = 25, .assigned = 20, .peak_purchased = 30, .peak_assigned = 23, .days = 31,
};
static const struct billing_usage EMS = {
	.sku_id = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e", .part = "EMS", .name = "Enterprise Mobility + Security E3",
	.purchased = 20, .assigned = 18, .peak_purchased = 20, .peak_assigned = 19, .days = 31,
};
static const struct billing_usage VISIO = {
	.sku_id = "c5928f49-12ba-48f7-ada3-0d743a3601d5", .part = "VISIOCLIENT", .name = "Visio Plan 2",
	.purchased = 5, .assigned = 2, .peak_purchased = 5, .peak_assigned = 3, .days = 31,
};
static const struct billing_usage FLOW = {
	.sku_id = "f30db892-07e9-47e9-837c-80727f46fd3d", .part = "FLOW_FREE", .name = "Power Automate Free",
	.purchased = 10000, .assigned = 40, .peak_purchased = 10000, .peak_assigned = 41, .days = 31,
};
static const struct billing_usage SPARE = {
	.sku_id = "18181a46-0d4e-45cd-891e-60aabd171b4e", .part = "STANDARDPACK", .name = "Office 365 E1",
	.purchased = 3, .assigned = 0, .peak_purchased = 3, .peak_assigned = 0, .days = 31,
};

static struct billing_period period(const char *id)
{
	struct billing_period p;
	struct err err;
	billing_period_parse(id, &p, &err);
	return p;
}

TEST(billing_period_prev_crosses_the_year)
{
	struct billing_period p, before;
	struct err err;
	REQUIRE_OK(billing_period_parse("2027-01", &p, &err), &err);
	billing_period_prev(&p, &before);
	CHECK_STR(before.id, "2026-12");
	CHECK_STR(before.last, "2026-12-31");
	REQUIRE_OK(billing_period_parse("2024-03", &p, &err), &err);
	billing_period_prev(&p, &before);
	CHECK_STR(before.last, "2024-02-29");
}

TEST(billing_period_parse_and_days)
{
	struct billing_period p;
	struct err err;
	REQUIRE_OK(billing_period_parse("2024-02", &p, &err), &err);
	CHECK_STR(p.first, "2024-02-01");
	CHECK_STR(p.last, "2024-02-29");
	CHECK_EQ_INT(p.days, 29);
	REQUIRE_OK(billing_period_parse("2026-10", &p, &err), &err);
	CHECK_STR(p.last, "2026-10-31");
	CHECK(billing_period_parse("2026-13", &p, &err) < 0);
	CHECK_CONTAINS(err.msg, "no such month");
	CHECK(billing_period_parse("2026-1", &p, &err) < 0);
	CHECK(billing_period_parse("26-10-01", &p, &err) < 0);
	CHECK_CONTAINS(err.msg, "YYYY-MM");
	/* 2026-10-15T12:00:00Z */
	double mid = 1792065600.0;
	billing_period_of(mid, &p);
	CHECK_STR(p.id, "2026-10");
	CHECK_EQ_INT(billing_period_vs(&p, mid), 0);
	struct billing_period sep = period("2026-09"), nov = period("2026-11");
	CHECK_EQ_INT(billing_period_vs(&sep, mid), -1);
	CHECK_EQ_INT(billing_period_vs(&nov, mid), 1);
}

TEST(billing_item_rules)
{
	struct billing_item it;
	struct err err;
	REQUIRE_OK(billing_item_from_json("{\"product_id\":503,\"quantity\":7,\"taxable\":false}", &E3, &it, &err), &err);
	CHECK_EQ_INT(it.product_id, 503);
	CHECK_EQ_INT(it.quantity, 7);
	CHECK(!it.has_price);
	CHECK_EQ_INT(it.taxable, 0);
	billing_item_free(&it);
	/* quantity defaults to the assigned seats; price rounded to cents */
	REQUIRE_OK(billing_item_from_json("{\"name\":\"E3 seat\",\"unit_price\":19.995}", &E3, &it, &err), &err);
	CHECK_EQ_INT(it.quantity, 20);
	CHECK_EQ_INT(it.unit_cents, 2000);
	CHECK_STR(it.name, "E3 seat");
	billing_item_free(&it);
	CHECK(billing_item_from_json("{\"name\":\"x\"}", &E3, &it, &err) < 0);
	CHECK_CONTAINS(err.msg, "needs a unit_price");
	CHECK(billing_item_from_json("{\"unit_price\":3}", &E3, &it, &err) < 0);
	CHECK_CONTAINS(err.msg, "product_id");
	CHECK(billing_item_from_json("{\"product_id\":1,\"quantitiy\":3}", &E3, &it, &err) < 0);
	CHECK_CONTAINS(err.msg, "did you mean 'quantity'");
	CHECK_CONTAINS(err.msg, "ENTERPRISEPACK");
	CHECK(billing_item_from_json("{\"product_id\":1,\"quantity\":2.5}", &E3, &it, &err) < 0);
	CHECK_CONTAINS(err.msg, "whole number");
	CHECK(billing_item_from_json("{\"product_id\":1,\"quantity\":-1}", &E3, &it, &err) < 0);
	CHECK(billing_item_from_json("{\"product_id\":0}", &E3, &it, &err) < 0);
	CHECK(billing_item_from_json("{\"product_id\":1,\"unit_price\":\"12\"}", &E3, &it, &err) < 0);
	CHECK(billing_item_from_json("{\"product_id\":1,\"taxable\":1}", &E3, &it, &err) < 0);
	CHECK(billing_item_from_json("[1]", &E3, &it, &err) < 0);
	/* bounds that keep every total of cents from overflowing */
	CHECK(billing_item_from_json("{\"name\":\"Big\",\"unit_price\":999999999,\"quantity\":1}", &E3, &it, &err) < 0);
	CHECK_CONTAINS(err.msg, "unit_price must be a number from 0 to 1,000,000");
	CHECK(billing_item_from_json("{\"name\":\"Big\",\"unit_price\":1,\"quantity\":1000000000}", &E3, &it, &err) < 0);
	CHECK_CONTAINS(err.msg, "quantity must be a whole number from 0 to 10,000,000, got more");
	REQUIRE_OK(billing_item_from_json("{\"name\":\"Top\",\"unit_price\":1000000,\"quantity\":10000000}", &E3, &it,
	                                  &err), &err);
	CHECK(it.unit_cents * it.quantity == 1000000000000000LL);
	billing_item_free(&it);
}

/* Writes a policy into the test's folder and opens its hook. */
static struct billing_hook *hook_of(const char *lua, struct err *err)
{
	char path[600];
	snprintf(path, sizeof path, "%s/bill_policy.lua", t_tmpdir());
	FILE *f = fopen(path, "w");
	if (!f) return NULL;
	fputs(lua, f);
	fclose(f);
	struct billing_hook *h = NULL;
	if (billing_hook_open(path, NULL, &h, err) != 0) return NULL;
	struct script_tenant t = { .id = "contoso.com", .name = "Contoso", .syncro_customer_id = 101 };
	if (billing_hook_set_tenant(h, &t, err) != 0) {
		billing_hook_free(h);
		return NULL;
	}
	return h;
}

/* Plans the given SKUs with the hook into *plan. */
static int plan_with(struct billing_hook *h, const struct billing_usage *const *u, size_t n,
                     struct billing_plan *plan, struct err *err)
{
	struct billing_period p = period("2026-10");
	billing_plan_init(plan, "contoso.com", &p);
	for (size_t i = 0; i < n; i++) {
		enum billing_verdict v;
		struct billing_item it;
		if (billing_hook_call(h, u[i], &p, &v, &it, err) != 0) return -1;
		int rc = billing_plan_add(plan, u[i], v, &it, err);
		billing_item_free(&it);
		if (rc != 0) return -1;
	}
	return 0;
}

static const char PRICING_POLICY[] =
	"local prices = { ENTERPRISEPACK = 23.00, VISIOCLIENT = 15.00 }\n"
	"return {\n"
	"  include = function(u) return true end,\n"
	"  bill = function(sku, t)\n"
	"    assert(t.id == 'contoso.com' and t.syncro_customer_id == 101)\n"
	"    assert(sku.period == '2026-10' and sku.available == sku.purchased - sku.assigned)\n"
	"    if sku.part == 'FLOW_FREE' then return false end\n"
	"    if sku.part == 'ENTERPRISEPACK' then\n"   /* purchased seats */
	"      return { name = 'Office 365 E3', unit_price = prices[sku.part], quantity = sku.purchased }\n"
	"    end\n"
	"    if sku.part == 'VISIOCLIENT' then\n"      /* peak, with a minimum of 5 */
	"      return { name = 'Visio', unit_price = prices[sku.part], quantity = math.max(sku.peak_assigned, 5),\n"
	"               taxable = true }\n"
	"    end\n"
	"    return nil\n"
	"  end,\n"
	"}\n";

TEST(billing_hook_pricing_rules)
{
	struct err err;
	struct billing_hook *h = hook_of(PRICING_POLICY, &err);
	REQUIRE_OK(h ? 0 : -1, &err);
	const struct billing_usage *u[] = { &E3, &EMS, &VISIO, &FLOW, &SPARE };
	struct billing_plan plan;
	REQUIRE_OK(plan_with(h, u, ARRAY_LEN(u), &plan, &err), &err);
	REQUIRE(plan.nlines == 2);
	const struct billing_line *e3 = billing_plan_line(&plan, "n:office 365 e3");
	const struct billing_line *visio = billing_plan_line(&plan, "n:visio");
	REQUIRE(e3 && visio);
	CHECK_EQ_INT(e3->quantity, 25);              /* purchased */
	CHECK_EQ_INT(e3->unit_cents, 2300);
	CHECK_EQ_INT(visio->quantity, 5);            /* max(peak 3, minimum 5) */
	CHECK_EQ_INT(visio->taxable, 1);
	CHECK_EQ_INT(plan.skus[1].status, BILLING_SKU_UNBILLED);   /* EMS: nil with seats assigned */
	CHECK_EQ_INT(plan.skus[3].status, BILLING_SKU_FREE);       /* FLOW_FREE: false */
	CHECK_EQ_INT(plan.skus[4].status, BILLING_SKU_IDLE);       /* nil, nothing assigned */
	CHECK_EQ_INT(billing_plan_unbilled(&plan), 1);
	bool complete;
	CHECK_EQ_INT(billing_plan_total(&plan, &complete), 25 * 2300 + 5 * 1500);
	CHECK(complete);
	billing_plan_free(&plan);
	billing_hook_free(h);
}

TEST(billing_hook_assigned_peak_and_bundle)
{
	struct err err;
	/* E3 + EMS roll into one "Microsoft 365 E5 bundle" product line by peak;
	 * Visio billed on assigned seats from the catalog price. */
	struct billing_hook *h = hook_of(
		"return {\n"
		"  include = function() return true end,\n"
		"  bill = function(sku)\n"
		"    if sku.part == 'ENTERPRISEPACK' or sku.part == 'EMS' then\n"
		"      return { product_id = 777, quantity = sku.peak_assigned }\n"
		"    elseif sku.part == 'VISIOCLIENT' then\n"
		"      return { product_id = 504 }\n"            /* quantity = assigned */
		"    end\n"
		"  end,\n"
		"}\n", &err);
	REQUIRE_OK(h ? 0 : -1, &err);
	const struct billing_usage *u[] = { &E3, &EMS, &VISIO };
	struct billing_plan plan;
	REQUIRE_OK(plan_with(h, u, ARRAY_LEN(u), &plan, &err), &err);
	REQUIRE(plan.nlines == 2);
	const struct billing_line *bundle = billing_plan_line(&plan, "p:777");
	REQUIRE(bundle);
	CHECK_EQ_INT(bundle->quantity, 23 + 19);
	CHECK_STR(bundle->skus, "ENTERPRISEPACK+EMS");
	CHECK_EQ_INT(plan.skus[0].quantity, 23);
	CHECK_EQ_INT(plan.skus[1].quantity, 19);
	CHECK_EQ_INT(plan.skus[0].line, plan.skus[1].line);
	CHECK_EQ_INT(billing_plan_line(&plan, "p:504")->quantity, 2);
	bool complete = true;
	billing_plan_total(&plan, &complete);
	CHECK(!complete);                            /* catalog prices not known yet */
	CHECK_STR(billing_line_label(bundle), "product 777");

	/* JSON round trip keeps lines, shares and statuses */
	char *json = billing_plan_to_json(&plan);
	struct billing_plan back;
	REQUIRE_OK(billing_plan_from_json(json, &back, &err), &err);
	CHECK_EQ_INT(back.nlines, 2);
	CHECK_EQ_INT(back.nskus, 3);
	CHECK_EQ_INT(billing_plan_line(&back, "p:777")->quantity, 42);
	CHECK_EQ_INT(back.skus[1].quantity, 19);
	CHECK_EQ_INT(back.skus[1].line, 0);
	CHECK_STR(back.period.id, "2026-10");
	struct billing_drifts d;
	billing_plan_drift(&plan, &back, &d);
	CHECK_EQ_INT(d.n, 0);
	billing_drifts_free(&d);
	free(json);
	billing_plan_free(&back);
	billing_plan_free(&plan);
	billing_hook_free(h);
}

TEST(billing_bundle_conflicts_and_hook_errors)
{
	struct err err;
	struct billing_hook *h = hook_of(
		"return {\n"
		"  include = function() return true end,\n"
		"  bill = function(sku)\n"
		"    if sku.part == 'VISIOCLIENT' then return 'seven' end\n"
		"    if sku.part == 'FLOW_FREE' then return { product_id = 5, qty = 1 } end\n"
		"    if sku.part == 'STANDARDPACK' then local x = nil; return x.y end\n"
		"    return { product_id = 9, unit_price = sku.part == 'EMS' and 2 or 3 }\n"
		"  end,\n"
		"}\n", &err);
	REQUIRE_OK(h ? 0 : -1, &err);
	const struct billing_usage *u[] = { &E3, &EMS };
	struct billing_plan plan;
	CHECK(plan_with(h, u, 2, &plan, &err) < 0);
	CHECK_CONTAINS(err.msg, "different unit prices (3.00 and 2.00)");
	CHECK_CONTAINS(err.msg, "ENTERPRISEPACK and EMS");
	billing_plan_free(&plan);
	const struct billing_usage *v[] = { &VISIO };
	CHECK(plan_with(h, v, 1, &plan, &err) < 0);
	CHECK_CONTAINS(err.msg, "bill() must return a table, nil or false, got string");
	billing_plan_free(&plan);
	const struct billing_usage *f[] = { &FLOW };
	CHECK(plan_with(h, f, 1, &plan, &err) < 0);
	CHECK_CONTAINS(err.msg, "unknown key 'qty'");
	billing_plan_free(&plan);
	const struct billing_usage *s[] = { &SPARE };
	CHECK(plan_with(h, s, 1, &plan, &err) < 0);
	CHECK_CONTAINS(err.msg, "in bill()");
	CHECK_CONTAINS(err.msg, "bill_policy.lua:6:");
	billing_plan_free(&plan);
	billing_hook_free(h);

	/* a policy without bill, and a runaway bill() under the budget */
	CHECK(hook_of("return { include = function() return true end }\n", &err) == NULL);
	CHECK_CONTAINS(err.msg, "no bill function");
	h = hook_of("return { include = function() return true end, bill = function() while true do end end }\n", &err);
	REQUIRE_OK(h ? 0 : -1, &err);
	CHECK(plan_with(h, u, 1, &plan, &err) < 0);
	CHECK_CONTAINS(err.msg, "instruction budget exceeded");
	billing_plan_free(&plan);
	billing_hook_free(h);
}

/* A plan of named/product lines with the given quantities (no hook). */
static void plan_lines(struct billing_plan *p, const long long *product, const long long *qty, const long long *cents,
                       size_t n)
{
	struct billing_period per = period("2026-10");
	billing_plan_init(p, "t", &per);
	for (size_t i = 0; i < n; i++) {
		char part[32];
		snprintf(part, sizeof part, "SKU%zu", i);
		struct billing_usage u = { .sku_id = part, .part = part, .name = part, .assigned = qty[i] };
		struct billing_item it = { .product_id = product[i], .quantity = qty[i], .taxable = -1,
		                           .has_price = cents[i] >= 0, .unit_cents = cents[i] };
		struct err err;
		billing_plan_add(p, &u, BILLING_BILLED, &it, &err);
	}
}

TEST(billing_drift_reports_changed_counts)
{
	struct billing_plan then, now;
	plan_lines(&then, (long long[]){ 501, 503, 504 }, (long long[]){ 10, 4, 2 }, (long long[]){ 600, -1, 400 }, 3);
	plan_lines(&now, (long long[]){ 501, 503, 505 }, (long long[]){ 12, 4, 1 }, (long long[]){ 600, -1, 4500 }, 3);
	struct billing_drifts d;
	billing_plan_drift(&then, &now, &d);
	REQUIRE(d.n == 3);
	CHECK_STR(d.v[0].key, "p:501");
	CHECK_EQ_INT(d.v[0].old_qty, 10);
	CHECK_EQ_INT(d.v[0].new_qty, 12);
	CHECK_STR(d.v[1].key, "p:504");
	CHECK_EQ_INT(d.v[1].new_qty, -1);                 /* gone */
	CHECK_STR(d.v[2].key, "p:505");
	CHECK_EQ_INT(d.v[2].old_qty, -1);                 /* new */
	billing_drifts_free(&d);
	billing_plan_free(&then);
	billing_plan_free(&now);
}

TEST(billing_schedule_diff_keeps_quantities_in_step)
{
	/* plan: 503 x 6 (catalog price), 501 x 10 at 6.50, named "Backup" x 3 at 2.00 */
	struct billing_plan p;
	plan_lines(&p, (long long[]){ 503, 501 }, (long long[]){ 6, 10 }, (long long[]){ -1, 650 }, 2);
	{
		struct billing_usage u = { .sku_id = "b", .part = "BACKUP", .name = "Backup", .assigned = 3 };
		char name[] = "Backup";
		struct billing_item it = { .name = name, .quantity = 3, .has_price = true, .unit_cents = 200, .taxable = -1 };
		struct err e;
		billing_plan_add(&p, &u, BILLING_BILLED, &it, &e);
	}
	struct billing_sched_line have[] = {
		{ .id = 3001, .product_id = 503, .name = "Business Premium", .qty_centi = 400, .retail_cents = 2000 },
		{ .id = 3002, .product_id = 505, .name = "Managed User", .qty_centi = 400, .retail_cents = 4500 },
		{ .id = 3003, .product_id = 501, .name = "Business Basic", .qty_centi = 1000, .retail_cents = 650 },
		{ .id = 3004, .product_id = 504, .name = "Exchange Online", .qty_centi = 200, .retail_cents = 400 },
		{ .id = 3005, .product_id = 503, .name = "Business Premium", .qty_centi = 100, .retail_cents = 2000 },
	};
	const char *managed[] = { "p:503", "p:504" };
	struct billing_sched_opts o = { .max_decrease_count = -1, .max_decrease_percent = -1 };
	struct billing_changes c;
	struct err err;
	REQUIRE_OK(billing_schedule_diff(&p, have, ARRAY_LEN(have), managed, 2, &o, &c, &err), &err);
	/* 503: 4 -> 6 (catalog price: 20.00 on the schedule is left alone);
	 * 501 already right; Backup added; 504 managed and gone: zeroed;
	 * 505 never managed: untouched; 3005 duplicates 503: reported. */
	REQUIRE(c.n == 3);
	CHECK_EQ_INT(c.v[0].kind, BILLING_UPDATE);
	CHECK_EQ_INT(c.v[0].line_id, 3001);
	CHECK_EQ_INT(c.v[0].old_qty_centi, 400);
	CHECK_EQ_INT(c.v[0].new_qty_centi, 600);
	CHECK(!c.v[0].set_price);
	CHECK_EQ_INT(c.v[1].kind, BILLING_ADD);
	CHECK_STR(c.v[1].key, "n:backup");
	CHECK_EQ_INT(c.v[1].new_cents, 200);
	CHECK(c.v[1].set_price);
	CHECK_EQ_INT(c.v[2].kind, BILLING_ZERO);
	CHECK_EQ_INT(c.v[2].line_id, 3004);
	CHECK_EQ_INT(c.unchanged, 1);
	CHECK_EQ_INT(c.nduplicates, 1);
	CHECK_CONTAINS(c.duplicates[0], "line 3001");
	CHECK(!c.held);                               /* -2 units of 16: under 5 */
	CHECK_EQ_INT(c.decrease, 2);
	CHECK_EQ_INT(c.base, 4 + 10 + 2);
	billing_changes_free(&c);

	/* remove mode, and an explicit price that differs is written */
	o.remove = true;
	p.lines[1].unit_cents = 700;
	REQUIRE_OK(billing_schedule_diff(&p, have, ARRAY_LEN(have), managed, 2, &o, &c, &err), &err);
	REQUIRE(c.n == 4);
	CHECK_EQ_INT(c.v[1].kind, BILLING_UPDATE);
	CHECK(c.v[1].set_price);
	CHECK_EQ_INT(c.v[1].old_cents, 650);
	CHECK_EQ_INT(c.v[1].new_cents, 700);
	CHECK_EQ_INT(c.v[1].new_qty_centi, 1000);
	CHECK_EQ_INT(c.v[3].kind, BILLING_REMOVE);
	billing_changes_free(&c);
	billing_plan_free(&p);
}

TEST(billing_schedule_guard_holds_large_decreases)
{
	struct billing_plan p;
	plan_lines(&p, (long long[]){ 503, 501 }, (long long[]){ 30, 52 }, (long long[]){ -1, -1 }, 2);
	struct billing_sched_line have[] = {
		{ .id = 1, .product_id = 503, .qty_centi = 4000 },   /* 40 -> 30: -10 */
		{ .id = 2, .product_id = 501, .qty_centi = 5000 },   /* 50 -> 52: +2 */
	};
	struct billing_sched_opts o = { .max_decrease_count = -1, .max_decrease_percent = -1 };
	struct billing_changes c;
	struct err err;
	REQUIRE_OK(billing_schedule_diff(&p, have, 2, NULL, 0, &o, &c, &err), &err);
	CHECK(c.held);                                /* 10 > max(5, 10 % of 90 = 9) */
	CHECK_CONTAINS(c.reason, "--allow-decrease");
	REQUIRE(c.n == 2);
	CHECK(c.v[0].held);
	CHECK(!c.v[1].held);                          /* increases still go */
	billing_changes_free(&c);
	o.max_decrease_percent = 20;                  /* 18 allowed */
	REQUIRE_OK(billing_schedule_diff(&p, have, 2, NULL, 0, &o, &c, &err), &err);
	CHECK(!c.held);
	billing_changes_free(&c);
	o.max_decrease_percent = -1;
	o.allow_decrease = true;
	REQUIRE_OK(billing_schedule_diff(&p, have, 2, NULL, 0, &o, &c, &err), &err);
	CHECK(!c.held);
	CHECK(!c.v[0].held);
	billing_changes_free(&c);
	billing_plan_free(&p);
}
