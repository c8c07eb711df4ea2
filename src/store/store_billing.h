/* store_billing — billing's state in the store's database: the usage of a
 * period read from the licence snapshots (aggregated per SKU), one invoice
 * row per tenant and period (the at-most-once rule, and the intent that
 * precedes the invoice POST), the intents of every other billing write
 * (invoice lines, schedule lines), the schedule lines entrasync manages,
 * and audit rows written in the same transaction as a write's result.
 *
 * Tables (store migration 4, src/store/store_schema.c):
 *   billing_invoices(tenant_id, period) PK: customer_id, state
 *       ('pending' → 'created' → 'done'; 'failed' = the create was refused,
 *       retried next run), marker (the text put in the invoice's note to
 *       find it after a crash), invoice_id, number, plan (JSON: the lines as
 *       recorded before the POST), error, run_id, created_at, updated_at.
 *   billing_intents: id, run_id, tenant_id, period, action, target (a line
 *       key), payload (JSON sent), state ('pending'|'done'|'failed'),
 *       result_id, error, created_at, updated_at. Kept apart from the sync's
 *       `intents` table so the sync's recovery never handles billing writes.
 *   billing_schedule_lines(tenant_id, schedule_id, line_key) PK:
 *       line_item_id, updated_at.
 *
 * The connection: the store's own (store_sqlite / store_stmt), like every
 * extension file. A unit of work (store_billing_begin .. commit/rollback)
 * is the store's transaction, or a savepoint inside the caller's when one
 * is open (store_atomic_begin). The intents (store_billing_invoice_intent,
 * store_billing_intent_add) must reach the disk before their request is
 * sent, so they are refused inside any transaction.
 * Conventions as store.h: 0 / negative with *err / STORE_NOTFOUND; strings
 * of structs handed to callbacks are borrowed for the call. */
#ifndef ENTRASYNC_STORE_BILLING_H
#define ENTRASYNC_STORE_BILLING_H

#include <stdbool.h>
#include <stddef.h>
#include "billing/billing.h"
#include "store/store.h"

struct store_billing;

/* Opens the handle on st's database. *out: store_billing_close (before store_close(st)). */
int store_billing_open(struct store *st, struct store_billing **out, struct err *err);
void store_billing_close(struct store_billing *sb);

/* A unit of work on st (see "The connection" above): at most one open per
 * handle. rollback is a no-op when none is open. */
int store_billing_begin(struct store_billing *sb, struct err *err);
int store_billing_commit(struct store_billing *sb, struct err *err);
void store_billing_rollback(struct store_billing *sb);

/* ---------------------------------------------------------------- usage */

/* Calls cb for each SKU of the tenant seen on a snapshot day in [first,
 * last] (YYYY-MM-DD), in part number (then sku_id) order: purchased/assigned of the tenant's
 * last snapshot day in the range (0 for a SKU absent that day), peaks over
 * the range, the days holding it; name = the friendly SKU name. last_day
 * (optional, 16 bytes) gets that last snapshot day, "" when the range has
 * none (then cb is never called). */
int store_billing_usage_each(struct store_billing *sb, const char *tenant_id, const char *first, const char *last,
                             int (*cb)(const struct billing_usage *u, void *ud), void *ud, char *last_day,
                             struct err *err);

/* ---------------------------------------------------------------- invoices */

struct store_billing_invoice {
	const char *tenant_id;
	const char *period;
	long long customer_id;
	const char *state;         /* "pending" | "created" | "done" | "failed" */
	const char *marker;
	long long invoice_id;      /* 0 = not known yet */
	const char *number;
	const char *plan;          /* JSON (billing_plan_to_json) */
	const char *error;
	long long run_id;
	const char *created_at;
	const char *updated_at;
};
int store_billing_invoice_get(struct store_billing *sb, const char *tenant_id, const char *period,
                              struct store_billing_invoice *out, struct err *err);
