/* test_store — the SQLite store and the run lock: file modes, pragmas,
 * migrations and refusals, the user mirror and its atomic replacement,
 * links, audit, delta state, runs, kv, the lock across fds and processes,
 * and crash safety of a transaction left open by a dying process. */
#include "t.h"
#include "t_sql.h"
#include "store/store.h"
#include "store/store_snapshots.h"
#include "store/store_history.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TENANT "11111111-2222-3333-4444-555555555555"

/* A fresh database path in a new scratch folder; dir (optional) is a
 * missing subfolder inserted in between. Returns a static buffer. */
static const char *db_path(const char *dir)
{
	static char path[600];
	if (dir) snprintf(path, sizeof path, "%s/%s/entrasync.db", t_tmpdir(), dir);
	else snprintf(path, sizeof path, "%s/entrasync.db", t_tmpdir());
	return path;
}

static int mode_of(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0) return -1;
	return (int)(sb.st_mode & 07777);
}

static int mode_of_suffix(const char *path, const char *suffix)
{
	char p[700];
	snprintf(p, sizeof p, "%s%s", path, suffix);
	return mode_of(p);
}

/* Opens path and registers TENANT. */
static struct store *open_with_tenant(const char *path, struct err *err)
{
	struct store *st = NULL;
	if (store_open(path, &st, err)) return NULL;
	struct store_tenant t = { .id = TENANT, .name = "Contoso" };
	if (store_tenant_put(st, &t, err)) {
		store_close(st);
		return NULL;
	}
	return st;
}

/* A raw sqlite connection, for looking behind the API. */
static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

/* First column of the first row as a new string (or NULL). */
static char *raw_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	char *v = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW &&
	    sqlite3_column_text(s, 0))
		v = xstrdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return v;
}

static char *user_json(struct store *st, const char *oid)
{
	struct store_user u;
	struct err err;
	if (store_user_get(st, TENANT, oid, &u, &err) != 0) return NULL;
	char *j = xstrdup(u.json);
	store_user_free(&u);
	return j;
}

static char *user_removed(struct store *st, const char *oid)
{
	struct store_user u;
	struct err err;
	if (store_user_get(st, TENANT, oid, &u, &err) != 0) return xstrdup("(missing)");
	char *r = xstrdup(u.removed ? u.removed : "(present)");
	store_user_free(&u);
	return r;
}

/* The migration tests' set-up: a database at path as schema `version` left
 * it (migrations 1 to version run by hand, user_version = version, then the
 * SQL rows: what such a database held), opened with store_open, which
 * must upgrade it to the latest version. The store (the caller closes it),
 * or NULL with the failure recorded. */
static struct store *open_upgraded_from(const char *path, int version, const char *rows, struct err *err)
{
	sqlite3 *raw = raw_open(path);
	if (!raw) {
		t_fail(__FILE__, __LINE__, "cannot open %s", path);
		return NULL;
	}
	char pragma[64];
	snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version);
	int rc = SQLITE_OK;
	for (int n = 1; n <= version && rc == SQLITE_OK; n++) rc = sqlite3_exec(raw, store_schema_migration(n), NULL, NULL, NULL);
	if (rc == SQLITE_OK) rc = sqlite3_exec(raw, pragma, NULL, NULL, NULL);
	if (rc == SQLITE_OK) rc = sqlite3_exec(raw, rows, NULL, NULL, NULL);
	if (rc != SQLITE_OK) t_fail(__FILE__, __LINE__, "a version-%d database: %s", version, sqlite3_errmsg(raw));
	sqlite3_close(raw);
	struct store *st = NULL;
	if (rc != SQLITE_OK) return NULL;
	if (store_open(path, &st, err) != 0) {
		t_fail(__FILE__, __LINE__, "store_open of a version-%d database: %s", version, err->msg);
		return NULL;
	}
	CHECK_EQ_INT(store_schema_version(st), store_schema_latest());
	return st;
}

static long long count_users(struct store *st, enum store_user_filter f)
{
	long long n = -1;
	struct err err;
	if (store_user_count(st, TENANT, f, &n, &err)) return -1;
	return n;
}

/* --------------------------------------------------------------- files, pragmas */

static void check_modes_under_umask(mode_t mask)
{
	mode_t old = umask(mask);
	struct err err;
	const char *path = db_path("state/deeper");
	struct store *st = open_with_tenant(path, &err);
	umask(old);
	if (!st) {
		t_fail(__FILE__, __LINE__, "open under umask %03o: %s", (unsigned)mask, err.msg);
		return;
	}
	CHECK_OK(store_user_put(st, TENANT, "u1", "{\"id\":\"u1\"}", &err), &err);
	CHECK_EQ_INT(mode_of(path), 0600);
	CHECK_EQ_INT(mode_of_suffix(path, "-wal"), 0600);
	CHECK_EQ_INT(mode_of_suffix(path, "-shm"), 0600);
	char dir[700];
	snprintf(dir, sizeof dir, "%s", path);
	*strrchr(dir, '/') = '\0';
	CHECK_EQ_INT(mode_of(dir), 0700);             /* state/deeper */
	*strrchr(dir, '/') = '\0';
	CHECK_EQ_INT(mode_of(dir), 0700);             /* state */
	store_close(st);
	/* The last close removed the -wal; the next connection's new one is 0600 too. */
	CHECK_EQ_INT(mode_of_suffix(path, "-wal"), -1);
	old = umask(mask);
	int rc = store_open(path, &st, &err);
	umask(old);
	REQUIRE_OK(rc, &err);
	CHECK_OK(store_user_put(st, TENANT, "u2", "{\"id\":\"u2\"}", &err), &err);
	CHECK_EQ_INT(mode_of_suffix(path, "-wal"), 0600);
	CHECK_EQ_INT(mode_of_suffix(path, "-shm"), 0600);
	store_close(st);
}

TEST(store_file_mode_0600)
{
	check_modes_under_umask(0);
	check_modes_under_umask(022);
	check_modes_under_umask(0277);  /* a umask that would leave the owner without write */
}

TEST(store_file_mode_fixed_on_existing_db)
{
	struct err err;
	const char *path = db_path(NULL);
	struct store *st = NULL;
	REQUIRE_OK(store_open(path, &st, &err), &err);
	store_close(st);
	REQUIRE(chmod(path, 0644) == 0);
	REQUIRE_OK(store_open(path, &st, &err), &err);
	CHECK_EQ_INT(mode_of(path), 0600);
	store_close(st);
}

TEST(store_wal_and_foreign_keys)
{
	struct err err;
	const char *path = db_path(NULL);
	struct store *st = open_with_tenant(path, &err);
	REQUIRE(st);
	sqlite3 *raw = raw_open(path);
	REQUIRE(raw);
	char *mode = raw_text(raw, "PRAGMA journal_mode");
	CHECK_STR(mode, "wal");
	free(mode);
	sqlite3_close(raw);
	CHECK(mode_of_suffix(path, "-wal") >= 0);
	/* Foreign keys on: a user of an unknown tenant is refused, clearly. */
	CHECK(store_user_put(st, "no-such-tenant", "u1", "{}", &err) < 0);
	CHECK_CONTAINS(err.msg, "tenant 'no-such-tenant' is not in the store");
	store_close(st);
}

/* --------------------------------------------------------------- migrations */

TEST(store_migrations_from_empty_reach_latest)
{
	struct err err;
	const char *path = db_path(NULL);
	struct store *st = NULL;
	REQUIRE(store_schema_latest() >= 1);
	REQUIRE_OK(store_open(path, &st, &err), &err);
	CHECK_EQ_INT(store_schema_version(st), store_schema_latest());
	store_close(st);
	sqlite3 *raw = raw_open(path);
	REQUIRE(raw);
	static const char *const tables[] = {
		"tenants", "users", "users_staging", "groups", "group_members", "delta_state", "links", "kv",
		"runs", "run_tenants", "intents", "audit", "conflicts", "license_snapshots", "secure_score_snapshots",
		"billing_invoices", "billing_intents", "billing_schedule_lines", "ticket_actions",
	};
	for (size_t i = 0; i < ARRAY_LEN(tables); i++) {
		char sql[200];
		snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '%s'",
		         tables[i]);
		if (raw_int(raw, sql) != 1) t_fail(__FILE__, __LINE__, "table %s missing", tables[i]);
	}
	CHECK_EQ_INT(raw_int(raw, "PRAGMA user_version"), store_schema_latest());
	CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM sqlite_schema WHERE name = 'links_by_contact'"), 1);
	CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN "
	                          "('billing_intents_open', 'ticket_actions_open')"), 2);
	sqlite3_close(raw);
}

/* Migration 4 takes in the tables billing and ticket actions used to create
 * at first use: a version-3 database that already has them (rows included)
 * upgrades, keeping the rows. */
