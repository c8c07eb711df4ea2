/* Unit tests of store_billing on the store's shared connection: units of
 * work are the store's transaction or a savepoint in the caller's, the
 * intents refuse to be written inside a transaction (they must be on disk
 * before their request), audit rows go through store_audit_append. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_billing.h"
#include "t.h"

struct sbfx {
	struct store *st;
	struct store_billing *sb;
};

static int sbfx_open(struct sbfx *fx, struct err *err)
{
	char path[600];
	snprintf(path, sizeof path, "%s/billing.db", t_tmpdir());
	memset(fx, 0, sizeof *fx);
	if (store_open(path, &fx->st, err) != 0) return -1;
	return store_billing_open(fx->st, &fx->sb, err);
}

static void sbfx_close(struct sbfx *fx)
{
	store_billing_close(fx->sb);
	store_close(fx->st);
}

static long long intents(struct sbfx *fx, const char *state)
{
	long long n = -1;
	struct err err;
	if (store_billing_intent_count(fx->sb, NULL, state, &n, &err) != 0) return -1;
	return n;
}

static int count_audit(const struct store_audit *a, void *ud)
{
	(void)a;
	(*(int *)ud)++;
	return 0;
}

static int audit_rows(struct sbfx *fx)
{
	int n = 0;
	struct err err;
	if (store_audit_each(fx->st, NULL, count_audit, &n, &err) != 0) return -1;
	return n;
}

TEST(store_billing_intents_refused_inside_a_transaction)
{
	struct sbfx fx;
	struct err err = {{0}};
	REQUIRE_OK(sbfx_open(&fx, &err), &err);
	long long id = 0;
	REQUIRE_OK(store_begin(fx.st, &err), &err);
	CHECK(store_billing_intent_add(fx.sb, 1, "t1", "2026-09", "invoice.line", "p:1", "{}", &id, &err) < 0);
	CHECK_CONTAINS(err.msg, "must be committed before its request is sent");
	struct store_billing_invoice inv = { .tenant_id = "t1", .period = "2026-09", .customer_id = 5, .marker = "m",
	                                     .plan = "{}" };
	CHECK(store_billing_invoice_intent(fx.sb, &inv, &err) < 0);
	CHECK_CONTAINS(err.msg, "inside a transaction");
	REQUIRE_OK(store_rollback(fx.st, &err), &err);
	/* outside one: committed at once, visible to another connection */
	REQUIRE_OK(store_billing_intent_add(fx.sb, 1, "t1", "2026-09", "invoice.line", "p:1", "{}", &id, &err), &err);
	CHECK(id > 0);
	struct store *other = NULL;
	REQUIRE_OK(store_open(store_path(fx.st), &other, &err), &err);
	struct store_billing *osb = NULL;
	REQUIRE_OK(store_billing_open(other, &osb, &err), &err);
	long long n = -1;
	CHECK_OK(store_billing_intent_count(osb, "t1", "pending", &n, &err), &err);
	CHECK_EQ_INT(n, 1);
	store_billing_close(osb);
	store_close(other);
	sbfx_close(&fx);
}

TEST(store_billing_unit_of_work_is_the_stores)
{
	struct sbfx fx;
	struct err err = {{0}};
	REQUIRE_OK(sbfx_open(&fx, &err), &err);
	long long id = 0;
	REQUIRE_OK(store_billing_intent_add(fx.sb, 1, "t1", NULL, "schedule.add", "p:1", "{}", &id, &err), &err);
	/* its own transaction: intent closed and audit row together */
	struct store_audit a = { .tenant_id = "t1", .action = "bill.schedule", .actor = "entrasync", .result = "ok" };
	REQUIRE_OK(store_billing_begin(fx.sb, &err), &err);
	CHECK(store_in_transaction(fx.st));
	CHECK(store_billing_begin(fx.sb, &err) < 0);  /* one at a time per handle */
	CHECK_OK(store_billing_intent_finish(fx.sb, id, "done", 77, NULL, &err), &err);
	CHECK_OK(store_billing_audit(fx.sb, &a, &err), &err);
	store_billing_rollback(fx.sb);
	CHECK(!store_in_transaction(fx.st));
	CHECK_EQ_INT(intents(&fx, "pending"), 1);
	CHECK_EQ_INT(audit_rows(&fx), 0);
	REQUIRE_OK(store_billing_begin(fx.sb, &err), &err);
	CHECK_OK(store_billing_intent_finish(fx.sb, id, "done", 77, NULL, &err), &err);
	CHECK_OK(store_billing_audit(fx.sb, &a, &err), &err);
	CHECK_OK(store_billing_commit(fx.sb, &err), &err);
	CHECK(!store_in_transaction(fx.st));
	CHECK_EQ_INT(intents(&fx, "done"), 1);
	CHECK_EQ_INT(audit_rows(&fx), 1);

	/* inside a caller's transaction: a savepoint, undone alone on
	 * rollback, committed (or not) with the caller */
	REQUIRE_OK(store_begin(fx.st, &err), &err);
	CHECK_OK(store_kv_put(fx.st, "k", "v", &err), &err);
	REQUIRE_OK(store_billing_begin(fx.sb, &err), &err);
	CHECK_OK(store_billing_sched_put(fx.sb, "t1", 9, "p:1", 3, &err), &err);
	store_billing_rollback(fx.sb);
	CHECK(store_in_transaction(fx.st));
	REQUIRE_OK(store_billing_begin(fx.sb, &err), &err);
	CHECK_OK(store_billing_sched_put(fx.sb, "t1", 9, "p:2", 4, &err), &err);
	CHECK_OK(store_billing_commit(fx.sb, &err), &err);
	CHECK(store_in_transaction(fx.st));   /* still the caller's */
	REQUIRE_OK(store_commit(fx.st, &err), &err);
	char **keys = NULL;
	size_t nk = 0;
	REQUIRE_OK(store_billing_sched_keys(fx.sb, "t1", 9, &keys, &nk, &err), &err);
	CHECK_EQ_INT(nk, 1);
	if (nk == 1) CHECK_STR(keys[0], "p:2");
	for (size_t i = 0; i < nk; i++) free(keys[i]);
	free(keys);
	char *v = NULL;
	CHECK_OK(store_kv_get(fx.st, "k", &v, &err), &err);
	CHECK_STR(v, "v");
	free(v);
	sbfx_close(&fx);
}
