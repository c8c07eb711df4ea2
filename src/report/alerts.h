/* alerts — findings and secure_score alerts as Syncro tickets for the
 * tenant's customer: at most one open ticket per tenant and kind (kind =
 * the finding kind: unused, over_assigned, disabled_user, deleted_user,
 * warning, suspended, locked_out, score_alert). A later run with the same
 * alert adds a comment to that ticket when what it says changed (nothing
 * when it did not; an unused licence's running count of days is not a
 * change); a ticket found resolved or deleted in Syncro while its alert
 * still holds is replaced by a new one (the kept ticket is read every run).
 * An alert the report looked for and no longer finds gets a comment saying
 * so on its open ticket, which is then forgotten. Before any ticket is
 * created the customer's open tickets are searched for one with the same
 * subject (made by a run whose answer was lost, or an alert that came
 * back while its ticket was open), which is used instead: no duplicates.
 * The open ticket of each (tenant, kind) is kept in the store
 * (store_history_alert_*).
 *
 * Every ticket write goes through one function (alert_write in alerts.c)
 * that records the intent in the audit trail before sending and the result
 * after it. With dry_run nothing is sent or recorded: each alert prints one
 * plan line "alert TENANT/KIND: skipped (dry run): would ...".
 *
 * Off by default: the caller decides from the config's alerts = { enabled,
 * problem_type, subject_prefix, unused_days } (struct config_alerts):
 * `entrasync report` raises them when alerts.enabled or --alerts. */
#ifndef ENTRASYNC_ALERTS_H
#define ENTRASYNC_ALERTS_H

#include <stdbool.h>
#include <stdio.h>
#include "util/config.h"
#include "report/report.h"
#include "store/store.h"

/* One alert: what a ticket for (tenant, kind) says. Owned strings. */
struct alert {
	char *tenant_id, *tenant_name;
	const char *kind;          /* finding_kind_name(): static */
	char *subject;
	char *body;                /* the findings, one per line */
	char digest[17];           /* of subject + body: unchanged alerts write nothing */
	size_t count;              /* findings in it */
};

struct alerts {
	struct alert *v;
	size_t n;
};

/* Groups r's findings by tenant and kind into alerts (in findings order).
 * prefix starts each subject (NULL = "[entrasync]"). */
void alerts_collect(const struct report *r, const char *prefix, struct alerts *out);
void alerts_free(struct alerts *a);

struct alerts_opts {
	bool dry_run;
	const char *problem_type;  /* the ticket's problem type; NULL = "Other" */
	const char *subject_prefix;/* NULL = "[entrasync]" */
};

struct alerts_result {
	int created, updated, unchanged, cleared, skipped, failed;
};

/* Raises r's alerts in Syncro (cfg->syncro for the client, cfg->tenants
 * for each tenant's customer: syncro_customer_id, else syncro_customer by
 * name), printing one line per alert to plan. A tenant without a customer
 * is skipped with a line. Fails (-1) only when Syncro cannot be reached at
 * all (client, 401); single failures are counted in res->failed. */
int alerts_run(const struct config *cfg, struct store *st, const struct report *r, const struct alerts_opts *o,
               FILE *plan, struct alerts_result *res, struct err *err);

#endif
