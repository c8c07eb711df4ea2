/* store_status — the read side the operator commands need (`status`,
 * `audit`, `conflicts`, the metrics file): per-tenant overviews with the
 * last pull and sync, the audit trail with a contact filter, open
 * conflicts with who they are about, and the aggregates behind the
 * Prometheus metrics. Knows no Lua, no HTTP.
 *
 * An extension file of the store (see store.h): it reads through the
 * store's own connection and statement cache (store_stmt), so it needs no
 * set-up and nothing to close. Nothing here writes. Statements are
 * constant strings, values are only ever bound. A query's statement is
 * busy until it returns: a callback must not run the same query again
 * (other store calls are fine).
 *
 * Conventions as in store.h: 0 / negative with *err; structs handed to
 * callbacks are borrowed (valid during the callback only; copy what you
 * keep); a callback returns non-zero to stop and that value is returned. */
#ifndef ENTRASYNC_STORE_STATUS_H
#define ENTRASYNC_STORE_STATUS_H

#include <stdbool.h>
#include "store/store.h"
#include "util/util.h"

/* ---------------------------------------------------------------- tenants */

/* The latest outcome of one tenant in runs of one kind ("pull", "sync"). */
struct store_status_run {
	long long run_id;          /* 0 = the tenant never took part in such a run */
	const char *started_at;    /* the run's */
	const char *finished_at;   /* NULL while the run goes on (or if it died) */
	const char *run_status;    /* the run's: "running", "ok", "partial", "failed" ... */
	const char *status;        /* this tenant's: "ok" | "failed" | "held" */
	const char *counts;        /* JSON object or NULL */
	const char *reason;        /* why failed / held, or NULL */
};

struct store_status_tenant {
	const char *id;
	const char *name;
	const char *default_domain;
	long long syncro_customer_id;
	const char *last_pull_at;  /* the tenants row, as pull and sync keep it */
	const char *last_sync_at;
	const char *last_status;
	const char *last_error;
	long long users_present;   /* mirrored users not removed */
	long long users_removed;
	long long links;           /* contacts linked */
	long long conflicts_open;
	long long intents_open;    /* writes recorded but not confirmed ("pending"/"sent") */
	struct store_status_run pull;
	struct store_status_run sync;
	const char *last_reached_at; /* the newest pull or sync that reached it (ok or held): its end, or NULL */
};

/* Calls cb for each tenant in the store (only tenant_id when not NULL), in
 * id order. STORE_NOTFOUND when tenant_id is given and not in the store. */
int store_status_tenant_each(struct store *st, const char *tenant_id,
                             int (*cb)(const struct store_status_tenant *t, void *ud), void *ud,
                             struct err *err);

/* A tenant's unbroken run of failed pulls and syncs, up to its latest. */
struct store_status_failing {
	long long runs;            /* failed results in a row (0: the latest pull or sync did not fail) */
	char *since;               /* the first of them: its run's start (ISO-8601), owned; NULL when runs is 0 */
	char *reason;              /* the latest's reason, owned, or NULL */
	char *last_reached;        /* the pull or sync before them that reached the tenant (ok or held): its end
	                            * (ISO-8601), owned; NULL when runs is 0 or the history holds none */
};
/* Walks the tenant's pull and sync results from the newest back to the
 * first that did not fail ("held" ends the run too: the tenant was reached).
 * Dry runs do not count. *out: store_status_failing_free. */
int store_status_failing_get(struct store *st, const char *tenant_id, struct store_status_failing *out,
                             struct err *err);
void store_status_failing_free(struct store_status_failing *f);

/* ---------------------------------------------------------------- audit */

struct store_status_audit_filter {
	const char *tenant_id;     /* NULL = every tenant */
	const char *since;         /* ISO-8601 UTC, at >= since; NULL = from the start */
	long long contact_id;      /* 0 = every contact */
	const char *object_id;     /* NULL = every user */
	long long run_id;          /* 0 = every run */
	long long limit;           /* 0 = no limit */
	bool newest_first;         /* default oldest first (id order) */
};
/* The audit rows matching f (NULL = all), as struct store_audit (store.h),
 * with the user's display name (else UPN) from the mirror, or NULL. */
