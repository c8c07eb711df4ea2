/* test_store_outbox — the plan stamp in its own links column: migration 6
 * moves "_stamp" out of a version-5 database's link fields, links carry
 * their stamp through put/get and the planner's batch read, a restamp
 * changes the stamp only, and a put without one clears it. */
#include "t.h"
#include "t_sql.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"
#include "store/store_outbox.h"

#define STAMP_MIGRATION 6
#define TENANT "11111111-2222-4333-8444-555555555555"

static char *db_in_tmp(const char *name)
{
	return xasprintf("%s/%s", t_tmpdir(), name);
}

/* Builds a database at version STAMP_MIGRATION - 1 with raw SQL, links
 * holding their stamp inside fields as the engine wrote it before. */
static int make_v5_db(const char *path)
{
	sqlite3 *raw = NULL;
	int ok = sqlite3_open(path, &raw) == SQLITE_OK;
	for (int n = 1; ok && n < STAMP_MIGRATION; n++)
		ok = sqlite3_exec(raw, store_schema_migration(n), NULL, NULL, NULL) == SQLITE_OK;
	char *sql = xasprintf(
		"PRAGMA user_version = %d;"
		"INSERT INTO tenants (id, name) VALUES ('" TENANT "', 'T');"
		"INSERT INTO users (tenant_id, object_id, json, updated_at) VALUES ('" TENANT "', 'u1', '{\"id\":\"u1\"}', 'x');"
		"INSERT INTO links (tenant_id, object_id, contact_id, customer_id, fields, created_at, updated_at) VALUES "
		"('" TENANT "', 'u1', 11, 101, '{\"_stamp\":\"0123456789abcdef\",\"name\":\"Ann\",\"customer_id\":101}', 'c', 'u'),"
		"('" TENANT "', 'u2', 12, 101, '{\"_stamp\":\"fedcba9876543210:k\"}', 'c', 'u'),"
		"('" TENANT "', 'u3', 13, 101, '{\"name\":\"No Stamp\"}', 'c', 'u'),"
		"('" TENANT "', 'u4', 14, 101, NULL, 'c', 'u');",
		STAMP_MIGRATION - 1);
	ok = ok && sqlite3_exec(raw, sql, NULL, NULL, NULL) == SQLITE_OK;
	free(sql);
	sqlite3_close(raw);
	return ok ? 0 : -1;
}

static int collect_row(const struct store_plan_row *r, void *ud)
{
	struct buf *b = ud;
	buf_printf(b, "%s=%s|%s;", r->object_id, r->stamp ? r->stamp : "-", r->fields ? r->fields : "-");
	return 0;
}

TEST(store_migration_6_moves_the_stamp_out_of_link_fields)
{
	struct err err;
	REQUIRE(store_schema_latest() >= STAMP_MIGRATION);
	char *path = db_in_tmp("v5.db");
	REQUIRE(make_v5_db(path) == 0);
	struct store *st = NULL;
	struct store_outbox *ob = NULL;
	struct store_link l = {0};
	struct buf b = {0};
	REQUIRE_OK(store_open(path, &st, &err), &err);
	CHECK_EQ_INT(store_schema_version(st), store_schema_latest());
	CHECK_OK(store_link_get(st, TENANT, "u1", &l, &err), &err);
	CHECK_STR(l.stamp, "0123456789abcdef");
	CHECK_STR(l.fields, "{\"name\":\"Ann\",\"customer_id\":101}");
	store_link_free(&l);
	CHECK_OK(store_link_get(st, TENANT, "u2", &l, &err), &err);
	CHECK_STR(l.stamp, "fedcba9876543210:k");
	CHECK_STR(l.fields, "{}");
	store_link_free(&l);
	CHECK_OK(store_link_get(st, TENANT, "u3", &l, &err), &err);
	CHECK(l.stamp == NULL);
	CHECK_STR(l.fields, "{\"name\":\"No Stamp\"}");
	store_link_free(&l);
	CHECK_OK(store_link_get(st, TENANT, "u4", &l, &err), &err);
	CHECK(l.stamp == NULL && l.fields == NULL);
	store_link_free(&l);
	/* the planner reads the column: u1 from the mirror, u2..u4 as orphans */
	REQUIRE_OK(store_outbox_open(st, &ob, &err), &err);
	CHECK_OK(store_plan_batch(ob, TENANT, "", 10, collect_row, &b, NULL, &err), &err);
	CHECK_STR(b.data, "u1=0123456789abcdef|{\"name\":\"Ann\",\"customer_id\":101};u2=fedcba9876543210:k|{};"
	                  "u3=-|{\"name\":\"No Stamp\"};u4=-|-;");
	store_outbox_close(ob);
	store_close(st);
	sqlite3 *raw = NULL;
	REQUIRE(sqlite3_open(path, &raw) == SQLITE_OK);
	CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM links WHERE instr(fields, '_stamp') > 0"), 0);
	sqlite3_close(raw);
	buf_free(&b);
	free(path);
}