TEST(store_migration_4_adopts_first_use_tables)
{
	struct err err;
	const char *path = db_path(NULL);
	REQUIRE(store_schema_latest() >= 4);
	/* what store_actions.c and store_billing.c created on first use */
	struct store *st = open_upgraded_from(path, 3,
	                          "CREATE TABLE IF NOT EXISTS ticket_actions (ticket_id INTEGER PRIMARY KEY, "
	                          "customer_id INTEGER, contact_id INTEGER, tenant_id TEXT, object_id TEXT, label TEXT, "
	                          "action TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('intent', 'acted', "
	                          "'commenting', 'done')), outcome TEXT CHECK (outcome IN ('ok', 'refused', 'failed')), "
	                          "message TEXT, attempts INTEGER NOT NULL DEFAULT 0, attempted_at TEXT, "
	                          "created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
	                          "CREATE INDEX IF NOT EXISTS ticket_actions_open ON ticket_actions(state) "
	                          "WHERE state <> 'done';"
	                          "INSERT INTO ticket_actions (ticket_id, action, state, created_at, updated_at) "
	                          "VALUES (42, 'user.disable', 'acted', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');"
	                          "CREATE TABLE IF NOT EXISTS billing_schedule_lines (tenant_id TEXT NOT NULL, "
	                          "schedule_id INTEGER NOT NULL, line_key TEXT NOT NULL, line_item_id INTEGER, "
	                          "updated_at TEXT NOT NULL, PRIMARY KEY (tenant_id, schedule_id, line_key));"
	                          "INSERT INTO billing_schedule_lines VALUES ('t', 7, 'p:1', 9, '2026-01-01T00:00:00Z')",
	                          &err);
	REQUIRE(st);
	store_close(st);
	sqlite3 *raw = raw_open(path);
	REQUIRE(raw);
	CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM ticket_actions WHERE ticket_id = 42 AND state = 'acted'"), 1);
	CHECK_EQ_INT(raw_int(raw, "SELECT line_item_id FROM billing_schedule_lines WHERE schedule_id = 7"), 9);
	CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM sqlite_schema WHERE name IN ('billing_invoices', "
	                          "'billing_intents', 'billing_intents_open')"), 3);
	sqlite3_close(raw);
}

TEST(store_migrations_upgrade_an_older_db)
{
	struct err err;
	const char *path = db_path(NULL);
	if (store_schema_latest() < 2) {
		t_skip("only one migration");
		return;
	}
	/* Build a version-1 database by hand, with a user in it. */
	struct store *st = open_upgraded_from(path, 1,
	                                      "INSERT INTO tenants (id) VALUES ('" TENANT "');"
	                                      "INSERT INTO users (tenant_id, object_id, json, updated_at) "
	                                      "VALUES ('" TENANT "', 'old', '{\"v\":1}', '2020-01-01T00:00:00Z')",
	                                      &err);
	REQUIRE(st);
	char *j = user_json(st, "old");
	CHECK_STR(j, "{\"v\":1}");
	free(j);
	long long run = 0;
	CHECK_OK(store_run_begin(st, "pull", &run, &err), &err);  /* a table of migration 2 */
	store_close(st);
}

TEST(store_reopen_is_a_noop)
{
	struct err err;
	const char *path = db_path(NULL);
	struct store *st = open_with_tenant(path, &err);
	REQUIRE(st);
	CHECK_OK(store_user_put(st, TENANT, "u1", "{\"a\":1}", &err), &err);
	store_close(st);
	sqlite3 *raw = raw_open(path);
	REQUIRE(raw);
	char *schema1 = raw_text(raw, "SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_schema ORDER BY name)");
	long long changes1 = raw_int(raw, "PRAGMA data_version");
	sqlite3_close(raw);
	REQUIRE_OK(store_open(path, &st, &err), &err);
	CHECK_EQ_INT(store_schema_version(st), store_schema_latest());
	char *j = user_json(st, "u1");
	CHECK_STR(j, "{\"a\":1}");
	free(j);
	store_close(st);
	raw = raw_open(path);
	REQUIRE(raw);
	char *schema2 = raw_text(raw, "SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_schema ORDER BY name)");
	CHECK(schema1 && schema2 && strcmp(schema1, schema2) == 0);
	CHECK(changes1 != -999);
	CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM users"), 1);
	sqlite3_close(raw);
	free(schema1);
	free(schema2);
}

