/* test_store_tenants — store_tenant_forget: every kind of a tenant's rows
 * goes (those that cascade from its tenants row and the history tables
 * that keep no foreign key), counted; the other tenants' rows stay, the
 * one whose id starts with the forgotten id included; the audit trail only
 * with with_audit; a dry run counts and keeps; an unknown tenant is
 * STORE_NOTFOUND; the database is consistent after. store_tenant_same_as
 * finds a tenant under another id by its stored organization (its id, a
 * verified domain; the last synced of several); store_tenant_rekey moves
 * every row to the new id, or refuses an id taken. Rows are written under
 * the API (raw INSERTs), one of each kind per tenant. */
#include "t.h"
#include "store/store.h"
#include "store/store_tenants.h"
#include "t_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TA "aaaaaaaa-0000-0000-0000-000000000001"
#define TB "bbbbbbbb-0000-0000-0000-000000000002"
#define TA_LONGER TA "0"    /* an id the forgotten one is a prefix of */

static void exec_sql(struct store *st, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(store_sqlite(st), sql, NULL, NULL, &msg) != SQLITE_OK)
		t_fail(__FILE__, __LINE__, "%s: %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
}

/* One row of every kind for tenant id: 3 users (one removed), 2 groups with
 * 3 members, 2 links, licences on 2 days (3 rows), 2 Secure Score days, a
 * conflict, 2 intents (one pending), a run result, the billing rows, a
 * ticket action, 5 state keys and 2 audit rows. */
static void fill(struct store *st, const char *id)
{
	char sql[8192];
	snprintf(sql, sizeof sql,
	         "INSERT INTO tenants (id, name, default_domain) VALUES ('%1$s', 'Name %1$s', 'd.%1$s.example');"
	         "INSERT INTO users (tenant_id, object_id, json, updated_at) VALUES ('%1$s', 'u1', '{}', 't'),"
	         " ('%1$s', 'u2', '{}', 't');"
	         "INSERT INTO users (tenant_id, object_id, json, removed, updated_at) VALUES ('%1$s', 'u3', '{}', 'deleted', 't');"
	         "INSERT INTO users_staging (tenant_id, object_id, json) VALUES ('%1$s', 'u4', '{}');"
	         "INSERT INTO groups (tenant_id, group_id) VALUES ('%1$s', 'g1'), ('%1$s', 'g2');"
	         "INSERT INTO group_members VALUES ('%1$s', 'g1', 'u1'), ('%1$s', 'g1', 'u2'), ('%1$s', 'g2', 'u1');"
	         "INSERT INTO delta_state (tenant_id, resource, delta_link, updated_at) VALUES ('%1$s', 'users', 'x', 't');"
	         "INSERT INTO links (tenant_id, object_id, contact_id, customer_id, created_at, updated_at) VALUES"
	         " ('%1$s', 'u1', %2$d1, %2$d, 't', 't'), ('%1$s', 'u2', %2$d2, %2$d, 't', 't');"
	         "INSERT INTO license_snapshots (tenant_id, day, sku_id) VALUES ('%1$s', '2026-01-01', 's1'),"
	         " ('%1$s', '2026-01-01', 's2'), ('%1$s', '2026-01-02', 's1');"
	         "INSERT INTO secure_score_snapshots (tenant_id, day) VALUES ('%1$s', '2026-01-01'), ('%1$s', '2026-01-02');"
	         "INSERT INTO conflicts (tenant_id, object_id, reason, opened_at) VALUES ('%1$s', 'u1', 'r', 't');"
	         "INSERT INTO intents (tenant_id, action, state, created_at) VALUES ('%1$s', 'update', 'done', 't'),"
	         " ('%1$s', 'create', 'pending', 't');"
	         "INSERT INTO runs (kind, started_at) VALUES ('pull', 't');"
	         "INSERT INTO run_tenants (run_id, tenant_id, status) VALUES (last_insert_rowid(), '%1$s', 'ok');"
	         "INSERT INTO billing_invoices (tenant_id, period, customer_id, state, marker, plan, created_at, updated_at)"
	         " VALUES ('%1$s', '2026-01', %2$d, 'done', 'm', '{}', 't', 't');"
	         "INSERT INTO billing_intents (tenant_id, action, created_at) VALUES ('%1$s', 'invoice', 't');"
	         "INSERT INTO billing_schedule_lines (tenant_id, schedule_id, line_key, updated_at) VALUES ('%1$s', 1, 'k', 't');"
	         "INSERT INTO ticket_actions (ticket_id, tenant_id, action, state, created_at, updated_at) VALUES"
	         " (%2$d, '%1$s', 'disable', 'done', 't', 't');"
	         "INSERT INTO kv (key, value, updated_at) VALUES ('graph.organization.%1$s', '{}', 't'),"
	         " ('graph.secure_score.backfill_pending.%1$s', 'd', 't'), ('securescore.profiles:%1$s', '[]', 't'),"
	         " ('securescore.profiles.day:%1$s', 'd', 't'), ('alert.ticket:%1$s:unused', '{}', 't');"
	         "INSERT INTO audit (at, tenant_id, action, result) VALUES ('t', '%1$s', 'update', 'ok'),"
	         " ('t', '%1$s', 'create', 'ok');",
	         id, id[0] == 'a' ? (strlen(id) > 36 ? 300 : 100) : 200);
	exec_sql(st, sql);
}