int store_status_audit_each(struct store *st, const struct store_status_audit_filter *f,
                            int (*cb)(const struct store_audit *a, const char *user_name, void *ud), void *ud,
                            struct err *err);

/* ---------------------------------------------------------------- conflicts */

struct store_status_conflict {
	long long id;
	const char *tenant_id;
	const char *object_id;
	const char *candidates;    /* JSON array of contact ids, or NULL */
	const char *reason;
	const char *opened_at;
	/* From the user's mirror row (NULL when absent). */
	const char *display_name;
	const char *mail;
	const char *upn;
	/* The user's link (0 when not linked): a linked user's conflict is an
	 * update that would make a second contact with an e-mail. */
	long long linked_contact;
	long long linked_customer;
};
/* Open conflicts (resolved_at NULL) of tenant_id (NULL = every tenant),
 * oldest first. */
int store_status_conflict_each(struct store *st, const char *tenant_id,
                               int (*cb)(const struct store_status_conflict *c, void *ud), void *ud,
                               struct err *err);

/* ---------------------------------------------------------------- users */

/* Finds the user of tenant_id that `who` names: an object id, else a
 * userPrincipalName or mail (ASCII case-insensitive). *object_id gets a new
 * string (free) or STORE_NOTFOUND is returned. Several users matching by
 * mail is an error naming them. */
int store_status_user_find(struct store *st, const char *tenant_id, const char *who, char **object_id,
                           struct err *err);

/* ---------------------------------------------------------------- metrics */

/* The counts below are kept by triggers since the database began (schema
 * 11 and 12): deleting history (the retention) does not lower them. */

/* Finished runs by kind and status ("running" left out). */
int store_status_run_counts(struct store *st,
                            int (*cb)(const char *kind, const char *status, long long n, void *ud), void *ud,
                            struct err *err);
/* The latest finished run of each kind, the latest finished with status
 * "ok" and the latest that went through, "ok" or "partial" (its failures
 * were tenants', not its own) (NULL when none): cb(kind, started_at,
 * finished_at, status, last_ok_finished_at, last_complete_finished_at). */
int store_status_run_latest(struct store *st,
                            int (*cb)(const char *kind, const char *started_at, const char *finished_at,
                                      const char *status, const char *last_ok_finished_at,
                                      const char *last_complete_finished_at, void *ud),
                            void *ud, struct err *err);
/* The newest run of any kind (its row as it is: "running" while it goes
 * on, or when it was killed and no run began since). Strings owned:
 * store_status_newest_free. STORE_NOTFOUND when no run ever began. */
struct store_status_newest {
	long long run_id;
	char *kind;
	char *started_at;
	char *status;
};
int store_status_run_newest(struct store *st, struct store_status_newest *out, struct err *err);
void store_status_newest_free(struct store_status_newest *n);
/* Per-tenant outcomes over all runs: cb(kind, tenant_id, status, n). */
int store_status_tenant_run_counts(struct store *st,
                                   int (*cb)(const char *kind, const char *tenant_id, const char *status,
                                             long long n, void *ud),
                                   void *ud, struct err *err);
/* Audit rows by action and outcome: result "ok" → "ok", "dry-run" →
 * "dry_run", anything else → "failed". */
int store_status_write_counts(struct store *st,
                              int (*cb)(const char *action, const char *outcome, long long n, void *ud), void *ud,
                              struct err *err);
/* The database file's size and the part of it free (pages SQLite reuses,
 * or `prune --vacuum` gives back), in bytes. */
int store_status_db_size(struct store *st, long long *bytes, long long *free_bytes, struct err *err);
/* The key/value rows whose key starts with prefix, in key order. */
int store_status_kv_each(struct store *st, const char *prefix,
                         int (*cb)(const char *key, const char *value, void *ud), void *ud, struct err *err);

#endif
