/* test_engine_policy — a policy as the engine uses it: include/contact with
 * u.groups and u.licenses, on_leave in all its forms (keep, delete, a
 * table, a function returning each), errors naming on_leave and the real
 * file:line, the policy hash; and the store outbox (intents, conflicts,
 * planning batches with links and groups). */
#include "t.h"

#include <stdlib.h>

#include <cjson/cJSON.h>

#include "engine/engine_policy.h"
#include "store/store.h"
#include "store/store_outbox.h"

static const char policy_fn[] =
	"local p = require 'entrasync.policy'\n"
	"return {\n"
	"  groups = { 'Sales' },\n"
	"  include = function(u, t)\n"
	"    if u.groups['Sales'] then return true, 'sales' end\n"
	"    return false, 'not in Sales'\n"
	"  end,\n"
	"  contact = function(u, t)\n"
	"    local parts = {} for i, l in ipairs(u.licenses) do parts[i] = l.part end return {\n"
	"             name = u.displayName, email = u.mail, notes = table.concat(parts, ','),\n"
	"             customer_id = t.syncro_customer_id }\n"
	"  end,\n"
	"  create_only = { 'notes' },\n"
	"  on_leave = function(c, why, t)\n"
	"    if why == 'deleted' then return 'delete' end\n"
	"    if why == 'disabled' then return { name = '[gone] ' .. c.name, phone = '' } end\n"
	"    if c.id == 42 then return 17 end\n"  /* line 15: a bad answer */
	"    return 'keep'\n"
	"  end,\n"
	"}\n";

TEST(engine_policy_eval_and_on_leave_function)
{
	struct err err;
	const char *path = t_write_file("p.lua", policy_fn);
	struct engine_policy p;
	struct script_tenant t = { .id = "t1", .name = "T", .syncro_customer_id = 101 };
	REQUIRE_OK(engine_policy_load(&p, path, NULL, &t, &err), &err);
	CHECK_EQ_INT(strlen(p.hash), 64);
	CHECK_EQ_INT(p.plan.create_only, 1u << SYNCRO_F_NOTES);

	cJSON *u = cJSON_Parse("{\"id\":\"a\",\"displayName\":\"Ann\",\"mail\":\"ann@x.com\","
	                       "\"assignedLicenses\":[{\"skuId\":\"05e9a617-0261-4cee-bb44-138d3ef5d965\"},"
	                       "{\"skuId\":\"00000000-0000-0000-0000-00000000abcd\"}]}");
	struct policy_decision d;
	REQUIRE_OK(engine_policy_eval(&p, u, "Sales\x1Fgid-1\x1E" "Other\x1Fgid-2", &d, &err), &err);
	CHECK(d.include);
	CHECK_STR(d.reason, "sales");
	CHECK_STR(d.field[POLICY_NAME], "Ann");
	/* SKU part number from the table, unknown SKUs as their id */
	CHECK_STR(d.field[POLICY_NOTES], "SPE_E3,00000000-0000-0000-0000-00000000abcd");
	CHECK_EQ_INT(d.customer_id, 101);
	struct syncro_fields want = {0};
	engine_desired_fields(&d, 555, &want);
	CHECK_STR(want.v[SYNCRO_F_CUSTOMER_ID], "101");
	syncro_fields_free(&want);
	policy_decision_free(&d);
	/* group ids are keys too; no groups: out */
	REQUIRE_OK(engine_policy_eval(&p, u, NULL, &d, &err), &err);
	CHECK(!d.include);
	CHECK_STR(d.reason, "not in Sales");
	policy_decision_free(&d);
	cJSON_Delete(u);

	struct syncro_fields c = {0};
	syncro_fields_set(&c, SYNCRO_F_NAME, "Ann");
	syncro_fields_set(&c, SYNCRO_F_CUSTOMER_ID, "101");
	struct engine_leave lv;
	REQUIRE_OK(engine_policy_on_leave(&p, &c, 7, "deleted", &lv, &err), &err);
	CHECK_EQ_INT(lv.kind, ENGINE_LEAVE_DELETE);
	engine_leave_free(&lv);
	REQUIRE_OK(engine_policy_on_leave(&p, &c, 7, "disabled", &lv, &err), &err);
	CHECK_EQ_INT(lv.kind, ENGINE_LEAVE_CHANGES);
	CHECK_STR(lv.changes.v[SYNCRO_F_NAME], "[gone] Ann");
	CHECK_STR(lv.changes.v[SYNCRO_F_PHONE], "");
	engine_leave_free(&lv);
	REQUIRE_OK(engine_policy_on_leave(&p, &c, 7, "out_of_scope", &lv, &err), &err);
	CHECK_EQ_INT(lv.kind, ENGINE_LEAVE_KEEP);
	engine_leave_free(&lv);
	CHECK(engine_policy_on_leave(&p, &c, 42, "out_of_scope", &lv, &err) != 0);
	CHECK_CONTAINS(err.msg, "on_leave()");
	CHECK_CONTAINS(err.msg, "got number");
	syncro_fields_free(&c);
	engine_policy_free(&p);
}