TEST(store_newer_schema_refused)
{
	struct err err;
	const char *path = db_path(NULL);
	struct store *st = NULL;
	REQUIRE_OK(store_open(path, &st, &err), &err);
	store_close(st);
	sqlite3 *raw = raw_open(path);
	REQUIRE(raw);
	int newer = store_schema_latest() + 4;
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", newer);
	REQUIRE(sqlite3_exec(raw, sql, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(raw);
	st = NULL;
	CHECK(store_open(path, &st, &err) < 0);
	CHECK(st == NULL);
	char want[900];
	snprintf(want, sizeof want, "database %s is schema version %d, this entrasync knows up to %d: upgrade entrasync",
	         path, newer, store_schema_latest());
	CHECK_STR(err.msg, want);
}

TEST(store_garbage_file_refused)
{
	struct err err;
	const char *path = db_path(NULL);
	const char *garbage = "this is a config file, not a database\n"
	                      "tenants = { { id = 'contoso.onmicrosoft.com' } }\n"
	                      "................................................................\n"
	                      "................................................................\n";
	FILE *f = fopen(path, "w");
	REQUIRE(f);
	fputs(garbage, f);
	fclose(f);
	struct store *st = NULL;
	CHECK(store_open(path, &st, &err) < 0);
	CHECK(st == NULL);
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, "is not a SQLite database");
	/* Left untouched. */
	char *back = NULL;
	size_t len = 0;
	REQUIRE_OK(file_read(path, &back, &len, &err), &err);
	CHECK_STR(back, garbage);
	free(back);
}

TEST(store_foreign_sqlite_db_refused)
{
	struct err err;
	const char *path = db_path(NULL);
	sqlite3 *raw = raw_open(path);
	REQUIRE(raw);
	REQUIRE(sqlite3_exec(raw, "CREATE TABLE photos (id INTEGER PRIMARY KEY)", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(raw);
	struct store *st = NULL;
	CHECK(store_open(path, &st, &err) < 0);
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, "not an entrasync one");
}

/* --------------------------------------------------------------- transactions */

TEST(store_transactions)
{
	struct err err;
	struct store *st = open_with_tenant(db_path(NULL), &err);
	REQUIRE(st);
	CHECK(!store_in_transaction(st));
	REQUIRE_OK(store_begin(st, &err), &err);
	CHECK(store_in_transaction(st));
	CHECK(store_begin(st, &err) < 0);
	CHECK_CONTAINS(err.msg, "already open");
	CHECK_OK(store_user_put(st, TENANT, "u1", "{}", &err), &err);
	CHECK_OK(store_rollback(st, &err), &err);
	CHECK_EQ_INT(count_users(st, STORE_USERS_ALL), 0);
	CHECK(store_commit(st, &err) < 0);
	REQUIRE_OK(store_begin(st, &err), &err);
	CHECK_OK(store_user_put(st, TENANT, "u1", "{}", &err), &err);
	CHECK_OK(store_commit(st, &err), &err);
	CHECK_EQ_INT(count_users(st, STORE_USERS_ALL), 1);
	/* Closing with a transaction open discards it. */
	REQUIRE_OK(store_begin(st, &err), &err);
	CHECK_OK(store_user_put(st, TENANT, "u2", "{}", &err), &err);
	char path[600];
	snprintf(path, sizeof path, "%s", store_path(st));
	store_close(st);
	st = NULL;
	REQUIRE_OK(store_open(path, &st, &err), &err);
	CHECK_EQ_INT(count_users(st, STORE_USERS_ALL), 1);
	store_close(st);
}

TEST(store_open_does_not_wait_for_a_writer)
{
	struct err err;
	const char *path = db_path(NULL);
	struct store *writer = open_with_tenant(path, &err), *reader = NULL;
	REQUIRE(writer);
	CHECK_OK(store_user_put(writer, TENANT, "u1", "{}", &err), &err);
	REQUIRE_OK(store_begin(writer, &err), &err);
	CHECK_OK(store_user_put(writer, TENANT, "u2", "{}", &err), &err);
	double t0 = time_mono();
	CHECK_OK(store_open(path, &reader, &err), &err);
	CHECK(time_mono() - t0 < 2.0);  /* not the 5 s busy timeout */
	if (reader) {
		CHECK_EQ_INT(count_users(reader, STORE_USERS_ALL), 1);  /* committed state only */
		store_close(reader);
	}
	CHECK_OK(store_commit(writer, &err), &err);
	store_close(writer);
}

/* --------------------------------------------------------------- tenants */

static int collect_tenant(const struct store_tenant *t, void *ud)
{
	struct buf *b = ud;
	buf_printf(b, "%s;", t->id);
	return 0;
}

TEST(store_tenants)
{
	struct err err;
	struct store *st = NULL;
	REQUIRE_OK(store_open(db_path(NULL), &st, &err), &err);
	struct store_tenant t = { .id = "b-tenant", .name = "Fabrikam", .syncro_customer_id = 42,
	                          .last_status = "ok" };
	CHECK_OK(store_tenant_put(st, &t, &err), &err);
	t.id = "a-tenant";
	t.name = NULL;
	t.syncro_customer_id = 0;
	CHECK_OK(store_tenant_put(st, &t, &err), &err);
	struct store_tenant got;
	CHECK_EQ_INT(store_tenant_get(st, "b-tenant", &got, &err), 0);
	CHECK_STR(got.name, "Fabrikam");
	CHECK_EQ_INT(got.syncro_customer_id, 42);
	CHECK(got.last_error == NULL);
	store_tenant_free(&got);
	CHECK_EQ_INT(store_tenant_get(st, "nope", &got, &err), STORE_NOTFOUND);
	CHECK(got.id == NULL);
	/* An update of the tenant row keeps its users (no delete+insert cascade). */
	CHECK_OK(store_user_put(st, "b-tenant", "u1", "{}", &err), &err);
	t.id = "b-tenant";
	t.last_error = "boom";
	CHECK_OK(store_tenant_put(st, &t, &err), &err);
	long long n = 0;
	CHECK_OK(store_user_count(st, "b-tenant", STORE_USERS_ALL, &n, &err), &err);
	CHECK_EQ_INT(n, 1);
	struct buf b = {0};
	CHECK_OK(store_tenant_each(st, collect_tenant, &b, &err), &err);
	CHECK_STR(b.data, "a-tenant;b-tenant;");
	buf_free(&b);
	store_close(st);
}

/* --------------------------------------------------------------- user mirror */

struct collected {
	struct buf ids;
	int stop_after;  /* 0 = never */
	int seen;
};

static int collect_user(const struct store_user *u, void *ud)
{
	struct collected *c = ud;
	buf_printf(&c->ids, "%s=%s%s;", u->object_id, u->json, u->removed ? "(removed)" : "");
	c->seen++;
	return (c->stop_after && c->seen >= c->stop_after) ? 7 : 0;
}

/* TENANT's users of a kind as collect_user lists them ("id=json;..." in
 * object-id order), in a static buffer; "(failed: MSG)" when the store
 * fails. */
static const char *users_listed(struct store *st, enum store_user_filter which)
{
	static char out[1100];
	struct collected c = {0};
	struct err err;
	if (store_user_each(st, TENANT, which, collect_user, &c, &err) != 0)
		snprintf(out, sizeof out, "(failed: %s)", err.msg);
	else
		snprintf(out, sizeof out, "%s", c.ids.data ? c.ids.data : "");
	buf_free(&c.ids);
	return out;
}

TEST(store_users_upsert_get_iterate_count)
{
	struct err err;
	struct store *st = open_with_tenant(db_path(NULL), &err);
	REQUIRE(st);
	struct store_tenant other = { .id = "other" };
	CHECK_OK(store_tenant_put(st, &other, &err), &err);
	CHECK_OK(store_user_put(st, TENANT, "c", "{\"n\":\"C\"}", &err), &err);
	CHECK_OK(store_user_put(st, TENANT, "a", "{\"n\":\"A\"}", &err), &err);
	CHECK_OK(store_user_put(st, TENANT, "b", "{\"n\":\"B\"}", &err), &err);
	CHECK_OK(store_user_put(st, "other", "a", "{\"n\":\"other A\"}", &err), &err);
	CHECK_OK(store_user_put(st, TENANT, "a", "{\"n\":\"A2\"}", &err), &err);  /* replaces */

	struct store_user u;
	REQUIRE_OK(store_user_get(st, TENANT, "a", &u, &err), &err);
	CHECK_STR(u.tenant_id, TENANT);
	CHECK_STR(u.object_id, "a");
	CHECK_STR(u.json, "{\"n\":\"A2\"}");
	CHECK(u.removed == NULL);
	CHECK(u.updated_at && strlen(u.updated_at) == 20);
	store_user_free(&u);
	CHECK_EQ_INT(store_user_get(st, TENANT, "zz", &u, &err), STORE_NOTFOUND);
	CHECK(u.json == NULL);

	CHECK_EQ_INT(count_users(st, STORE_USERS_ALL), 3);
	CHECK_EQ_INT(count_users(st, STORE_USERS_PRESENT), 3);
	CHECK_EQ_INT(count_users(st, STORE_USERS_REMOVED), 0);

	CHECK_STR(users_listed(st, STORE_USERS_ALL), "a={\"n\":\"A2\"};b={\"n\":\"B\"};c={\"n\":\"C\"};");
	/* A callback stops the iteration and its value comes back. */
	struct collected stop = { .stop_after = 2 };
	CHECK_EQ_INT(store_user_each(st, TENANT, STORE_USERS_ALL, collect_user, &stop, &err), 7);
	CHECK_EQ_INT(stop.seen, 2);
	buf_free(&stop.ids);
	CHECK(store_user_put(st, TENANT, "", "{}", &err) < 0);
	store_close(st);
}

/* A callback that writes while iterating (allowed by the contract). */
static int write_during_each(const struct store_user *u, void *ud)
{
	struct store *st = ud;
	struct err err;
	char oid[64];
	snprintf(oid, sizeof oid, "%s-copy", u->object_id);
	return store_kv_put(st, oid, u->json, &err);
}

TEST(store_users_each_callback_may_use_the_store)
{
	struct err err;
	struct store *st = open_with_tenant(db_path(NULL), &err);
	REQUIRE(st);
	CHECK_OK(store_user_put(st, TENANT, "a", "{\"x\":1}", &err), &err);
	CHECK_OK(store_user_put(st, TENANT, "b", "{\"x\":2}", &err), &err);
	CHECK_OK(store_user_each(st, TENANT, STORE_USERS_ALL, write_during_each, st, &err), &err);
	char *v = NULL;
	CHECK_EQ_INT(store_kv_get(st, "b-copy", &v, &err), 0);
	CHECK_STR(v, "{\"x\":2}");
	free(v);
	store_close(st);
}

/* A present user's new JSON (the delta merge's write): written when it
 * differs, nothing when equal; json and removed read back alone. */
TEST(store_user_set_json_and_get_json)
{
	struct err err;
	struct store *st = open_with_tenant(db_path(NULL), &err);
	REQUIRE(st);
	CHECK_OK(store_user_put(st, TENANT, "a", "{\"n\":\"A\"}", &err), &err);
	int before = sqlite3_total_changes(store_sqlite(st));
	CHECK_OK(store_user_set_json_n(st, TENANT, "a", "{\"n\":\"A\"}", 9, &err), &err);
	CHECK_EQ_INT(sqlite3_total_changes(store_sqlite(st)) - before, 0);
	CHECK_OK(store_user_set_json_n(st, TENANT, "a", "{\"n\":\"A2\"}xyz", 10, &err), &err);
	CHECK_EQ_INT(sqlite3_total_changes(store_sqlite(st)) - before, 1);
	struct store_user u;
	REQUIRE_OK(store_user_get_json(st, TENANT, "a", &u, &err), &err);
	CHECK_STR(u.json, "{\"n\":\"A2\"}");
	CHECK(u.removed == NULL && u.object_id == NULL && u.updated_at == NULL);
	store_user_free(&u);
	CHECK_EQ_INT(count_users(st, STORE_USERS_PRESENT), 1);
	CHECK_EQ_INT(store_user_get_json(st, TENANT, "nobody", &u, &err), STORE_NOTFOUND);
	store_close(st);
}

TEST(store_users_removed_marking)
{
	struct err err;
	struct store *st = open_with_tenant(db_path(NULL), &err);
	REQUIRE(st);
	CHECK_OK(store_user_put(st, TENANT, "a", "{\"n\":\"A\"}", &err), &err);
	CHECK_OK(store_user_put(st, TENANT, "b", "{\"n\":\"B\"}", &err), &err);
	CHECK_OK(store_user_mark_removed(st, TENANT, "a", "changed", &err), &err);
	struct store_user u;
	REQUIRE_OK(store_user_get(st, TENANT, "a", &u, &err), &err);
	CHECK_STR(u.removed, "changed");
	CHECK(u.removed_at != NULL);
	CHECK_STR(u.json, "{\"n\":\"A\"}");  /* last JSON kept */
	char *first_removed_at = xstrdup(u.removed_at ? u.removed_at : "");
	store_user_free(&u);
	CHECK_EQ_INT(count_users(st, STORE_USERS_PRESENT), 1);
	CHECK_EQ_INT(count_users(st, STORE_USERS_REMOVED), 1);
	CHECK_EQ_INT(count_users(st, STORE_USERS_ALL), 2);
	CHECK_STR(users_listed(st, STORE_USERS_REMOVED), "a={\"n\":\"A\"}(removed);");
	CHECK_STR(users_listed(st, STORE_USERS_PRESENT), "b={\"n\":\"B\"};");
	/* changed -> deleted keeps the first removed_at. */
	CHECK_OK(store_user_mark_removed(st, TENANT, "a", "deleted", &err), &err);
	REQUIRE_OK(store_user_get(st, TENANT, "a", &u, &err), &err);
	CHECK_STR(u.removed, "deleted");
	CHECK_STR(u.removed_at, first_removed_at);
	store_user_free(&u);
	free(first_removed_at);
	/* Unknown reason refused; unknown user left absent. */
	CHECK(store_user_mark_removed(st, TENANT, "b", "gone", &err) < 0);
	CHECK_CONTAINS(err.msg, "'changed' or 'deleted'");
	CHECK_OK(store_user_mark_removed(st, TENANT, "ghost", "deleted", &err), &err);
	CHECK_EQ_INT(count_users(st, STORE_USERS_ALL), 2);
	/* A user that comes back (restore) is present again. */
	CHECK_OK(store_user_put(st, TENANT, "a", "{\"n\":\"A back\"}", &err), &err);
	char *r = user_removed(st, "a");
	CHECK_STR(r, "(present)");
	free(r);
	REQUIRE_OK(store_user_get(st, TENANT, "a", &u, &err), &err);
	CHECK(u.removed_at == NULL);
	store_user_free(&u);
	CHECK_EQ_INT(count_users(st, STORE_USERS_REMOVED), 0);
	store_close(st);
}

/* --------------------------------------------------------------- mirror replacement */

static void put_users(struct store *st, const char *const *ids, size_t n)
{
	struct err err;
	for (size_t i = 0; i < n; i++) {
		char json[64];
		snprintf(json, sizeof json, "{\"id\":\"%s\",\"v\":1}", ids[i]);
		CHECK_OK(store_user_put(st, TENANT, ids[i], json, &err), &err);
	}
}

TEST(store_mirror_swap_replaces_atomically)
{
	struct err err;
	struct store *st = open_with_tenant(db_path(NULL), &err);
	REQUIRE(st);
	static const char *const live[] = { "a", "b", "c", "d" };
	put_users(st, live, 4);
	CHECK_OK(store_user_mark_removed(st, TENANT, "d", "changed", &err), &err);
	/* The full round: a (new JSON), e (new), c reported removed; b absent. */
	CHECK_OK(store_mirror_stage_clear(st, TENANT, &err), &err);
	CHECK_OK(store_mirror_stage_put(st, TENANT, "a", "{\"id\":\"a\",\"v\":2}", &err), &err);
	CHECK_OK(store_mirror_stage_put(st, TENANT, "e", "{\"id\":\"e\",\"v\":2}", &err), &err);
	CHECK_OK(store_mirror_stage_remove(st, TENANT, "c", "deleted", &err), &err);
	CHECK_OK(store_mirror_stage_put(st, TENANT, "a", "{\"id\":\"a\",\"v\":3}", &err), &err);  /* replay */
	long long staged = 0;
	CHECK_OK(store_mirror_stage_count(st, TENANT, &staged, &err), &err);
	CHECK_EQ_INT(staged, 3);
	/* Staging leaves the live mirror alone. */
	char *j = user_json(st, "a");
	CHECK_STR(j, "{\"id\":\"a\",\"v\":1}");
	free(j);
	CHECK_EQ_INT(count_users(st, STORE_USERS_PRESENT), 3);

	long long removed = -1;
	CHECK_OK(store_mirror_swap(st, TENANT, &removed, &err), &err);
	CHECK_EQ_INT(removed, 2);  /* b (absent) and c (reported) */
	j = user_json(st, "a");
	CHECK_STR(j, "{\"id\":\"a\",\"v\":3}");
	free(j);
	static const struct { const char *id, *state; } want[] = {
		{ "a", "(present)" }, { "b", "changed" }, { "c", "deleted" }, { "d", "changed" }, { "e", "(present)" },
	};
	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		char *r = user_removed(st, want[i].id);
		if (strcmp(r, want[i].state) != 0)
			t_fail(__FILE__, __LINE__, "user %s: %s, want %s", want[i].id, r, want[i].state);
		free(r);
	}
	CHECK_OK(store_mirror_stage_count(st, TENANT, &staged, &err), &err);
	CHECK_EQ_INT(staged, 0);
	CHECK_EQ_INT(count_users(st, STORE_USERS_ALL), 5);
	/* Staging is per tenant: clearing or swapping one leaves another's. */
	struct store_tenant other = { .id = "other" };
	CHECK_OK(store_tenant_put(st, &other, &err), &err);
	CHECK_OK(store_mirror_stage_put(st, "other", "o1", "{}", &err), &err);
	CHECK_OK(store_mirror_stage_put(st, TENANT, "zz", "{}", &err), &err);
	CHECK_OK(store_mirror_stage_clear(st, TENANT, &err), &err);
	CHECK_OK(store_mirror_stage_count(st, TENANT, &staged, &err), &err);
	CHECK_EQ_INT(staged, 0);
	CHECK_OK(store_mirror_stage_count(st, "other", &staged, &err), &err);
	CHECK_EQ_INT(staged, 1);
	/* The same staged set again changes nothing more. */
	CHECK_OK(store_mirror_stage_put(st, TENANT, "a", "{\"id\":\"a\",\"v\":3}", &err), &err);
	CHECK_OK(store_mirror_stage_put(st, TENANT, "e", "{\"id\":\"e\",\"v\":2}", &err), &err);
	CHECK_OK(store_mirror_stage_remove(st, TENANT, "c", "deleted", &err), &err);
	CHECK_OK(store_mirror_swap(st, TENANT, &removed, &err), &err);
	CHECK_EQ_INT(removed, 0);
	CHECK_OK(store_mirror_stage_count(st, "other", &staged, &err), &err);
	CHECK_EQ_INT(staged, 1);
	long long other_users = -1;
	CHECK_OK(store_user_count(st, "other", STORE_USERS_ALL, &other_users, &err), &err);
	CHECK_EQ_INT(other_users, 0);
	store_close(st);
}

TEST(store_mirror_swap_interrupted_loses_nothing)
{
	struct err err;
	const char *path = db_path(NULL);  /* static until the next db_path() */
	struct store *st = open_with_tenant(path, &err);
	REQUIRE(st);
	static const char *const live[] = { "a", "b", "c" };
	put_users(st, live, 3);

	/* 1. A page written in a transaction, then rolled back. */
	REQUIRE_OK(store_begin(st, &err), &err);
	CHECK_OK(store_mirror_stage_clear(st, TENANT, &err), &err);
	CHECK_OK(store_mirror_stage_put(st, TENANT, "a", "{\"id\":\"a\",\"v\":2}", &err), &err);
	CHECK_OK(store_mirror_stage_put(st, TENANT, "x", "{\"id\":\"x\",\"v\":2}", &err), &err);
	CHECK_OK(store_rollback(st, &err), &err);
	long long staged = -1;
	CHECK_OK(store_mirror_stage_count(st, TENANT, &staged, &err), &err);
	CHECK_EQ_INT(staged, 0);

	/* 2. A swap inside the caller's transaction, rolled back with it. */
	REQUIRE_OK(store_begin(st, &err), &err);
	CHECK_OK(store_mirror_stage_put(st, TENANT, "a", "{\"id\":\"a\",\"v\":2}", &err), &err);
	CHECK_OK(store_mirror_swap(st, TENANT, NULL, &err), &err);
	CHECK_EQ_INT(count_users(st, STORE_USERS_REMOVED), 2);  /* visible inside */
	CHECK_OK(store_rollback(st, &err), &err);
	CHECK_EQ_INT(count_users(st, STORE_USERS_REMOVED), 0);

	/* 3. Half a round committed, then the process goes away before the swap. */
	REQUIRE_OK(store_begin(st, &err), &err);
	CHECK_OK(store_mirror_stage_put(st, TENANT, "a", "{\"id\":\"a\",\"v\":2}", &err), &err);
	struct store_delta d = { .next_link = "https://graph/next?page=2", .resync = true };
	CHECK_OK(store_delta_put(st, TENANT, "users", &d, &err), &err);
	CHECK_OK(store_commit(st, &err), &err);
	REQUIRE_OK(store_begin(st, &err), &err);
	CHECK_OK(store_mirror_stage_put(st, TENANT, "b", "{\"id\":\"b\",\"v\":2}", &err), &err);
	store_close(st);  /* no commit, no swap */

	st = NULL;
	REQUIRE_OK(store_open(path, &st, &err), &err);
	for (size_t i = 0; i < 3; i++) {
		char *j = user_json(st, live[i]);
		char want[64];
		snprintf(want, sizeof want, "{\"id\":\"%s\",\"v\":1}", live[i]);
		CHECK_STR(j, want);
		free(j);
	}
	CHECK_EQ_INT(count_users(st, STORE_USERS_REMOVED), 0);
	CHECK_OK(store_mirror_stage_count(st, TENANT, &staged, &err), &err);
	CHECK_EQ_INT(staged, 1);  /* the committed page survives for the resume */
	struct store_delta got;
	REQUIRE_OK(store_delta_get(st, TENANT, "users", &got, &err), &err);
	CHECK_STR(got.next_link, "https://graph/next?page=2");
	CHECK(got.resync);
	store_delta_free(&got);
	/* Resume: the rest of the round, then the swap. */
	CHECK_OK(store_mirror_stage_put(st, TENANT, "b", "{\"id\":\"b\",\"v\":2}", &err), &err);
	CHECK_OK(store_mirror_stage_put(st, TENANT, "c", "{\"id\":\"c\",\"v\":2}", &err), &err);
	long long removed = -1;
	CHECK_OK(store_mirror_swap(st, TENANT, &removed, &err), &err);
	CHECK_EQ_INT(removed, 0);
	char *j = user_json(st, "b");
	CHECK_STR(j, "{\"id\":\"b\",\"v\":2}");
	free(j);
	store_close(st);
}

/* --------------------------------------------------------------- groups */

static int collect_group(const char *group_id, const char *display_name, void *ud)
{
	buf_printf(ud, "%s:%s;", group_id, display_name ? display_name : "");
	return 0;
}

TEST(store_groups)
{
	struct err err;
	struct store *st = open_with_tenant(db_path(NULL), &err);
	REQUIRE(st);
	CHECK_OK(store_group_put(st, TENANT, "g2", "Sales", &err), &err);
	CHECK_OK(store_group_put(st, TENANT, "g1", "Staff", &err), &err);
	CHECK_OK(store_group_member_put(st, TENANT, "g2", "u1", &err), &err);
	CHECK_OK(store_group_member_put(st, TENANT, "g1", "u1", &err), &err);
	CHECK_OK(store_group_member_put(st, TENANT, "g1", "u1", &err), &err);  /* idempotent */
	CHECK_OK(store_group_member_put(st, TENANT, "g1", "u2", &err), &err);
	CHECK(store_group_member_put(st, TENANT, "g9", "u1", &err) < 0);
	CHECK_CONTAINS(err.msg, "group 'g9'");
	struct buf b = {0};
	CHECK_OK(store_user_groups_each(st, TENANT, "u1", collect_group, &b, &err), &err);
	CHECK_STR(b.data, "g1:Staff;g2:Sales;");
	buf_reset(&b);
	CHECK_OK(store_group_member_delete(st, TENANT, "g1", "u1", &err), &err);
	CHECK_OK(store_user_groups_each(st, TENANT, "u1", collect_group, &b, &err), &err);
	CHECK_STR(b.data, "g2:Sales;");
	buf_free(&b);
	store_close(st);
}

/* --------------------------------------------------------------- delta state */

TEST(store_delta_state_round_trip)
{
	struct err err;
	struct store *st = open_with_tenant(db_path(NULL), &err);
	REQUIRE(st);
	struct store_delta d;
	CHECK_EQ_INT(store_delta_get(st, TENANT, "users", &d, &err), STORE_NOTFOUND);
	struct store_delta in = { .next_link = "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=abc",
	                          .round_started_at = "2026-01-02T03:04:05Z", .resync = true };
	CHECK_OK(store_delta_put(st, TENANT, "users", &in, &err), &err);
	REQUIRE_OK(store_delta_get(st, TENANT, "users", &d, &err), &err);
	CHECK(d.delta_link == NULL);
	CHECK_STR(d.next_link, in.next_link);
	CHECK_STR(d.round_started_at, in.round_started_at);
	CHECK(d.resync);
	store_delta_free(&d);
	/* The round completes: deltaLink kept, next_link and resync cleared. */
	struct store_delta done = { .delta_link = "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=xyz" };
	CHECK_OK(store_delta_put(st, TENANT, "users", &done, &err), &err);
	REQUIRE_OK(store_delta_get(st, TENANT, "users", &d, &err), &err);
	CHECK_STR(d.delta_link, done.delta_link);
	CHECK(d.next_link == NULL);
	CHECK(d.round_started_at == NULL);
	CHECK(!d.resync);
	store_delta_free(&d);
	/* Resources are apart. */
	CHECK_EQ_INT(store_delta_get(st, TENANT, "groups", &d, &err), STORE_NOTFOUND);
	store_close(st);
}

/* --------------------------------------------------------------- links */

TEST(store_links_crud_and_find_by_contact)
{
	struct err err;
	struct store *st = open_with_tenant(db_path(NULL), &err);
	REQUIRE(st);
	struct store_link l = { .tenant_id = TENANT, .object_id = "u1", .contact_id = 501,
	                        .customer_id = 77, .fields = "{\"email\":\"a@x\"}" };
	CHECK_OK(store_link_put(st, &l, &err), &err);
	struct store_link got;
	REQUIRE_OK(store_link_get(st, TENANT, "u1", &got, &err), &err);
	CHECK_EQ_INT(got.contact_id, 501);
	CHECK_EQ_INT(got.customer_id, 77);
	CHECK_STR(got.fields, "{\"email\":\"a@x\"}");
	CHECK(got.created_at != NULL);
	char *created = xstrdup(got.created_at ? got.created_at : "");
	store_link_free(&got);

	REQUIRE_OK(store_link_find_contact(st, 77, 501, &got, &err), &err);
	CHECK_STR(got.object_id, "u1");
	CHECK_STR(got.tenant_id, TENANT);
	store_link_free(&got);
	CHECK_EQ_INT(store_link_find_contact(st, 78, 501, &got, &err), STORE_NOTFOUND);
	CHECK_EQ_INT(store_link_find_contact(st, 77, 502, &got, &err), STORE_NOTFOUND);

	/* Update keeps created_at. */
	l.fields = "{\"email\":\"b@x\"}";
	CHECK_OK(store_link_put(st, &l, &err), &err);
	REQUIRE_OK(store_link_get(st, TENANT, "u1", &got, &err), &err);
	CHECK_STR(got.fields, "{\"email\":\"b@x\"}");
	CHECK_STR(got.created_at, created);
	store_link_free(&got);
	free(created);

	/* The same contact cannot link a second user of that customer. */
	struct store_link dup = { .tenant_id = TENANT, .object_id = "u2", .contact_id = 501,
	                          .customer_id = 77 };
	CHECK(store_link_put(st, &dup, &err) < 0);
	CHECK_CONTAINS(err.msg, "contact 501 of customer 77 is already linked to user u1");
	CHECK_EQ_INT(store_link_get(st, TENANT, "u2", &got, &err), STORE_NOTFOUND);
	dup.customer_id = 88;  /* another customer: fine */
	CHECK_OK(store_link_put(st, &dup, &err), &err);

	CHECK_OK(store_link_delete(st, TENANT, "u1", &err), &err);
	CHECK_EQ_INT(store_link_get(st, TENANT, "u1", &got, &err), STORE_NOTFOUND);
	CHECK_EQ_INT(store_link_find_contact(st, 77, 501, &got, &err), STORE_NOTFOUND);
	CHECK_OK(store_link_delete(st, TENANT, "u1", &err), &err);  /* missing: fine */
	/* The contact is free again. */
	l.object_id = "u3";
	CHECK_OK(store_link_put(st, &l, &err), &err);
	store_close(st);
}

/* --------------------------------------------------------------- audit, runs, kv */

static int collect_audit(const struct store_audit *a, void *ud)
{
	buf_printf(ud, "%s/%s/%s;", a->tenant_id ? a->tenant_id : "-", a->object_id ? a->object_id : "-", a->action);
	return 0;
}

TEST(store_audit_append_and_iterate_in_order)
{
	struct err err;
	struct store *st = open_with_tenant(db_path(NULL), &err);
	REQUIRE(st);
	long long run1 = 0, run2 = 0, id = 0, prev = 0;
	CHECK_OK(store_run_begin(st, "sync", &run1, &err), &err);
	CHECK_OK(store_run_begin(st, "sync", &run2, &err), &err);
	CHECK(run2 > run1);
	static const struct { const char *tenant, *oid, *action; int run; } rows[] = {
		{ "t1", "u1", "create", 1 }, { "t2", "u9", "create", 1 }, { "t1", "u2", "update", 2 },
		{ "t1", "u1", "archive", 2 }, { "t2", "u8", "update", 2 },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct store_audit a = { .run_id = rows[i].run == 1 ? run1 : run2, .tenant_id = rows[i].tenant,
		                         .object_id = rows[i].oid, .contact_id = 1000 + (long long)i,
		                         .action = rows[i].action, .before = "{}",
		                         .after = "{\"x\":1}", .actor = "entrasync",
		                         .result = "ok" };
		CHECK_OK(store_audit_append(st, &a, &id, &err), &err);
		CHECK(id > prev);
		prev = id;
	}
	struct store_audit bad = {0};
	CHECK(store_audit_append(st, &bad, NULL, &err) < 0);

	struct buf b = {0};
	CHECK_OK(store_audit_each(st, NULL, collect_audit, &b, &err), &err);
	CHECK_STR(b.data, "t1/u1/create;t2/u9/create;t1/u2/update;t1/u1/archive;t2/u8/update;");
	buf_reset(&b);
	struct store_audit_filter f = { .tenant_id = "t1" };
	CHECK_OK(store_audit_each(st, &f, collect_audit, &b, &err), &err);
	CHECK_STR(b.data, "t1/u1/create;t1/u2/update;t1/u1/archive;");
	buf_reset(&b);
	f.newest_first = true;
	f.limit = 2;
	CHECK_OK(store_audit_each(st, &f, collect_audit, &b, &err), &err);
	CHECK_STR(b.data, "t1/u1/archive;t1/u2/update;");
	buf_reset(&b);
	struct store_audit_filter by_run = { .run_id = run1 };
	CHECK_OK(store_audit_each(st, &by_run, collect_audit, &b, &err), &err);
	CHECK_STR(b.data, "t1/u1/create;t2/u9/create;");
	buf_reset(&b);
	struct store_audit_filter future = { .since = "2999-01-01T00:00:00Z" };
	CHECK_OK(store_audit_each(st, &future, collect_audit, &b, &err), &err);
	CHECK_EQ_INT(b.len, 0);
	buf_free(&b);
	store_close(st);
}

TEST(store_runs)
{
	struct err err;
	const char *path = db_path(NULL);  /* static until the next db_path() */
	struct store *st = NULL;
	REQUIRE_OK(store_open(path, &st, &err), &err);
	long long run = 0;
	CHECK_OK(store_run_begin(st, "pull", &run, &err), &err);
	CHECK_OK(store_run_tenant_put(st, run, "t1", "ok", "{\"users\":3}", NULL, &err), &err);
	CHECK_OK(store_run_tenant_put(st, run, "t2", "held", NULL, "too many removals", &err), &err);
	CHECK(store_run_tenant_put(st, run, "t3", "weird", NULL, NULL, &err) < 0);
	CHECK_OK(store_run_finish(st, run, "partial", "{\"tenants\":2}", &err), &err);
	CHECK(store_run_finish(st, run + 100, "ok", NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "no run");
	store_close(st);
	sqlite3 *raw = raw_open(path);
	REQUIRE(raw);
	char *status = raw_text(raw, "SELECT status || ' ' || summary FROM runs");
	CHECK_STR(status, "partial {\"tenants\":2}");
	free(status);
	CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM runs WHERE finished_at IS NOT NULL"), 1);
	char *held = raw_text(raw, "SELECT reason FROM run_tenants WHERE status = 'held'");
	CHECK_STR(held, "too many removals");
	free(held);
	sqlite3_close(raw);
}

TEST(store_kv)
{
	struct err err;
	struct store *st = NULL;
	REQUIRE_OK(store_open(db_path(NULL), &st, &err), &err);
	char *v = NULL;
	CHECK_EQ_INT(store_kv_get(st, "k", &v, &err), STORE_NOTFOUND);
	CHECK(v == NULL);
	CHECK_OK(store_kv_put(st, "k", "one", &err), &err);
	CHECK_OK(store_kv_put(st, "k", "two", &err), &err);
	/* the value it holds already: nothing written */
	int before = sqlite3_total_changes(store_sqlite(st));
	CHECK_OK(store_kv_put(st, "k", "two", &err), &err);
	CHECK_EQ_INT(sqlite3_total_changes(store_sqlite(st)) - before, 0);
	CHECK_EQ_INT(store_kv_get(st, "k", &v, &err), 0);
	CHECK_STR(v, "two");
	free(v);
	CHECK_OK(store_kv_put(st, "k", NULL, &err), &err);
	CHECK_EQ_INT(store_kv_get(st, "k", &v, &err), STORE_NOTFOUND);
	store_close(st);
}

/* --------------------------------------------------------------- run lock */

/* In a child: tries the lock and writes the outcome to fd. */
static void child_try_lock(const char *path, int fd)
{
	struct store_lock lk = {0};
	struct err err = {{0}};
	const char *msg = store_lock_acquire(path, &lk, &err) == 0 ? "ACQUIRED" : err.msg;
	if (write(fd, msg, strlen(msg)) < 0) _exit(2);
	_exit(0);
}

/* Forks child_try_lock and returns its message (static buffer). */
static const char *lock_from_child(const char *path)
{
	static char msg[1100];
	int p[2];
	msg[0] = '\0';
	if (pipe(p) != 0) return "pipe failed";
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		child_try_lock(path, p[1]);
	}
	close(p[1]);
	ssize_t n = read(p[0], msg, sizeof msg - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(p[0]);
	waitpid(pid, NULL, 0);
	return msg;
}

TEST(store_lock_is_exclusive_and_released)
{
	struct err err;
	const char *path = db_path("state");
	char lock_path[700], want[900];
	snprintf(lock_path, sizeof lock_path, "%s.lock", path);
	snprintf(want, sizeof want, "another entrasync run (pid %ld) holds the lock on %s", (long)getpid(), lock_path);

	struct store_lock a = {0}, b = {0};
	REQUIRE_OK(store_lock_acquire(path, &a, &err), &err);
	CHECK_EQ_INT(mode_of(lock_path), 0600);
	char *content = NULL;
	size_t len = 0;
	REQUIRE_OK(file_read(lock_path, &content, &len, &err), &err);
	CHECK_EQ_INT(atol(content), getpid());
	free(content);
	/* A second fd in this process. */
	CHECK(store_lock_acquire(path, &b, &err) < 0);
	CHECK_STR(err.msg, want);
	CHECK(b.path == NULL);
	/* Another process. */
	CHECK_STR(lock_from_child(path), want);
	/* Released: both can take it again. */
	store_lock_release(&a);
	CHECK(a.path == NULL);
	store_lock_release(&a);  /* twice is fine */
	CHECK_STR(lock_from_child(path), "ACQUIRED");
	REQUIRE_OK(store_lock_acquire(path, &b, &err), &err);
	store_lock_release(&b);
}

TEST(store_lock_released_when_holder_dies)
{
	struct err err;
	const char *path = db_path(NULL);
	int ready[2];
	REQUIRE(pipe(ready) == 0);
	fflush(stdout);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct store_lock lk = {0};
		close(ready[0]);
		char c = store_lock_acquire(path, &lk, NULL) == 0 ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1) _exit(2);
		for (;;) pause();
	}
	close(ready[1]);
	char c = 0;
	CHECK(read(ready[0], &c, 1) == 1 && c == 'y');
	close(ready[0]);
	struct store_lock lk = {0};
	CHECK(store_lock_acquire(path, &lk, &err) < 0);
	char want[64];
	snprintf(want, sizeof want, "(pid %ld)", (long)pid);
	CHECK_CONTAINS(err.msg, want);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK_OK(store_lock_acquire(path, &lk, &err), &err);
	store_lock_release(&lk);
}