/* Every row of tenant id, over all its tables (kv by its keys). */
static long long rows_of(struct store *st, const char *id, bool with_audit)
{
	char sql[2048];
	snprintf(sql, sizeof sql,
	         "SELECT (SELECT count(*) FROM tenants WHERE id = '%1$s') + (SELECT count(*) FROM users WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM users_staging WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM groups WHERE tenant_id = '%1$s') + (SELECT count(*) FROM group_members WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM delta_state WHERE tenant_id = '%1$s') + (SELECT count(*) FROM links WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM license_snapshots WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM secure_score_snapshots WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM conflicts WHERE tenant_id = '%1$s') + (SELECT count(*) FROM intents WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM run_tenants WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM tenant_run_counts WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM billing_invoices WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM billing_intents WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM billing_schedule_lines WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM ticket_actions WHERE tenant_id = '%1$s')"
	         " + (SELECT count(*) FROM kv WHERE key LIKE '%%' || '%1$s' || '%%' AND key NOT LIKE '%%' || '%1$s' || '0%%')"
	         " + %2$d * (SELECT count(*) FROM audit WHERE tenant_id = '%1$s')",
	         id, with_audit ? 1 : 0);
	return raw_int(store_sqlite(st), sql);
}

static struct store *filled(const char *name)
{
	struct store *st = t_store_fresh(name);
	if (!st) return NULL;
	fill(st, TA);
	fill(st, TB);
	fill(st, TA_LONGER);
	return st;
}

TEST(store_tenant_forget_deletes_every_kind_and_only_that_tenant)
{
	struct err err;
	struct store *st = filled("forget_all");
	REQUIRE(st);
	sqlite3 *db = store_sqlite(st);
	long long b_before = rows_of(st, TB, false), longer_before = rows_of(st, TA_LONGER, false);
	long long run_counts = raw_int(db, "SELECT sum(n) FROM run_counts");
	long long write_counts = raw_int(db, "SELECT sum(n) FROM write_counts");
	CHECK_EQ_INT(rows_of(st, TA, false), 32);

	struct store_forgotten f;
	REQUIRE_OK(store_tenant_forget(st, TA, false, false, &f, &err), &err);
	CHECK_EQ_INT(f.users, 3);
	CHECK_EQ_INT(f.groups, 2);
	CHECK_EQ_INT(f.memberships, 3);
	CHECK_EQ_INT(f.links, 2);
	CHECK_EQ_INT(f.license_days, 2);
	CHECK_EQ_INT(f.license_rows, 3);
	CHECK_EQ_INT(f.score_days, 2);
	CHECK_EQ_INT(f.conflicts, 1);
	CHECK_EQ_INT(f.intents, 2);
	CHECK_EQ_INT(f.intents_open, 1);
	CHECK_EQ_INT(f.run_results, 1);
	CHECK_EQ_INT(f.billing, 3);
	CHECK_EQ_INT(f.ticket_actions, 1);
	CHECK_EQ_INT(f.state_keys, 5);
	CHECK_EQ_INT(f.audit, 2);           /* counted, kept */
	CHECK_EQ_INT(rows_of(st, TA, false), 0);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM audit WHERE tenant_id = '" TA "'"), 2);
	/* the others, the one whose id starts with TA's included, untouched */
	CHECK_EQ_INT(rows_of(st, TB, false), b_before);
	CHECK_EQ_INT(rows_of(st, TA_LONGER, false), longer_before);
	/* the run itself stays (other tenants' results may share it); the totals stay */
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM runs"), 3);
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM run_counts"), run_counts);
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM write_counts"), write_counts);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"), 0);
	CHECK(!store_in_transaction(st));

	/* again: nothing left to forget */
	CHECK_EQ_INT(store_tenant_forget(st, TA, false, false, &f, &err), STORE_NOTFOUND);
	CHECK_EQ_INT(f.users, 0);
	CHECK(!store_in_transaction(st));
	store_close(st);
}

