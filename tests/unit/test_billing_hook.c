/* test_billing_hook — the policy's bill(sku, t) hook as lua_bill.c calls it:
 * the three answers (table, nil, false) and what the hook sees; errors that
 * name bill() and the policy's file:line (runtime errors, wrong answers,
 * invalid tables); the instruction budget and memory cap per call (fresh
 * for the next call, kept through pcall); and no temporary file (the hook
 * loads and runs with TMPDIR naming a missing folder). */
#include "t.h"

#include <stdio.h>
#include <stdlib.h>

#include "billing/billing.h"
#include "billing/billing_hook.h"
#include "util/util.h"

static const struct billing_usage E3 = {
	.sku_id = "6fd2c87f-b296-42f0-b197-1e91e994b900", .part = "ENTERPRISEPACK", .name = "Office 365 E3",
	.purchased = 25, .assigned = 20, .peak_purchased = 30, .peak_assigned = 23, .days = 31,
};
static const struct billing_usage BARE = {   /* no part number, no name */
	.sku_id = "00000000-0000-0000-0000-00000000beef", .purchased = 4, .assigned = 1, .days = 31,
};

/* Opens the hook of the policy at path with limits (NULL: defaults) and
 * the Contoso tenant; NULL with err on failure. */
static struct billing_hook *open_hook(const char *path, const struct script_limits *limits, struct err *err)
{
	struct billing_hook *h = NULL;
	if (billing_hook_open(path, limits, &h, err) != 0) return NULL;
	struct script_tenant t = { .id = "contoso.com", .name = "Contoso", .syncro_customer_id = 101 };
	if (billing_hook_set_tenant(h, &t, err) != 0) {
		billing_hook_free(h);
		return NULL;
	}
	return h;
}

static int call(struct billing_hook *h, const struct billing_usage *u, enum billing_verdict *v,
                struct billing_item *it, struct err *err)
{
	struct billing_period p;
	billing_period_parse("2026-10", &p, err);
	return billing_hook_call(h, u, &p, v, it, err);
}

static const char *first_line(const char *msg)
{
	static char line[512];
	snprintf(line, sizeof line, "%.*s", (int)strcspn(msg, "\n"), msg);
	return line;
}

/* Calls the hook on E3 with `assigned` seats, expecting a failure: the
 * first line of its message (err keeps all of it), or "(succeeded)". */
static const char *failure(struct billing_hook *h, long long assigned, struct err *err)
{
	struct billing_usage u = E3;
	enum billing_verdict v;
	struct billing_item it;
	u.assigned = assigned;
	if (call(h, &u, &v, &it, err) == 0) {
		billing_item_free(&it);
		return "(succeeded)";
	}
	return v == BILLING_NOT_BILLED ? first_line(err->msg) : "(a verdict on failure)";
}

static const char ANSWERS[] =
	"return {\n"
	"  include = function(u) return true end,\n"
	"  bill = function(sku, t)\n"
	"    if sku.part == nil then\n"                                              /* absent, not json.null */
	"      return { name = sku.name .. ' ' .. sku.period .. ' ' .. t.name, unit_price = 1.25, quantity = 0 }\n"
	"    end\n"
	"    if t.syncro_customer_id ~= 101 then error('no tenant table') end\n"
	"    if sku.available == 5 and sku.peak_assigned == 23 then return nil end\n"
	"    return false\n"
	"  end,\n"
	"}\n";

TEST(billing_hook_table_nil_false)
{
	struct err err;
	const char *path = t_write_file("answers.lua", ANSWERS);
	struct billing_hook *h = open_hook(path, NULL, &err);
	REQUIRE_OK(h ? 0 : -1, &err);
	CHECK_STR(billing_hook_path(h), path);
	enum billing_verdict v;
	struct billing_item it;
	REQUIRE_OK(call(h, &BARE, &v, &it, &err), &err);
	CHECK_EQ_INT(v, BILLING_BILLED);
	CHECK_STR(it.name, "00000000-0000-0000-0000-00000000beef 2026-10 Contoso");
	CHECK(it.has_price);
	CHECK_EQ_INT(it.unit_cents, 125);
	CHECK_EQ_INT(it.quantity, 0);
	billing_item_free(&it);
	REQUIRE_OK(call(h, &E3, &v, &it, &err), &err);
	CHECK_EQ_INT(v, BILLING_NOT_BILLED);                     /* nil: no price */
	struct billing_usage free_sku = E3;
	free_sku.peak_assigned = 1;
	REQUIRE_OK(call(h, &free_sku, &v, &it, &err), &err);
	CHECK_EQ_INT(v, BILLING_FREE);                           /* false: deliberately not billed */
	billing_hook_free(h);
}

