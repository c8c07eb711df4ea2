/* billing — licence billing planned from the licence history (issue 7):
 * billing periods, the per-SKU usage of a period handed to the policy's
 * bill(sku, t) hook, what the hook said, the plan (one line per billed
 * product, bundles rolled up), drift between two plans, and the diff of a
 * plan against the lines of a Syncro invoice schedule with the decrease
 * guard. Pure C over plain structs — no Lua, no HTTP, no SQLite — so every
 * rule is unit-testable; the hook itself is in lua_bill.c (billing_hook.h),
 * the runs that read the store and write Syncro in billing_run.h.
 *
 * Money is held in integer cents; a quantity in whole units (seats). Syncro
 * answers quantities as decimal text ("4.0"), held here in hundredths
 * ("centi-units") so comparisons are exact.
 *
 * Ownership: structs filled by a function here own their strings; free them
 * with the matching *_free (which zeroes; a zeroed struct is empty). Input
 * structs (billing_usage, billing_sched_line) are borrowed views. */
#ifndef ENTRASYNC_BILLING_H
#define ENTRASYNC_BILLING_H

#include <stdbool.h>
#include <stddef.h>
#include "util/util.h"

/* ---------------------------------------------------------------- periods */

/* A calendar month, UTC. */
struct billing_period {
	char id[16];                 /* "YYYY-MM" */
	char first[16];              /* "YYYY-MM-01" */
	char last[16];               /* "YYYY-MM-28..31" */
	int days;                    /* days in the month */
};
/* Parses "YYYY-MM" (year 2000..2999, month 01..12). */
int billing_period_parse(const char *s, struct billing_period *out, struct err *err);
/* The month holding t (seconds since the epoch, UTC). */
void billing_period_of(double t, struct billing_period *out);
/* The month before p. */
void billing_period_prev(const struct billing_period *p, struct billing_period *out);
/* -1 when the period ended before the day of t, 0 when t is in it, 1 when
 * it starts after t. */
int billing_period_vs(const struct billing_period *p, double t);

/* ---------------------------------------------------------------- usage */

/* One SKU of a tenant over a period, from the period's daily snapshots:
 * the values of the tenant's last snapshot day in the period (a SKU absent
 * that day counts 0) and the peaks over every day. Borrowed strings. */
struct billing_usage {
	const char *sku_id;
	const char *part;            /* skuPartNumber, or NULL */
	const char *name;            /* friendly product name (never NULL when filled by the store) */
	long long purchased;         /* prepaidUnits.enabled */
	long long assigned;          /* consumedUnits */
	long long peak_purchased;
	long long peak_assigned;
	long long days;              /* snapshot days of the period holding the SKU */
	/* on the period's last snapshot day: prepaidUnits Microsoft no longer
	 * lets the customer use (suspended, locked out) or soon will not
	 * (warning: the grace period), and the subscription's capabilityStatus
	 * ("Enabled", "Warning", "Suspended", "Deleted", "LockedOut"; NULL when
	 * unknown) */
	long long suspended, warning, locked_out;
	const char *capability_status;
};
/* available = purchased - assigned (never below 0). */
long long billing_usage_available(const struct billing_usage *u);
/* The JSON handed to the hook: {"sku":{sku_id, part, name, purchased,
 * assigned, available, peak_assigned, peak_purchased, days, suspended,
 * warning, locked_out, capability_status, period}} (new string, free).
 * Absent part or capability_status → no key. */
char *billing_usage_json(const struct billing_usage *u, const struct billing_period *p);
struct cJSON;
/* The same as a cJSON tree (caller deletes). */
struct cJSON *billing_usage_cjson(const struct billing_usage *u, const struct billing_period *p);

/* ---------------------------------------------------------------- bill() */

/* What bill(sku, t) returned. */
enum billing_verdict {
	BILLING_NOT_BILLED,          /* nil: no price for this SKU */
	BILLING_FREE,                /* false: deliberately not billed (never a leak) */
	BILLING_BILLED,              /* a table: one item */
};