TEST(store_tenant_forget_audit_only_when_asked)
{
	struct err err;
	struct store *st = filled("forget_audit");
	REQUIRE(st);
	sqlite3 *db = store_sqlite(st);
	struct store_forgotten f;
	REQUIRE_OK(store_tenant_forget(st, TA, true, false, &f, &err), &err);
	CHECK_EQ_INT(f.audit, 2);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM audit WHERE tenant_id = '" TA "'"), 0);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM audit WHERE tenant_id = '" TB "'"), 2);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM audit WHERE tenant_id = '" TA_LONGER "'"), 2);
	/* the writes' counters do not go down */
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM write_counts"), 6);
	store_close(st);
}

TEST(store_tenant_forget_dry_run_counts_and_keeps)
{
	struct err err;
	struct store *st = filled("forget_dry");
	REQUIRE(st);
	struct store_forgotten dry, real;
	REQUIRE_OK(store_tenant_forget(st, TA, true, true, &dry, &err), &err);
	CHECK_EQ_INT(rows_of(st, TA, true), 34);
	CHECK(!store_in_transaction(st));
	REQUIRE_OK(store_tenant_forget(st, TA, true, false, &real, &err), &err);
	CHECK(memcmp(&dry, &real, sizeof dry) == 0);
	CHECK_EQ_INT(rows_of(st, TA, true), 0);
	store_close(st);
}

TEST(store_tenant_forget_failure_deletes_nothing)
{
	struct err err;
	struct store *st = filled("forget_refused");
	REQUIRE(st);
	/* the database refuses one of the deletes, half-way through */
	exec_sql(st, "CREATE TRIGGER no_forget BEFORE DELETE ON billing_invoices BEGIN SELECT RAISE(ABORT, 'kept by hand'); END");
	long long before = rows_of(st, TA, true);
	struct store_forgotten f;
	CHECK_EQ_INT(store_tenant_forget(st, TA, true, false, &f, &err), -1);
	CHECK(strstr(err.msg, "forget: deleting billing invoices") != NULL);
	CHECK(strstr(err.msg, "kept by hand") != NULL);
	CHECK_EQ_INT(f.users, 0);
	CHECK_EQ_INT(rows_of(st, TA, true), before);
	CHECK(!store_in_transaction(st));
	store_close(st);
}

/* The organization a pull stored for tenant id: Microsoft's id and domains. */
static void org(struct store *st, const char *id, const char *guid, const char *domain)
{
	char sql[512];
	snprintf(sql, sizeof sql, "UPDATE kv SET value = json_object('id', '%s', 'verifiedDomains', json_array("
	         "json_object('name', '%s', 'isDefault', 1), json_object('name', 'other.example'))) "
	         "WHERE key = 'graph.organization.%s'", guid, domain, id);
	exec_sql(st, sql);
}

