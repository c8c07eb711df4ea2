/* store_sql — helpers shared by the store's files (src/store.c and the
 * extension files src/store_<area>.c): binding and reading values of the
 * prepared statements. Only src/store*.c include this (and sqlite3.h). */
#ifndef ENTRASYNC_STORE_SQL_H
#define ENTRASYNC_STORE_SQL_H

#include <sqlite3.h>
#include "util.h"

/* Binds v, or NULL when v is NULL. The text must outlive the step
 * (SQLITE_STATIC): bind right before stepping. */
static inline void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v) sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else sqlite3_bind_null(s, i);
}

/* Binds 0 as NULL (for optional ids). */
static inline void bind_id(sqlite3_stmt *s, int i, long long v)
{
	if (v) sqlite3_bind_int64(s, i, v);
	else sqlite3_bind_null(s, i);
}

/* The column's text as a new string, or NULL. */
static inline char *col_dup(sqlite3_stmt *s, int i)
{
	const unsigned char *v = sqlite3_column_text(s, i);
	return v ? xstrdup((const char *)v) : NULL;
}

/* The column's text without copying, for the borrowed structs handed to
 * callbacks (valid until the next step). */
static inline const char *col_borrow(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

/* The busy handler's wait before try count+1 for another connection's
 * write lock, in microseconds: 50 us doubling to 10 ms, then 10 ms a try;
 * 0 (give up) once the waits would reach the 5 s busy timeout. SQLite's
 * own busy timeout sleeps 1 ms at least: the pull's worker processes commit
 * short transactions (~0.2 ms) into one database, and each of their event
 * loops would stall a millisecond on every collision. */
long store_busy_step_us(int count);

#endif