TEST(store_lock_forked_child_does_not_release_parent)
{
	struct err err;
	const char *path = db_path(NULL);
	struct store_lock lk = {0}, other = {0};
	REQUIRE_OK(store_lock_acquire(path, &lk, &err), &err);
	fflush(stdout);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		store_lock_release(&lk);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	CHECK(store_lock_acquire(path, &other, &err) < 0);
	CHECK_CONTAINS(err.msg, "another entrasync run");
	store_lock_release(&lk);
}

/* --------------------------------------------------------------- crash safety */

/* In a child: opens its own connection, writes a lot in one transaction
 * (enough to spill uncommitted pages into the WAL), then either _exits
 * without committing or tells the parent and waits to be killed. */
static struct store *crashed_store;

static void child_write_uncommitted(const char *path, int ready_fd)
{
	struct err err;
	struct store *st = NULL;
	if (store_open(path, &st, &err) || store_begin(st, &err)) _exit(2);
	char *json = xmalloc(2048);
	memset(json, 'x', 2047);
	json[0] = '"';
	json[2046] = '"';
	json[2047] = '\0';
	for (int i = 0; i < 4000; i++) {
		char oid[32];
		snprintf(oid, sizeof oid, "new-%05d", i);
		if (store_user_put(st, TENANT, oid, json, &err)) _exit(3);
	}
	free(json);
	if (store_user_put(st, TENANT, "u1", "{\"v\":2}", &err) || store_user_mark_removed(st, TENANT, "u2", "deleted", &err) ||
	    store_kv_put(st, "k", "child", &err))
		_exit(4);
	crashed_store = st;  /* abandoned, not leaked, for valgrind's exit-time leak check */
	if (ready_fd < 0) {
		/* No commit, no close. Under valgrind, _exit (or a self-sent
		 * signal) runs its leak check on the connection abandoned on
		 * purpose; there, end the image by exec instead, which closes the
		 * (close-on-exec) database fds just as an exit does. */
		const char *preload = getenv("LD_PRELOAD");
		if (preload && strstr(preload, "vgpreload")) execl("/bin/true", "true", (char *)NULL);
		_exit(0);
	}
	if (write(ready_fd, "r", 1) != 1) _exit(5);
	for (;;) pause();
}

