/* billing_run — the billing runs over the store and Syncro:
 *   - planning a tenant's period: usage from the licence snapshots
 *     (store_billing), bill() per SKU (billing_hook), lines named and priced
 *     from Syncro's product catalog when a product id is all the policy gave;
 *   - period invoices (billing_invoice.c): one invoice per tenant and
 *     period, the intent recorded before each POST and the result after, an
 *     interrupted invoice completed on the next run without a second one;
 *   - schedules (billing_schedule.c): the lines of the tenant's recurring
 *     invoice kept equal to the plan, with audit rows and the decrease guard;
 *   - the reconciliation report (billing_report.c).
 * Every Syncro write of billing goes through one function per run kind
 * that records the intent (store_billing), sends, and records the result
 * with its audit row in one transaction; a dry run replaces the send by a
 * recorder and writes nothing to the store.
 *
 * Crash recovery (bill --period), per tenant and period:
 *   no row        → plan, record the intent row ('pending', with a random
 *                   marker and the plan), POST /invoices with the marker in
 *                   its note, record 'created' + id, then each line: intent,
 *                   POST, result; all lines there → 'done' + audit row;
 *   'pending'     → the invoice POST may or may not have happened: look the
 *                   invoice up by marker (invoices updated since the
 *                   intent); found → 'created', else POST it now;
 *   'created'     → read the invoice, add the recorded plan's lines it lacks
 *                   (matched by product, or by item name), then 'done';
 *   'done'        → report the invoice and the drift since; change nothing;
 *   'failed'      → the create was refused: planned and tried again.
 * An invoice recorded but deleted in Syncro is reported; with --reinvoice
 * its row is marked 'failed' and its open line intents closed ('failed',
 * replaced) in one transaction, then the period is invoiced anew.
 * The recorded plan, not a new one, completes an interrupted invoice. */
#ifndef ENTRASYNC_BILLING_RUN_H
#define ENTRASYNC_BILLING_RUN_H

#include <stdbool.h>
#include <stdio.h>
#include "billing/billing.h"
#include "util/config.h"
#include "script/script.h"
#include "store/store.h"
#include "store/store_billing.h"
#include "syncro/syncro_billing.h"
#include "util/util.h"

/* Another tenant of the config with the same Syncro customer and a
 * schedule named otherwise: the same schedule when both resolve to one id
 * (one by id, one by name). Borrowed strings. */
struct billing_schedule_peer {
	const char *tenant_id;
	const char *schedule;              /* its schedule's name, or id in digits */
};

/* One tenant to bill. Borrowed strings. */
struct billing_tenant {
	const char *id;
	const char *name;                  /* may be NULL */
	const char *default_domain;        /* may be NULL */
	long long customer_id;             /* Syncro customer; 0 = not mapped (reported, never billed) */
	const char *twin;                  /* another tenant of the config that is the same Microsoft tenant
	                                    * (store_tenant_twins): never billed, reported; else NULL */
	const char *policy;                /* the policy file with bill(); NULL = none */
	const char *schedule;              /* bill --schedules: schedule name, or its id in digits;
	                                    * NULL = not configured (reported). A tenant with one is billed by it:
	                                    * bill --period does not invoice it */
	bool schedule_default;             /* the schedule is billing.schedule's (not its billing_schedule) */
	bool schedule_override;            /* the schedule is --schedule's, for this run only */
	bool invoiced;                     /* billing_schedule = false: billed by bill --period, no schedule */
	const char *schedule_twin;         /* another tenant of the config with the same Syncro customer and
	                                    * schedule: its schedule is never kept in step, reported; else NULL */
	struct billing_schedule_peer *peers;    /* owned by billing_tenants: the same customer's tenants whose
	                                         * schedule text differs, checked once it is resolved */
	size_t npeers;
};

/* The tenants of a run (bill, sync), built from the config. v[i] borrow
 * the config's strings and owned[] (names and domains read from the
 * store); free with billing_tenants_free. */
struct billing_tenants {
	struct billing_tenant *v;
	size_t n;
	char **owned;
	size_t nowned;
};

