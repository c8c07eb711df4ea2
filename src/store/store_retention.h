/* store_retention — the store's housekeeping: history that only grows
 * (each run's record and per-tenant results, the finished Syncro write
 * intents, the audit trail) deleted once older than the config's
 * retention, and the Secure Score days' control scores thinned out. Same
 * conventions as store.h. The metrics' counters are kept apart (migration
 * 12) and never go down when history is deleted. */
#ifndef ENTRASYNC_STORE_RETENTION_H
#define ENTRASYNC_STORE_RETENTION_H

#include <stdbool.h>
#include "store/store.h"

/* How long each kind of history is kept, in days; 0 = for ever. */
struct store_retention {
	int runs_days;    /* runs, their per-tenant results, finished (done/failed) intents */
	int audit_days;   /* the audit trail of writes to Syncro */
	int score_detail_days; /* a Secure Score day's control scores (its scores stay); 0, or >= 90 */
	long long max_rows; /* per table per call; 0 = STORE_PRUNE_MAX_ROWS */
	bool dry_run;       /* count only: the unit of work is rolled back */
};

/* What one store_prune deleted. */
struct store_pruned {
	long long runs;
	long long run_tenants;
	long long intents;
	long long audit;
	long long score_days;   /* Secure Score days whose control scores were removed */
	bool more;        /* stopped at its per-call bound: older history is left for the next call */
};

/* At most this many rows of each table are deleted by one call, so that a
 * run's housekeeping stays short even the first time (a database kept for
 * years, or a retention just shortened); the next calls go on. */
#define STORE_PRUNE_MAX_ROWS 100000
/* The shortest score_detail_days: Graph keeps 90 days of Secure Score. */
#define STORE_SCORE_DETAIL_MIN_DAYS 90

/* Deletes, in one unit of work, the history older than keep's days before
 * now (seconds since the epoch):
 * - runs started before the cutoff, with their per-tenant results; but
 *   never a tenant's latest result of a run kind (`status` shows each
 *   tenant's last pull and sync however old), nor the newest run, the
 *   newest finished run or the newest "ok" run of a kind (the metrics'
 *   "last run" and "last success"); a run that keeps any result stays;
 * - intents done or failed and created before it (pending and sent ones
 *   are the outbox's unfinished work: never deleted);
 * - audit rows written before it;
 * - the control scores of Secure Score days before it (the day's raw
 *   object loses its "controlScores", the controls column is emptied; the
 *   scores, averages and everything else stay). Reports read the controls
 *   of a tenant's newest day only; Graph itself keeps 90 days, so fewer
 *   days are taken as 90 (the config refuses them): a day Graph sends
 *   again is then never older than the cutoff. Days are taken from where the last call
 *   stopped (kv "retention.score_detail.from").
 * Rows are taken oldest first (ids grow with time); at most
 * keep->max_rows of each table. *out (zeroed first) gets the counts.
 * Must not be called inside an open transaction. */
int store_prune(struct store *st, const struct store_retention *keep, double now, struct store_pruned *out,
                struct err *err);

/* Rewrites the database file without its free pages (SQLite's VACUUM), after
 * history was deleted; *before and *after get its size in bytes (pages in
 * use and free). Takes as long as copying the whole database, and as much
 * free disk space again. Not inside a transaction. */
int store_vacuum(struct store *st, long long *before, long long *after, struct err *err);

#endif