static void check_crash_leaves_data(bool by_kill)
{
	struct err err;
	const char *path = db_path(NULL);  /* static until the next db_path() */
	struct store *st = open_with_tenant(path, &err);
	REQUIRE(st);
	CHECK_OK(store_user_put(st, TENANT, "u1", "{\"v\":1}", &err), &err);
	CHECK_OK(store_user_put(st, TENANT, "u2", "{\"v\":1}", &err), &err);
	CHECK_OK(store_kv_put(st, "k", "parent", &err), &err);
	store_close(st);  /* no connection crosses the fork */

	int ready[2];
	REQUIRE(pipe(ready) == 0);
	fflush(stdout);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		child_write_uncommitted(path, by_kill ? ready[1] : -1);
	}
	close(ready[1]);
	int status = 0;
	if (by_kill) {
		char c = 0;
		CHECK(read(ready[0], &c, 1) == 1);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		CHECK(WIFSIGNALED(status));
	} else {
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	close(ready[0]);

	st = NULL;
	REQUIRE_OK(store_open(path, &st, &err), &err);
	CHECK_EQ_INT(count_users(st, STORE_USERS_ALL), 2);
	char *j = user_json(st, "u1");
	CHECK_STR(j, "{\"v\":1}");
	free(j);
	char *r = user_removed(st, "u2");
	CHECK_STR(r, "(present)");
	free(r);
	char *v = NULL;
	CHECK_EQ_INT(store_kv_get(st, "k", &v, &err), 0);
	CHECK_STR(v, "parent");
	free(v);
	/* And the database takes writes again (no stale lock). */
	CHECK_OK(store_begin(st, &err), &err);
	CHECK_OK(store_user_put(st, TENANT, "u3", "{}", &err), &err);
	CHECK_OK(store_commit(st, &err), &err);
	CHECK_EQ_INT(count_users(st, STORE_USERS_ALL), 3);
	store_close(st);
}