TEST(store_link_stamp_put_restamp_and_clear)
{
	struct err err;
	char *path = db_in_tmp("links.db");
	struct store *st = NULL;
	struct store_outbox *ob = NULL;
	struct store_link got = {0};
	REQUIRE_OK(store_open(path, &st, &err), &err);
	struct store_tenant t = { .id = TENANT, .name = "T" };
	REQUIRE_OK(store_tenant_put(st, &t, &err), &err);
	REQUIRE_OK(store_outbox_open(st, &ob, &err), &err);
	struct store_link l = { .tenant_id = TENANT, .object_id = "u1", .contact_id = 5, .customer_id = 101,
	                        .fields = "{\"name\":\"Ann\"}", .stamp = "00000000000000aa" };
	CHECK_OK(store_link_put(st, &l, &err), &err);
	CHECK_OK(store_link_get(st, TENANT, "u1", &got, &err), &err);
	CHECK_STR(got.stamp, "00000000000000aa");
	char *updated = xstrdup(got.updated_at);
	store_link_free(&got);
	/* a restamp changes the stamp and nothing else */
	CHECK_OK(store_link_restamp(ob, TENANT, "u1", "00000000000000bb:k", &err), &err);
	CHECK_OK(store_link_get(st, TENANT, "u1", &got, &err), &err);
	CHECK_STR(got.stamp, "00000000000000bb:k");
	CHECK_STR(got.fields, "{\"name\":\"Ann\"}");
	CHECK_STR(got.updated_at, updated);
	store_link_free(&got);
	/* a mark's values go with the link; a leaver's restamp (":k") keeps them,
	 * one of a user in scope (planned unchanged: no mark left) clears them */
	l.marked = "{\"notes\":\"VIP\"}";
	CHECK_OK(store_link_put(st, &l, &err), &err);
	l.marked = NULL;
	CHECK_OK(store_link_restamp(ob, TENANT, "u1", "00000000000000dd:k", &err), &err);
	CHECK_OK(store_link_get(st, TENANT, "u1", &got, &err), &err);
	CHECK_STR(got.marked, "{\"notes\":\"VIP\"}");
	store_link_free(&got);
	CHECK_OK(store_link_restamp(ob, TENANT, "u1", "00000000000000dd", &err), &err);
	CHECK_OK(store_link_get(st, TENANT, "u1", &got, &err), &err);
	CHECK(got.marked == NULL);
	store_link_free(&got);
	/* restamping a link that does not exist is no error and creates nothing */
	CHECK_OK(store_link_restamp(ob, TENANT, "nobody", "00000000000000cc", &err), &err);
	CHECK(store_link_get(st, TENANT, "nobody", &got, &err) == STORE_NOTFOUND);
	/* a put without a stamp (a manual link) clears it: the next plan evaluates */
	l.stamp = NULL;
	l.fields = NULL;
	CHECK_OK(store_link_put(st, &l, &err), &err);
	CHECK_OK(store_link_get(st, TENANT, "u1", &got, &err), &err);
	CHECK(got.stamp == NULL);
	store_link_free(&got);
	store_outbox_close(ob);
	store_close(st);
	free(updated);
	free(path);
}

struct seen {
	struct buf text;
	char *last;
};

