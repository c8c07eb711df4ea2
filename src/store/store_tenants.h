/* store_tenants — a tenant's rows taken as a whole, in every table:
 * - forgotten: everything the store keeps of one tenant deleted in one unit
 *   of work, for a customer the MSP no longer manages (`entrasync tenants
 *   forget`): the user mirror, groups, delta state, links to Syncro
 *   contacts, licence and Secure Score history, conflicts, write intents,
 *   run results, billing and ticket-action records and the tenant's
 *   key/value state; its audit trail only when asked (it is the record of
 *   what was written to Syncro, and has its own retention);
 * - renamed: the rows of a tenant the config now names another way (its
 *   GUID instead of a domain, or one of its other domains) moved to the new
 *   id, so that it stays one tenant with its links (a second tenant row would
 *   have no links, and its contacts would be created again in Syncro).
 * Same conventions as store.h. */
#ifndef ENTRASYNC_STORE_TENANTS_H
#define ENTRASYNC_STORE_TENANTS_H

#include <stdbool.h>
#include "store/store.h"
#include "util/config.h"

/* What store_tenant_forget deleted (or, with dry_run, would delete). */
struct store_forgotten {
	long long users;           /* mirrored Entra users, removed ones included */
	long long groups;
	long long memberships;     /* group member rows */
	long long links;           /* Entra user -> Syncro contact */
	long long license_days;    /* days of licence snapshots ... */
	long long license_rows;    /* ... and their rows (one per SKU a day) */
	long long score_days;      /* Secure Score days */
	long long conflicts;
	long long intents;         /* Syncro write intents, all states ... */
	long long intents_open;    /* ... of which pending or sent: never reconciled now */
	long long run_results;     /* the tenant's rows in the runs' results */
	long long billing;         /* billing invoices, billing write intents, recurring-invoice lines */
	long long ticket_actions;  /* Microsoft actions asked for from Syncro tickets */
	long long state_keys;      /* the tenant's key/value state (organization, alerts' tickets, …) */
	long long audit;           /* audit rows deleted (with_audit), or kept (without) */
};

/* Deletes what the store keeps of tenant_id (its exact id, as stored), in
 * one unit of work; with dry_run the work is done, counted and rolled back.
 * The metrics' per-tenant counters go too (the tenant's series leave the
 * metrics); every other tenant's rows and the totals are untouched. Audit
 * rows are deleted only with with_audit; *out->audit counts them either way.
 * STORE_NOTFOUND when the store has no such tenant. Not inside a
 * transaction. */
int store_tenant_forget(struct store *st, const char *tenant_id, bool with_audit, bool dry_run,
                        struct store_forgotten *out, struct err *err);

/* The id of another tenant row that is the same Microsoft tenant as id (a
 * GUID or a domain, in lower case), by the organization its last pull
 * stored: that organization's id is id, or one of its verified domains is.
 * When several are (the tenant was already taken for two), the one synced,
 * else pulled, last; *more gets how many others there are. *other is new
 * (free); STORE_NOTFOUND when none. */
int store_tenant_same_as(struct store *st, const char *id, char **other, int *more, struct err *err);

/* The Microsoft id (a lower-case GUID) of the organization tenant_id's last
 * pull stored, as a new string in *org; STORE_NOTFOUND when none was. */
int store_tenant_org_id(struct store *st, const char *tenant_id, char **org, struct err *err);

/* For the config's tenants[0..n): twin[i] gets the index of the first
 * other one that is the same Microsoft tenant (the organization their last
 * pulls stored is one: its domain and its GUID listed both), else n. A
 * tenant whose organization is not stored yet has no twin. 0, or -1 with
 * err. */
int store_tenant_twins(struct store *st, const struct config_tenant *tenants, size_t n, size_t *twin,
                       struct err *err);

/* Renames tenant from to to in every table (the tenant row, the mirror,
 * groups, delta state, links, snapshots, history, the metrics' counters,
 * its key/value state), in one unit of work. to must not be a tenant yet.
 * Not inside a transaction. */
int store_tenant_rekey(struct store *st, const char *from, const char *to, struct err *err);

#endif
