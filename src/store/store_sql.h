/* store_sql — helpers shared by the store's files (src/store/store.c and the
 * extension files src/store/store_<area>.c): binding and reading values of the
 * prepared statements, and stepping them (store_sql.c). Only src/store/
 * (and their tests) include this (and sqlite3.h). */
#ifndef ENTRASYNC_STORE_SQL_H
#define ENTRASYNC_STORE_SQL_H

#include <sqlite3.h>
#include "util/util.h"

/* A Secure Score day's control scores in a SELECT on secure_score_snapshots:
 * the column (days stored without their raw object, or before one came)
 * or the raw object's "controlScores" (days stored since the control
 * scores are kept only there); NULL when neither has them or raw is not
 * JSON (a row edited by hand does not fail the query). */
#define SCORE_CONTROLS "CASE WHEN controls IS NOT NULL THEN controls " \
	"WHEN json_valid(raw) THEN json_extract(raw, '$.controlScores') END"

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
 * write lock, in microseconds: 25 us for the first 100 tries (a short
 * transaction's length, so the lock is taken soon after it is let go),
 * then doubling to 10 ms a try; 0 (give up) once the waits would reach the
 * 5 s busy timeout. SQLite's own busy timeout sleeps 1 ms at least, and
 * doubling from the start overslept just the same: the pull's worker
 * processes commit short transactions (~0.2 ms) into one database, and
 * their event loops stalled for ms on every collision (80 ms of sleep per
 * worker in an hourly pull of 100 tenants, under strace). */
long store_busy_step_us(int count);

/* ---- stepping (store_sql.c) ------------------------------------------------
 * Each takes a prepared statement with its values bound, steps it, and
 * releases it (store_sql_release) whatever the outcome, so that a cached
 * statement is ready for its next use; a statement prepared for one call
 * is finalized by the caller afterwards. Failures read
 * "store: <what>: <SQLite's message>" and return -1. */

/* The time now as ISO-8601 UTC text, for created_at / updated_at. */
void store_sql_now(char buf[32]);
/* Resets s and clears its bindings (it stays prepared). */
void store_sql_release(sqlite3_stmt *s);
/* Fills err with "store: <what>: <SQLite's last message on s's connection>";
 * returns -1. Does not release s. */
int store_sql_fail(sqlite3_stmt *s, struct err *err, const char *what);
/* Steps a statement that returns no row (INSERT, UPDATE, DELETE). */
int store_sql_run(sqlite3_stmt *s, struct err *err, const char *what);
/* Steps a one-row count query into *n (0 on failure). */
int store_sql_count(sqlite3_stmt *s, long long *n, struct err *err, const char *what);
/* Steps a look-up: on a row, read(s, out) copies what it needs and 0 is
 * returned; no row: STORE_NOTFOUND (1), out untouched. */
int store_sql_lookup(sqlite3_stmt *s, void (*read)(sqlite3_stmt *s, void *out), void *out, struct err *err,
                     const char *what);
/* Steps a query, handing each row to row(s, ctx) until it returns
 * non-zero; returns that value, 0 after the last row, or -1. Strings read
 * from s inside row() are valid until row() returns. */
int store_sql_rows(sqlite3_stmt *s, int (*row)(sqlite3_stmt *s, void *ctx), void *ctx, struct err *err,
                   const char *what);

#endif