void store_billing_invoice_free(struct store_billing_invoice *inv);
/* The intent to create the invoice of (tenant, period): inserts the row in
 * state 'pending' with in's customer_id, marker, plan and run_id, or
 * replaces a 'failed' row. A row in any other state makes it fail: a
 * tenant is invoiced at most once per period. Commits on its own (so it is
 * on disk before the POST): refused inside a transaction. */
int store_billing_invoice_intent(struct store_billing *sb, const struct store_billing_invoice *in, struct err *err);
/* Sets state, invoice_id (0 = keep), number (NULL = keep) and error (NULL
 * clears it) of the row. */
int store_billing_invoice_update(struct store_billing *sb, const char *tenant_id, const char *period,
                                 const char *state, long long invoice_id, const char *number, const char *error,
                                 struct err *err);
/* Every invoice row of the period (NULL = all), by tenant_id. */
int store_billing_invoice_each(struct store_billing *sb, const char *period,
                               int (*cb)(const struct store_billing_invoice *inv, void *ud), void *ud,
                               struct err *err);

/* ---------------------------------------------------------------- intents */

struct store_billing_intent {
	long long id;
	long long run_id;
	const char *tenant_id;
	const char *period;        /* NULL for schedule writes */
	const char *action;        /* "invoice.create", "invoice.line", "schedule.add", "schedule.update", ... */
	const char *target;        /* the line key, or NULL */
	const char *payload;
	const char *state;         /* "pending" | "done" | "failed" */
	long long result_id;       /* what the write created or changed (0 = none) */
	const char *error;
	const char *created_at;
	const char *updated_at;
};
/* Records a write about to be sent (state 'pending'); *id gets its id.
 * Commits on its own: refused inside a transaction. */
int store_billing_intent_add(struct store_billing *sb, long long run_id, const char *tenant_id, const char *period,
                             const char *action, const char *target, const char *payload, long long *id,
                             struct err *err);
/* Closes an intent: state "done" or "failed", result id (0 = NULL), error. */
int store_billing_intent_finish(struct store_billing *sb, long long id, const char *state, long long result_id,
                                const char *error, struct err *err);
/* The tenant's pending intents (NULL = every tenant), oldest first. The
 * callback must not write intents (copy, then finish after). */
int store_billing_intent_each_open(struct store_billing *sb, const char *tenant_id,
                                   int (*cb)(const struct store_billing_intent *in, void *ud), void *ud,
                                   struct err *err);
/* Intents of a tenant (NULL = all) in a state (NULL = any). */
int store_billing_intent_count(struct store_billing *sb, const char *tenant_id, const char *state, long long *n,
                               struct err *err);

/* ---------------------------------------------------------------- schedule lines */

/* The keys of the schedule lines entrasync manages for the tenant on this
 * schedule: *keys a new array of new strings (free each, then the array). */
int store_billing_sched_keys(struct store_billing *sb, const char *tenant_id, long long schedule_id, char ***keys,
                             size_t *n, struct err *err);
/* Records (replacing) a managed line / forgets one. */
int store_billing_sched_put(struct store_billing *sb, const char *tenant_id, long long schedule_id,
                            const char *key, long long line_item_id, struct err *err);
int store_billing_sched_delete(struct store_billing *sb, const char *tenant_id, long long schedule_id,
                               const char *key, struct err *err);

/* The schedules the tenant manages lines on (a schedule it named before
 * among them): *ids a new array (free). */
int store_billing_sched_ids(struct store_billing *sb, const char *tenant_id, long long **ids, size_t *n,
                            struct err *err);
/* A tenant other than tenant_id managing lines on the schedule: *other a
 * new string (free), or NULL when none. */
int store_billing_sched_other(struct store_billing *sb, long long schedule_id, const char *tenant_id, char **other,
                              struct err *err);

/* ---------------------------------------------------------------- audit */

/* store_audit_append on the handle's store: inside a unit of work it
 * commits with the write's result. a->id and a->at are ignored. */
int store_billing_audit(struct store_billing *sb, const struct store_audit *a, struct err *err);

#endif
