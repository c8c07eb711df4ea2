/* store_snapshots — the store's API for the daily licence and Secure Score
 * snapshots (tables of migrations 3 and 5 in src/store/store_schema.c), and the
 * replacement of a declared group's membership in one step. Same
 * conventions as store.h: 0 / negative with *err / STORE_NOTFOUND; structs
 * handed to *_each callbacks are borrowed for the call.
 * Writes are their own unit of work, or part of the caller's transaction
 * when one is open (store_begin). */
#ifndef ENTRASYNC_STORE_SNAPSHOTS_H
#define ENTRASYNC_STORE_SNAPSHOTS_H

#include <stddef.h>
#include "store/store.h"

/* One SKU of a tenant on a day (subscribedSkus). */
struct store_license {
	const char *tenant_id;     /* read back; ignored on write (the argument wins) */
	const char *day;           /* "YYYY-MM-DD"; read back; ignored on write */
	const char *sku_id;
	const char *sku_part_number;
	long long enabled;         /* prepaidUnits.enabled (purchased seats) */
	long long suspended;
	long long warning;
	long long locked_out;
	long long consumed;        /* consumedUnits */
	const char *capability_status;  /* Enabled | Warning | Suspended | Deleted | LockedOut */
	const char *applies_to;    /* User | Company */
};

/* Replaces the tenant's snapshot of day (delete + insert, one transaction):
 * pulling twice a day keeps the latest picture of that day. */
int store_license_snapshot_put(struct store *st, const char *tenant_id, const char *day,
                               const struct store_license *rows, size_t n, struct err *err);
/* The tenant's latest snapshot day (*day a new string, free) or STORE_NOTFOUND. */
int store_license_latest_day(struct store *st, const char *tenant_id, char **day, struct err *err);
/* Calls cb for each SKU of the tenant's snapshot of day (NULL = the latest),
 * in sku_part_number order. */
int store_license_each(struct store *st, const char *tenant_id, const char *day,
                       int (*cb)(const struct store_license *l, void *ud), void *ud, struct err *err);

/* One day of a tenant's Secure Score. */
struct store_secure_score {
	const char *tenant_id;
	const char *day;           /* "YYYY-MM-DD" (from createdDateTime) */
	double current_score;
	double max_score;
	const char *averages;      /* averageComparativeScores, raw JSON, or NULL */
	const char *controls;      /* controlScores, raw JSON (unknown keys kept), or NULL; with raw, put
	                            * keeps them in raw only, and reads give them back from it */
	const char *raw;           /* the whole secureScore object as received (JSON), or NULL
	                            * (read back: NULL for days stored before schema 5) */
};
/* Inserts or replaces the day. */
int store_secure_score_put(struct store *st, const struct store_secure_score *s, struct err *err);
/* The tenant's newest stored day (*day a new string, free) or STORE_NOTFOUND. */
int store_secure_score_latest_day(struct store *st, const char *tenant_id, char **day, struct err *err);
int store_secure_score_count(struct store *st, const char *tenant_id, long long *n, struct err *err);
/* Calls cb for each stored day of the tenant, oldest first. */
int store_secure_score_each(struct store *st, const char *tenant_id,
                            int (*cb)(const struct store_secure_score *s, void *ud), void *ud, struct err *err);

/* Makes the group (tenant_id, group_id) exist with display_name and its
 * membership exactly ids[0..n) (transitive members), in one transaction. */
int store_group_members_replace(struct store *st, const char *tenant_id, const char *group_id,
                                const char *display_name, const char *const *ids, size_t n, struct err *err);
/* The number of members stored for the group. */
int store_group_member_count(struct store *st, const char *tenant_id, const char *group_id, long long *n,
                             struct err *err);
/* The id of the tenant's one stored group named name (ASCII case ignored,
 * as Graph's displayName eq): *id a new string; STORE_NOTFOUND when no
 * group or several have that name. */
int store_group_id_by_name(struct store *st, const char *tenant_id, const char *name, char **id, struct err *err);
/* The page key stored with the group's member rows: an opaque text the
 * pull makes from the member page(s) the rows were last taken from (their
 * digest and length, graph_pull.c page_key). *key a new string, NULL when
 * none is stored (no group, or its rows changed since: triggers drop it);
 * *members the number of distinct members then (-1 when unknown). */
int store_group_page_get(struct store *st, const char *tenant_id, const char *group_id, char **key,
                         long long *members, struct err *err);
/* Stores key as the group's page key: call it after
 * store_group_members_replace with the ids read from those pages, in the
 * same transaction. Writes nothing when it is the stored one. */
int store_group_page_put(struct store *st, const char *tenant_id, const char *group_id, const char *key,
                         struct err *err);
/* The group's member pages came again with the stored key: its member rows
 * stay; only a new display_name is written. *still false (nothing written)
 * when the stored key is no longer key: the rows changed since it was
 * read, and the pages must be read whole. */
int store_group_page_same(struct store *st, const char *tenant_id, const char *group_id, const char *display_name,
                          const char *key, bool *still, struct err *err);
/* Deletes the tenant's stored groups (with their member rows) other than
 * group_ids[0..n): groups the policy no longer names, or that were
 * deleted or recreated under a new id in Graph. *dropped (may be NULL):
 * how many. Its own unit of work, or part of the caller's. */
int store_groups_keep_only(struct store *st, const char *tenant_id, const char *const *group_ids, size_t n,
                           long long *dropped, struct err *err);


#endif