/* Builds the tenants marked in sel[cfg->ntenants] (NULL = every tenant):
 * the name from the config, else from the store's tenant row; the default
 * domain from the store; the Syncro customer from the config's id, else
 * the one the sync stored, else found by the config's business name (a
 * Syncro read through sc; none without sc); the schedule: schedule when
 * not NULL, else the tenant's billing_schedule, else billing.schedule
 * (unless the tenant says billing_schedule = false);
 * the schedule twin: a tenant of the config (marked or not) with the same
 * customer and schedule name or id (ASCII case-insensitive; the customer
 * of a tenant not marked as far as the config and the store know it);
 * the schedule peers: such tenants whose schedule text differs (compared
 * by the schedule ids they resolve to when the tenant is billed).
 * Fails (-1) only on a store error. */
int billing_tenants_build(const struct config *cfg, struct store *st, struct syncro_client *sc, const bool *sel,
                          const char *schedule, struct billing_tenants *out, struct err *err);
void billing_tenants_free(struct billing_tenants *t);

/* Where the test hook is called (crash tests end the process there). */
enum billing_point {
	BILLING_BEFORE_SEND,               /* the intent is committed, nothing sent */
	BILLING_AFTER_SEND,                /* Syncro answered, nothing recorded */
};

struct billing_cache;                  /* hooks by policy, catalog products (billing_run.c) */

/* What every run needs. Zero-initialise, fill, then billing_ctx_release. */
struct billing_ctx {
	struct store_billing *sb;          /* usage and billing state */
	struct syncro_resource *sy;        /* NULL: no Syncro (plan only; catalog unknown) */
	const struct script_limits *limits;     /* NULL = defaults */
	bool dry_run;                      /* reads only: nothing sent, nothing stored */
	bool reinvoice;                    /* an invoice deleted in Syncro is made again (else reported) */
	long long run_id;                  /* 0 = none */
	double now;                        /* the run's clock; 0 = time_now() */
	struct billing_sched_opts sched;   /* bill --schedules options for every tenant */
	/* Test hook; action = "invoice.create", "invoice.line", "schedule.add", ... */
	void (*hook)(void *ud, enum billing_point at, const char *action);
	void *hook_ud;
	struct billing_cache *cache;       /* private */
};
void billing_ctx_release(struct billing_ctx *c);

/* Plans tenant t for period p into *out (billing_plan_free, also after a
 * failure). *has_data (optional) is false when the period holds no
 * snapshot of the tenant (the plan is then empty). Catalog look-ups
 * happen when c->sy is set: an unknown product fails the plan. */
int billing_plan_tenant(struct billing_ctx *c, const struct billing_tenant *t, const struct billing_period *p,
                        struct billing_plan *out, bool *has_data, struct err *err);

/* ---------------------------------------------------------------- invoices */

enum billing_invoice_status {
	BILLING_INV_DRAFT,                 /* dry run: what would be sent */
	BILLING_INV_CREATED,               /* created now, with all its lines */
	BILLING_INV_RECOVERED,             /* an interrupted invoice completed now */
	BILLING_INV_EXISTS,                /* invoiced before: reported with drift, nothing sent */
	BILLING_INV_NOTHING,               /* no line with a quantity: no invoice */
	BILLING_INV_SCHEDULED,             /* billed by its recurring invoice (t->schedule): not invoiced per
	                                    * period (error says so, not a failure) */
	BILLING_INV_NO_DATA,               /* no licence snapshot in the period */
	BILLING_INV_UNMAPPED,              /* no Syncro customer */
	BILLING_INV_PENDING,               /* left for the next run (an outcome not yet settled) */
	BILLING_INV_FAILED,                /* error says why; the next run goes on from the state kept */
};
/* "draft", "created", "recovered", "exists", "nothing", "scheduled", "no_data", "unmapped", "pending",
 * "failed". */
const char *billing_invoice_status_name(enum billing_invoice_status s);

struct billing_invoice_result {
	enum billing_invoice_status status;
	long long invoice_id;
	char number[64];
	bool recovering;                   /* dry run over an interrupted invoice */
	struct billing_plan plan;          /* the invoice's lines (as recorded), or the draft */
	bool have_now;                     /* EXISTS/RECOVERED: a plan made now was compared */
	struct billing_drifts drift;       /* counts or prices changed since invoicing */
	long long lines_added;
	long long lines_found;             /* lines already on the invoice (recovery) */
	bool fatal;                        /* the run must stop (401, store failure) */
	bool replan;                       /* private: the recorded invoice is gone and c->reinvoice */
	long long replaces;                /* --reinvoice: the invoice deleted in Syncro this one replaces, or 0 */
	char error[1024];
};
void billing_invoice_result_free(struct billing_invoice_result *r);