TEST(store_crash_mid_transaction_exit)
{
	check_crash_leaves_data(false);
}

TEST(store_crash_mid_transaction_kill)
{
	check_crash_leaves_data(true);
}

/* Migration 5 adds secure_score_snapshots.raw: a version-4 database with a
 * stored day upgrades, keeps the day (raw NULL), and stores raw afterwards. */
static int score_row_seen(const struct store_secure_score *s, void *ud)
{
	int *n = ud;
	if (!strcmp(s->day, "2026-01-01")) {
		CHECK(s->raw == NULL);
		CHECK_STR(s->controls, "[]");
		CHECK(s->current_score == 41.5);
	} else {
		CHECK_STR(s->raw, "{\"id\":\"t_2026-01-02\",\"futureField\":[1,2]}");
	}
	(*n)++;
	return 0;
}

TEST(store_migration_5_adds_secure_score_raw)
{
	struct err err;
	const char *path = db_path(NULL);
	REQUIRE(store_schema_latest() >= 5);
	struct store *st = open_upgraded_from(path, 4,
	                                      "INSERT INTO tenants (id) VALUES ('t');"
	                                      "INSERT INTO secure_score_snapshots (tenant_id, day, current_score, "
	                                      "max_score, averages, controls) "
	                                      "VALUES ('t', '2026-01-01', 41.5, 80, '[]', '[]')",
	                                      &err);
	REQUIRE(st);
	struct store_secure_score s = { .tenant_id = "t", .day = "2026-01-02", .current_score = 42, .max_score = 80,
	                                .raw = "{\"id\":\"t_2026-01-02\",\"futureField\":[1,2]}" };
	REQUIRE_OK(store_secure_score_put(st, &s, &err), &err);
	int n = 0;
	REQUIRE_OK(store_secure_score_each(st, "t", score_row_seen, &n, &err), &err);
	CHECK_EQ_INT(n, 2);
	store_close(st);
}