/* bill() sees the seats Microsoft suspended, holds or locked out, and the
 * subscription's state, to leave them out */
TEST(billing_hook_sees_suspended_seats)
{
	struct err err;
	const char *path = t_write_file("suspended.lua",
		"return {\n"
		"  include = function(u) return true end,\n"
		"  bill = function(sku)\n"
		"    if sku.capability_status == 'Suspended' then return false end\n"
		"    return { product_id = 5, quantity = sku.assigned - sku.suspended - sku.locked_out + sku.warning }\n"
		"  end,\n"
		"}\n");
	struct billing_hook *h = open_hook(path, NULL, &err);
	REQUIRE_OK(h ? 0 : -1, &err);
	enum billing_verdict v;
	struct billing_item it;
	struct billing_usage u = E3;
	u.suspended = 4;
	u.locked_out = 1;
	u.warning = 2;
	REQUIRE_OK(call(h, &u, &v, &it, &err), &err);
	CHECK_EQ_INT(v, BILLING_BILLED);
	CHECK_EQ_INT(it.quantity, 20 - 4 - 1 + 2);
	billing_item_free(&it);
	u.capability_status = "Suspended";
	REQUIRE_OK(call(h, &u, &v, &it, &err), &err);
	CHECK_EQ_INT(v, BILLING_FREE);
	billing_hook_free(h);
}

static const char ERRORS[] =
	"return {\n"
	"  include = function(u) return true end,\n"
	"  bill = function(sku)\n"                                                   /* line 3 */
	"    if sku.assigned == 1 then return 'seven' end\n"
	"    if sku.assigned == 2 then return true end\n"
	"    if sku.assigned == 3 then local x = nil; return x.y end\n"             /* line 6 */
	"    if sku.assigned == 4 then return { product_id = 5, quantitiy = 1 } end\n"
	"    if sku.assigned == 5 then return { product_id = 5, f = print } end\n"
	"    if sku.assigned == 6 then return { 503, 2 } end\n"
	"    if sku.assigned == 7 then return print end\n"
	"    error('no price for ' .. sku.part)\n"                                   /* line 11 */
	"  end,\n"
	"}\n";

/* Each failure names bill() and the policy's file:line; no wrapper. */
TEST(billing_hook_errors_name_file_line)
{
	struct err err;
	char want[1024];
	const char *path = t_write_file("errors.lua", ERRORS);
	struct billing_hook *h = open_hook(path, NULL, &err);
	REQUIRE_OK(h ? 0 : -1, &err);
	static const struct { long long assigned; const char *type; } wrong[] = {
		{ 1, "string" }, { 2, "boolean" }, { 7, "function" },
	};
	for (size_t i = 0; i < ARRAY_LEN(wrong); i++) {
		snprintf(want, sizeof want, "%s:3: bill() must return a table, nil or false, got %s", path, wrong[i].type);
		CHECK_STR(failure(h, wrong[i].assigned, &err), want);
		CHECK_STR(err.msg, want);                            /* one line, no traceback */
	}

	snprintf(want, sizeof want, "policy error in bill(): %s:6: attempt to index a nil value (local 'x')", path);
	CHECK_STR(failure(h, 3, &err), want);
	CHECK(!strstr(err.msg, "entrasync-bill-"));              /* the traceback shows the policy only */
	CHECK(!strstr(err.msg, "include"));
	snprintf(want, sizeof want, "policy error in bill(): %s:11: no price for ENTERPRISEPACK", path);
	CHECK_STR(failure(h, 0, &err), want);

	/* the table's own checks name the function too */
	snprintf(want, sizeof want, "%s:3: bill() for ENTERPRISEPACK: unknown key 'quantitiy' (did you mean 'quantity'?) "
	         "(known: product_id, name, unit_price, quantity, taxable)", path);
	CHECK_STR(failure(h, 4, &err), want);
	snprintf(want, sizeof want, "%s:3: bill() returned a table that is not JSON: cannot encode a function value at $.f",
	         path);
	CHECK_STR(failure(h, 5, &err), want);
	snprintf(want, sizeof want, "%s:3: bill() for ENTERPRISEPACK must return a table, nil or false", path);
	CHECK_STR(failure(h, 6, &err), want);
	billing_hook_free(h);
}

