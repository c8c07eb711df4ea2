/* t_sql — a helper for the store's tests that look under the store's API:
 * the single integer a raw query returns. */
#ifndef ENTRASYNC_T_SQL_H
#define ENTRASYNC_T_SQL_H

#include <sqlite3.h>

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
