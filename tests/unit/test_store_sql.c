/* test_store_sql — the stepping helpers the store's files share
 * (store_sql.h): a write, a count, a look-up and a row loop on an
 * in-memory SQLite database, each leaving its statement released (reset,
 * bindings cleared) after success, failure or an early stop, with
 * "store: <what>: <SQLite's message>" on failure; and the time text. */
#include "t.h"

#include <sqlite3.h>
#include <stdlib.h>

#include "store/store.h"
#include "store/store_sql.h"

static sqlite3 *mem_db(void)
{
	sqlite3 *db = NULL;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_exec(db, "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER);"
	                 "INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3)", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	return sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK ? s : NULL;
}

/* Is s released: not mid-step, every parameter unbound (its SQL with the
 * bindings expanded equals `unbound`, where each parameter reads NULL)? */
static bool released(sqlite3_stmt *s, const char *unbound)
{
	char *x = sqlite3_expanded_sql(s);
	bool ok = !sqlite3_stmt_busy(s) && x && strcmp(x, unbound) == 0;
	sqlite3_free(x);
	return ok;
}

TEST(store_sql_now_is_iso_utc)
{
	char now[32];
	store_sql_now(now);
	CHECK_EQ_INT(strlen(now), 20);                  /* 2024-05-01T12:00:00Z */
	CHECK(now[4] == '-' && now[7] == '-' && now[10] == 'T' && now[13] == ':' && now[19] == 'Z');
}

TEST(store_sql_run_writes_and_releases)
{
	sqlite3 *db = mem_db();
	REQUIRE(db);
	struct err err = {{0}};
	sqlite3_stmt *ins = prep(db, "INSERT INTO t (k, n) VALUES (?1, ?2)");
	REQUIRE(ins);
	bind_text(ins, 1, "d");
	sqlite3_bind_int64(ins, 2, 7);
	CHECK_OK(store_sql_run(ins, &err, "adding d"), &err);
	CHECK_EQ_INT(sqlite3_changes(db), 1);
	CHECK(released(ins, "INSERT INTO t (k, n) VALUES (NULL, NULL)"));
	/* a constraint failure: -1, the message, released, usable again */
	bind_text(ins, 1, "a");
	sqlite3_bind_int64(ins, 2, 9);
	CHECK_EQ_INT(store_sql_run(ins, &err, "adding a again"), -1);
	CHECK_STR(err.msg, "store: adding a again: UNIQUE constraint failed: t.k");
	CHECK(released(ins, "INSERT INTO t (k, n) VALUES (NULL, NULL)"));
	bind_text(ins, 1, "e");
	CHECK_OK(store_sql_run(ins, &err, "adding e"), &err);
	sqlite3_finalize(ins);

	sqlite3_stmt *echo = prep(db, "SELECT ?1");
	REQUIRE(echo);
	bind_text(echo, 1, "x");
	CHECK_OK(store_sql_run(echo, &err, "echo"), &err);      /* a row is not a failure */
	CHECK(released(echo, "SELECT NULL"));
	sqlite3_finalize(echo);
	sqlite3_close(db);
}

TEST(store_sql_count_fills_n_or_fails)
{
	sqlite3 *db = mem_db();
	REQUIRE(db);
	struct err err = {{0}};
	sqlite3_stmt *cnt = prep(db, "SELECT count(*) FROM t WHERE n >= ?1");
	REQUIRE(cnt);
	long long n = -1;
	sqlite3_bind_int64(cnt, 1, 2);
	CHECK_OK(store_sql_count(cnt, &n, &err, "counting"), &err);
	CHECK_EQ_INT(n, 2);
	CHECK(released(cnt, "SELECT count(*) FROM t WHERE n >= NULL"));
	sqlite3_finalize(cnt);
	sqlite3_stmt *none = prep(db, "SELECT 1 WHERE 0");
	REQUIRE(none);
	n = 5;
	CHECK_EQ_INT(store_sql_count(none, &n, &err, "counting nothing"), -1);
	CHECK_EQ_INT(n, 0);
	CHECK_CONTAINS(err.msg, "store: counting nothing: ");
	sqlite3_finalize(none);
	sqlite3_close(db);
}

static void read_n(sqlite3_stmt *s, void *out)
{
	*(long long *)out = sqlite3_column_int64(s, 0);
}

TEST(store_sql_lookup_found_or_not)
{
	sqlite3 *db = mem_db();
	REQUIRE(db);
	struct err err = {{0}};
	sqlite3_stmt *get = prep(db, "SELECT n FROM t WHERE k = ?1");
	REQUIRE(get);
	long long got = 0;
	bind_text(get, 1, "b");
	CHECK_EQ_INT(store_sql_lookup(get, read_n, &got, &err, "get"), 0);
	CHECK_EQ_INT(got, 2);
	CHECK(released(get, "SELECT n FROM t WHERE k = NULL"));
	got = -1;
	bind_text(get, 1, "zz");
	CHECK_EQ_INT(store_sql_lookup(get, read_n, &got, &err, "get"), STORE_NOTFOUND);
	CHECK_EQ_INT(got, -1);                 /* read not called */
	CHECK(released(get, "SELECT n FROM t WHERE k = NULL"));
	sqlite3_finalize(get);
	/* a step error: -1 with SQLite's message */
	sqlite3_stmt *bad = prep(db, "SELECT abs(-9223372036854775807 - 1)");
	REQUIRE(bad);
	CHECK_EQ_INT(store_sql_lookup(bad, read_n, &got, &err, "overflowing"), -1);
	CHECK_STR(err.msg, "store: overflowing: integer overflow");
	sqlite3_finalize(bad);
	sqlite3_close(db);
}

/* Collects n values; stops (returning 42) at the value stop_at. */
struct seen {
	long long v[8];
	size_t n;
	long long stop_at;
};

static int take_row(sqlite3_stmt *s, void *ctx)
{
	struct seen *x = ctx;
	long long v = sqlite3_column_int64(s, 0);
	if (x->n < ARRAY_LEN(x->v)) x->v[x->n++] = v;
	return v == x->stop_at ? 42 : 0;
}

TEST(store_sql_rows_all_early_stop_and_error)
{
	sqlite3 *db = mem_db();
	REQUIRE(db);
	struct err err = {{0}};
	sqlite3_stmt *all = prep(db, "SELECT n FROM t WHERE n >= ?1 ORDER BY n");
	REQUIRE(all);
	struct seen x = { .stop_at = -1 };
	sqlite3_bind_int64(all, 1, 1);
	CHECK_OK(store_sql_rows(all, take_row, &x, &err, "listing"), &err);
	CHECK_EQ_INT(x.n, 3);
	CHECK(x.v[0] == 1 && x.v[1] == 2 && x.v[2] == 3);
	CHECK(released(all, "SELECT n FROM t WHERE n >= NULL ORDER BY n"));
	/* the callback's non-zero value ends the loop and is returned */
	x = (struct seen){ .stop_at = 2 };
	sqlite3_bind_int64(all, 1, 1);
	CHECK_EQ_INT(store_sql_rows(all, take_row, &x, &err, "listing"), 42);
	CHECK_EQ_INT(x.n, 2);
	CHECK(released(all, "SELECT n FROM t WHERE n >= NULL ORDER BY n"));
	sqlite3_finalize(all);
	/* an error after two rows: -1, the rows before it were handed over */
	/* n = 3: abs(-9223372036854775808); no ORDER BY: rows come one at a time */
	sqlite3_stmt *bad = prep(db, "SELECT n, abs(n * -3074457345618258602 - 2) FROM t");
	REQUIRE(bad);
	x = (struct seen){ .stop_at = -1 };
	CHECK_EQ_INT(store_sql_rows(bad, take_row, &x, &err, "listing badly"), -1);
	CHECK_EQ_INT(x.n, 2);
	CHECK_STR(err.msg, "store: listing badly: integer overflow");
	CHECK(!sqlite3_stmt_busy(bad));
	sqlite3_finalize(bad);
	sqlite3_close(db);
}