static int note_row(const struct store_plan_row *r, void *ud)
{
	struct seen *s = ud;
	buf_printf(&s->text, "%s%s%s:", r->object_id, r->linked ? "+L" : "", r->json ? "" : "+gone");
	for (const char *p = r->groups; *p; p++) buf_addc(&s->text, *p == '\x1F' ? '=' : *p == '\x1E' ? '+' : *p);
	buf_addc(&s->text, ';');
	return 0;
}

/* The links and groups merged into the users' rows are each user's own,
 * whatever the batch size: members without a mirror row, users without
 * groups, several groups, a group without a name, another tenant's rows;
 * links without a user come in their place (first, between, last). */
TEST(store_plan_batch_merges_links_groups_and_orphans)
{
	struct err err;
	char *path = db_in_tmp("groups.db");
	struct store *st = NULL;
	struct store_outbox *ob = NULL;
	REQUIRE_OK(store_open(path, &st, &err), &err);
	struct store_tenant t = { .id = TENANT, .name = "T" }, t2 = { .id = "other", .name = "O" };
	REQUIRE_OK(store_tenant_put(st, &t, &err), &err);
	REQUIRE_OK(store_tenant_put(st, &t2, &err), &err);
	REQUIRE_OK(store_outbox_open(st, &ob, &err), &err);
	static const char *const users[] = { "a", "b", "c", "d", "e", "f", "g" };
	for (size_t i = 0; i < sizeof users / sizeof *users; i++) {
		REQUIRE_OK(store_user_put(st, TENANT, users[i], "{}", &err), &err);
		REQUIRE_OK(store_user_put(st, "other", users[i], "{}", &err), &err);
	}
	REQUIRE_OK(store_group_put(st, TENANT, "g1", "Sales", &err), &err);
	REQUIRE_OK(store_group_put(st, TENANT, "g2", NULL, &err), &err);
	REQUIRE_OK(store_group_put(st, "other", "g9", "Theirs", &err), &err);
	static const char *const members[][2] = {
		{ "g1", "0" }, { "g1", "b" }, { "g2", "b" }, { "g2", "bb" }, { "g1", "e" }, { "g2", "g" }, { "g1", "zz" },
	};
	for (size_t i = 0; i < sizeof members / sizeof *members; i++)
		REQUIRE_OK(store_group_member_put(st, TENANT, members[i][0], members[i][1], &err), &err);
	static const char *const links[] = { "0", "b", "cc", "e", "zz" };
	for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
		struct store_link l = { .tenant_id = TENANT, .object_id = links[i], .contact_id = 100 + (long long)i,
		                        .customer_id = 1, .fields = "{}" };
		REQUIRE_OK(store_link_put(st, &l, &err), &err);
		l.tenant_id = "other";
		l.object_id = "c";
		l.customer_id = 2;
		REQUIRE_OK(store_link_put(st, &l, &err), &err);
	}
	for (size_t i = 0; i < sizeof users / sizeof *users; i++)
		REQUIRE_OK(store_group_member_put(st, "other", "g9", users[i], &err), &err);
	for (long long size = 1; size <= 8; size++) {
		struct seen s = { {0}, xstrdup("") };
		for (;;) {
			char *last = NULL;
			size_t before = s.text.len;
			REQUIRE_OK(store_plan_batch(ob, TENANT, s.last, size, note_row, &s, &last, &err), &err);
			free(s.last);
			s.last = last;
			if (!last || s.text.len == before) break;
		}
		/* b's two groups in either order */
		const char *b = strstr(s.text.data, "b+L:Sales=g1+=g2;") ? "b+L:Sales=g1+=g2;" : "b+L:=g2+Sales=g1;";
		char *want = xasprintf("0+L+gone:;a:;%sc:;cc+L+gone:;d:;e+L:Sales=g1;f:;g:=g2;zz+L+gone:;", b);
		if (strcmp(s.text.data, want) != 0)
			t_fail(__FILE__, __LINE__, "batches of %lld: %s (want %s)", size, s.text.data, want);
		free(want);
		free(s.last);
		buf_free(&s.text);
	}
	store_outbox_close(ob);
	store_close(st);
	free(path);
}
