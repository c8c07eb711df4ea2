/* findings — the licence findings MSPs act on, as pure rules over plain
 * values (no store, no Lua), so every rule is unit-testable:
 *   unused          available > 0 for at least N days in a row
 *   over_assigned   more seats assigned than purchased and in the grace period
 *                   (grace seats still work until Microsoft suspends them)
 *   disabled_user   a disabled account still holds licences
 *   deleted_user    a user deleted from the directory, last seen holding licences, while
 *                   Microsoft can still restore it (soft-deleted, 30 days)
 *   warning         seats in the grace period (expiring: renew or they are suspended)
 *   suspended       suspended seats (unusable, data kept)
 *   locked_out      locked-out seats
 *   score_alert     an alert a policy's secure_score hook raised
 *   failing         the tenant's pulls and syncs have failed without a
 *                   break for hours (consent withdrawn, secret expired, …)
 * A finding list owns everything in it (findings_free). */
#ifndef ENTRASYNC_FINDINGS_H
#define ENTRASYNC_FINDINGS_H

#include <stdbool.h>
#include <stddef.h>

enum finding_kind {
	FINDING_UNUSED,
	FINDING_OVER_ASSIGNED,
	FINDING_DISABLED_USER,
	FINDING_DELETED_USER,
	FINDING_WARNING,
	FINDING_SUSPENDED,
	FINDING_LOCKED_OUT,
	FINDING_SCORE_ALERT,
	FINDING_FAILING,
	FINDING_NKINDS
};

/* Ordered: higher is more urgent. */
enum finding_severity { FINDING_INFO, FINDING_WARN, FINDING_CRIT };

struct finding {
	enum finding_kind kind;
	enum finding_severity severity;
	char *tenant_id;
	char *sku_id;              /* NULL for user-less, SKU-less findings */
	char *sku_name;            /* display name (after the policy's rename) */
	char *user_id;             /* user findings */
	char *upn;                 /* user findings: userPrincipalName (or mail, or id) */
	long long count;           /* seats concerned (user findings: licences held) */
	int days;                  /* unused: days in a row */
	int snapshots;             /* unused: the snapshots of those days (= days when one a day) */
	char *message;             /* one line, for people */
	char *alert_text;          /* what an alert compares to tell a change (NULL = message): the message
	                            * without what moves every day on its own (unused: the days in a row) */
};

struct findings {
	struct finding *v;
	size_t n, cap;
};

/* "unused", "over_assigned", "disabled_user", "deleted_user", "warning",
 * "suspended", "locked_out", "score_alert", "failing". */
const char *finding_kind_name(enum finding_kind k);
/* "info", "warn", "crit". */
const char *finding_severity_name(enum finding_severity s);

/* One SKU of a tenant on its latest snapshot day (borrowed strings). */
struct findings_sku {
	const char *sku_id;
	const char *name;          /* display name */
	long long purchased;       /* prepaidUnits.enabled */
	long long assigned;        /* consumedUnits */
	long long suspended, warning, locked_out;   /* prepaidUnits.*; warning = in the grace period, usable */
	int unused_days;           /* consecutive days (up to the latest) with available > 0 */
	long long unused_least;    /* the fewest seats free on a day of that run (0 = unknown: today's) */
	int unused_snapshots;      /* the snapshot days of that run; 0 or unused_days: one every day */
	bool billable;             /* free SKUs (not billable) are never "unused" */
};

/* Microsoft keeps a deleted user restorable for 30 days (soft-deleted), then
 * deletes it for good. */
#define FINDINGS_RESTORE_DAYS 30

/* One user of the mirror who holds licences (borrowed strings). */
struct findings_user {
	const char *object_id;
	const char *upn;           /* userPrincipalName, else mail, else NULL */
	bool enabled;              /* accountEnabled (absent = true) */
	const char *removed;       /* NULL, or the mirror's removed reason: "changed" (soft-deleted,
	                            * restorable) or "deleted" (deleted for good) */
	const char *removed_at;    /* ISO-8601, or NULL */
	double as_of;              /* when the tenant's data is of (seconds since the epoch) */
	const char *const *skus;   /* display names of the licences held */
	size_t nskus;
};

/* Is the user deleted for good: deleted for good by Graph's word ("deleted"),
 * or soft-deleted FINDINGS_RESTORE_DAYS or more before u->as_of? Its
 * licences are free then: it holds nothing any more. */
bool findings_user_gone(const struct findings_user *u);

/* Adds the SKU findings of one SKU: unused (a billable SKU with
 * unused_days >= unused_threshold, threshold > 0: purchased seats not
 * assigned), over_assigned (assigned > purchased + warning), warning,
 * suspended, locked_out. */
void findings_check_sku(struct findings *f, const char *tenant_id, const struct findings_sku *s,
                        int unused_threshold);
/* Adds disabled_user / deleted_user when the user holds licences (a user
 * deleted for good, findings_user_gone, holds none). */
void findings_check_user(struct findings *f, const char *tenant_id, const struct findings_user *u);
/* Appends to the message of findings v[from..n) that their licence counts
 * are of day (a tenant whose newest snapshot is older than the others'),
 * keeping the alert text as it was (an alert does not change daily). */
void findings_mark_day(struct findings *f, size_t from, const char *day);
/* Adds a score_alert with message (copied). */
void findings_add_alert(struct findings *f, const char *tenant_id, const char *message);

/* A tenant's unbroken run of failed pulls and syncs, newest last. */
struct findings_failing {
	const char *since;         /* ISO-8601 start of the run that failed first */
	long long runs;            /* failed runs in a row (0: its latest run did not fail) */
	const char *reason;        /* the latest failure's message */
	const char *last_reached;  /* ISO-8601 end of the last pull or sync that reached it, or NULL */
};
/* Adds failing (crit) when the tenant's runs have failed without a break
 * for at least hours (> 0) before now. Its message names the last time
 * the tenant was reached (when known) and the first failure's time, and
 * the latest reason without the trace and request ids Microsoft adds, so
 * that the same failure reads the same at every run (an alert ticket is
 * commented only when what it says changed). */
void findings_check_failing(struct findings *f, const char *tenant_id, const struct findings_failing *x, double now,
                            int hours);

/* Sorts: severity (most urgent first), tenant id, kind, SKU name, UPN. */
void findings_sort(struct findings *f);
void findings_free(struct findings *f);

#endif