/* A day with its raw object keeps its control scores there only; reads give
 * them back from it, and the column still serves a day without raw. */
static int score_controls_seen(const struct store_secure_score *s, void *ud)
{
	int *n = ud;
	if (!strcmp(s->day, "2026-02-01")) CHECK_STR(s->controls, "[{\"controlName\":\"MFA\",\"score\":1}]");
	else CHECK_STR(s->controls, "[{\"controlName\":\"Old\"}]");
	(*n)++;
	return 0;
}

TEST(store_secure_score_controls_kept_once)
{
	struct err err;
	struct store *st = open_with_tenant(db_path(NULL), &err);
	REQUIRE(st);
	REQUIRE_OK(store_tenant_put(st, &(struct store_tenant){ .id = "t" }, &err), &err);
	struct store_secure_score a = { .tenant_id = "t", .day = "2026-02-01", .current_score = 1, .max_score = 2,
	                                .controls = "[{\"controlName\":\"MFA\",\"score\":1}]",
	                                .raw = "{\"id\":\"t_2026-02-01\", \"controlScores\": [{\"controlName\":\"MFA\","
	                                       "\"score\":1}]}" };
	struct store_secure_score b = { .tenant_id = "t", .day = "2026-01-31", .controls = "[{\"controlName\":\"Old\"}]" };
	REQUIRE_OK(store_secure_score_put(st, &a, &err), &err);
	REQUIRE_OK(store_secure_score_put(st, &b, &err), &err);
	sqlite3 *db = store_sqlite(st);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM secure_score_snapshots WHERE controls IS NULL"), 1);
	int n = 0;
	REQUIRE_OK(store_secure_score_each(st, "t", score_controls_seen, &n, &err), &err);
	CHECK_EQ_INT(n, 2);
	/* a raw object that is not JSON (edited by hand) does not fail the read */
	CHECK_EQ_INT(sqlite3_exec(db, "UPDATE secure_score_snapshots SET raw = '{not json' WHERE day = '2026-02-01'",
	                          NULL, NULL, NULL), SQLITE_OK);
	struct store_history *h = NULL;
	REQUIRE_OK(store_history_open(st, &h, &err), &err);
	struct store_secure_score got;
	REQUIRE_OK(store_history_score_get(h, "t", "2026-02-01", &got, &err), &err);
	CHECK(got.controls == NULL);
	store_history_score_free(&got);
	store_history_close(h);
	store_close(st);
}

/* Migrations 7 and 8: the membership digests leave kv for the groups' rows (the
 * old ones dropped, so the next replace compares the rows once), and a
 * change of member rows behind the store's back drops a group's digest. */
TEST(store_migration_7_moves_members_digest)
{
	struct err err;
	const char *path = db_path(NULL);
	REQUIRE(store_schema_latest() >= 7);
	struct store *st = open_upgraded_from(path, 6,
	                          "INSERT INTO tenants (id) VALUES ('t');"
	                          "INSERT INTO groups (tenant_id, group_id, display_name) VALUES ('t', 'g', 'G');"
	                          "INSERT INTO users (tenant_id, object_id, json, updated_at, removed) VALUES "
	                          "('t', 'u1', '{}', 'now', NULL), ('t', 'u2', '{}', 'now', NULL),"
	                          " ('t', 'u3', '{}', 'now', 'deleted');"
	                          "INSERT INTO kv (key, value, updated_at) VALUES ('group_members.digest.t.g', '1:x', 'now'),"
	                          " ('group_membersXdigest', 'kept', 'now')",
	                          &err);
	REQUIRE(st);
	char *v = NULL;
	CHECK_EQ_INT(store_kv_get(st, "group_members.digest.t.g", &v, &err), STORE_NOTFOUND);
	long long present = -1;   /* migration 8 counts the users already there */
	REQUIRE_OK(store_user_count(st, "t", STORE_USERS_PRESENT, &present, &err), &err);
	CHECK_EQ_INT(present, 2);
	REQUIRE_OK(store_kv_get(st, "group_membersXdigest", &v, &err), &err);   /* LIKE's '_' escaped */
	CHECK_STR(v, "kept");
	free(v);
	const char *ids[] = { "a", "b" };
	REQUIRE_OK(store_group_members_replace(st, "t", "g", "G", ids, 2, &err), &err);
	CHECK_EQ_INT(raw_int(store_sqlite(st), "SELECT members_digest IS NOT NULL FROM groups WHERE group_id = 'g'"), 1);
	REQUIRE(sqlite3_exec(store_sqlite(st), "UPDATE group_members SET object_id = 'c' WHERE object_id = 'b'", NULL,
	                     NULL, NULL) == SQLITE_OK);
	CHECK_EQ_INT(raw_int(store_sqlite(st), "SELECT members_digest IS NULL FROM groups WHERE group_id = 'g'"), 1);
	REQUIRE_OK(store_group_members_replace(st, "t", "g", "G", ids, 2, &err), &err);
	CHECK_EQ_INT(raw_int(store_sqlite(st), "SELECT count(*) FROM group_members WHERE object_id IN ('a', 'b')"), 2);
	CHECK_EQ_INT(raw_int(store_sqlite(st), "SELECT count(*) FROM group_members"), 2);
	store_close(st);
}

/* A tenant's count of present users is read from its row, kept right by
 * triggers (migration 8) as users come, go, come back, are swapped in by a
 * resync or changed behind the store's back. */
