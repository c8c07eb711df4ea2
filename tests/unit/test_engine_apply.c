/* test_engine_apply — engine_apply_contact_gone, what sync --verify does
 * before applying the action of a user whose contact is gone from Syncro:
 * the link dropped with an audit row, in one transaction; nothing when the
 * link already points elsewhere or is gone, nor in a dry run; and a store
 * that refuses the delete leaves the link and no audit row. */
#include "t.h"
#include "t_sql.h"

#include <sqlite3.h>

#include "engine/engine.h"
#include "store/store.h"
#include "store/store_outbox.h"

#define TENANT "11111111-2222-4333-8444-555555555555"

/* The single integer a query of the store's database returns. */
static long long count(struct store *st, const char *sql)
{
	return raw_int(store_sqlite(st), sql);
}

static void put_link(struct store *st, const char *object_id, long long contact_id)
{
	struct err err;
	struct store_link l = { .tenant_id = TENANT, .object_id = object_id, .contact_id = contact_id,
	                        .customer_id = 101, .fields = "{\"name\":\"N\"}" };
	REQUIRE_OK(store_link_put(st, &l, &err), &err);
}

TEST(engine_apply_contact_gone_drops_the_link_with_an_audit_row)
{
	struct err err;
	struct store *st = t_store_fresh("gone");
	struct store_outbox *ob = NULL;
	if (!st) return;
	REQUIRE_OK(store_outbox_open(st, &ob, &err), &err);
	struct store_tenant t = { .id = TENANT, .name = "T", .syncro_customer_id = 101 };
	REQUIRE_OK(store_tenant_put(st, &t, &err), &err);
	put_link(st, "a", 11);
	put_link(st, "b", 12);

	struct engine_apply ap = { .st = st, .ob = ob, .tenant_id = TENANT, .run_id = 0 };
	char id_a[] = "a", id_b[] = "b";
	struct engine_action a = { .kind = ENGINE_CREATE, .object_id = id_a, .gone_contact = 11 };
	REQUIRE_OK(engine_apply_contact_gone(&ap, &a, &err), &err);
	CHECK_EQ_INT(count(st, "select count(*) from links where object_id = 'a'"), 0);
	CHECK_EQ_INT(count(st, "select count(*) from audit where action = 'unlink' and object_id = 'a' and contact_id = 11 "
	                       "and result = 'ok' and before like '%\"contact_id\":11%' and after like '%sync --verify%'"), 1);
	/* again (the link gone already): nothing more */
	REQUIRE_OK(engine_apply_contact_gone(&ap, &a, &err), &err);
	CHECK_EQ_INT(count(st, "select count(*) from audit"), 1);

	/* b's link points to another contact than the one found gone: left alone */
	struct engine_action b = { .kind = ENGINE_SKIP, .object_id = id_b, .gone_contact = 99 };
	REQUIRE_OK(engine_apply_contact_gone(&ap, &b, &err), &err);
	CHECK_EQ_INT(count(st, "select count(*) from links where object_id = 'b'"), 1);

	/* a dry run changes nothing */
	ap.dry_run = true;
	b.gone_contact = 12;
	REQUIRE_OK(engine_apply_contact_gone(&ap, &b, &err), &err);
	CHECK_EQ_INT(count(st, "select count(*) from links where object_id = 'b'"), 1);
	ap.dry_run = false;

	/* the store refuses the delete: -1 naming it, the link kept, no audit row */
	CHECK(sqlite3_exec(store_sqlite(st), "CREATE TRIGGER no_unlink BEFORE DELETE ON links BEGIN "
	                   "SELECT RAISE(ABORT, 'links are read-only here'); END", NULL, NULL, NULL) == SQLITE_OK);
	CHECK(engine_apply_contact_gone(&ap, &b, &err) == -1);
	CHECK_CONTAINS(err.msg, "read-only");
	CHECK_EQ_INT(count(st, "select count(*) from links where object_id = 'b'"), 1);
	CHECK_EQ_INT(count(st, "select count(*) from audit"), 1);

	store_outbox_close(ob);
	store_close(st);
}
