/* billing_internal — what billing_run.c, billing_invoice.c,
 * billing_schedule.c and billing_report.c share and nothing else uses:
 * the one write path (intent → test hook → send → test hook → result and
 * audit in one transaction), the run's date, and result messages. */
#ifndef ENTRASYNC_BILLING_INTERNAL_H
#define ENTRASYNC_BILLING_INTERNAL_H

#include "billing/billing_run.h"

/* One billing write to Syncro in progress. */
struct billing_write {
	const char *tenant_id;
	const char *period;                /* NULL for schedules */
	const char *action;                /* "invoice.line", "schedule.add", ... */
	const char *target;                /* the line key */
	const char *payload;               /* JSON: what is sent and what recovery needs */
	long long intent_id;               /* set by billing_write_begin */
};

/* Records the intent (committed) and calls the BEFORE_SEND hook. Not in a
 * dry run. */
int billing_write_begin(struct billing_ctx *c, struct billing_write *w, struct err *err);
/* Calls the AFTER_SEND hook (the answer is in, nothing recorded yet). */
void billing_write_sent(struct billing_ctx *c, const struct billing_write *w);
/* Records the result in one transaction: the intent closed with state
 * ("done"/"failed"), result_id and error; the audit row (when a is not
 * NULL); and whatever more(ud) writes (may be NULL). */
int billing_write_finish(struct billing_ctx *c, const struct billing_write *w, const char *state, long long result_id,
                         const char *error, const struct store_audit *a, int (*more)(void *ud, struct err *err),
                         void *ud, struct err *err);
/* Calls the test hook, if any. */
void billing_point(struct billing_ctx *c, enum billing_point at, const char *action);

/* Schedule names by customer, for the run: billing_schedules_note keeps
 * the (id, name) of a customer's schedules as listed (l NULL: they could
 * not be read; the first call per customer counts); billing_schedule_named
 * is the id of the one schedule named name (ASCII case-insensitive) of the
 * customer, listing them once when no list was noted; 0 when none, several
 * or not read. */
void billing_schedules_note(struct billing_ctx *c, long long customer, const struct syncro_schedule_list *l);
long long billing_schedule_named(struct billing_ctx *c, long long customer, const char *name);

/* The run's clock and today's date ("YYYY-MM-DD", 16 bytes). */
double billing_now(const struct billing_ctx *c);
const char *billing_today(const struct billing_ctx *c, char *buf);

#endif