TEST(store_user_count_present_kept_by_triggers)
{
	struct err err;
	struct store *st = NULL;
	REQUIRE_OK(store_open(db_path(NULL), &st, &err), &err);
	REQUIRE_OK(store_tenant_put(st, &(struct store_tenant){ .id = "t" }, &err), &err);
	REQUIRE_OK(store_tenant_put(st, &(struct store_tenant){ .id = "u" }, &err), &err);
	const char *ids[] = { "a", "b", "c", "d" };
	for (size_t i = 0; i < ARRAY_LEN(ids); i++) {
		REQUIRE_OK(store_user_put(st, "t", ids[i], "{}", &err), &err);
		REQUIRE_OK(store_user_put(st, "u", ids[i], "{}", &err), &err);
	}
	REQUIRE_OK(store_user_mark_removed(st, "t", "b", "deleted", &err), &err);
	REQUIRE_OK(store_user_mark_removed(st, "t", "c", "changed", &err), &err);
	long long n = -1;
	REQUIRE_OK(store_user_count(st, "t", STORE_USERS_PRESENT, &n, &err), &err);
	CHECK_EQ_INT(n, 2);
	REQUIRE_OK(store_user_count(st, "t", STORE_USERS_REMOVED, &n, &err), &err);
	CHECK_EQ_INT(n, 2);
	REQUIRE_OK(store_user_put(st, "t", "b", "{\"back\":1}", &err), &err);  /* comes back */
	REQUIRE_OK(store_user_count(st, "t", STORE_USERS_PRESENT, &n, &err), &err);
	CHECK_EQ_INT(n, 3);
	REQUIRE_OK(store_user_count(st, "u", STORE_USERS_PRESENT, &n, &err), &err);
	CHECK_EQ_INT(n, 4);
	/* every way a user row changes keeps the tenant's count (migration 8's
	 * triggers): replays, removal again, a resync's swap, raw SQL too */
	REQUIRE_OK(store_user_put(st, "t", "b", "{\"back\":1}", &err), &err);         /* a replay */
	REQUIRE_OK(store_user_mark_removed(st, "t", "c", "deleted", &err), &err);  /* changed -> deleted */
	REQUIRE_OK(store_user_count(st, "t", STORE_USERS_PRESENT, &n, &err), &err);
	CHECK_EQ_INT(n, 3);
	REQUIRE_OK(store_mirror_stage_clear(st, "t", &err), &err);
	REQUIRE_OK(store_mirror_stage_put(st, "t", "a", "{}", &err), &err);
	REQUIRE_OK(store_mirror_stage_put(st, "t", "c", "{\"c\":1}", &err), &err);
	REQUIRE_OK(store_mirror_stage_put(st, "t", "e", "{}", &err), &err);
	long long newly = 0;
	REQUIRE_OK(store_mirror_swap(st, "t", &newly, &err), &err);              /* a, c, e present; b, d gone */
	REQUIRE_OK(store_user_count(st, "t", STORE_USERS_PRESENT, &n, &err), &err);
	CHECK_EQ_INT(n, 3);
	REQUIRE(sqlite3_exec(store_sqlite(st), "DELETE FROM users WHERE tenant_id = 'u' AND object_id = 'a';"
	                     "UPDATE users SET removed = 'deleted' WHERE tenant_id = 'u' AND object_id = 'b';"
	                     "INSERT INTO users (tenant_id, object_id, json, updated_at, removed) VALUES "
	                     "('u', 'x', '{}', 'now', 'deleted'), ('u', 'y', '{}', 'now', NULL)",
	                     NULL, NULL, NULL) == SQLITE_OK);
	REQUIRE_OK(store_user_count(st, "u", STORE_USERS_PRESENT, &n, &err), &err);
	CHECK_EQ_INT(n, 3);
	/* the count matches a real count of every tenant's present rows */
	CHECK_EQ_INT(raw_int(store_sqlite(st), "SELECT count(*) FROM tenants t WHERE users_present <> "
	                     "(SELECT count(*) FROM users u WHERE u.tenant_id = t.id AND u.removed IS NULL)"), 0);
	REQUIRE_OK(store_user_count(st, "nobody", STORE_USERS_PRESENT, &n, &err), &err);
	CHECK_EQ_INT(n, 0);
	store_close(st);
}

/* Migration 14: a tenant whose id has capitals (a config written so) is
 * renamed to its lower-case id in every table, its counts kept; one whose
 * lower-case id is taken already is left as it is, with its rows. */
TEST(store_migration_14_folds_tenant_ids)
{
	struct err err;
	const char *path = db_path(NULL);
	REQUIRE(store_schema_latest() >= 14);
#define UP "AAAAAAAA-0000-0000-0000-00000000000A"
#define LO "aaaaaaaa-0000-0000-0000-00000000000a"
#define TWIN_UP "BBBBBBBB-0000-0000-0000-00000000000B"
#define TWIN_LO "bbbbbbbb-0000-0000-0000-00000000000b"
	struct store *st = open_upgraded_from(path, 13,
		"INSERT INTO tenants (id, name) VALUES ('" UP "', 'Up'), ('" TWIN_UP "', 'Twin'), ('" TWIN_LO "', 'Twin');"
		"INSERT INTO users (tenant_id, object_id, json, updated_at) VALUES ('" UP "', 'u1', '{}', 't'),"
		" ('" UP "', 'u2', '{}', 't'), ('" TWIN_UP "', 'u1', '{}', 't');"
		"INSERT INTO users (tenant_id, object_id, json, removed, updated_at) VALUES ('" UP "', 'u3', '{}', 'deleted', 't');"
		"INSERT INTO groups (tenant_id, group_id) VALUES ('" UP "', 'g');"
		"INSERT INTO group_members VALUES ('" UP "', 'g', 'u1');"
		"INSERT INTO delta_state (tenant_id, resource, updated_at) VALUES ('" UP "', 'users', 't');"
		"INSERT INTO links (tenant_id, object_id, contact_id, customer_id, created_at, updated_at)"
		" VALUES ('" UP "', 'u1', 11, 7, 't', 't');"
		"INSERT INTO license_snapshots (tenant_id, day, sku_id) VALUES ('" UP "', '2026-01-01', 's');"
		"INSERT INTO secure_score_snapshots (tenant_id, day) VALUES ('" UP "', '2026-01-01');"
		"INSERT INTO conflicts (tenant_id, object_id, reason, opened_at) VALUES ('" UP "', 'u2', 'r', 't');"
		"INSERT INTO intents (tenant_id, action, state, created_at) VALUES ('" UP "', 'create', 'pending', 't');"
		"INSERT INTO audit (at, tenant_id, action, result) VALUES ('t', '" UP "', 'create', 'ok');"
		"INSERT INTO ticket_actions (ticket_id, tenant_id, action, state, created_at, updated_at)"
		" VALUES (1, '" UP "', 'disable', 'done', 't', 't');"
		"INSERT INTO billing_invoices (tenant_id, period, customer_id, state, marker, plan, created_at, updated_at)"
		" VALUES ('" UP "', '2026-01', 7, 'done', 'm', '{}', 't', 't');"
		"INSERT INTO runs (id, kind, started_at, status) VALUES (1, 'pull', 't', 'ok'), (2, 'pull', 't', 'ok');"
		"INSERT INTO run_tenants (run_id, tenant_id, status) VALUES (1, '" UP "', 'ok'), (2, '" UP "', 'ok');"
		"DELETE FROM run_tenants WHERE run_id = 1;"     /* the retention's: its count stays */
		"INSERT INTO kv (key, value, updated_at) VALUES ('graph.organization." UP "', '{}', 't'),"
		" ('alert.ticket:" UP ":unused', '{}', 't'), ('graph.organization." TWIN_UP "', 'twin', 't');",
		&err);
	REQUIRE(st);
	sqlite3 *db = store_sqlite(st);
	/* every table follows the renamed tenant */
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM tenants WHERE id = '" LO "'"), 1);
	static const char *const tables[] = { "users", "groups", "group_members", "delta_state", "links",
		"license_snapshots", "secure_score_snapshots", "conflicts", "intents", "audit", "ticket_actions",
		"billing_invoices", "run_tenants", "tenant_run_counts" };
	for (size_t i = 0; i < ARRAY_LEN(tables); i++) {
		char sql[160];
		snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE tenant_id = '" UP "'", tables[i]);
		if (raw_int(db, sql) != 0) t_fail(__FILE__, __LINE__, "%s still has rows of " UP, tables[i]);
		snprintf(sql, sizeof sql, "SELECT count(*) > 0 FROM %s WHERE tenant_id = '" LO "'", tables[i]);
		if (raw_int(db, sql) != 1) t_fail(__FILE__, __LINE__, "%s has no rows of " LO, tables[i]);
	}
	CHECK_EQ_INT(raw_int(db, "SELECT users_present FROM tenants WHERE id = '" LO "'"), 2);
	CHECK_EQ_INT(raw_int(db, "SELECT n FROM tenant_run_counts WHERE tenant_id = '" LO "'"), 2);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM kv WHERE key IN ('graph.organization." LO "', 'alert.ticket:" LO
	                         ":unused')"), 2);
	/* the lower-case twin was there already: both left as they were */
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM tenants WHERE id IN ('" TWIN_UP "', '" TWIN_LO "')"), 2);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM users WHERE tenant_id = '" TWIN_UP "'"), 1);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM kv WHERE key = 'graph.organization." TWIN_UP "'"), 1);
	CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	/* the store reads the renamed tenant as before */
	long long present = -1;
	REQUIRE_OK(store_user_count(st, LO, STORE_USERS_PRESENT, &present, &err), &err);
	CHECK_EQ_INT(present, 2);
	store_close(st);
#undef UP
#undef LO
#undef TWIN_UP
#undef TWIN_LO
}
