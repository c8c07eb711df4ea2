/* store_sql — stepping the store's prepared statements (see store_sql.h):
 * the no-row write, the count, the look-up and the row loop that store.c's
 * extension files share, each releasing its statement for the next use. */
#include "store/store_sql.h"

#include "store/store.h"

void store_sql_now(char buf[32])
{
	time_iso8601(time_now(), buf, 32);
}

void store_sql_release(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

int store_sql_fail(sqlite3_stmt *s, struct err *err, const char *what)
{
	return err_set(err, "store: %s: %s", what, sqlite3_errmsg(sqlite3_db_handle(s)));
}

int store_sql_run(sqlite3_stmt *s, struct err *err, const char *what)
{
	int rc = sqlite3_step(s);
	int ret = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_sql_fail(s, err, what);
	store_sql_release(s);
	return ret;
}

int store_sql_count(sqlite3_stmt *s, long long *n, struct err *err, const char *what)
{
	*n = 0;
	int ret = 0;
	if (sqlite3_step(s) == SQLITE_ROW) *n = sqlite3_column_int64(s, 0);
	else ret = store_sql_fail(s, err, what);
	store_sql_release(s);
	return ret;
}

int store_sql_lookup(sqlite3_stmt *s, void (*read)(sqlite3_stmt *s, void *out), void *out, struct err *err,
                     const char *what)
{
	int rc = sqlite3_step(s);
	int ret = 0;
	if (rc == SQLITE_ROW) read(s, out);
	else if (rc == SQLITE_DONE) ret = STORE_NOTFOUND;
	else ret = store_sql_fail(s, err, what);
	store_sql_release(s);
	return ret;
}

int store_sql_rows(sqlite3_stmt *s, int (*row)(sqlite3_stmt *s, void *ctx), void *ctx, struct err *err,
                   const char *what)
{
	int ret = 0, rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((ret = row(s, ctx)) != 0) break;
	}
	if (ret == 0 && rc != SQLITE_DONE) ret = store_sql_fail(s, err, what);
	store_sql_release(s);
	return ret;
}