static const char LIMITS[] =
	"local n = 0\n"
	"return {\n"
	"  include = function(u) return true end,\n"
	"  bill = function(sku)\n"
	"    if sku.assigned == 1 then while true do end end\n"                     /* line 5 */
	"    if sku.assigned == 2 then pcall(function() while true do end end) end\n"
	"    if sku.assigned == 3 then local big = ('x'):rep(3 << 20) end\n"
	"    if sku.assigned == 4 then for i = 1, 18000 do n = n + i end end\n"     /* ~4 instructions a turn */
	"    return { product_id = 7, quantity = n > 0 and 1 or 0 }\n"
	"  end,\n"
	"}\n";

/* The limits hold per call: the budget counts bill()'s own instructions,
 * is fresh for every call and survives pcall; the memory cap likewise. */
TEST(billing_hook_limits)
{
	struct err err;
	char want[1024];
	const char *path = t_write_file("limits.lua", LIMITS);
	struct script_limits lim = { .instructions = 100000, .memory_bytes = (size_t)2 << 20 };
	struct billing_hook *h = open_hook(path, &lim, &err);
	REQUIRE_OK(h ? 0 : -1, &err);
	snprintf(want, sizeof want, "instruction budget exceeded (100000 instructions) in bill() at %s:5", path);
	CHECK_STR(failure(h, 1, &err), want);
	snprintf(want, sizeof want, "instruction budget exceeded (100000 instructions) in bill() at %s:6", path);
	CHECK_STR(failure(h, 2, &err), want);                    /* pcall does not catch it */
	CHECK_CONTAINS(failure(h, 3, &err), "memory limit exceeded (2 MiB) in bill()");

	struct billing_usage u = E3;
	enum billing_verdict v;
	struct billing_item it;
	/* two calls of ~3/4 of the budget each: each gets a fresh budget */
	u.assigned = 4;
	for (int i = 0; i < 2; i++) {
		REQUIRE_OK(call(h, &u, &v, &it, &err), &err);
		CHECK_EQ_INT(v, BILLING_BILLED);
		CHECK_EQ_INT(it.product_id, 7);
		CHECK_EQ_INT(it.quantity, 1);
		billing_item_free(&it);
	}
	billing_hook_free(h);

	/* the same calls fail with a budget too small for them */
	lim.instructions = 50000;
	REQUIRE((h = open_hook(path, &lim, &err)) != NULL);
	CHECK(call(h, &u, &v, &it, &err) != 0);
	snprintf(want, sizeof want, "instruction budget exceeded (50000 instructions) in bill() at %s:8", path);
	CHECK_STR(first_line(err.msg), want);
	billing_hook_free(h);
}

/* The hook needs no temporary file: it loads and runs with TMPDIR naming a
 * missing folder. */
TEST(billing_hook_no_temporary_file)
{
	struct err err;
	const char *path = t_write_file("tmpless.lua", ANSWERS);
	char *saved = t_env_swap("TMPDIR", "/nonexistent/entrasync-test");
	struct billing_hook *h = open_hook(path, NULL, &err);
	int rc = h ? 0 : -1;
	enum billing_verdict v = BILLING_NOT_BILLED;
	struct billing_item it = { 0 };
	if (h) rc = call(h, &BARE, &v, &it, &err);
	t_env_restore("TMPDIR", saved);
	billing_hook_free(h);
	REQUIRE_OK(rc, &err);
	CHECK_EQ_INT(v, BILLING_BILLED);
	CHECK_STR(it.name, "00000000-0000-0000-0000-00000000beef 2026-10 Contoso");
	billing_item_free(&it);
}