/* The hook's table: { product_id=, name=, unit_price=, quantity=, taxable= }. */
struct billing_item {
	long long product_id;        /* 0 = none: the line is named by name */
	char *name;                  /* NULL = the catalog's (product_id required then) */
	bool has_price;              /* unit_price given */
	long long unit_cents;
	long long quantity;          /* whole units; defaults to the SKU's assigned seats */
	int taxable;                 /* -1 = not given, else 0/1 */
};
void billing_item_free(struct billing_item *it);
/* Reads the hook's result (JSON text of the table) for SKU u. Rules:
 * known keys only (unknown → error with "did you mean"); product_id a
 * positive integer; name a non-empty string; unit_price a number >= 0
 * (rounded to cents); quantity a whole number >= 0 (absent = u->assigned);
 * taxable a boolean; at least a product_id or a name, and a unit_price
 * unless product_id is given (Syncro's catalog price). */
int billing_item_from_json(const char *json, const struct billing_usage *u, struct billing_item *out,
                           struct err *err);

/* ---------------------------------------------------------------- plans */

/* What the plan says about one SKU. */
enum billing_sku_status {
	BILLING_SKU_BILLED,          /* on a line (quantity may be 0) */
	BILLING_SKU_FREE,            /* bill() returned false */
	BILLING_SKU_UNBILLED,        /* bill() returned nil while seats are assigned: a leak */
	BILLING_SKU_IDLE,            /* bill() returned nil, no seat assigned */
};
/* "billed", "free", "unbilled", "idle". */
const char *billing_sku_status_name(enum billing_sku_status s);

struct billing_plan_sku {
	char *sku_id, *part, *name;  /* owned */
	long long purchased, assigned, peak_purchased, peak_assigned, days;
	enum billing_sku_status status;
	long long quantity;          /* BILLED: this SKU's share of its line */
	long long line;              /* BILLED: index into lines; else -1 */
};

/* One invoice / schedule line: every SKU billed with the same product (or,
 * without a product, the same name). */
struct billing_line {
	char *key;                   /* "p:<product_id>" or "n:<lower-case name>" */
	long long product_id;
	char *name;                  /* the policy's name, or NULL */
	char *catalog_name;          /* the product's name in Syncro's catalog, when known */
	bool has_price;
	long long unit_cents;
	bool price_from_catalog;     /* the price is the catalog's (policy gave none) */
	long long quantity;
	int taxable;                 /* -1 = not given */
	char *skus;                  /* part numbers (or ids) rolled into the line, "A+B" */
	char fallback[32];           /* "product <id>": the label when no name is known */
};
/* The name to show: name, else catalog_name, else "product <id>". Never NULL. */
const char *billing_line_label(const struct billing_line *l);
/* The key of a product line or a named line (new string, free). */
char *billing_line_key(long long product_id, const char *name);

struct billing_plan {
	char *tenant_id;
	struct billing_period period;
	struct billing_plan_sku *skus;
	size_t nskus, skus_cap;
	struct billing_line *lines;
	size_t nlines, lines_cap;
};
void billing_plan_init(struct billing_plan *p, const char *tenant_id, const struct billing_period *period);
void billing_plan_free(struct billing_plan *p);
/* Adds SKU u with the hook's verdict (it: the item when BILLED, else
 * ignored). Items with the same key roll into one line, quantities added
 * (bundles). A bundle whose items disagree on an explicit unit_price,
 * name or taxable is an error naming both SKUs (nothing added). */
int billing_plan_add(struct billing_plan *p, const struct billing_usage *u, enum billing_verdict v,
                     const struct billing_item *it, struct err *err);
/* Sum of quantity x price over the lines (cents); *complete (optional)
 * false when some line with a quantity has no known price. */
long long billing_plan_total(const struct billing_plan *p, bool *complete);
/* Lines with a quantity above 0 (what an invoice gets). */
size_t billing_plan_billable(const struct billing_plan *p);
/* SKUs with status UNBILLED. */
size_t billing_plan_unbilled(const struct billing_plan *p);
/* The line with this key, or NULL. */
const struct billing_line *billing_plan_line(const struct billing_plan *p, const char *key);

/* JSON of the whole plan: {"tenant_id","period","lines":[…],"skus":[…],
 * "total_cents", "total_complete"} (new string, free), and back (the plan
 * recorded with an invoice intent). from_json fills *out (freed first). */
char *billing_plan_to_json(const struct billing_plan *p);
struct cJSON *billing_plan_to_cjson(const struct billing_plan *p);
int billing_plan_from_json(const char *json, struct billing_plan *out, struct err *err);