/* Invoices tenant t for period p (see the recovery above). Always fills
 * *out; returns 0, or -1 when out->fatal. */
int billing_invoice_tenant(struct billing_ctx *c, const struct billing_tenant *t, const struct billing_period *p,
                           struct billing_invoice_result *out);

/* ---------------------------------------------------------------- schedules */

enum billing_sched_status {
	BILLING_SCHED_UNCHANGED,           /* every planned line already right */
	BILLING_SCHED_CHANGED,             /* changes applied (dry run: would be) */
	BILLING_SCHED_HELD,                /* decreases held by the guard (the rest applied) */
	BILLING_SCHED_NO_DATA,
	BILLING_SCHED_UNMAPPED,
	BILLING_SCHED_NOT_CONFIGURED,      /* no schedule named for the tenant */
	BILLING_SCHED_FAILED,
	BILLING_SCHED_INVOICED,            /* billing_schedule = false: invoiced per period, no schedule (ok) */
};
/* "unchanged", "changed", "held", "no_data", "unmapped", "not_configured", "failed", "invoiced". */
const char *billing_sched_status_name(enum billing_sched_status s);

/* A schedule the tenant's lines were kept on before (its managed lines
 * there) while it names another now: its lines there are zeroed or
 * removed (billing.on_removed), as they now bill on the new one. */
struct billing_left_schedule {
	long long id;
	char name[128];
	struct billing_changes changes;    /* each with applied / error */
	bool failed;                       /* it may still bill the tenant's lines: note says why */
	char note[512];
};

struct billing_schedule_result {
	enum billing_sched_status status;
	long long schedule_id;
	char schedule_name[128];
	struct billing_plan plan;
	struct billing_changes changes;    /* each with applied / error */
	char planned_from[16];             /* the month the plan is of when not the run's (no snapshot of the
	                                    * month yet on its first day: the month before), else "" */
	struct billing_left_schedule *left;     /* schedules left (see above) */
	size_t nleft;
	long long applied, failed, recovered;
	bool fatal;
	char error[1024];
};
void billing_schedule_result_free(struct billing_schedule_result *r);

/* Keeps the lines of t's schedule equal to the plan of period p. Always
 * fills *out; returns 0, or -1 when out->fatal. */
int billing_schedule_tenant(struct billing_ctx *c, const struct billing_tenant *t, const struct billing_period *p,
                            struct billing_schedule_result *out);

/* ---------------------------------------------------------------- reconciliation */

struct billing_report_row {
	char *tenant_id, *tenant_name;
	char *sku_id, *part, *name;
	long long purchased, assigned, peak_assigned;
	enum billing_sku_status status;
	long long billed_qty;
	bool priced;                       /* unit price known */
	long long unit_cents, billed_cents;
	bool invoiced;                     /* billed = the period's invoice (else the plan, not invoiced) */
	long long invoice_id;
	/* leaks */
	long long unbilled_seats;          /* purchased but not billed (never for free SKUs) */
	long long unassigned_billed;       /* billed but no longer assigned */
	bool no_price;                     /* seats assigned, bill() gave no price */
	long long leak_cents;              /* unbilled_seats x unit price, when known */
};

struct billing_report {
	struct billing_period period;
	struct billing_report_row *rows;
	size_t n;
	char **problems;                   /* per tenant: "Contoso: bill() failed: …", "Fabrikam: no data" */
	size_t nproblems;
	size_t failures;                   /* problems that leave a tenant unreconciled (bill() failed, an invoice
	                                    * still being built): the command exits 1 */
	long long billed_cents, leak_cents;
	long long leaks;                   /* rows with a leak */
};
void billing_report_free(struct billing_report *r);
/* Builds the reconciliation of period p over tenants[0..n). */
int billing_report_build(struct billing_ctx *c, const struct billing_tenant *tenants, size_t n,
                         const struct billing_period *p, struct billing_report *out, struct err *err);
/* Does the row show a leak? */
bool billing_report_row_leaks(const struct billing_report_row *r);
/* Writes the report as "table", "csv", "json" or "html" (the leaks first). */
int billing_report_write(FILE *f, const struct billing_report *r, const char *format, struct err *err);

#endif