TEST(store_tenant_same_as_by_organization)
{
	struct err err;
	struct store *st = filled("same_as");
	REQUIRE(st);
	org(st, TA, "11111111-1111-1111-1111-111111111111", "a.example");
	org(st, TB, "22222222-2222-2222-2222-222222222222", "B.Example");
	char *other = NULL;
	int more = -1;
	REQUIRE_OK(store_tenant_same_as(st, "11111111-1111-1111-1111-111111111111", &other, &more, &err), &err);
	CHECK_STR(other, TA);             /* by the organization's id */
	CHECK_EQ_INT(more, 0);
	free(other);
	REQUIRE_OK(store_tenant_same_as(st, "b.example", &other, &more, &err), &err);
	CHECK_STR(other, TB);             /* by a verified domain, any case */
	free(other);
	CHECK_EQ_INT(store_tenant_same_as(st, "c.example", &other, &more, &err), STORE_NOTFOUND);
	CHECK(other == NULL);
	CHECK_EQ_INT(store_tenant_same_as(st, TA, &other, &more, &err), STORE_NOTFOUND);   /* not itself */
	/* known under two ids already: the one synced last, and how many others */
	org(st, TA_LONGER, "11111111-1111-1111-1111-111111111111", "a.example");
	exec_sql(st, "UPDATE tenants SET last_sync_at = '2026-01-02T00:00:00Z' WHERE id = '" TA_LONGER "';"
	             "UPDATE tenants SET last_sync_at = '2026-01-01T00:00:00Z' WHERE id = '" TA "'");
	REQUIRE_OK(store_tenant_same_as(st, "other.example", &other, &more, &err), &err);
	CHECK_STR(other, TA_LONGER);
	CHECK_EQ_INT(more, 2);            /* TA, TB: other.example is everyone's here */
	free(other);
	store_close(st);
}

TEST(store_tenant_twins_by_stored_organization)
{
	struct err err;
	struct store *st = filled("twins");
	REQUIRE(st);
	org(st, TA, "11111111-1111-1111-1111-111111111111", "a.example");
	org(st, TB, "22222222-2222-2222-2222-222222222222", "b.example");
	org(st, TA_LONGER, "11111111-1111-1111-1111-111111111111", "a.example");   /* TA under another id */
	union { const char *c; char *m; } id[] = { { TA }, { TB }, { "not-pulled.example" }, { TA_LONGER } };
	struct config_tenant tenants[4] = { { .id = id[0].m }, { .id = id[1].m }, { .id = id[2].m }, { .id = id[3].m } };
	size_t twin[4];
	REQUIRE_OK(store_tenant_twins(st, tenants, 4, twin, &err), &err);
	CHECK_EQ_INT((int)twin[0], 3);    /* each names the other */
	CHECK_EQ_INT((int)twin[3], 0);
	CHECK_EQ_INT((int)twin[1], 4);    /* none */
	CHECK_EQ_INT((int)twin[2], 4);    /* no organization stored: no twin */
	store_close(st);
}

TEST(store_tenant_rekey_moves_every_row)
{
	struct err err;
	struct store *st = filled("rekey");
	REQUIRE(st);
	sqlite3 *db = store_sqlite(st);
	const char *to = "a.example";
	long long before = rows_of(st, TA, true), b_before = rows_of(st, TB, true);
	long long runs = raw_int(db, "SELECT sum(n) FROM tenant_run_counts WHERE tenant_id = '" TA "'");
	REQUIRE_OK(store_tenant_rekey(st, TA, to, &err), &err);
	CHECK_EQ_INT(rows_of(st, TA, true), 0);
	CHECK_EQ_INT(rows_of(st, to, true), before);
	CHECK_EQ_INT(rows_of(st, TB, true), b_before);
	CHECK_EQ_INT(raw_int(db, "SELECT users_present FROM tenants WHERE id = 'a.example'"), 2);
	CHECK_EQ_INT(raw_int(db, "SELECT sum(n) FROM tenant_run_counts WHERE tenant_id = 'a.example'"), runs);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM kv WHERE key IN ('graph.organization.a.example', "
	                         "'alert.ticket:a.example:unused', 'securescore.profiles.day:a.example')"), 3);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	CHECK(!store_in_transaction(st));
	/* onto a tenant that exists: refused, nothing moved */
	CHECK_EQ_INT(store_tenant_rekey(st, TB, to, &err), -1);
	CHECK(strstr(err.msg, "is a tenant already") != NULL);
	CHECK_EQ_INT(rows_of(st, TB, true), b_before);
	CHECK(!store_in_transaction(st));
	store_close(st);
}
