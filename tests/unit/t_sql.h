/* t_sql — helpers for the store's tests that look under the store's API:
 * a fresh store in the scratch folder, the single integer a raw query
 * returns. */
#ifndef ENTRASYNC_T_SQL_H
#define ENTRASYNC_T_SQL_H

#include <sqlite3.h>
#include <stdio.h>
#include "store/store.h"
#include "t.h"

/* A new store NAME.db in the test's scratch folder (t_tmpdir), or NULL
 * with the test failed. */
static inline struct store *t_store_fresh(const char *name)
{
	char path[600];
	struct err err;
	struct store *st = NULL;
	snprintf(path, sizeof path, "%s/%s.db", t_tmpdir(), name);
	if (store_open(path, &st, &err) != 0) {
		t_fail(__FILE__, __LINE__, "store_open: %s", err.msg);
		return NULL;
	}
	return st;
}

/* The first column of the first row of sql on db, or -999 when the query
 * fails or returns no row (a value no count or flag takes). */
static inline long long raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	long long v = -999;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

#endif