TEST(engine_policy_on_leave_strings_and_errors)
{
	struct err err;
	const char *path = t_write_file("d.lua", "return { include = function(u) return true end, on_leave = 'delete' }\n");
	struct engine_policy p;
	REQUIRE_OK(engine_policy_load(&p, path, NULL, NULL, &err), &err);
	CHECK(p.leave_where[0] == '\0');   /* not a function: nothing to place */
	struct syncro_fields c = {0};
	struct engine_leave lv;
	REQUIRE_OK(engine_policy_on_leave(&p, &c, 1, "deleted", &lv, &err), &err);
	CHECK_EQ_INT(lv.kind, ENGINE_LEAVE_DELETE);
	engine_policy_free(&p);

	path = t_write_file("k.lua", "return { include = function(u) return true end }\n");
	REQUIRE_OK(engine_policy_load(&p, path, NULL, NULL, &err), &err);
	REQUIRE_OK(engine_policy_on_leave(&p, &c, 1, "deleted", &lv, &err), &err);
	CHECK_EQ_INT(lv.kind, ENGINE_LEAVE_KEEP);   /* not given: keep */
	engine_policy_free(&p);

	/* a runtime error in on_leave names the real file and line */
	path = t_write_file("e.lua", "return {\n include = function(u) return true end,\n"
	                           " on_leave = function(c, why) return c.nope.x end,\n}\n");
	REQUIRE_OK(engine_policy_load(&p, path, NULL, NULL, &err), &err);
	CHECK(engine_policy_on_leave(&p, &c, 1, "deleted", &lv, &err) != 0);
	CHECK_CONTAINS(err.msg, "e.lua:3:");
	CHECK_CONTAINS(err.msg, "on_leave()");
	engine_policy_free(&p);

	/* an unknown field in the returned table */
	path = t_write_file("f.lua", "return { include = function(u) return true end,\n"
	                           " on_leave = function(c) return { nots = 'x' } end }\n");
	REQUIRE_OK(engine_policy_load(&p, path, NULL, NULL, &err), &err);
	CHECK(engine_policy_on_leave(&p, &c, 1, "deleted", &lv, &err) != 0);
	CHECK_CONTAINS(err.msg, "policy error in on_leave(): ");
	CHECK_CONTAINS(err.msg, "f.lua:2: unknown contact field 'nots' (did you mean 'notes'?)");
	engine_policy_free(&p);

	/* what else on_leave may answer, and what it may not */
	path = t_write_file("g.lua", "return { include = function(u) return true end,\n"
	                           " on_leave = function(c, why, t)\n"
	                           "  if why == 'deleted' then return { notes = 12, customer_id = 9, title = 'T' } end\n"
	                           "  if why == 'disabled' then return {} end\n"
	                           "  if c.id == 2 then return 'drop' end\n"
	                           "  if c.id == 3 then return { name = true } end\n"
	                           "  if c.id == 4 then return { 'a' } end\n"
	                           "  if c.id == 5 then while true do end end\n"
	                           "  if c.id == 6 then return nil end\n"
	                           "  return t.name\n"
	                           " end }\n");
	struct script_tenant t = { .id = "t1", .name = "keep" };
	REQUIRE_OK(engine_policy_load(&p, path, NULL, &t, &err), &err);
	CHECK_CONTAINS(p.leave_where, "g.lua:2");
	REQUIRE_OK(engine_policy_on_leave(&p, &c, 1, "deleted", &lv, &err), &err);
	CHECK_EQ_INT(lv.kind, ENGINE_LEAVE_CHANGES);
	CHECK_STR(lv.changes.v[SYNCRO_F_NOTES], "12");
	CHECK_STR(lv.changes.v[SYNCRO_F_TITLE], "T");
	CHECK(lv.changes.v[SYNCRO_F_CUSTOMER_ID] == NULL);   /* not the policy's to move on leave */
	engine_leave_free(&lv);
	REQUIRE_OK(engine_policy_on_leave(&p, &c, 1, "disabled", &lv, &err), &err);
	CHECK_EQ_INT(lv.kind, ENGINE_LEAVE_CHANGES);          /* no changes: the plan keeps it */
	CHECK(lv.changes.v[SYNCRO_F_NAME] == NULL);
	engine_leave_free(&lv);
	REQUIRE_OK(engine_policy_on_leave(&p, &c, 1, "out_of_scope", &lv, &err), &err);
	CHECK_EQ_INT(lv.kind, ENGINE_LEAVE_KEEP);             /* t reached on_leave: t.name is "keep" */
	engine_leave_free(&lv);
	static const struct { long long id; const char *msg; } bad[] = {
		{ 2, "g.lua:2: on_leave must return \"keep\", \"delete\" or a table of contact fields, got 'drop'" },
		{ 3, "g.lua:2: contact field 'name' must be a string, got boolean" },
		{ 4, "g.lua:2: on_leave returned a list" },
		{ 5, "instruction budget exceeded" },
		{ 6, "g.lua:2: on_leave must return \"keep\", \"delete\" or a table of contact fields, got nil" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		memset(&err, 0, sizeof err);
		CHECK(engine_policy_on_leave(&p, &c, bad[i].id, "out_of_scope", &lv, &err) != 0);
		CHECK_CONTAINS(err.msg, bad[i].msg);
		CHECK_CONTAINS(err.msg, "on_leave()");
	}
	/* the state is still usable after those failures */
	REQUIRE_OK(engine_policy_on_leave(&p, &c, 1, "deleted", &lv, &err), &err);
	CHECK_EQ_INT(lv.kind, ENGINE_LEAVE_CHANGES);
	engine_leave_free(&lv);
	engine_policy_free(&p);

	/* no include: refused at load */
	path = t_write_file("n.lua", "return { }\n");
	CHECK(engine_policy_load(&p, path, NULL, NULL, &err) != 0);
	CHECK_CONTAINS(err.msg, "no include");
}

/* ---------------------------------------------------------------- outbox */

static int count_intent(const struct store_intent *in, void *ud)
{
	long long *n = ud;
	(*n)++;
	return 0;
}

struct rows {
	int n;
	char ids[8][32];
	bool linked[8];
	char groups[8][64];
};

static int take_row(const struct store_plan_row *r, void *ud)
{
	struct rows *rs = ud;
	if (rs->n >= 8) return 1;
	snprintf(rs->ids[rs->n], 32, "%s", r->object_id);
	rs->linked[rs->n] = r->linked;
	snprintf(rs->groups[rs->n], 64, "%s", r->groups);
	rs->n++;
	return 0;
}

static int count_conflict(const struct store_conflict *c, void *ud)
{
	(*(int *)ud)++;
	return 0;
}

TEST(engine_store_outbox_intents_conflicts_batches)
{
	struct err err;
	struct store *st = NULL;
	struct store_outbox *ob = NULL;
	char *db = xasprintf("%s/es.db", t_tmpdir());
	REQUIRE_OK(store_open(db, &st, &err), &err);
	REQUIRE_OK(store_outbox_open(st, &ob, &err), &err);
	struct store_tenant t = { .id = "t1", .name = "T" };
	REQUIRE_OK(store_tenant_put(st, &t, &err), &err);

	long long id1, id2, n = 0;
	REQUIRE_OK(store_intent_add(ob, 0, "t1", "u1", "create", "{\"x\":1}", &id1, &err), &err);
	REQUIRE_OK(store_intent_add(ob, 0, "t1", "u2", "update", NULL, &id2, &err), &err);
	CHECK(id2 > id1);
	REQUIRE_OK(store_intent_each_open(ob, "t1", count_intent, &n, &err), &err);
	CHECK_EQ_INT(n, 2);
	REQUIRE_OK(store_intent_finish(ob, id1, "done", 1234, NULL, &err), &err);
	n = 0;
	REQUIRE_OK(store_intent_each_open(ob, "t1", count_intent, &n, &err), &err);
	CHECK_EQ_INT(n, 1);
	REQUIRE_OK(store_intent_count(ob, "t1", "done", &n, &err), &err);
	CHECK_EQ_INT(n, 1);
	/* an intent rolled back with its transaction is gone */
	REQUIRE_OK(store_begin(st, &err), &err);
	REQUIRE_OK(store_intent_finish(ob, id2, "failed", 0, "x", &err), &err);
	REQUIRE_OK(store_rollback(st, &err), &err);
	REQUIRE_OK(store_intent_count(ob, "t1", "pending", &n, &err), &err);
	CHECK_EQ_INT(n, 1);

	int nc = 0;
	REQUIRE_OK(store_conflict_open(ob, "t1", "u1", "[1,2]", "two contacts", &err), &err);
	REQUIRE_OK(store_conflict_open(ob, "t1", "u1", "[1,2,3]", "three contacts", &err), &err);
	REQUIRE_OK(store_conflict_each_open(ob, "t1", count_conflict, &nc, &err), &err);
	CHECK_EQ_INT(nc, 1);
	REQUIRE_OK(store_conflict_resolve(ob, "t1", "u1", &err), &err);
	nc = 0;
	REQUIRE_OK(store_conflict_each_open(ob, NULL, count_conflict, &nc, &err), &err);
	CHECK_EQ_INT(nc, 0);

	/* planning batches: users with links and groups, keyset paging; orphan links */
	REQUIRE_OK(store_user_put(st, "t1", "a", "{\"id\":\"a\"}", &err), &err);
	REQUIRE_OK(store_user_put(st, "t1", "b", "{\"id\":\"b\"}", &err), &err);
	REQUIRE_OK(store_user_put(st, "t1", "c", "{\"id\":\"c\"}", &err), &err);
	REQUIRE_OK(store_group_put(st, "t1", "g1", "Sales", &err), &err);
	REQUIRE_OK(store_group_member_put(st, "t1", "g1", "b", &err), &err);
	struct store_link l = { .tenant_id = "t1", .object_id = "b", .contact_id = 9, .customer_id = 101,
	                        .fields = "{}" };
	REQUIRE_OK(store_link_put(st, &l, &err), &err);
	l.object_id = "zz";    /* no user row */
	l.contact_id = 10;
	REQUIRE_OK(store_link_put(st, &l, &err), &err);
	struct rows rs = {0};
	char *next = NULL;
	REQUIRE_OK(store_plan_batch(ob, "t1", "", 2, take_row, &rs, &next, &err), &err);
	CHECK_EQ_INT(rs.n, 2);
	CHECK_STR(next, "b");
	CHECK(!rs.linked[0] && rs.linked[1]);
	CHECK_STR(rs.groups[1], "Sales\x1Fg1");
	char *next2 = NULL;
	/* the last batch: c, then the link without a user */
	REQUIRE_OK(store_plan_batch(ob, "t1", next, 2, take_row, &rs, &next2, &err), &err);
	CHECK_EQ_INT(rs.n, 4);
	CHECK_STR(rs.ids[2], "c");
	CHECK_STR(rs.ids[3], "zz");
	CHECK(rs.linked[3]);
	CHECK(next2 == NULL);
	free(next);
	REQUIRE_OK(store_link_count(ob, "t1", &n, &err), &err);
	CHECK_EQ_INT(n, 2);

	store_outbox_close(ob);
	store_close(st);
	free(db);
}
