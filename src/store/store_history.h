/* store_history — reads over the store's licence and Secure Score snapshot
 * tables for reports, trends and findings (whole history, many tenants at
 * once, in storage order: walking the primary key costs a table look-up
 * per row, most of a large report's time), plus the small pieces
 * of state reports and alerts keep in the store's key/value table (control
 * profiles per tenant, the open alert ticket per tenant and kind).
 *
 * Same conventions as store.h: 0 / negative with *err / STORE_NOTFOUND;
 * structs handed to *_each callbacks are borrowed for the call; a callback
 * returns non-zero to stop and *_each passes that value on.
 *
 * The connection: like store_snapshots.c, this file cannot reach the
 * store's own sqlite3 handle (struct store is opaque), so a history handle
 * holds its own read-only connection to store_path(st). WAL mode lets it
 * read while the store writes; a handle reads one consistent snapshot of
 * the database for its whole life (a read transaction from the first read
 * to store_history_close): keep it short-lived. */
#ifndef ENTRASYNC_STORE_HISTORY_H
#define ENTRASYNC_STORE_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include "store/store.h"
#include "store/store_snapshots.h"

struct store_history;  /* opaque: a read-only connection and its statements */

/* Opens a read-only handle on st's database. Free with store_history_close
 * (before store_close(st)). */
int store_history_open(struct store *st, struct store_history **out, struct err *err);
void store_history_close(struct store_history *h);

/* One licence snapshot row as far as the unused-seat runs need it. */
struct store_license_seats {
	const char *tenant_id, *day, *sku_id;
	long long enabled, consumed;
};

/* Every licence snapshot row of tenant_id, (tenant_id, day, sku_id,
 * enabled, consumed) only. tenant_id NULL = every tenant, in the table's
 * storage order (the order the rows were written: no index walk, no
 * sorting; a tenant's days come mostly oldest first, but nothing is
 * promised); one tenant: ordered by day, sku_id. */
int store_history_license_seats_each(struct store_history *h, const char *tenant_id,
                                     int (*cb)(const struct store_license_seats *l, void *ud), void *ud,
                                     struct err *err);

/* The licence snapshot rows of tenant_id on day, all columns, by sku_id
 * descending. */
int store_history_licenses_day_each(struct store_history *h, const char *tenant_id, const char *day,
                                    int (*cb)(const struct store_license *l, void *ud), void *ud,
                                    struct err *err);

/* Every Secure Score day of tenant_id with day >= since (NULL = all).
 * tenant_id NULL = every tenant, in the table's storage order (as for the
 * licence seats above: a tenant's days come mostly oldest first, nothing
 * promised); one tenant: ordered by day. averages and controls are read
 * only when with_json (else NULL): most reports need only the numbers. */
int store_history_scores_each(struct store_history *h, const char *tenant_id, const char *since, bool with_json,
                              int (*cb)(const struct store_secure_score *s, void *ud), void *ud,
                              struct err *err);

/* The newest n (<= 8) stored days of tenant_id, newest first, numbers only
 * (out[i].tenant_id, averages and controls NULL; day points into day_buf).
 * *got = how many. */
int store_history_scores_newest(struct store_history *h, const char *tenant_id, size_t n,
                                struct store_secure_score *out, char (*day_buf)[11], size_t *got, struct err *err);

/* The stored Secure Score of tenant_id on day (NULL = its newest day),
 * with averages and controls. Strings of *out are new (free with
 * store_history_score_free); STORE_NOTFOUND when there is none. */
int store_history_score_get(struct store_history *h, const char *tenant_id, const char *day,
                            struct store_secure_score *out, struct err *err);
void store_history_score_free(struct store_secure_score *s);

/* ---- key/value state (through store_kv_* of the store's own connection) */

/* secureScoreControlProfiles of a tenant, the JSON array as received (the
 * "value" of the answer), kept to join control titles into the breakdown.
 * get: *json new string (free) or STORE_NOTFOUND. */
int store_history_profiles_put(struct store *st, const char *tenant_id, const char *json, struct err *err);
int store_history_profiles_get(struct store *st, const char *tenant_id, char **json, struct err *err);

/* The UTC day (YYYY-MM-DD) a pull last stored the profiles of tenant_id,
 * so it fetches them at most once a day. get: STORE_NOTFOUND when never. */
int store_history_profiles_day_get(struct store *st, const char *tenant_id, char day[11], struct err *err);
int store_history_profiles_day_put(struct store *st, const char *tenant_id, const char *day, struct err *err);

/* The open alert ticket of (tenant, kind): the Syncro ticket id and how
 * many times the alert was raised. get: STORE_NOTFOUND when there is none.
 * put with ticket_id 0 forgets it (the ticket was closed or deleted). */
struct store_alert_ticket {
	long long ticket_id;
	long long occurrences;
	char opened_at[32];        /* when the ticket was created (ISO-8601 UTC) */
	char last_at[32];          /* the latest occurrence */
	char digest[17];           /* of what the ticket last said */
};
int store_history_alert_get(struct store *st, const char *tenant_id, const char *kind,
                            struct store_alert_ticket *out, struct err *err);
int store_history_alert_put(struct store *st, const char *tenant_id, const char *kind,
                            const struct store_alert_ticket *t, struct err *err);

#endif