/* "12.50" for 1250 cents (and "-0.05") into buf[32]. */
const char *billing_money(long long cents, char buf[32]);

/* ---------------------------------------------------------------- drift */

/* A line whose quantity or price differs between the invoiced plan and
 * the plan made now. */
struct billing_drift {
	char *key;
	char *label;
	long long old_qty, new_qty;          /* -1 = the line is absent on that side */
	long long old_cents, new_cents;      /* unit prices; -1 = unknown */
};
struct billing_drifts {
	struct billing_drift *v;
	size_t n;
};
void billing_drifts_free(struct billing_drifts *d);
/* Lines of then and now that differ in quantity or explicit unit price
 * (lines of quantity 0 count as absent). */
void billing_plan_drift(const struct billing_plan *then, const struct billing_plan *now, struct billing_drifts *out);

/* ---------------------------------------------------------------- schedules */

/* A line of a Syncro invoice schedule, as read (borrowed). */
struct billing_sched_line {
	long long id;
	long long product_id;        /* 0 = none */
	const char *name;
	long long qty_centi;         /* quantity x 100 */
	long long retail_cents;
};

enum billing_change_kind {
	BILLING_ADD,                 /* add_line_item */
	BILLING_UPDATE,              /* PUT line_items/{id}: quantity and/or price */
	BILLING_ZERO,                /* no longer billed: quantity set to 0 */
	BILLING_REMOVE,              /* no longer billed: remove_line_item */
};
/* "add", "update", "zero", "remove". */
const char *billing_change_kind_name(enum billing_change_kind k);

struct billing_change {
	enum billing_change_kind kind;
	char *key;
	char *label;
	long long line_id;           /* 0 for an add (set once added) */
	long long product_id;        /* add: the product (0 = a named line) */
	char *name;                  /* add: the line's name when the policy gave one */
	int taxable;                 /* add: -1 = not given */
	long long old_qty_centi, new_qty_centi;   /* add: old 0 */
	long long old_cents, new_cents;           /* retail price per unit; -1 = not known / not set */
	bool set_price;              /* the price is written (the policy gave one and it differs) */
	bool held;                   /* a decrease held by the guard */
	/* Filled by the run that applies it: */
	bool applied;                /* sent and accepted */
	char *error;                 /* why it failed, or NULL */
};

/* Schedule options of a tenant. */
#define BILLING_MAX_DECREASE_COUNT   5
#define BILLING_MAX_DECREASE_PERCENT 10.0
struct billing_sched_opts {
	bool remove;                 /* a product no longer billed is removed (else set to 0) */
	long long max_decrease_count;     /* < 0 = default (5 units) */
	double max_decrease_percent;      /* < 0 = default (10 % of the managed quantity) */
	bool allow_decrease;              /* bill --allow-decrease */
};

struct billing_changes {
	struct billing_change *v;
	size_t n;
	long long unchanged;         /* planned lines already right */
	long long decrease;          /* units the changes would take off (all decreasing changes) */
	long long base;              /* units on the managed lines before */
	bool held;                   /* the decreases are held: reason says why */
	char reason[256];
	char **duplicates;           /* "line 3007 repeats product 503": left alone, reported */
	size_t nduplicates;
	char **managed;              /* keys managed after the changes (store them) */
	size_t nmanaged;
};
void billing_changes_free(struct billing_changes *c);

/* Diffs plan against the schedule's lines have[0..n). managed: the keys
 * entrasync manages on this schedule (lines it added or adopted before).
 *   - a planned line whose key matches an existing line (product, else
 *     name ASCII case-insensitively; the first of duplicates) is adopted:
 *     updated when its quantity differs, or its price differs from an
 *     explicit policy unit_price (a catalog price never overwrites what the
 *     MSP set on the schedule);
 *   - a planned line without a match is added (quantity 0 lines too: they
 *     keep the product on the schedule);
 *   - a managed line no longer planned is zeroed or removed (o->remove);
 *     lines entrasync never managed are never touched.
 * The guard: when the decreases add up to more than max(count, percent %
 * of the managed units before) and allow_decrease is off, every decreasing
 * change is marked held and out->held is set with the reason. */
int billing_schedule_diff(const struct billing_plan *plan, const struct billing_sched_line *have, size_t n,
                          const char *const *managed, size_t nmanaged, const struct billing_sched_opts *o,
                          struct billing_changes *out, struct err *err);

#endif
